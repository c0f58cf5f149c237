"""Energy-based voice activity detection: which 20 ms frames hold speech.

A frame is speech when its RMS level is above an absolute floor *and* well above the recent noise
floor (a low percentile of the last few seconds), so a constant hum or a noisy room does not read
as endless speech, *and* its spectrum is not flat: noise switched on and off keeps the noise floor
at silence, so its bursts pass the level tests, and Whisper turns them into words ("I'm not going
to be able to do that."). Deliberately simple: its job is to keep silence and noise away from
Whisper (which hallucinates on both) and to find pauses where a window can be cut.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import OptionsError
from .features import SAMPLE_RATE_HZ

__all__ = ["VadOptions", "EnergyVad"]

# Until this many frames are heard there is no noise floor to speak of: the level tests use the
# absolute floor alone (a noise level no microphone reaches, dBFS).
_NOISE_FLOOR_MIN_FRAMES = 10
_NO_NOISE_FLOOR_DBFS = -120.0
# The noise floor is this low percentile of the recent frame levels.
_NOISE_FLOOR_PERCENTILE = 10


@dataclass(frozen=True)
class VadOptions:
    """Voice activity detection and window cutting."""

    frame_ms: int = 20  # analysis frame, ms
    threshold_dbfs: float = -50.0  # absolute speech floor, dB relative to full scale
    margin_db: float = 10.0  # speech must be this far above the noise floor, dB
    noise_window_ms: int = 5000  # history the noise floor is estimated over, ms
    # A pause this long after speech ends the window, ms. Each cut costs Whisper its context: on
    # librispeech-dev, 3 s encoder padding: offline decoding per window gave WER 7.92 % with 800 ms,
    # 7.28 % with 1500 ms (whole utterances: 7.28 %); LSG 8.78 → 8.46 %.
    min_silence_ms: int = 1500
    max_window_ms: int = 28000  # a window is cut before Whisper's 30 s input overflows, ms
    preroll_ms: int = 300  # audio kept before detected speech onset, ms
    # A frame whose spectral flatness (geometric / arithmetic mean of its power spectrum) is above
    # this is noise, not speech. White noise: 0.56 (10th percentile 0.51); the voiced frames of a
    # librispeech-dev utterance (dev-clean-2-0003): median 0.003, 90th percentile 0.12, 1.5 % above 0.3.
    max_flatness: float = 0.4

    def __post_init__(self) -> None:
        if self.frame_ms <= 0 or self.min_silence_ms <= 0:
            raise OptionsError("VAD frame and silence durations must be positive")
        if not 0.0 < self.max_flatness <= 1.0:
            raise OptionsError(f"max_flatness must be in (0, 1], got {self.max_flatness}")
        if not 1000 <= self.max_window_ms <= 30000:
            raise OptionsError(f"--max-window-ms must be within 1000…30000, got {self.max_window_ms}")


class EnergyVad:
    """Stateful frame classifier; feed audio in any block sizes with `push`."""

    def __init__(self, options: VadOptions = VadOptions()) -> None:
        self.options = options
        self._frame = SAMPLE_RATE_HZ * options.frame_ms // 1000
        self._pending = np.zeros(0, np.float32)
        self._history: deque[float] = deque(maxlen=max(1, options.noise_window_ms // options.frame_ms))
        self._taper = np.hanning(self._frame)

    def reset(self) -> None:
        """Forget the stream: a new utterance must not be judged against the last one's noise floor."""
        self._pending = np.zeros(0, np.float32)
        self._history.clear()

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Classify every complete frame of the audio pushed so far: bool [n_new_frames]."""
        audio = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        n = audio.size // self._frame
        self._pending = audio[n * self._frame :]
        frames = audio[: n * self._frame].reshape(n, self._frame)
        levels = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        power = np.abs(np.fft.rfft(frames * self._taper, axis=1)) ** 2 + 1e-12
        flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
        out = np.zeros(n, dtype=bool)
        for k, level in enumerate(levels):
            self._history.append(float(level))
            noise = _NO_NOISE_FLOOR_DBFS
            if len(self._history) >= _NOISE_FLOOR_MIN_FRAMES:
                noise = float(np.percentile(self._history, _NOISE_FLOOR_PERCENTILE))
            out[k] = (level > self.options.threshold_dbfs and level > noise + self.options.margin_db
                      and flatness[k] <= self.options.max_flatness)
        return out
