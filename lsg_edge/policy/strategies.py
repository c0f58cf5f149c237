"""READ/WRITE strategies: LSG and its comparison baselines on one decision interface.

A strategy is asked, while the source is still arriving, how many draft tokens to commit now
(0 = READ). It sees the decision through a `DecisionView`, which drafts from the full-prefix context
and scores drafts under the wait-1 baseline on request; the arithmetic lives in the pure modules
`decision`, `bounds` and `words`. Once the source has ended the session decodes the rest itself.
"""

from __future__ import annotations

import abc
from typing import Protocol

import numpy as np

from ..backends.base import Draft
from .bounds import words_allowed, words_required
from .decision import leading_run, log_softmax, write_test
from .options import PolicyOptions
from .words import cut_at_words, word_starts

__all__ = ["DecisionView", "Policy", "LsgPolicy", "WaitKPolicy", "OfflinePolicy", "make_policy"]


class DecisionView(Protocol):
    """What a strategy may look at when deciding."""

    n_read: int  # source elements read so far
    n_committed_words: int  # target words committed so far
    at_target_start: bool  # nothing of the target is committed yet

    def draft(self, max_words: int) -> Draft:
        """Greedy draft from the full prefix, long enough to show `max_words` whole words."""
        ...

    def baseline_logits(self, draft: Draft, positions: list[int]) -> np.ndarray | None:
        """Logits of the wait-1 baseline teacher-forced on `draft`, at draft `positions`:
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
        draft = view.draft(max_words=allowed)
        if not draft.tokens:
            return 0
        starts = word_starts(view.pieces(draft.tokens), view.at_target_start)
        passes = self._write_test(view, draft, n_testable=_tokens_in_words(starts, allowed))
        cut, _ = cut_at_words(
            starts,
            leading_run(passes),
            max_words=allowed,
            min_words=required,
            final_is_boundary=draft.ended and required > 0,
        )
        if cut == 0 and required > 0:
            # A due word longer than the whole draft: write what there is rather than stall.
            cut = len(draft.tokens)
        return cut


    def _write_test(self, view: DecisionView, draft: Draft, n_testable: int) -> np.ndarray:
        """`decision.write_test` over the first `n_testable` draft positions (later ones cannot be
        committed now), asking the baseline only where it can change the answer: a position whose
        P_cur already passes the confidence test needs no P_base, and each baseline row costs a
        vocabulary-sized matmul."""
        o = self.options
        cur = log_softmax(draft.logits[:n_testable])
        passes = np.exp(cur.max(axis=-1)) > o.alpha
        unsure = [int(k) for k in np.flatnonzero(~passes)]
        if unsure:
            base = view.baseline_logits(draft, unsure)
            if base is not None:
                passes[unsure] = write_test(cur[unsure], log_softmax(base), o.delta, o.alpha, o.kl_direction)
            # else P_base = P_cur: the KL is zero, and the confidence test has already failed.
        return passes


def _tokens_in_words(starts: np.ndarray, n_words: int) -> int:
    """Tokens of a draft up to (not including) the start of word n_words + 1."""
    later = np.flatnonzero(starts[1:])[n_words - 1 :] if n_words > 0 else np.array([-1])
    return int(later[0]) + 1 if later.size else int(starts.size)


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
