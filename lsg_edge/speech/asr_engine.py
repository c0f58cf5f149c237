"""What an ASR session needs from an engine: the protocol the Whisper and audio-LLM engines implement.

An engine owns the loaded model (encoder, decoder weights, vocabulary) and hands decoder contexts
to sessions; a session owns one stream's state and gives its contexts back on `close()`. Engines
whose contexts are expensive (an audio-LLM's holds a llama.cpp KV cache) pool them, so memory is
bounded by the sessions open at once, not by the sessions ever created.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

from ..backends.base import Vocabulary

__all__ = ["AsrEngine", "AudioContext", "AsrVocabulary"]


class AsrVocabulary(Vocabulary, Protocol):
    """A `Vocabulary` that also turns token lists into text."""

    def text(self, tokens: Sequence[int]) -> str: ...


class AudioContext(Protocol):
    """A scoring context conditioned on encoded audio (see `backends.base.ScoringContext`)."""

    def set_audio(self, audio: Any) -> None:
        """Condition the following `logits_at` calls on `audio` (an `AsrEngine.encode` result)."""
        ...

    def logits_at(self, tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray: ...


class AsrEngine(Protocol):
    """A loaded speech model that sessions share."""

    vocab: AsrVocabulary
    n_text_ctx: int  # tokens the decoder context holds; drafts are capped at half of it

    def encode(self, audio: np.ndarray) -> Any:
        """Encoder output for float32 mono 16 kHz `audio` (≤ 30 s)."""
        ...

    def prompt(self, language: str | None, task: str, previous: Sequence[int] = ()) -> list[int]:
        """Decoder prompt tokens for `task` ("transcribe" or "translate") in spoken `language`;
        `previous`: tokens said before, for models that condition on them (others ignore them)."""
        ...

    def acquire_context(self, prompt: list[int]) -> AudioContext:
        """A decoder context for sequences that start with `prompt`; give it back with `release_context`."""
        ...

    def release_context(self, context: AudioContext) -> None: ...

    def transcribe(self, audio: np.ndarray, language: str | None = None, task: str = "transcribe") -> str:
        """Greedy offline output for one window of audio (the quality reference)."""
        ...
