"""Whisper's log-mel spectrogram in NumPy.

Same recipe as openai/whisper `audio.py`: 25 ms periodic Hann window (400 samples), 10 ms hop
(160 samples), centred frames with reflect padding, power spectrum, Slaney-normalised mel
filterbank (librosa's default), log10 clamped at 1e-10, floored at (max − 8), then (x + 4) / 4.
One frame is 10 ms; the encoder halves that (one position per 20 ms).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SAMPLE_RATE_HZ",
    "HOP_SAMPLES",
    "N_FFT_SAMPLES",
    "N_FRAMES_30S",
    "FRAME_MS",
    "LogMel",
]

SAMPLE_RATE_HZ = 16_000
N_FFT_SAMPLES = 400  # 25 ms window
HOP_SAMPLES = 160  # 10 ms hop
FRAME_MS = 1000 * HOP_SAMPLES // SAMPLE_RATE_HZ  # 10 ms per mel frame
N_FRAMES_30S = 3000  # mel frames in Whisper's 30 s window
_LOG_FLOOR_DB10 = 8.0  # dynamic range kept below the loudest bin, in log10 units (80 dB)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (librosa htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    mel = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(n_mels: int, sample_rate_hz: int = SAMPLE_RATE_HZ, n_fft: int = N_FFT_SAMPLES) -> np.ndarray:
    """Slaney-normalised triangular filters, float32 [n_mels, n_fft // 2 + 1]."""
    fft_hz = np.linspace(0, sample_rate_hz / 2, n_fft // 2 + 1)
    mel_edges = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate_hz / 2), n_mels + 2)
    hz_edges = _mel_to_hz(mel_edges)
    widths = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    # Slaney normalisation: each filter has unit area in Hz.
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    return weights.astype(np.float32)


class LogMel:
    """Log-mel front end for one mel count. Filterbank and window are built once; calls are pure."""

    def __init__(self, n_mels: int = 80) -> None:
        self.n_mels = n_mels
        self._filters = mel_filterbank(n_mels)
        self._window = np.hanning(N_FFT_SAMPLES + 1)[:-1].astype(np.float32)  # periodic Hann

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel of `audio` (float32 [n_samples], 16 kHz, −1…1) → float32 [n_mels, n_samples // 160].

        The frame count follows openai/whisper and faster-whisper (the final centred frame is
        dropped), so 30 s of audio gives exactly 3000 frames.
        """
        audio = np.asarray(audio, dtype=np.float32)
        n_frames = audio.size // HOP_SAMPLES
        if n_frames == 0:
            return np.zeros((self.n_mels, 0), dtype=np.float32)
        # As faster-whisper: one hop of trailing silence, the last centred frame dropped; the
        # (max − 8) floor sees that one extra frame too.
        padded = np.pad(audio, (0, HOP_SAMPLES))
        power = self._power(padded)[:, :-1]
        mel = self._filters @ power
        log_spec = np.log10(np.maximum(mel, 1e-10))
        log_spec = np.maximum(log_spec, log_spec.max() - _LOG_FLOOR_DB10)
        return ((log_spec[:, :n_frames] + 4.0) / 4.0).astype(np.float32)

    def _power(self, audio: np.ndarray) -> np.ndarray:
        """|STFT|² float32 [n_fft/2 + 1, n_samples // hop + 1], frames centred (reflect padding)."""
        half = N_FFT_SAMPLES // 2
        if audio.size <= half:
            # Reflect padding needs more samples than half a window; zero-pad such tiny inputs.
            audio = np.pad(audio, (0, half + 1 - audio.size))
        padded = np.pad(audio, (half, half), mode="reflect")
        n_frames = 1 + (padded.size - N_FFT_SAMPLES) // HOP_SAMPLES
        frames = np.lib.stride_tricks.as_strided(
            padded,
            shape=(n_frames, N_FFT_SAMPLES),
            strides=(padded.strides[0] * HOP_SAMPLES, padded.strides[0]),
            writeable=False,
        )
        spectrum = np.fft.rfft(frames * self._window, axis=-1)
        return (np.abs(spectrum) ** 2).T.astype(np.float32)
