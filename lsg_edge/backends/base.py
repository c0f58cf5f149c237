"""The one protocol every backend adapter implements, and the greedy drafting built on it.

A *scoring context* holds one model state (a KV cache, a decoder state) over a token sequence and
answers a single question: "what are the next-token logits after these prefixes of this sequence?".
Everything the policies need — greedy drafts, teacher-forced scores of a draft under another prefix —
is built from that question, so an adapter only has to answer it efficiently (by keeping what it
computed for the longest common prefix of consecutive requests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

__all__ = ["ScoringContext", "Vocabulary", "Draft", "greedy_draft", "common_prefix_length"]


class Vocabulary(Protocol):
    """Token ↔ text for one model."""

    n_vocab: int

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]: ...

    def piece(self, token: int) -> bytes: ...

    def is_end_of_generation(self, token: int) -> bool: ...


class ScoringContext(Protocol):
    """One model state over one token sequence (see module docstring)."""

    def logits_at(self, tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """Raw next-token logits, float32 [len(positions), n_vocab].

        Row k is the model's output after `tokens[: positions[k] + 1]`, i.e. its prediction of
        `tokens[positions[k] + 1]`.
        """
        ...


@dataclass
class Draft:
    """Greedy continuation of a prefix.

    `tokens`: drafted token ids (the stop token excluded), [m].
    `logits`: float32 [m, n_vocab]; row k is the distribution token k was chosen from.
    `ended`: the draft stopped on a stop token (the model considers the output complete).
    """

    tokens: list[int] = field(default_factory=list)
    logits: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    ended: bool = False


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading elements `a` and `b` share."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def greedy_draft(
    context: ScoringContext,
    prefix: Sequence[int],
    max_new_tokens: int,
    is_stop: Callable[[int], bool],
    guess: Sequence[int] = (),
    should_stop: Callable[[list[int], np.ndarray], bool] | None = None,
    keep_logits: bool = True,
) -> Draft:
    """Greedily continue `prefix` by up to `max_new_tokens` tokens.

    `guess` is a likely continuation (the previous draft): it is checked in one batched request,
    speculative-decoding style, and kept as far as the argmax agrees with it, so a draft that did
    not change after a READ costs one forward pass instead of one per token. The result equals
    plain token-by-token greedy decoding. `should_stop(tokens, row)`, asked after each new token with
    the logits row it was chosen from, ends the draft early (not as `ended`) once the caller has all
    it can use — every further token would cost a forward pass. With `keep_logits=False` the draft's
    `logits` stay empty: a row is a vocabulary of floats (1 MB for Gemma 3), and decoding a
    sentence's end may draft hundreds of tokens.
    """
    prefix = list(prefix)
    if not prefix:
        raise ValueError("greedy_draft needs a non-empty prefix")
    tokens: list[int] = []
    rows: list[np.ndarray] = []
    guess = list(guess[:max_new_tokens])
    while len(tokens) < max_new_tokens:
        # Verify as much of the guess as is left, plus the position right after it.
        pending = guess[len(tokens):] if guess[: len(tokens)] == tokens else []
        sequence = prefix + tokens + pending
        first = len(prefix) + len(tokens) - 1
        logits = context.logits_at(sequence, range(first, first + len(pending) + 1))
        for k, row in enumerate(logits):
            token = int(np.argmax(row))
            if is_stop(token):
                return Draft(tokens, _stack(rows, row.size), ended=True)
            tokens.append(token)
            if keep_logits:
                rows.append(row)
            if should_stop is not None and should_stop(tokens, row):
                return Draft(tokens, _stack(rows, row.size), ended=False)
            if len(tokens) >= max_new_tokens or k >= len(pending) or pending[k] != token:
                break
    return Draft(tokens, _stack(rows, rows[0].size if rows else 0), ended=False)


def _stack(rows: list[np.ndarray], n_vocab: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, n_vocab), dtype=np.float32)
    return np.stack(rows).astype(np.float32, copy=False)
