"""The one protocol every backend adapter implements.

A *scoring context* holds one model state (a KV cache, a decoder state) over a token sequence and
answers a single question: "what are the next-token logits after these prefixes of this sequence?".
Everything the policies need — greedy drafts, teacher-forced scores of a draft under another prefix —
is built from that question, so an adapter only has to answer it efficiently (by keeping what it
computed for the longest common prefix of consecutive requests).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

__all__ = ["ScoringContext", "Vocabulary", "common_prefix_length", "rows_remembered"]


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

    # Optional: `has_rows(tokens, positions) -> bool`, whether `logits_at` would answer from memory
    # (drafting then asks for a forward pass only when it needs one).


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading elements `a` and `b` share (what a context can keep of its cache)."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def rows_remembered(held: Sequence, rows: dict, tokens: Sequence, positions: Sequence[int]) -> bool:
    """Whether every row at `positions` of `tokens` is in `rows` (position → row), computed over
    `held` (the token list a context's cache holds): row p depends on tokens[: p + 1] only."""
    positions = list(positions)
    if not positions:
        return True
    keep = common_prefix_length(held, list(tokens[: max(positions) + 1]))
    return all(p < keep and p in rows for p in positions)
