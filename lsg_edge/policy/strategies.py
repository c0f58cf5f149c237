"""READ/WRITE strategies: LSG and its comparison baselines on one decision interface
(`interface`). The strategies and the arithmetic in `decision`, `bounds` and `words` are the same
for text and speech. Once the source has ended the session decodes the rest itself.
"""

from __future__ import annotations


import numpy as np

from .bounds import words_allowed, words_required
from .decision import RowStats, kl_between, row_stats
from .interface import Decision, DecisionView, Policy, Read, Write
from .alignatt import AlignAttPolicy
from .local_agreement import LocalAgreementPolicy
from .options import PolicyOptions
from .words import cut_at_words, word_starts

__all__ = [
    "Read",
    "Write",
    "Decision",
    "DecisionView",
    "Policy",
    "LsgPolicy",
    "LeadingRun",
    "WaitKPolicy",
    "OfflinePolicy",
    "make_policy",
]


def _write_or_read(n_tokens: int, cause: str) -> Decision:
    return Write(n_tokens, cause) if n_tokens > 0 else Read()


class LsgPolicy(Policy):
    """LSG (Guo et al. 2025): write the leading run of draft tokens that pass the KL/confidence test,
    within the range constraint [L, U], cut to whole words."""

    def __init__(self, options: PolicyOptions) -> None:
        self.options = options

    def decide(self, view: DecisionView) -> Decision:
        o = self.options
        n_read = view.n_read * o.words_per_element
        allowed = words_allowed(n_read, view.n_committed_words, o.low_bound)
        if allowed == 0:
            return Read()
        required = words_required(n_read, view.n_committed_words, o.low_bound, o.top_bound)
        run = self._leading_run(view, allowed, required)
        draft = view.draft(max_words=allowed, should_stop=run.complete)
        if not draft.tokens:
            return Read()
        starts = word_starts(view.pieces(draft.tokens), view.at_target_start)
        cut, _ = cut_at_words(
            starts,
            run.n_accepted,
            max_words=allowed,
            min_words=required,
            final_is_boundary=draft.ended and required > 0 and view.stop_ends_word,
        )
        if cut == 0 and required > 0 and view.stop_ends_word:
            # A due word longer than the whole draft: write what there is rather than stall.
            cut = len(draft.tokens)
        return _write_or_read(cut, run.cause(cut))

    def _leading_run(self, view: DecisionView, allowed: int, required: int) -> "LeadingRun":
        """The write test over the growing draft; probes in `benchmarks/` substitute their own."""
        return LeadingRun(view, self.options, allowed, required)


class LeadingRun:
    """The write test applied while the draft grows, so that drafting stops once the decision is
    known: every further draft token costs a forward pass, and only the leading run of passing
    tokens matters.

    Token k is tested when it is drafted, if it could be committed now (it lies before word
    `allowed` + 1). A position whose P_cur passes the confidence test needs no P_base; otherwise
    the baseline is asked for that one row. After the first failure the draft only has to reach
    the `required` words a forced write takes (their end shows as the next word's first token).
    The result equals testing a full-length draft at once.
    """

    def __init__(self, view: DecisionView, options: PolicyOptions, allowed: int, required: int) -> None:
        self._view = view
        self._options = options
        self._allowed = allowed
        self._required = required
        self._starts: list[bool] = []
        self.n_accepted = 0  # leading draft tokens that passed
        self._failed = False
        self._n_by_kl = 0  # accepted tokens that needed the KL test (confidence alone failed)

    def cause(self, n_written: int) -> str:
        """Why the first `n_written` draft tokens are written (`interface.WRITE_CAUSES`)."""
        if n_written > self.n_accepted:
            return "forced"
        return "kl" if self._n_by_kl else "confidence"

    def complete(self, tokens: list[int], row: np.ndarray) -> bool:
        k = len(tokens) - 1
        self._starts.append(word_starts(self._view.pieces(tokens[k:]), self._view.at_target_start and k == 0)[0])
        n_words_before = sum(self._starts[1:])  # words completed before token k
        if n_words_before >= self._allowed:
            return True  # token k starts a word that may not be written now
        if not self._failed:
            if self._passes(tokens, k, row):
                self.n_accepted += 1
            else:
                self._failed = True
        return self._failed and self._has_required_cut()

    def _passes(self, tokens: list[int], k: int, row: np.ndarray) -> bool:
        # One sweep gives max P_cur; the baseline row is asked for only where confidence fails, and
        # the KL reuses this sweep (`decision.kl_between`).
        o = self._options
        cur: RowStats = row_stats(row)
        if cur.max_probability > o.alpha:
            return True
        base = self._view.baseline_logits(tokens, [k])
        if base is None:
            return False  # P_base = P_cur: the KL is zero, and the confidence test has failed
        if kl_between(cur, row_stats(base[0]), o.kl_direction) > o.delta:
            self._n_by_kl += 1
            return True
        return False

    def _has_required_cut(self) -> bool:
        """Whether the draft holds a word boundary after at least `required` words."""
        if self._required == 0:
            return True
        words_before = np.cumsum([0, *self._starts])  # words in tokens[:c]
        return any(self._starts[c] and words_before[c] >= self._required for c in range(1, len(self._starts)))


class WaitKPolicy(Policy):
    """wait-k (Ma et al. 2019): target word i is written once k+i-1 source words are read."""

    def __init__(self, options: PolicyOptions) -> None:
        self.k = options.k
        self.words_per_element = options.words_per_element

    def decide(self, view: DecisionView) -> Decision:
        due = words_allowed(view.n_read * self.words_per_element, view.n_committed_words, self.k)
        if due == 0:
            return Read()
        draft = view.draft(max_words=due)
        if not draft.tokens:
            return Read()
        starts = word_starts(view.pieces(draft.tokens), view.at_target_start)
        cut, _ = cut_at_words(starts, len(draft.tokens), due, due, final_is_boundary=draft.ended and view.stop_ends_word)
        if cut == 0 and view.stop_ends_word:
            cut = len(draft.tokens)
        return _write_or_read(cut, "wait-k")


class OfflinePolicy(Policy):
    """Full-sentence translation: read everything, then write (the quality reference)."""

    def decide(self, view: DecisionView) -> Decision:
        return Read()


def make_policy(options: PolicyOptions) -> Policy:
    if options.name == "lsg":
        return LsgPolicy(options)
    if options.name == "wait-k":
        return WaitKPolicy(options)
    if options.name == "local-agreement":
        return LocalAgreementPolicy()
    if options.name == "alignatt":
        return AlignAttPolicy(options)
    return OfflinePolicy()
