"""A bounded pool of model contexts that sessions borrow and give back.

An engine owns the weights; each session owns the contexts it borrowed until it closes. A context
is one KV cache (tens of MB for a small model, hundreds for a 1.5B one), so the pool is bounded:
an engine serving more streams than it has room for refuses the next one at once with
`EngineBusy`, rather than slowing every stream down.

A borrowed context is reset before it is handed out. That makes a session's output independent of
which sessions used the context before it: llama.cpp's kernels give slightly different logits for
different batch splits, so a context that kept another stream's prompt in its cache would evaluate
this stream's first tokens in other batches than a fresh one, and could translate differently.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from ..errors import EngineBusy

__all__ = ["ContextPool", "ContextPair", "PoolStats", "DEFAULT_MAX_CONTEXTS"]

# One per translation session (a pair: full prefix and wait-1 baseline), so four streams at once:
# more than two CPU cores can keep live, and ~40 MB of KV cache per context for the default model at
# 2,048 tokens.
DEFAULT_MAX_CONTEXTS = 4

C = TypeVar("C")


@dataclass(frozen=True)
class PoolStats:
    """How many contexts exist, and how many sessions hold right now."""

    created: int
    in_use: int
    idle: int
    limit: int


class ContextPool(Generic[C]):
    """Contexts made by `create`, at most `max_contexts` of them; `reset(context)` runs when one is
    handed out again. Thread-safe."""

    def __init__(self, create: Callable[[], C], reset: Callable[[C], None], max_contexts: int = DEFAULT_MAX_CONTEXTS,
                 what: str = "context") -> None:
        if max_contexts < 1:
            raise ValueError(f"a context pool holds at least one context, got {max_contexts}")
        self._create = create
        self._reset = reset
        self.max_contexts = max_contexts
        self._what = what
        self._lock = threading.Lock()
        self._idle: list[C] = []
        self._in_use: list[C] = []
        self._all: list[C] = []  # every context made, for counters

    def acquire(self) -> C:
        """A context for the caller alone until `release`; `EngineBusy` when all are taken."""
        with self._lock:
            if self._idle:
                context = self._idle.pop()
            elif len(self._all) < self.max_contexts:
                context = self._create()
                self._all.append(context)
            else:
                raise EngineBusy(f"all {self.max_contexts} {self._what}s of this engine are in use: close a session "
                                 f"first, or load the engine with a larger max_contexts")
            self._in_use.append(context)
        try:
            self._reset(context)
        except BaseException:
            self.release(context)
            raise
        return context

    def release(self, context: C) -> None:
        """Give `context` back (once; a context the pool did not hand out is refused)."""
        with self._lock:
            for k, held in enumerate(self._in_use):
                if held is context:
                    del self._in_use[k]
                    self._idle.append(context)
                    return
        raise ValueError(f"this {self._what} was not borrowed from the pool (or was given back already)")

    @property
    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(created=len(self._all), in_use=len(self._in_use), idle=len(self._idle),
                             limit=self.max_contexts)

    def contexts(self) -> list[C]:
        """Every context made so far (in use or idle), e.g. to add up their counters."""
        with self._lock:
            return list(self._all)


@dataclass(frozen=True)
class ContextPair:
    """The two contexts a text session borrows together: the full prefix and the wait-1 baseline.
    Separate KV caches: a baseline taking the full prefix's cells for their shared prompt head
    changed committed text through batch-split rounding (BENCHMARKS.md, hot path, fifth round)."""

    full: Any
    baseline: Any

    def reset(self) -> None:
        self.full.reset()
        self.baseline.reset()
