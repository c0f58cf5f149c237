"""Greedy drafting over a scoring context: the continuation every policy decides on.

A policy looks at the model's greedy continuation of what is committed (a *draft*) and decides how
much of it to write. Drafting is built on the one question a backend answers
(`backends.base.ScoringContext.logits_at`), so it is the same for llama.cpp and Whisper decoders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..backends.base import ScoringContext, common_prefix_length

__all__ = ["Draft", "greedy_draft", "common_prefix_length", "word_limit"]


@dataclass(frozen=True)
class Draft:
    """Greedy continuation of a prefix.

    `tokens`: drafted token ids (the stop token excluded). `ended`: the draft stopped on a stop
    token (the model considers the output complete). No logits are kept: a row is a vocabulary of
    floats (1 MB for Gemma 3), and the write test reads each row as it is drafted.
    """

    tokens: list[int] = field(default_factory=list)
    ended: bool = False

    def cut(self, n_tokens: int, ended: bool = False) -> "Draft":
        """The first `n_tokens` tokens, ended or not."""
        return Draft(self.tokens[:n_tokens], ended)


def greedy_draft(
    context: ScoringContext,
    prefix: Sequence[int],
    max_new_tokens: int,
    is_stop: Callable[[int], bool],
    guess: Sequence[int] = (),
    should_stop: Callable[[list[int], np.ndarray], bool] | None = None,
) -> Draft:
    """Greedily continue `prefix` by up to `max_new_tokens` tokens.

    `guess` is a likely continuation (the previous draft): it is checked in one batched request,
    speculative-decoding style, and kept as far as the argmax agrees with it, so a draft that did
    not change after a READ costs one forward pass instead of one per token. The result equals
    plain token-by-token greedy decoding. `should_stop(tokens, row)`, asked after each new token with
    the logits row it was chosen from, ends the draft early (not as `ended`) once the caller has all
    it can use — every further token would cost a forward pass.
    """
    prefix = list(prefix)
    if not prefix:
        raise ValueError("greedy_draft needs a non-empty prefix")
    tokens: list[int] = []
    guess = list(guess[:max_new_tokens])
    has_rows = getattr(context, "has_rows", None)
    while len(tokens) < max_new_tokens:
        # Verify as much of the guess as is left, plus the position right after it — unless the
        # context remembers the guess's rows: then they cost nothing, and the row after the guess
        # (a forward pass) is asked for only if `should_stop` has not ended the draft on them.
        pending = guess[len(tokens):] if guess[: len(tokens)] == tokens else []
        sequence = prefix + tokens + pending
        first = len(prefix) + len(tokens) - 1
        wanted = range(first, first + len(pending) + 1)
        if pending and has_rows is not None and has_rows(sequence, wanted[:-1]):
            wanted = wanted[:-1]
        logits = context.logits_at(sequence, wanted)
        for k, row in enumerate(logits):
            token = int(np.argmax(row))
            if is_stop(token):
                return Draft(tokens, ended=True)
            tokens.append(token)
            if should_stop is not None and should_stop(tokens, row):
                return Draft(tokens, ended=False)
            if len(tokens) >= max_new_tokens or k >= len(pending) or pending[k] != token:
                break
        else:
            # Every remembered row agreed with the guess: the next round asks for the row after it.
            guess = tokens[:]
    return Draft(tokens, ended=False)


def word_limit(starts_word: Callable[[int], bool], max_words: int) -> Callable[[Sequence[int]], bool]:
    """A predicate on a token list: it holds `max_words` whole words, i.e. a token after the first
    starts word `max_words` + 1 (`starts_word(token)`: the token's text begins a word)."""

    def has_enough(tokens: Sequence[int]) -> bool:
        return sum(map(starts_word, tokens[1:])) >= max_words

    return has_enough
