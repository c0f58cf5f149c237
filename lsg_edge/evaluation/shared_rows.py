"""Logits rows shared between the settings of a sweep that translate the same sentence.

A tuning grid runs many policy settings over one sentence. They read the same source prefixes and
often hold the same committed target when they decide, and a row depends only on the tokens up to
its position — so a row one setting's context computed is the row another setting's context (full
prefix or wait-1 baseline: one model) needs at the same token sequence. `SharedRows` remembers
every row computed during a sentence, keyed by that token sequence, and its contexts ask llama.cpp
only for rows no setting has computed yet.

For sweeps only, not for serving: a row taken from another context was computed in a different
batch split, which can differ from this context's own in the last bits (llama.cpp's CPU kernels
round per batch shape), so a shared run can commit different text than an unshared one where a
test sits on its threshold. Choose settings with it; check the chosen ones with plain runs.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backends.pool import ContextPair, ContextPool

__all__ = ["SharedRows", "RowSharingContext", "sharing_pool"]

# Rows kept before the store starts over (a sentence's sweep needs a few thousand at most; a row of
# a 150k-token vocabulary is 0.6 MB).
MAX_SHARED_ROWS = 4096


class SharedRows:
    """Rows of one sentence's sweep, by token sequence; `clear()` when the next sentence starts."""

    def __init__(self, max_rows: int = MAX_SHARED_ROWS) -> None:
        self.max_rows = max_rows
        self._rows: dict[tuple[int, ...], np.ndarray] = {}
        self.n_shared = 0  # rows handed out that some context had computed before
        self.n_computed = 0  # rows computed by llama.cpp

    def clear(self) -> None:
        self._rows.clear()

    def wrap(self, context: Any) -> "RowSharingContext":
        return RowSharingContext(context, self)


class RowSharingContext:
    """A scoring context that takes rows from its `SharedRows` where they exist and computes the
    others with `inner`; everything else (counters, `reset`) is the inner context's."""

    def __init__(self, inner: Any, shared: SharedRows) -> None:
        self._inner = inner
        self._shared = shared

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def has_rows(self, tokens: Sequence[int], positions: Sequence[int]) -> bool:
        rows = self._shared._rows
        return all(tuple(tokens[: p + 1]) in rows for p in positions)

    def logits_at(self, tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        shared = self._shared
        tokens = list(tokens)
        keys = {p: tuple(tokens[: p + 1]) for p in positions}
        missing = [p for p, key in keys.items() if key not in shared._rows]
        if missing:
            if len(shared._rows) + len(missing) > shared.max_rows:
                shared._rows.clear()
                missing = list(keys)
            rows = self._inner.logits_at(tokens[: max(missing) + 1], missing)
            for p, row in zip(missing, rows):
                shared._rows[keys[p]] = np.array(row, dtype=np.float32)
            shared.n_computed += len(missing)
        shared.n_shared += len(positions) - len(missing)
        return np.stack([shared._rows[keys[p]] for p in positions])


def sharing_pool(engine: Any, shared: SharedRows, max_contexts: int) -> ContextPool[ContextPair]:
    """A pool for `engine` (a `TranslationEngine`) whose context pairs share `shared`'s rows:
    assign it to `engine.pool` before the sweep's sessions are created."""
    model = engine.model
    return ContextPool(
        lambda: ContextPair(shared.wrap(model.new_context()), shared.wrap(model.new_context())),
        ContextPair.reset,
        max_contexts=max_contexts,
        what="context pair",
    )
