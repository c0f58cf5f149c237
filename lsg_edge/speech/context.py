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

from ..backends.row_cache import RowCache
from ..errors import ModelError
from .no_speech import no_speech_probability
from .onnx_runtime import EncodedAudio, WhisperRuntime
from .vocab import TokenFilter

__all__ = ["WhisperDecoderContext"]

# Logit rows kept for reuse (200 KiB each with Whisper's 51,865-token vocabulary).
_MAX_REMEMBERED_ROWS = 64


class WhisperDecoderContext(RowCache):
    """See module docstring. Rows come back with the token filter applied (banned ids at −inf)."""

    def __init__(
        self,
        runtime: WhisperRuntime,
        token_filter: TokenFilter,
        first_output_position: int,
        n_text_ctx: int,
        reuse_cache: bool = True,
        no_speech: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(reuse=reuse_cache, max_rows=_MAX_REMEMBERED_ROWS)
        self._runtime = runtime
        self.n_vocab = runtime.n_vocab
        self._filter = token_filter
        self._first_output = first_output_position  # row predicting the first token after the prompt
        self._n_ctx = n_text_ctx
        # (position of <|startoftranscript|> in the prompt, <|nospeech|>'s id): where Whisper says
        # whether the audio holds speech (`no_speech`); that row is read before the token filter.
        self._no_speech = no_speech
        self._audio: EncodedAudio | None = None
        self._reset()

    def _reset(self) -> None:
        self._clear()
        # P(<|nospeech|>) for the current audio, once the prompt has been decoded over it.
        self.no_speech_probability: float | None = None
        self._k, self._v = self._runtime.empty_cache()
        self._attention: dict[int, np.ndarray] = {}  # position → alignment heads' attention [heads, n_audio]

    @property
    def audio(self) -> EncodedAudio | None:
        return self._audio

    def set_audio(self, audio: EncodedAudio) -> None:
        """Condition on `audio`; the cache survives only if it is the same encoder output."""
        if audio is not self._audio:
            self._audio = audio
            self._reset()

    def logits_at(self, tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """See `base.ScoringContext.logits_at`."""
        if self._audio is None:
            raise RuntimeError("set_audio() before logits_at()")
        return super().logits_at(tokens, positions)

    def attention_at(self, tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """The alignment heads' cross-attention of the rows at `positions` of `tokens` (the row at
        p predicts token p + 1, so it was computed *reading* token p): float32 [len(positions),
        n_alignment_heads, n_audio]. Remembered rows are reused; missing ones are computed."""
        if not self._runtime.has_alignment_attention:
            raise ModelError("this converted Whisper model returns no cross-attention: convert it again "
                             "(delete its onnx folder in the cache)")
        if self._audio is None:
            raise RuntimeError("set_audio() before attention_at()")
        tokens, positions = list(tokens), list(positions)
        if any(p < 0 or p >= len(tokens) for p in positions):
            raise IndexError(f"positions {positions} outside a sequence of {len(tokens)} tokens")
        if positions:
            self._make_ready(tokens[: max(positions) + 1], positions, self._attention)
        return np.stack([self._attention[p] for p in positions])

    def _check_length(self, n_tokens: int) -> None:
        if n_tokens > self._n_ctx:
            raise ModelError(f"{n_tokens} tokens exceed Whisper's text context of {self._n_ctx}")

    def _cut(self, start: int) -> int:
        self._k = self._k[:, :, :, :start]
        self._v = self._v[:, :, :, :start]
        # Attention rows are not evicted with logits rows (AlignAtt standardises over all of them);
        # they go only with the tokens they were computed over.
        self._attention = {p: a for p, a in self._attention.items() if p < start}
        return start

    def _evaluate(self, tokens: list[int], want: set[int]) -> None:  # noqa: ARG002 - one ONNX call gives every row
        start = len(self._tokens)
        step = self._runtime.decode_step(tokens[start:], self._k, self._v, self._audio)
        logits, self._k, self._v = step.logits, step.self_k, step.self_v
        positions = list(range(start, len(tokens)))
        if self._no_speech is not None and start <= self._no_speech[0] < len(tokens):
            row = logits[self._no_speech[0] - start]
            self.no_speech_probability = no_speech_probability(row, self._no_speech[1])
        self._filter.apply(logits, positions, self._first_output)
        self._tokens.extend(tokens[start:])
        for k, p in enumerate(positions):
            self._rows[p] = logits[k]
            if step.attention is not None:
                self._attention[p] = step.attention[k]
