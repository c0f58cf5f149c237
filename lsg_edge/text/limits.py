"""What a text session can hold, checked once when it is created.

A session cuts a sentence into windows so that its prompt never fills more than a share of the
context (`SessionOptions.max_prefix_fraction`); the rest is the translation's. When the prompt
alone (instructions, few-shot examples) takes that share, every word becomes a window of its
own and the model translates word by word without a sign that anything is wrong. Lag bounds
beyond the longest window are as silent: the policy could never act on them.
"""

from __future__ import annotations

import math
from typing import Protocol

from ..errors import OptionsError
from ..policy.options import PolicyOptions

__all__ = ["MIN_WINDOW_TOKENS", "check_session_limits"]

# The least source a window must hold, tokens: about ten words of German or English, enough that
# the model translates phrases rather than single words.
MIN_WINDOW_TOKENS = 16
# Suggested context sizes are rounded up to a multiple of this, tokens.
_N_CTX_STEP_TOKENS = 64


class _Prompt(Protocol):
    def prefix_tokens(self, source_text: str) -> list[int]: ...


def check_session_limits(prompt: _Prompt, policy: PolicyOptions, n_ctx_tokens: int,
                         max_source_words: int, max_prefix_fraction: float) -> None:
    """OptionsError naming the flag when the context cannot hold the prompt and one window of
    MIN_WINDOW_TOKENS source tokens, or when a lag bound lies beyond the longest window."""
    n_prompt = len(prompt.prefix_tokens(""))
    n_needed = n_prompt + MIN_WINDOW_TOKENS
    if n_needed > max_prefix_fraction * n_ctx_tokens:
        n_ctx_min = math.ceil(n_needed / max_prefix_fraction / _N_CTX_STEP_TOKENS) * _N_CTX_STEP_TOKENS
        raise OptionsError(
            f"--n-ctx {n_ctx_tokens} is too small: this model's prompt takes {n_prompt} tokens, and with a "
            f"window of source and its translation a sentence needs --n-ctx {n_ctx_min} or more"
        )
    if policy.name == "lsg" and policy.low_bound + policy.top_bound > max_source_words:
        raise OptionsError(
            f"--low-bound {policy.low_bound} with --top-bound {policy.top_bound} lies beyond the longest window "
            f"({max_source_words} source words): the range constraint could never act; keep L + U at most "
            f"{max_source_words}"
        )
    if policy.name == "wait-k" and policy.k > max_source_words:
        raise OptionsError(
            f"--k {policy.k} lies beyond the longest window ({max_source_words} source words): "
            "nothing would be written before the window ends; use --policy offline"
        )
