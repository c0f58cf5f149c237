"""A Whisper decoder state as a `backends.base.ScoringContext`, so that the same drafting and
verification code serves text (llama.cpp) and speech.

One context = one encoder output (`set_audio`) + one self-attention KV cache over a token list.
A request keeps the cache for the longest common prefix with the previous request and runs the
decoder on the new suffix only (one ONNX call). Changing the audio invalidates the cache (the
decoder's hidden states depend on the audio through cross-attention); setting the same
`EncodedAudio` again keeps it. With `reuse_cache=False` each request starts over — the path the
cache-equivalence test compares against.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..backends.base import common_prefix_length, rows_remembered
from ..errors import ModelError
from .onnx_runtime import EncodedAudio, WhisperRuntime
from .vocab import TokenFilter

__all__ = ["WhisperDecoderContext"]

# Logit rows kept for reuse (200 KiB each with Whisper's 51,865-token vocabulary).
_MAX_REMEMBERED_ROWS = 64


class WhisperDecoderContext:
    """See module docstring. Rows come back with the token filter applied (banned ids at −inf)."""

    def __init__(
        self,
        runtime: WhisperRuntime,
        token_filter: TokenFilter,
        first_output_position: int,
        n_text_ctx: int,
        reuse_cache: bool = True,
    ) -> None:
        self._runtime = runtime
        self._filter = token_filter
        self._first_output = first_output_position  # row predicting the first token after the prompt
        self._n_ctx = n_text_ctx
        self._reuse = reuse_cache
        self._audio: EncodedAudio | None = None
        self._reset()

    def _reset(self) -> None:
        self._tokens: list[int] = []  # what the cache holds
        self._k, self._v = self._runtime.empty_cache()
        self._rows: dict[int, np.ndarray] = {}
        self._attention: dict[int, np.ndarray] = {}  # position → alignment heads' attention [heads, n_audio]

    @property
    def audio(self) -> EncodedAudio | None:
        return self._audio

    def set_audio(self, audio: EncodedAudio) -> None:
        """Condition on `audio`; the cache survives only if it is the same encoder output."""
        if audio is not self._audio:
            self._audio = audio
            self._reset()

    def has_rows(self, tokens: Sequence[int], positions: Sequence[int]) -> bool:
        """Whether `logits_at(tokens, positions)` would be answered from memory, with no decoder run."""
        return rows_remembered(self._tokens, self._rows, tokens, positions) if self._reuse else False

    def logits_at(self, tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """See `base.ScoringContext.logits_at`."""
        if self._audio is None:
            raise RuntimeError("set_audio() before logits_at()")
        tokens, positions = list(tokens), list(positions)
        if len(tokens) > self._n_ctx:
            raise ModelError(f"{len(tokens)} tokens exceed Whisper's text context of {self._n_ctx}")
        if any(p < 0 or p >= len(tokens) for p in positions):
            raise IndexError(f"positions {positions} outside a sequence of {len(tokens)} tokens")
        if not self._reuse:
            self._reset()
        keep = common_prefix_length(self._tokens, tokens)
        missing = [p for p in positions if p >= keep or p not in self._rows]
        if missing:
            self._evaluate(tokens, min(min(missing), keep))
        out = np.stack([self._rows[p] for p in positions]) if positions else np.zeros((0, self._runtime.n_vocab),
                                                                                        np.float32)
        self._evict(set(positions))
        return out

    def _evaluate(self, tokens: list[int], start: int) -> None:
        """Run the decoder on tokens[start:] over the cache of tokens[:start]."""
        self._k = self._k[:, :, :, :start]
        self._v = self._v[:, :, :, :start]
        self._tokens = self._tokens[:start]
        self._rows = {p: r for p, r in self._rows.items() if p < start}
        self._attention = {p: a for p, a in self._attention.items() if p < start}
        new = tokens[start:]
        step = self._runtime.decode_step(new, self._k, self._v, self._audio)
        logits, self._k, self._v = step.logits, step.self_k, step.self_v
        positions = list(range(start, len(tokens)))
        self._filter.apply(logits, positions, self._first_output)
        self._tokens = list(tokens)
        for k, p in enumerate(positions):
            self._rows[p] = logits[k]
            if step.attention is not None:
                self._attention[p] = step.attention[k]

    def attention_at(self, tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """The alignment heads' cross-attention of the rows at `positions` of `tokens` (the row at
        p predicts token p + 1, so it was computed *reading* token p): float32 [len(positions),
        n_alignment_heads, n_audio]. Rows are those of the last evaluation; missing ones are computed."""
        if not self._runtime.has_alignment_attention:
            raise ModelError("this converted Whisper model returns no cross-attention: convert it again "
                             "(delete its onnx folder in the cache)")
        if self._audio is None:
            raise RuntimeError("set_audio() before attention_at()")
        tokens, positions = list(tokens), list(positions)
        if any(p < 0 or p >= len(tokens) for p in positions):
            raise IndexError(f"positions {positions} outside a sequence of {len(tokens)} tokens")
        keep = common_prefix_length(self._tokens, tokens)
        missing = [p for p in positions if p >= keep or p not in self._attention]
        if missing:
            self._evaluate(tokens, min(min(missing), keep))
        return np.stack([self._attention[p] for p in positions])

    def _evict(self, keep: set[int]) -> None:
        if len(self._rows) > _MAX_REMEMBERED_ROWS:
            extra = sorted(p for p in self._rows if p not in keep)
            for p in extra[: len(self._rows) - _MAX_REMEMBERED_ROWS]:
                del self._rows[p]  # attention rows stay: AlignAtt standardises over all of them
