"""One audio stream being captioned: windows, voice activity, and the committed-word events.

    engine = SpeechEngine.load("base")
    session = AsrSession(engine, SessionOptions(language="en"))
    for block in blocks:                       # float32 mono 16 kHz, any block size
        for commit in session.push(block):
            print(commit.text, end="", flush=True)
    for commit in session.finish():            # end of input: everything left is written
        ...

Audio is gathered into a *window* from the first voiced frame (plus a short pre-roll). A pause
of `min_silence_ms`, or a window reaching `max_window_ms`, ends it: everything is committed at
the cut and the next window starts empty, so no window exceeds Whisper's 30 s and silence never
reaches the decoder (Whisper hallucinates and loops on silence).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .engine import SpeechEngine
from .features import SAMPLE_RATE_HZ
from .policies import SpeechPolicyOptions, make_policy
from .vad import EnergyVad, VadOptions

__all__ = ["SessionOptions", "Commit", "AsrSession"]


@dataclass(frozen=True)
class SessionOptions:
    """What to recognise and how to stream it."""

    language: str | None = None  # spoken language code (multilingual models); None = English
    task: str = "transcribe"  # "transcribe", or "translate" (Whisper's X→English)
    policy: SpeechPolicyOptions = field(default_factory=SpeechPolicyOptions)
    vad: VadOptions = field(default_factory=VadOptions)


@dataclass(frozen=True)
class Commit:
    """Words committed at once; final, never retracted."""

    text: str  # the words, with the leading space that separates them from earlier output
    n_words: int
    audio_ms: int  # audio read (from the start of the stream) when committed, ms
    wall_time_s: float  # time.time() at commit
    end_of_window: bool  # committed at a pause / window cut


class AsrSession:
    """Per-stream state over a shared `SpeechEngine` (see module docstring)."""

    def __init__(self, engine: SpeechEngine, options: SessionOptions = SessionOptions()) -> None:
        self.engine = engine
        self.options = options
        self._prompt = engine.prompt(options.language, options.task)
        self._policy = make_policy(engine, self._prompt, options.policy)
        self._vad = EnergyVad(options.vad)
        self._frame = self._vad._frame
        self._reset_stream()

    def _reset_stream(self) -> None:
        self._heard = 0  # samples pushed since the stream started
        self._unclassified = np.zeros(0, np.float32)  # samples awaiting a full VAD frame
        self._preroll = np.zeros(0, np.float32)
        self._window: np.ndarray | None = None  # samples of the open window
        self._n_segments = 0  # segments of the window the policy has read
        self._silence = 0  # trailing unvoiced samples in the open window
        self._started_output = False
        self._policy.reset()

    def reset(self) -> None:
        """Forget the stream (the voice detector's noise floor included); the engine stays loaded."""
        self._vad.reset()
        self._reset_stream()

    def push(self, samples: np.ndarray) -> list[Commit]:
        """Feed float32 mono 16 kHz samples; return what got committed."""
        samples = np.asarray(samples, dtype=np.float32)
        voiced = self._vad.push(samples)
        audio = np.concatenate([self._unclassified, samples])
        n = voiced.size * self._frame
        self._unclassified = audio[n:]
        commits: list[Commit] = []
        for k, is_speech in enumerate(voiced):
            commits += self._frame_in(audio[k * self._frame : (k + 1) * self._frame], bool(is_speech))
        return commits

    def finish(self) -> list[Commit]:
        """End of input: commit everything left."""
        commits = []
        if self._window is not None:
            if self._unclassified.size:
                self._window = np.concatenate([self._window, self._unclassified])
            commits = self._close_window()
        self._heard += self._unclassified.size
        self._unclassified = np.zeros(0, np.float32)
        return commits

    def _frame_in(self, frame: np.ndarray, is_speech: bool) -> list[Commit]:
        vad = self.options.vad
        self._heard += frame.size
        if self._window is None:
            if not is_speech:
                keep = SAMPLE_RATE_HZ * vad.preroll_ms // 1000
                self._preroll = np.concatenate([self._preroll, frame])[-keep:] if keep else self._preroll
                return []
            self._window, self._preroll = self._preroll, np.zeros(0, np.float32)
            self._n_segments, self._silence = 0, 0
        self._window = np.concatenate([self._window, frame])
        self._silence = 0 if is_speech else self._silence + frame.size
        commits: list[Commit] = []
        segment = self.options.policy.segment_samples
        if self._window.size >= (self._n_segments + 1) * segment and self._silence < self._window.size:
            self._n_segments = self._window.size // segment
            commits += self._emit(self._policy.step(self._window, self._n_segments), end_of_window=False)
        if (self._silence >= SAMPLE_RATE_HZ * vad.min_silence_ms // 1000
                or self._window.size >= SAMPLE_RATE_HZ * vad.max_window_ms // 1000):
            commits += self._close_window()
        return commits

    def _close_window(self) -> list[Commit]:
        # Trailing silence beyond a short tail only invites hallucination.
        tail = SAMPLE_RATE_HZ * 200 // 1000
        window = self._window[: max(self._window.size - max(0, self._silence - tail), 1)]
        commits = self._emit(self._policy.finish(window), end_of_window=True)
        self._window = None
        self._policy.reset()
        return commits

    def _emit(self, tokens: list[int], end_of_window: bool) -> list[Commit]:
        if not tokens:
            return []
        text = self.engine.vocab.text(tokens)
        if not self._started_output:
            text = text.lstrip()
        elif not text[:1].isspace():
            text = " " + text  # a new window starts a new word
        n_words = len(text.split())
        if n_words == 0:
            return []
        self._started_output = True
        audio_ms = 1000 * self._heard // SAMPLE_RATE_HZ
        return [Commit(text, n_words, audio_ms, time.time(), end_of_window)]
