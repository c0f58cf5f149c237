"""Guards for text decoding: repetition loops and prompt echoes end a draft early.

A small base model can fall into a loop ("an order of an order of …") or, fed garbage, recite its
few-shot examples. Both show up as a span of target tokens seen before — earlier in the same
target, or in the prompt — and the target is cut where that span starts. Pure functions over token
lists; the session calls them as each token is drafted.
"""

from __future__ import annotations

from typing import Collection, Sequence

__all__ = ["LOOP_SPAN_TOKENS", "ECHO_SPAN_TOKENS", "spans", "repeat_start", "echo_start"]

# A span of this many tokens occurring twice in one sentence's target is taken as a loop. Shorter
# spans recur in ordinary sentences ("of the European Union"); in a loop the second copy of any
# span is found at most this many tokens after the loop begins.
LOOP_SPAN_TOKENS = 8
# A span of this many tokens of prompt text (not in the source) in the target is an echo.
ECHO_SPAN_TOKENS = 6


def spans(tokens: Sequence[int], n: int) -> set[tuple[int, ...]]:
    """Every `n`-token span of `tokens`."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def repeat_start(tokens: Sequence[int], n: int = LOOP_SPAN_TOKENS) -> int | None:
    """Where the last `n` tokens begin, if that span already occurred earlier in `tokens`
    (overlapping allowed: a loop of period p < n repeats its span p tokens later); else None.

    Called after every new token, it finds the first repeat: the span ending at each token is
    checked when that token arrives."""
    start = len(tokens) - n
    if start < 1:
        return None
    last = list(tokens[start:])
    for i in range(start):
        if tokens[i] == last[0] and list(tokens[i : i + n]) == last:
            return start
    return None


def echo_start(tokens: Sequence[int], forbidden: Collection[tuple[int, ...]], n: int = ECHO_SPAN_TOKENS) -> int | None:
    """Where the last `n` tokens begin, if they are one of the `forbidden` spans (prompt text the
    source does not account for: the model reciting its prompt); else None."""
    if len(tokens) < n:
        return None
    return len(tokens) - n if tuple(tokens[-n:]) in forbidden else None
