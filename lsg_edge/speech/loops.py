"""Guards against Whisper's repetition loops (on silence, or on audio cut short).

Pure functions over token lists; the decoders call them on every finished hypothesis.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["trim_repetition", "token_budget", "first_repeat"]

# A repeated span shorter than this is taken as speech ("no, no", "very very"), not a loop.
_MIN_PERIOD_TOKENS = 3
# Whisper emits ~3–5 tokens per second of speech; more than this per second of audio is a loop.
_MAX_TOKENS_PER_S = 12
_MIN_BUDGET_TOKENS = 16


def trim_repetition(tokens: Sequence[int]) -> list[int]:
    """Drop a looping tail: where `tokens` ends by repeating a span of ≥ 3 tokens at least once
    more (a last, partial copy included), keep the tokens up to the end of the first copy. The
    shortest such span wins."""
    tokens = list(tokens)
    n = len(tokens)
    for period in range(_MIN_PERIOD_TOKENS, n // 2 + 1):
        run = 0  # trailing tokens equal to the token one period earlier
        while run < n - period and tokens[n - 1 - run] == tokens[n - 1 - run - period]:
            run += 1
        if run >= period:
            return tokens[: n - run]
    return tokens


def token_budget(n_samples: int, sample_rate_hz: int) -> int:
    """Most tokens a hypothesis of `n_samples` of audio may hold."""
    return max(_MIN_BUDGET_TOKENS, int(_MAX_TOKENS_PER_S * n_samples / sample_rate_hz))


def first_repeat(tokens: Sequence[int], start: int, n_gram: int = 3) -> int | None:
    """First position ≥ `start` where an `n_gram`-token span begins that already occurred earlier
    in `tokens` (None if none). Whisper on audio cut short often starts its transcript over
    ("in fact the ringleader john rex. in fact the …"); within one ≤ 30 s window a repeated
    3-token span is far more often that than speech."""
    seen: set[tuple[int, ...]] = set()
    for i in range(len(tokens) - n_gram + 1):
        gram = tuple(tokens[i : i + n_gram])
        if i >= start and gram in seen:
            return i
        seen.add(gram)
    return None
