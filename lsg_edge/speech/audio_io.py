"""Audio in: files of any rate and channel count, and live capture from a microphone.

Everything leaves here as float32 mono at 16 kHz, in blocks, so the session does not know whether
it is fed from a file or a device.
"""

from __future__ import annotations

import os
import queue
import struct
import time
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..errors import DeviceError, InputError, InputWarning
from .features import SAMPLE_RATE_HZ

__all__ = ["read_audio", "file_blocks", "AudioFileStream", "MicrophoneStream", "to_mono_16k"]

BLOCK_MS = 100  # size of the blocks handed to the session, ms


def to_mono_16k(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    """Downmix [n] or [n, channels] samples to mono and resample to 16 kHz, float32."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if rate_hz != SAMPLE_RATE_HZ and samples.size:
        import soxr

        samples = soxr.resample(samples, rate_hz, SAMPLE_RATE_HZ, quality="HQ").astype(np.float32)
    return samples


def read_audio(path: Path) -> np.ndarray:
    """A whole audio file (WAV, FLAC, OGG… whatever libsndfile reads) as float32 mono 16 kHz."""
    import soundfile

    path = Path(path)
    if not path.exists():
        raise InputError(f"audio file not found: {path}")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise InputError(f"cannot read audio file {path}: {e}") from e
    shortfall = _wav_shortfall(path)
    if shortfall is not None:
        declared_s, held_s = shortfall
        warnings.warn(f"{path}: the WAV header declares {declared_s:.2f} s of audio but the file holds "
                      f"{held_s:.2f} s (truncated?); using what is there", InputWarning, stacklevel=2)
    return to_mono_16k(samples, rate)


def _wav_shortfall(path: Path) -> tuple[float, float] | None:
    """(declared s, present s) when a WAV's data chunk claims more bytes than the file holds.

    libsndfile reads what is there without a word, so a cut-off recording would pass for a complete
    one. A size of 0 or 0xFFFFFFFF is a recorder's placeholder for "until the end", not a claim."""
    with open(path, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        file_size = os.fstat(f.fileno()).st_size
        byte_rate = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                body = f.read(size + (size & 1))
                if len(body) >= 12:
                    byte_rate = struct.unpack("<I", body[8:12])[0]
                continue
            if chunk_id == b"data":
                held = file_size - f.tell()
                if byte_rate <= 0 or size in (0, 0xFFFFFFFF) or size <= held:
                    return None
                return size / byte_rate, held / byte_rate
            f.seek(size + (size & 1), os.SEEK_CUR)


def file_blocks(audio: np.ndarray, realtime: bool = False) -> Iterator[np.ndarray]:
    """`audio` in BLOCK_MS blocks; with `realtime`, paced at the speed of speech (`paced`)."""
    block = SAMPLE_RATE_HZ * BLOCK_MS // 1000
    blocks = (audio[offset : offset + block] for offset in range(0, audio.size, block))
    return paced(blocks) if realtime else blocks


def paced(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """BLOCK_MS `blocks` released as a live source releases them: block k once k × BLOCK_MS have
    passed. The blocks already due when the consumer asks again (it fell behind) come as one, as
    a microphone's backlog does (`MicrophoneStream`), so that the session can catch up."""
    start = time.monotonic()
    due: list[np.ndarray] = []
    for k, block in enumerate(blocks):
        release = start + k * BLOCK_MS / 1000
        if due and release > time.monotonic():
            yield np.concatenate(due)
            due = []
        delay = release - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        due.append(block)
    if due:
        yield np.concatenate(due)


class AudioFileStream:
    """An audio file as float32 mono 16 kHz blocks of BLOCK_MS, read as it is consumed.

    Memory does not depend on the file's length (a whole hour in memory would be 230 MB at 16 kHz
    and several times that while a 44.1 kHz stereo file is converted). The file is opened and
    checked at construction, so a bad file fails before a model loads; with `realtime`, blocks are
    paced at the speed of speech.
    """

    def __init__(self, path: Path, realtime: bool = False) -> None:
        import soundfile

        self._path = Path(path)
        self._realtime = realtime
        if not self._path.exists():
            raise InputError(f"audio file not found: {self._path}")
        try:
            with soundfile.SoundFile(str(self._path)) as f:
                self._rate = f.samplerate
        except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
            raise InputError(f"cannot read audio file {self._path}: {e}") from e
        shortfall = _wav_shortfall(self._path)
        if shortfall is not None:
            declared_s, held_s = shortfall
            warnings.warn(f"{self._path}: the WAV header declares {declared_s:.2f} s of audio but the file holds "
                          f"{held_s:.2f} s (truncated?); using what is there", InputWarning, stacklevel=2)

    def __iter__(self) -> Iterator[np.ndarray]:
        return paced(self._blocks()) if self._realtime else self._blocks()

    def _blocks(self) -> Iterator[np.ndarray]:
        import soundfile

        resampler = None
        if self._rate != SAMPLE_RATE_HZ:
            import soxr

            resampler = soxr.ResampleStream(self._rate, SAMPLE_RATE_HZ, 1, dtype="float32", quality="HQ")
        block = SAMPLE_RATE_HZ * BLOCK_MS // 1000
        pending = np.zeros(0, np.float32)
        with soundfile.SoundFile(str(self._path)) as f:
            while True:
                raw = f.read(self._rate * BLOCK_MS // 1000, dtype="float32", always_2d=True)
                last = raw.shape[0] == 0
                mono = raw.mean(axis=1, dtype=np.float32) if raw.shape[0] else np.zeros(0, np.float32)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                pending = np.concatenate([pending, mono])
                while pending.size >= block or (last and pending.size):
                    yield pending[:block]
                    pending = pending[block:]
                if last:
                    return


def _sounddevice():
    try:
        import sounddevice
    except OSError as e:  # the module imports, then fails to find the shared library
        raise DeviceError("the PortAudio library is missing: install it (Debian/Ubuntu: apt install libportaudio2)") from e
    except ImportError as e:
        raise DeviceError("microphone input needs sounddevice: pip install sounddevice") from e
    return sounddevice


class MicrophoneStream:
    """Live capture from the default (or a named) input device, yielding 16 kHz mono blocks.

    Captures at the device's native rate and resamples here: many devices refuse 16 kHz.
    """

    def __init__(self, device: str | int | None = None) -> None:
        sd = _sounddevice()
        try:
            info = sd.query_devices(device, kind="input")
        except (ValueError, sd.PortAudioError) as e:
            raise DeviceError(f"no audio input device{'' if device is None else f' {device!r}'}: {e}") from e
        self._rate = int(info["default_samplerate"])
        self._blocks: queue.Queue[np.ndarray] = queue.Queue()
        try:
            self._stream = sd.InputStream(
                device=device, channels=1, samplerate=self._rate, dtype="float32",
                blocksize=self._rate * BLOCK_MS // 1000, callback=self._callback,
            )
        except sd.PortAudioError as e:
            raise DeviceError(f"cannot open the audio input device: {e}") from e
        self._resampler = None
        if self._rate != SAMPLE_RATE_HZ:
            import soxr

            # A streaming resampler keeps filter state across blocks (no clicks at block edges).
            self._resampler = soxr.ResampleStream(self._rate, SAMPLE_RATE_HZ, 1, dtype="float32")

    def _callback(self, data: np.ndarray, frames: int, time_info, status) -> None:  # noqa: ARG002
        self._blocks.put(data[:, 0].copy())

    def __iter__(self) -> Iterator[np.ndarray]:
        with self._stream:
            while True:
                # Everything captured while the last block was being decoded comes as one block:
                # a machine slower than real time catches up instead of falling further behind.
                blocks = [self._blocks.get()]
                while not self._blocks.empty():
                    blocks.append(self._blocks.get_nowait())
                block = np.concatenate(blocks)
                if self._resampler is not None:
                    block = self._resampler.resample_chunk(block)
                yield block
