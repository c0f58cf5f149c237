"""The speech engine: one loaded Whisper (ONNX sessions, vocabulary, front end) shared by sessions.

It turns audio into encoder outputs, opens decoder scoring contexts, and transcribes a whole
window offline (greedy, no timestamps — the reference the streaming policies are measured against).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import OptionsError
from ..policy.drafting import Draft, greedy_draft
from .context import WhisperDecoderContext
from .features import FRAME_MS, HOP_SAMPLES, N_FRAMES_30S, SAMPLE_RATE_HZ, LogMel
from .loops import token_budget, trim_repetition
from .models import resolve_model
from .onnx_runtime import EncodedAudio, RuntimeOptions, WhisperRuntime
from .vocab import TokenFilter, WhisperVocabulary

if TYPE_CHECKING:
    from .session import AsrSession, AsrSessionOptions

__all__ = ["EncoderOptions", "SpeechEngine", "ENCODER_WINDOWS", "WHISPER_TEXT_CTX"]

# Tokens Whisper's decoder attends over (its positional table), the same for every model size.
WHISPER_TEXT_CTX = 448

# "30s": pad every input to Whisper's 30 s training window (3000 frames; cost independent of length).
# "tight": encode only the audio so far plus `pad_ms` of padding (cost grows with the audio).
ENCODER_WINDOWS = ("30s", "tight")


@dataclass(frozen=True)
class EncoderOptions:
    """How much mel the encoder sees per call."""

    window: str = "tight"  # one of ENCODER_WINDOWS
    # "tight": padding appended after the audio, ms. Whisper was trained on 30 s inputs; the more
    # padding, the closer to its offline accuracy and the slower. librispeech-dev, LSG, 800 ms
    # pauses: WER 9.74 % (1 s), 8.78 % (3 s), 9.10 % (5 s), 9.21 % (always 30 s, ~3× the compute).
    pad_ms: int = 3000
    pad_kind: str = "mel-zeros"  # "tight": "mel-zeros" = 0 in the normalised mel (as faster-whisper); "silence" = zero samples before the STFT

    def __post_init__(self) -> None:
        if self.window not in ENCODER_WINDOWS:
            raise OptionsError(f"--encoder-window must be one of {', '.join(ENCODER_WINDOWS)}, got {self.window!r}")
        if self.pad_kind not in ("silence", "mel-zeros"):
            raise OptionsError(f"pad_kind must be silence or mel-zeros, got {self.pad_kind!r}")
        if self.pad_ms < 0:
            raise OptionsError(f"--encoder-pad-ms must be non-negative, got {self.pad_ms}")


class SpeechEngine:
    """Resources of one Whisper model (an `asr_engine.AsrEngine`); per-stream state lives in the
    `AsrSession`s it creates."""

    def __init__(self, model_dir: Path, runtime_options: RuntimeOptions = RuntimeOptions(),
                 encoder_options: EncoderOptions = EncoderOptions()) -> None:
        self.model_dir = Path(model_dir)
        self.runtime = WhisperRuntime(self.model_dir, runtime_options)
        self.vocab = WhisperVocabulary.load(self.model_dir, self.runtime.n_vocab)
        self.token_filter = TokenFilter.for_model(self.vocab, self.model_dir)
        self.encoder_options = encoder_options
        self.log_mel = LogMel(self.runtime.n_mels)
        self.n_text_ctx = WHISPER_TEXT_CTX
        self._lent_lock = threading.Lock()  # sessions on several threads acquire and release
        self._contexts_lent = 0

    @classmethod
    def load(cls, model: str | Path | None = None, runtime_options: RuntimeOptions = RuntimeOptions(),
             encoder_options: EncoderOptions = EncoderOptions(), precision: str = "fp32") -> "SpeechEngine":
        """Load a built-in model name or a path (converting it into the cache on first use)."""
        return cls(resolve_model(model, precision), runtime_options, encoder_options)

    def encode(self, audio: np.ndarray) -> EncodedAudio:
        """Encode float32 16 kHz `audio` (≤ 30 s) per the encoder options."""
        if self.encoder_options.window == "30s" or self.encoder_options.pad_kind == "mel-zeros":
            # As faster-whisper: the audio's log-mel, then zeros of the normalised mel up to 30 s.
            mel = self.log_mel(audio)[:, :N_FRAMES_30S]
            n_frames = N_FRAMES_30S
            if self.encoder_options.window == "tight":
                n_frames = min(N_FRAMES_30S, mel.shape[1] + self.encoder_options.pad_ms // FRAME_MS)
                n_frames -= n_frames % 2  # the encoder's stride-2 convolution halves the frames
            mel = mel[:, :n_frames]
            mel = np.pad(mel, ((0, 0), (0, n_frames - mel.shape[1])))
        else:
            # Digital silence after the audio, as Whisper saw in training (openai/whisper pads the
            # waveform with zeros before the STFT): the padding sits at the log-mel floor and reads
            # as "speech has ended", which curbs the repetition loops of short inputs.
            n_pad = SAMPLE_RATE_HZ * self.encoder_options.pad_ms // 1000
            padded = np.concatenate([audio[: N_FRAMES_30S * HOP_SAMPLES], np.zeros(n_pad, np.float32)])
            mel = self.log_mel(padded)[:, :N_FRAMES_30S]
            mel = mel[:, : mel.shape[1] - mel.shape[1] % 2]  # the stride-2 convolution halves the frames
        return self.runtime.encode(mel)

    def new_context(self, prompt: list[int], reuse_cache: bool = True) -> WhisperDecoderContext:
        no_speech = None
        if self.vocab.no_speech is not None and self.vocab.sot in prompt:
            no_speech = (prompt.index(self.vocab.sot), self.vocab.no_speech)
        return WhisperDecoderContext(self.runtime, self.token_filter, len(prompt) - 1, self.n_text_ctx,
                                     reuse_cache=reuse_cache, no_speech=no_speech)

    def acquire_context(self, prompt: list[int]) -> WhisperDecoderContext:
        # A Whisper decoder context is a small NumPy cache: made per session, dropped on release.
        context = self.new_context(prompt)
        with self._lent_lock:
            self._contexts_lent += 1
        return context

    def release_context(self, context: WhisperDecoderContext) -> None:
        with self._lent_lock:
            self._contexts_lent -= 1

    @property
    def contexts_in_use(self) -> int:
        """Decoder contexts acquired by sessions and not yet released (a server's leak check)."""
        with self._lent_lock:
            return self._contexts_lent

    def create_session(self, options: "AsrSessionOptions | None" = None) -> "AsrSession":
        """A new audio stream over this engine (close it, or use `with`)."""
        from .session import AsrSession, AsrSessionOptions

        return AsrSession(self, options or AsrSessionOptions())

    def close(self) -> None:
        """Nothing to free beyond what garbage collection does; here for the engine protocol."""

    def __enter__(self) -> "SpeechEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prompt(self, language: str | None, task: str, previous: Sequence[int] = ()) -> list[int]:
        return self.vocab.prompt(language, task, previous)

    def beam_search(self, prompt: list[int], committed: list[int], audio: EncodedAudio, n_beams: int,
                    max_new_tokens: int) -> Draft:
        """Beam-search continuation of `prompt` + `committed` over `audio` (`speech.beam`); `ended`
        when it stopped on the end of transcript."""
        from .beam import beam_search

        return beam_search(self.runtime, self.token_filter, audio, prompt + committed, len(prompt) - 1, n_beams,
                           max_new_tokens, self.vocab.is_end_of_generation)

    def transcribe(self, audio: np.ndarray, language: str | None = None, task: str = "transcribe") -> str:
        """Greedy offline transcript of one window of `audio` (float32, 16 kHz, ≤ 30 s)."""
        prompt = self.prompt(language, task)
        context = self.new_context(prompt)
        context.set_audio(self.encode(audio))
        budget = min(self.n_text_ctx // 2 - len(prompt), token_budget(audio.size, SAMPLE_RATE_HZ))
        draft = greedy_draft(context, prompt, budget, self.vocab.is_end_of_generation)
        return self.vocab.text(trim_repetition(draft.tokens)).strip()
