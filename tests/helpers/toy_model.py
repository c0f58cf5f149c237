"""A tiny deterministic random language model for exercising the decision loop without llama.cpp.

Its next-token logits are a pseudo-random function of the whole prefix, so it behaves like a
(bad) model: deterministic, prefix-dependent, and as peaked as `sharpness` makes it. It never
emits its end-of-generation token while drafting, so every forced write can be served.
"""

from __future__ import annotations

import zlib

import numpy as np

N_WORD_PIECES = 24
N_CONTINUATIONS = 8
EOS = 0
NEWLINE = 1


class ToyVocabulary:
    n_vocab = 2 + N_WORD_PIECES + N_CONTINUATIONS

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        return [2 + zlib.crc32(word.encode()) % N_WORD_PIECES for word in text.split()]

    def piece(self, token: int) -> bytes:
        if token == EOS:
            return b""
        if token == NEWLINE:
            return b"\n"
        if token < 2 + N_WORD_PIECES:
            return f" w{token}".encode()
        return f"x{token}".encode()

    def is_end_of_generation(self, token: int) -> bool:
        return token == EOS


class ToyContext:
    def __init__(self, seed: int, sharpness: float) -> None:
        self.seed = seed
        self.sharpness = sharpness
        self.calls = 0

    def logits_at(self, tokens, positions) -> np.ndarray:
        self.calls += 1
        rows = []
        tokens = list(tokens)
        for p in positions:
            key = zlib.crc32(np.asarray(tokens[: p + 1], dtype=np.int64).tobytes(), self.seed)
            row = np.random.default_rng(key).normal(0.0, self.sharpness, ToyVocabulary.n_vocab)
            row[[EOS, NEWLINE]] = -1e9
            rows.append(row.astype(np.float32))
        return np.stack(rows) if rows else np.zeros((0, ToyVocabulary.n_vocab), np.float32)


class ToyPrompt:
    """Stands in for TranslationPrompt: the prefix is just the source tokens."""

    def __init__(self, vocab: ToyVocabulary) -> None:
        self.vocab = vocab

    def prefix_tokens(self, source_text: str) -> list[int]:
        return [NEWLINE, *self.vocab.tokenize(source_text, add_bos=False), NEWLINE]

    def is_stop(self, token: int) -> bool:
        return token in (EOS, NEWLINE)


def toy_pool(make_context):
    """A context pool lending pairs of contexts from `make_context()` (the full prefix first, the
    baseline second), with nothing to reset."""
    from lsg_edge.backends.pool import ContextPair, ContextPool

    return ContextPool(lambda: ContextPair(make_context(), make_context()), reset=lambda pair: None)
