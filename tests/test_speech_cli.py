"""`lsg-edge asr` end to end on shared WAV files: streamed output, JSON events, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.speech  # `lsg-edge asr` runs with a Whisper model


@pytest.fixture(scope="module")
def wav(data_dir: Path) -> Path:
    return data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0003.wav"  # "in fact the ringleader john rex …"


@pytest.fixture(scope="module")
def french(data_dir: Path) -> Path:
    return data_dir / "fr-en-speech-samples" / "audio" / "common_voice_fr_17767732.wav"


def _asr(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from lsg_edge.cli import main; main()", "asr", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_file_to_text(wav) -> None:
    result = _asr(str(wav), "--model", "tiny.en")
    assert result.returncode == 0, result.stderr
    text = result.stdout.lower()
    assert "confession" in text and "bishop" in text


def test_file_to_json_events(wav) -> None:
    result = _asr(str(wav), "--model", "tiny.en", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) >= 2, "words should be committed while the audio streams, not all at the end"
    assert {"text", "source_read", "elapsed_ms"} <= set(events[0])
    times = [e["source_read"] for e in events]
    assert times == sorted(times) and times[0] < times[-1]
    assert events[-1]["sentence_end"]


def test_translate_french_to_english(french) -> None:
    result = _asr(str(french), "--task", "translate", "--language", "fr")
    assert result.returncode == 0, result.stderr
    assert "national" in result.stdout.lower()


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lsg-edge: error: "), result.stderr
    return lines[0]


def test_unreadable_audio_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    assert "cannot read audio" in _one_line_error(_asr(str(bad), "--model", "tiny.en"))


def test_missing_model_is_one_line(wav, tmp_path: Path) -> None:
    assert "--model" in _one_line_error(_asr(str(wav), "--model", str(tmp_path / "nope")))


def test_mic_without_device_is_one_line() -> None:
    # CI machines have no sound card (and often no PortAudio): either way, one line, no traceback.
    message = _one_line_error(_asr("--mic", "--model", "tiny.en"))
    assert "PortAudio" in message or "input device" in message


def test_file_and_mic_together_is_refused(wav) -> None:
    assert "either" in _one_line_error(_asr(str(wav), "--mic"))


def test_compute_device_missing_from_onnxruntime_is_one_line(wav) -> None:
    # The CPU wheel of onnxruntime has no CUDA provider: say so rather than run on the CPU silently.
    assert "cuda" in _one_line_error(_asr(str(wav), "--model", "tiny.en", "--device", "cuda")).lower()


def test_sigterm_commits_what_was_heard_and_exits_143(data_dir) -> None:
    # Paced as if live, so the signal arrives mid-stream: what was committed stays, the words heard
    # since are committed before the exit, the line is closed, and the exit code says SIGTERM.
    wav = data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0038.wav"  # 20.7 s
    command = [sys.executable, "-c", "from lsg_edge.cli import main; main()", "asr", str(wav), "--model", "tiny.en",
               "--realtime", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.set_blocking(process.stdout.fileno(), False)
    first, deadline = b"", time.monotonic() + 120
    while not first.strip() and time.monotonic() < deadline:
        first += process.stdout.read() or b""
        time.sleep(0.05)
    assert first.strip(), "no word was committed before the deadline"
    process.send_signal(signal.SIGTERM)
    rest, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert b"Traceback" not in err
    text = first + rest
    assert text.endswith(b"\n") and text.count(b"\n") == 1  # the open line closed, once
    assert len(text.split()) < 30, text  # stopped early: the whole utterance has 59 words
