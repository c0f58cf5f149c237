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

    def baseline_logits(self, draft: Draft) -> np.ndarray:
        """Logits of the wait-1 baseline teacher-forced on `draft`, float32 [len(draft.tokens), vocab]."""
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
        passes = write_test(
            log_softmax(draft.logits),
            log_softmax(view.baseline_logits(draft)),
            o.delta,
            o.alpha,
            o.kl_direction,
        )
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
