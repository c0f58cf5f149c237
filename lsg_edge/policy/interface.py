"""The decision interface every strategy implements and every stream offers.

While the source is still arriving, a session asks its strategy for a decision: `Read` (wait for
more source) or `Write(n)` (commit the first n tokens of the draft the view made last). The strategy
sees the stream through a `DecisionView`, which drafts from the full prefix and scores drafts under
the wait-1 baseline on request. Text and speech supply their own views (source elements are words
or audio segments). `run_decisions` is the one loop that asks until the strategy reads.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Protocol, Union

import numpy as np

from .drafting import Draft

__all__ = ["Read", "Write", "Decision", "DecisionView", "Policy", "WRITE_CAUSES", "run_decisions"]

# Why a strategy wrote: LSG's confidence test (max P_cur > α) or KL test (KL > δ) passed for every
# written token ("kl" when at least one needed the KL test), or the range constraint's upper bound
# forced words the tests did not pass ("forced"); "wait-k", "agreement" and "alignatt" for the other
# strategies; "source-end" for what a session decodes once the source has ended.
WRITE_CAUSES = ("confidence", "kl", "forced", "wait-k", "agreement", "alignatt", "source-end")


@dataclass(frozen=True)
class Read:
    """Wait for the next source element."""


@dataclass(frozen=True)
class Write:
    """Commit the first `n_tokens` tokens of the draft the view made last (≥ 1), for `cause`."""

    n_tokens: int
    cause: str = field(default="confidence", compare=False)  # an annotation: equal writes commit the same

    def __post_init__(self) -> None:
        if self.n_tokens < 1:
            raise ValueError(f"a Write commits at least one token, got {self.n_tokens}")
        if self.cause not in WRITE_CAUSES:
            raise ValueError(f"unknown write cause {self.cause!r}")


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
    # Whether the strategy is asked again, without new source, after a write that left part of the
    # draft: text yes (the next target word has a new baseline, the paper's loop); speech no (its
    # edge hold-back decides what may go, and the rest waits for the next segment).
    decides_again_after_partial_write: bool

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

    @property
    def last_draft(self) -> Draft | None:
        """The draft the view made last (what a `Write` refers to), or None."""
        ...


class Policy(abc.ABC):
    """Decides, while the source is incomplete, whether to read or to write part of a draft."""

    @abc.abstractmethod
    def decide(self, view: DecisionView) -> Decision: ...

    def reset(self) -> None:
        """A new sentence (text) or audio window (speech) starts; stateless strategies ignore it."""


def run_decisions(
    policy: Policy,
    new_view: Callable[[], DecisionView],
    commit: Callable[[list[int], list[int], Write], None],
) -> list[int] | None:
    """Ask `policy` (through a fresh view each time) until it reads; `commit(tokens, rest, write)`
    takes each write (`rest`: the draft's tokens after it, the next guess). Returns the uncommitted rest of the last draft — the next decision's guess — or
    None when the last view drafted nothing (the previous guess stands)."""
    while True:
        view = new_view()
        decision = policy.decide(view)
        draft = view.last_draft
        if not isinstance(decision, Write):
            return list(draft.tokens) if draft is not None and draft.tokens else None
        if draft is None or decision.n_tokens > len(draft.tokens):
            raise RuntimeError(f"{type(policy).__name__} wrote {decision.n_tokens} tokens of a draft it did not see")
        rest = list(draft.tokens[decision.n_tokens:])
        commit(list(draft.tokens[: decision.n_tokens]), rest, decision)
        if rest and not view.decides_again_after_partial_write:
            return rest
