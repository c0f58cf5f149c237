"""Memory of `lsg-edge asr` does not grow with the length of the audio: three minutes of speech peak
no higher than the first minute (two windows at their 28 s cap), measured as each run's peak
resident set size."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lsg_edge.evaluation.speech_run import read_audio_manifest
from lsg_edge.speech.audio_io import read_audio
from tests.helpers.cli import CLI

pytestmark = [pytest.mark.speech, pytest.mark.slow]  # two asr runs over 4 minutes of audio

RATE_HZ = 16_000
# Room for what a longer run may still add once two full windows have been through: onnxruntime
# buffers for input shapes those windows did not have. Measured (benchmarks/asr_memory.py, tiny.en,
# peak RSS of 1 min → 5 min): +26 MiB; +69 MiB with onnxruntime's per-shape memory plans on.
MARGIN_MIB = 32


def _speech(data_dir: Path, seconds: float, path: Path) -> Path:
    """librispeech-dev utterances back to back, without pauses: every window runs to its 28 s cap."""
    items = read_audio_manifest(data_dir / "librispeech-dev" / "transcripts.tsv", None)
    pieces, n = [], 0
    while n < seconds * RATE_HZ:
        for item in items:
            pieces.append(read_audio(item.audio_path))
            n += pieces[-1].size
    soundfile.write(path, np.concatenate(pieces)[: int(seconds * RATE_HZ)], RATE_HZ)
    return path


def _peak_rss_mib(wav: Path, folder: Path) -> tuple[float, str]:
    """(peak RSS of `lsg-edge asr wav` in MiB, its stdout)."""
    out, err = folder / f"{wav.stem}.out", folder / f"{wav.stem}.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(CLI + ["asr", str(wav), "--model", "tiny.en", "--threads", "1"],
                                   stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not the test process's
        process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, err.read_text()
    return usage.ru_maxrss / 1024, out.read_text()


def test_minutes_of_speech_peak_no_higher_than_the_first_minute(data_dir, tmp_path):
    first_minute, _ = _peak_rss_mib(_speech(data_dir, 60, tmp_path / "short.wav"), tmp_path)
    long_run, text = _peak_rss_mib(_speech(data_dir, 180, tmp_path / "long.wav"), tmp_path)
    assert len(text.split()) > 300, text  # it did transcribe three minutes of speech
    assert long_run <= first_minute + MARGIN_MIB, (first_minute, long_run)
