"""Speech input that is used only in part, or not at all, says so before any model work."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lsg_edge.errors import InputError, InputWarning
from lsg_edge.evaluation.speech_run import read_audio_manifest
from lsg_edge.speech.audio_io import AudioFileStream, file_blocks, paced, read_audio


def _wav(path: Path, seconds: float) -> Path:
    samples = np.random.default_rng(0).normal(0.0, 0.05, int(16000 * seconds)).astype(np.float32)
    soundfile.write(str(path), samples, 16000, subtype="PCM_16")
    return path


def test_a_wav_shorter_than_its_header_warns(tmp_path):
    path = _wav(tmp_path / "cut.wav", 2.0)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.warns(InputWarning, match=r"declares 2\.00 s .* holds 1\.00 s"):
        audio = read_audio(path)
    assert 0.9 * 16000 < audio.size < 1.1 * 16000


def test_a_truncated_wav_warns_when_its_stream_opens(tmp_path):
    path = _wav(tmp_path / "cut.wav", 2.0)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.warns(InputWarning, match=r"declares 2\.00 s .* holds 1\.00 s"):
        AudioFileStream(path)


@pytest.mark.parametrize(("rate_hz", "channels"), [(16_000, 1), (44_100, 2), (8_000, 1)])
def test_a_file_read_as_it_streams_gives_the_blocks_of_the_whole_file(tmp_path, rate_hz, channels):
    # `asr FILE` reads the file block by block (its memory does not grow with the file): the
    # blocks are exactly those of the whole file read at once, resampling included.
    rng = np.random.default_rng(1)
    samples = (0.1 * rng.standard_normal((int(rate_hz * 2.37), channels))).astype(np.float32)
    path = tmp_path / "clip.wav"
    soundfile.write(str(path), samples, rate_hz, subtype="FLOAT")
    whole = list(file_blocks(read_audio(path)))
    streamed = list(AudioFileStream(path))
    assert [b.size for b in streamed] == [b.size for b in whole]
    assert all(np.array_equal(a, b) for a, b in zip(streamed, whole))


def test_paced_blocks_that_piled_up_come_together():
    # A live source's blocks are released one per 100 ms; a consumer that took 350 ms over the first
    # gets the (at least three) blocks that arrived meanwhile as one, in order, nothing lost.
    blocks = [np.full(1600, k, np.float32) for k in range(8)]
    received = []
    for block in paced(blocks):
        received.append(block)
        if len(received) == 1:
            time.sleep(0.35)
    assert received[0].size == 1600 and received[1].size >= 3 * 1600
    assert np.array_equal(np.concatenate(received), np.concatenate(blocks))


@pytest.mark.parametrize("content", [None, b"not audio at all"])
def test_a_missing_or_unreadable_file_fails_when_its_stream_opens(tmp_path, content):
    path = tmp_path / "x.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match="audio file not found" if content is None else "cannot read audio file"):
        AudioFileStream(path)


def test_a_complete_wav_does_not_warn(tmp_path, recwarn):
    read_audio(_wav(tmp_path / "ok.wav", 0.5))
    assert not [w for w in recwarn if issubclass(w.category, InputWarning)]


def test_audio_manifest_checks_every_file_before_any_decoding(tmp_path):
    _wav(tmp_path / "a.wav", 0.2)
    manifest = tmp_path / "m.tsv"
    manifest.write_text("case_id\taudio_path\tduration_s\ttranscript\n"
                        "a\ta.wav\t0.2\thello\n"
                        "b\tmissing.wav\t0.2\tworld\n")
    with pytest.raises(InputError, match=r"m\.tsv:3: audio file not found: .*missing\.wav"):
        read_audio_manifest(manifest)


def test_noise_switched_on_and_off_is_not_speech(data_dir):
    # White noise, 1/3 s on and 1/3 s off: its bursts stay above a noise floor that the pauses hold
    # at silence, so the level tests alone marked half the frames as speech — and Whisper base
    # made 23 words of it ("I'm not going to be able to do that.").
    from lsg_edge.speech.vad import EnergyVad

    rng = np.random.default_rng(1)
    t = np.arange(16000 * 10) / 16000
    noise = rng.normal(0.0, 0.1, t.size).astype(np.float32) * (np.floor(t * 3) % 2 == 0)
    assert not EnergyVad().push(noise).any()
    speech, rate = soundfile.read(str(data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0003.wav"), dtype="float32")
    assert rate == 16000 and EnergyVad().push(speech).mean() > 0.6  # speech still reads as speech


def test_vad_reset_forgets_the_last_streams_noise_floor(data_dir):
    # A loud stream raises the noise floor; after reset the next stream is judged on its own, as a
    # fresh detector would judge it.
    from lsg_edge.speech.vad import EnergyVad

    speech, _ = soundfile.read(str(data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0003.wav"), dtype="float32")
    quiet = speech * 0.05
    vad = EnergyVad()
    vad.push(np.clip(speech * 8.0, -1.0, 1.0))
    carried = vad.push(quiet)
    vad.reset()
    assert np.array_equal(vad.push(quiet), EnergyVad().push(quiet))
    assert not np.array_equal(carried, EnergyVad().push(quiet))  # without the reset it differed
