"""READ/WRITE strategies: LSG and its comparison baselines on one decision interface.

A strategy is asked, while the source is still arriving, how many draft tokens to commit now
(0 = READ). It sees the decision through a `DecisionView`, which drafts from the full-prefix context
and scores drafts under the wait-1 baseline on request; the arithmetic lives in the pure modules
`decision`, `bounds` and `words`. Once the source has ended the session decodes the rest itself.
"""

from __future__ import annotations

import abc
from typing import Callable, Protocol

import numpy as np

from ..backends.base import Draft
from .bounds import words_allowed, words_required
from .decision import log_softmax, write_test
from .options import PolicyOptions
from .words import cut_at_words, word_starts

__all__ = ["DecisionView", "Policy", "LsgPolicy", "LeadingRun", "WaitKPolicy", "OfflinePolicy", "make_policy"]


class DecisionView(Protocol):
    """What a strategy may look at when deciding."""

    n_read: int  # source elements read so far
    n_committed_words: int  # target words committed so far
    at_target_start: bool  # nothing of the target is committed yet

    def draft(self, max_words: int, should_stop: Callable[[list[int], np.ndarray], bool] | None = None) -> Draft:
        """Greedy draft from the full prefix, long enough to show `max_words` whole words, or
        shorter where `should_stop(tokens, row)` (asked after each token) says so."""
        ...

    def baseline_logits(self, tokens: list[int], positions: list[int]) -> np.ndarray | None:
        """Logits of the wait-1 baseline teacher-forced on the draft `tokens`, at draft `positions`:
        float32 [len(positions), vocab]. None when the baseline prefix *is* the full prefix (the
        policy has caught up with the source), so P_base = P_cur."""
        ...

    def pieces(self, tokens: list[int]) -> list[str]:
        """Text of each token."""
        ...


class Policy(abc.ABC):
    """Decides, while the source is incomplete, how many draft tokens to commit (0 = READ)."""

    @abc.abstractmethod
    def tokens_to_write(self, view: DecisionView) -> int: ...


class LsgPolicy(Policy):
    """LSG (Guo et al. 2025): write the leading run of draft tokens that pass the KL/confidence test,
    within the range constraint [L, U], cut to whole words."""

    def __init__(self, options: PolicyOptions) -> None:
        self.options = options

    def tokens_to_write(self, view: DecisionView) -> int:
        o = self.options
        allowed = words_allowed(view.n_read, view.n_committed_words, o.low_bound)
        if allowed == 0:
            return 0
        required = words_required(view.n_read, view.n_committed_words, o.low_bound, o.top_bound)
        run = LeadingRun(view, o, allowed, required)
        draft = view.draft(max_words=allowed, should_stop=run.complete)
        if not draft.tokens:
            return 0
        starts = word_starts(view.pieces(draft.tokens), view.at_target_start)
        cut, _ = cut_at_words(
            starts,
            run.n_accepted,
            max_words=allowed,
            min_words=required,
            final_is_boundary=draft.ended and required > 0,
        )
        if cut == 0 and required > 0:
            # A due word longer than the whole draft: write what there is rather than stall.
            cut = len(draft.tokens)
        return cut


class WriteTestSettings(Protocol):
    """The write-test parameters `LeadingRun` reads (text `PolicyOptions`, speech options alike)."""

    delta: float
    alpha: float
    kl_direction: str


class LeadingRun:
    """The write test applied while the draft grows, so that drafting stops once the decision is
    known: every further draft token costs a forward pass, and only the leading run of passing
    tokens matters.

    Token k is tested when it is drafted, if it could be committed now (it lies before word
    `allowed` + 1). A position whose P_cur passes the confidence test needs no P_base; otherwise
    the baseline is asked for that one row. After the first failure the draft only has to reach
    the `required` words a forced write takes (their end shows as the next word's first token).
    The result equals testing a full-length draft at once. Text and speech LSG both use it: `view`
    needs `pieces`, `at_target_start` and `baseline_logits`; `options` δ, α and the KL direction.
    """

    def __init__(self, view: DecisionView, options: WriteTestSettings, allowed: int, required: int) -> None:
        self._view = view
        self._options = options
        self._allowed = allowed
        self._required = required
        self._starts: list[bool] = []
        self.n_accepted = 0  # leading draft tokens that passed
        self._failed = False

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
        o = self._options
        cur = log_softmax(row[None, :])
        if np.exp(float(cur.max())) > o.alpha:
            return True
        base = self._view.baseline_logits(tokens, [k])
        if base is None:
            return False  # P_base = P_cur: the KL is zero, and the confidence test has failed
        return bool(write_test(cur, log_softmax(base), o.delta, o.alpha, o.kl_direction)[0])

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

    def tokens_to_write(self, view: DecisionView) -> int:
        due = words_allowed(view.n_read, view.n_committed_words, self.k)
        if due == 0:
            return 0
        draft = view.draft(max_words=due)
        if not draft.tokens:
            return 0
        starts = word_starts(view.pieces(draft.tokens), view.at_target_start)
        cut, _ = cut_at_words(starts, len(draft.tokens), due, due, final_is_boundary=draft.ended)
        return cut or len(draft.tokens)


class OfflinePolicy(Policy):
    """Full-sentence translation: read everything, then write (the quality reference)."""

    def tokens_to_write(self, view: DecisionView) -> int:
        return 0


def make_policy(options: PolicyOptions) -> Policy:
    if options.name == "lsg":
        return LsgPolicy(options)
    if options.name == "wait-k":
        return WaitKPolicy(options)
    if options.name == "local-agreement":
        # Imported here: local_agreement builds on this module's Policy interface.
        from .local_agreement import LocalAgreementPolicy

        return LocalAgreementPolicy()
    return OfflinePolicy()
