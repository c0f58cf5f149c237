"""READ/WRITE strategies: LSG and its comparison baselines on one decision interface.

While the source is still arriving, a session asks its strategy for a decision: `Read` (wait for
more source) or `Write(n)` (commit the first n tokens of the current draft). The strategy sees the
stream through a `DecisionView`, which drafts from the full prefix and scores drafts under the
wait-1 baseline on request. Text and speech supply their own views (source elements are words or
audio segments); the strategies and the arithmetic in `decision`, `bounds` and `words` are the same
for both. Once the source has ended the session decodes the rest itself.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, Protocol, Union

import numpy as np

from .bounds import words_allowed, words_required
from .decision import log_softmax, write_test
from .drafting import Draft
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


@dataclass(frozen=True)
class Read:
    """Wait for the next source element."""


@dataclass(frozen=True)
class Write:
    """Commit the first `n_tokens` tokens of the draft the view made last (≥ 1)."""

    n_tokens: int

    def __post_init__(self) -> None:
        if self.n_tokens < 1:
            raise ValueError(f"a Write commits at least one token, got {self.n_tokens}")


Decision = Union[Read, Write]


class DecisionView(Protocol):
    """What a strategy may look at when deciding."""

    n_read: int  # source elements read so far (words of text, segments of audio)
    n_committed_words: int  # target words committed so far
    at_target_start: bool  # nothing of the target is committed yet
    # Whether a draft that ended on the stop token ends on a whole word. Text: yes, the model
    # closed the translation. Speech: no, Whisper closes its transcript where the audio so far ends,
    # often inside a half-heard word ("the ancient fla" → "the ancient flag."), so the last word
    # waits for more audio or the window's end.
    stop_ends_word: bool

    def draft(self, max_words: int, should_stop: Callable[[list[int], np.ndarray], bool] | None = None) -> Draft:
        """Greedy draft from the full prefix, long enough to show `max_words` whole words (within
        the draft budget), or shorter where `should_stop(tokens, row)` (asked after each token)
        says so."""
        ...

    def hypothesis(self) -> Draft:
        """The model's whole current output past the committed prefix, as far as the view looks
        (a re-decode of everything read, for agreement-based strategies)."""
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
    """Decides, while the source is incomplete, whether to read or to write part of a draft."""

    @abc.abstractmethod
    def decide(self, view: DecisionView) -> Decision: ...

    def reset(self) -> None:
        """A new sentence (text) or audio window (speech) starts; stateless strategies ignore it."""


def _write_or_read(n_tokens: int) -> Decision:
    return Write(n_tokens) if n_tokens > 0 else Read()


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
        run = LeadingRun(view, o, allowed, required)
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
        return _write_or_read(cut)


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
        return _write_or_read(cut)


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
        # Imported here: local_agreement builds on this module's Policy interface.
        from .local_agreement import LocalAgreementPolicy

        return LocalAgreementPolicy()
    if options.name == "alignatt":
        from .alignatt import AlignAttPolicy

        return AlignAttPolicy(options)
    return OfflinePolicy()
