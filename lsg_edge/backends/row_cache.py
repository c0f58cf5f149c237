"""The prefix-reusing row cache behind every scoring context (llama.cpp sequences, Whisper decoders).

A context holds a model state over a token list and the logits rows it computed. A request for
rows of another token list keeps the longest common prefix of the two, and only a row that is
missing cuts the state back — to the first position that must be evaluated again. Nothing past the
last wanted row is evaluated (row p depends on tokens[: p + 1] only). A request answered from
memory leaves the state as it is, longer or not. Rows are kept up to a bound, the least recent
positions dropped first, never those just asked for.

A backend supplies how to cut its state back (`_cut`) and how to evaluate a suffix (`_evaluate`);
with `reuse=False` every request starts from an empty state, the straightforward path that the
cache-equivalence tests compare against.
"""

from __future__ import annotations

import abc
from typing import Sequence

import numpy as np

from .base import common_prefix_length, rows_remembered

__all__ = ["RowCache"]


class RowCache(abc.ABC):
    """See module docstring. Subclasses set `n_vocab` and implement `_cut`, `_evaluate`,
    `_check_length`."""

    n_vocab: int

    def __init__(self, reuse: bool, max_rows: int) -> None:
        self._reuse = reuse
        self._max_rows = max_rows
        self._tokens: list = []  # what the state holds, in order
        self._rows: dict[int, np.ndarray] = {}  # position → logits after tokens[: position + 1]

    def logits_at(self, tokens: Sequence, positions: Sequence[int]) -> np.ndarray:
        """See `base.ScoringContext.logits_at`. The rows are read-only views of what is remembered."""
        tokens, positions = list(tokens), list(positions)
        self._check_length(len(tokens))
        if any(p < 0 or p >= len(tokens) for p in positions):
            raise IndexError(f"positions {positions} outside a sequence of {len(tokens)} tokens")
        if not positions:
            return np.zeros((0, self.n_vocab), np.float32)
        self._make_ready(tokens[: max(positions) + 1], positions, self._rows)
        out = self._rows[positions[0]][None, :] if len(positions) == 1 else np.stack([self._rows[p] for p in positions])
        self._evict(set(positions))
        return out

    def has_rows(self, tokens: Sequence, positions: Sequence[int]) -> bool:
        """Whether `logits_at(tokens, positions)` would be answered from memory, with no evaluation."""
        return rows_remembered(self._tokens, self._rows, tokens, positions) if self._reuse else False

    def _make_ready(self, tokens: list, positions: list[int], remembered: dict[int, object]) -> None:
        """Evaluate what it takes for `remembered` (rows, or another per-position output) to hold
        every position of `positions` over `tokens`."""
        if not self._reuse:
            self._forget(0)
        keep = common_prefix_length(self._tokens, tokens)
        missing = [p for p in positions if p >= keep or p not in remembered]
        if missing:
            self._forget(min(min(missing), keep))
            self._evaluate(tokens, {p for p in positions if p >= len(self._tokens)})

    def _forget(self, start: int) -> None:
        """Drop the state from position `start` on (the backend may drop more: `_cut` says where
        its state now ends)."""
        if start < len(self._tokens):
            start = self._cut(start)
            del self._tokens[start:]
        self._rows = {p: r for p, r in self._rows.items() if p < start}

    def _clear(self) -> None:
        """Forget the token list and rows (the backend has emptied its state)."""
        self._tokens, self._rows = [], {}

    def _evict(self, keep_positions: set[int]) -> None:
        if len(self._rows) > self._max_rows:
            extra = sorted(p for p in self._rows if p not in keep_positions)
            for p in extra[: len(self._rows) - self._max_rows]:
                del self._rows[p]

    @abc.abstractmethod
    def _check_length(self, n_tokens: int) -> None:
        """Raise the backend's typed error if `n_tokens` cannot fit its state."""

    @abc.abstractmethod
    def _cut(self, start: int) -> int:
        """Cut the backend state back to its first `start` positions; return where it now ends
        (≤ start, e.g. 0 where a partial cut is refused)."""

    @abc.abstractmethod
    def _evaluate(self, tokens: list, want: set[int]) -> None:
        """Evaluate tokens[len(self._tokens):] over the state; append them to `_tokens` and store
        at least the rows at `want` in `_rows`."""
