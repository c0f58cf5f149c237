"""The speech engine: one loaded Whisper (ONNX sessions, vocabulary, front end) shared by sessions.

It turns audio into encoder outputs, opens decoder scoring contexts, and transcribes a whole
window offline (greedy, no timestamps — the reference the streaming policies are measured against).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends.base import greedy_draft
from ..errors import OptionsError
from .context import WhisperDecoderContext
from .features import FRAME_MS, N_FRAMES_30S, SAMPLE_RATE_HZ, LogMel
from .loops import token_budget, trim_repetition
from .models import resolve_model
from .onnx_runtime import EncodedAudio, RuntimeOptions, WhisperRuntime
from .vocab import TokenFilter, WhisperVocabulary

__all__ = ["EncoderOptions", "SpeechEngine", "ENCODER_WINDOWS"]

# "30s": pad every input to Whisper's 30 s training window (3000 frames; cost independent of length).
# "tight": encode only the audio so far plus `pad_ms` of padding (cost grows with the audio).
ENCODER_WINDOWS = ("30s", "tight")


@dataclass(frozen=True)
class EncoderOptions:
    """How much mel the encoder sees per call."""

    window: str = "tight"  # one of ENCODER_WINDOWS
    pad_ms: int = 1000  # "tight": silence-level padding appended after the audio, ms

    def __post_init__(self) -> None:
        if self.window not in ENCODER_WINDOWS:
            raise OptionsError(f"--encoder-window must be one of {', '.join(ENCODER_WINDOWS)}, got {self.window!r}")
        if self.pad_ms < 0:
            raise OptionsError(f"--encoder-pad-ms must be non-negative, got {self.pad_ms}")


class SpeechEngine:
    """Resources of one Whisper model; per-stream state lives in `AsrSession`."""

    def __init__(self, model_dir: Path, runtime_options: RuntimeOptions = RuntimeOptions(),
                 encoder_options: EncoderOptions = EncoderOptions()) -> None:
        self.model_dir = Path(model_dir)
        self.runtime = WhisperRuntime(self.model_dir, runtime_options)
        self.vocab = WhisperVocabulary.load(self.model_dir, self.runtime.n_vocab)
        self.token_filter = TokenFilter.for_model(self.vocab, self.model_dir)
        self.encoder_options = encoder_options
        self.log_mel = LogMel(self.runtime.n_mels)
        self.n_text_ctx = 448

    @classmethod
    def load(cls, model: str | Path | None = None, runtime_options: RuntimeOptions = RuntimeOptions(),
             encoder_options: EncoderOptions = EncoderOptions()) -> "SpeechEngine":
        """Load a built-in model name or a path (converting it into the cache on first use)."""
        return cls(resolve_model(model), runtime_options, encoder_options)

    def encode(self, audio: np.ndarray) -> EncodedAudio:
        """Encode float32 16 kHz `audio` (≤ 30 s) per the encoder options."""
        mel = self.log_mel(audio)[:, :N_FRAMES_30S]
        if self.encoder_options.window == "30s":
            n_frames = N_FRAMES_30S
        else:
            n_frames = min(N_FRAMES_30S, mel.shape[1] + self.encoder_options.pad_ms // FRAME_MS)
            n_frames += n_frames % 2  # the encoder's stride-2 convolution halves the frame count
        # Padding frames are zeros in the normalised log-mel, exactly as faster-whisper pads.
        mel = np.pad(mel, ((0, 0), (0, n_frames - mel.shape[1])))
        return self.runtime.encode(mel)

    def new_context(self, prompt: list[int], reuse_cache: bool = True) -> WhisperDecoderContext:
        return WhisperDecoderContext(self.runtime, self.token_filter, len(prompt) - 1, self.n_text_ctx,
                                     reuse_cache=reuse_cache)

    def prompt(self, language: str | None, task: str) -> list[int]:
        return self.vocab.prompt(language, task)

    def transcribe(self, audio: np.ndarray, language: str | None = None, task: str = "transcribe") -> str:
        """Greedy offline transcript of one window of `audio` (float32, 16 kHz, ≤ 30 s)."""
        prompt = self.prompt(language, task)
        context = self.new_context(prompt)
        context.set_audio(self.encode(audio))
        budget = min(self.n_text_ctx // 2 - len(prompt), token_budget(audio.size, SAMPLE_RATE_HZ))
        draft = greedy_draft(context, prompt, budget, self.vocab.is_end_of_generation)
        return self.vocab.text(trim_repetition(draft.tokens)).strip()
