"""`lsg-edge asr --translate-to`: speech translated in one process from the command line; subtitles;
drafts; interruption; one-line errors for flags that cannot work."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt

from lsg_edge.speech.audio_io import read_audio

from tests.helpers.interrupt import default_sigint

CLI = [sys.executable, "-c", "from lsg_edge.cli import main; main()", "asr"]


@pytest.fixture(scope="module")
def french(data_dir: Path) -> Path:
    return data_dir / "fr-en-speech-samples" / "audio" / "common_voice_fr_17767732.wav"  # "… l'assemblée nationale"


@pytest.fixture(scope="module")
def english(data_dir: Path) -> Path:
    return data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0003.wav"  # "in fact the ringleader john rex …"


def _asr(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout)


def _one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lsg-edge: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("args, needles", [
    (["--translate-to", "xx"], ["--translate-to", "'xx'"]),
    (["--translate-to", "en"], ["--translate-to", "spoken language"]),
    (["--language", "fr", "--translate-to", "fr"], ["--translate-to", "'fr'"]),
    (["--language", "fr", "--task", "translate", "--translate-to", "de"], ["--task"]),
    (["--drafts"], ["--json"]),
    (["--srt", "/nonexistent-dir/x.srt"], ["--srt", "cannot write"]),
    (["--translate-to", "de", "--vtt", "/nonexistent-dir/x.vtt"], ["--vtt", "cannot write"]),
])
def test_bad_flags_are_one_line_errors(english, args, needles) -> None:
    _one_line_error(_asr(str(english), *args, timeout=120), *needles)


@pytest.mark.speech
def test_french_speech_to_english_text_and_subtitles(french, tmp_path) -> None:
    srt_path, vtt_path = tmp_path / "out.srt", tmp_path / "out.vtt"
    result = _asr(str(french), "--language", "fr", "--translate-to", "en", "--json", "--drafts",
                  "--srt", str(srt_path), "--vtt", str(vtt_path), "--threads", "2")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    commits = [e for e in events if e.get("type") != "draft"]
    drafts = [e for e in events if e.get("type") == "draft"]
    source = [e for e in commits if e["stream"] == "source"]
    target = [e for e in commits if e["stream"] == "target"]
    assert source and target and drafts
    assert "nationale" in " ".join(e["text"] for e in source).lower()
    translation = " ".join(e["text"] for e in target if e["text"])
    assert "national" in translation.lower() or "assembly" in translation.lower(), translation
    assert all(e["audio_ms"] <= e["source_read"] for e in target)
    assert {d["stream"] for d in drafts} <= {"source", "target"}
    # The subtitles carry the translation, word for word, and parse with independent libraries.
    cues = list(srt.parse(srt_path.read_text(encoding="utf-8")))
    assert " ".join(c.content for c in cues).split() == translation.split()
    assert [c.text for c in webvtt.read(str(vtt_path))] == [c.content for c in cues]
    # Drafts are extra events only: without --drafts the same commits, and plain output is the
    # translation alone.
    plain = _asr(str(french), "--language", "fr", "--translate-to", "en", "--threads", "2")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.split() == translation.split()
    assert "\x1b" not in plain.stdout


@pytest.mark.speech
def test_sigterm_keeps_both_streams_and_leaves_valid_subtitles(data_dir, tmp_path) -> None:
    # Three utterances with pauses between them (~24 s), paced in real time: after the first
    # translated words there is always audio left to interrupt, however loaded the machine is.
    folder = data_dir / "librispeech-dev" / "audio"
    pause = np.zeros(16_000, np.float32)
    parts = [read_audio(folder / f"dev-clean-2-000{k}.wav") for k in (1, 3, 4)]
    audio = tmp_path / "talk.wav"
    sf.write(audio, np.concatenate([x for part in parts for x in (part, pause)]), 16_000)
    srt_path = tmp_path / "live.srt"
    process = subprocess.Popen(CLI + [str(audio), "--translate-to", "de", "--realtime", "--json", "--threads", "2",
                                      "--srt", str(srt_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    events = []
    deadline = time.monotonic() + 300
    while not any(e["stream"] == "target" for e in events) and time.monotonic() < deadline:
        try:
            events.append(json.loads(lines.get(timeout=1)))
        except queue.Empty:
            if process.poll() is not None:
                break
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=300)
    finally:
        process.kill()
    stderr = process.stderr.read()
    reader.join(timeout=5)
    while not lines.empty():
        events.append(json.loads(lines.get()))
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    target = [e for e in events if e["stream"] == "target"]
    assert target and target[-1]["sentence_end"], "the open sentence is finished and written before exiting"
    assert any(e["stream"] == "source" for e in events)
    cues = list(srt.parse(srt_path.read_text(encoding="utf-8")))
    assert " ".join(c.content for c in cues).split() == " ".join(e["text"] for e in target).split()


@pytest.mark.speech
def test_captions_subtitles_match_the_captions(english, tmp_path) -> None:
    srt_path = tmp_path / "captions.srt"
    result = _asr(str(english), "--model", "tiny.en", "--srt", str(srt_path))
    assert result.returncode == 0, result.stderr
    cues = list(srt.parse(srt_path.read_text(encoding="utf-8")))
    assert cues and " ".join(c.content for c in cues).split() == result.stdout.split()
    assert all(len(line) <= 42 for c in cues for line in c.content.split("\n"))


@pytest.mark.speech
def test_a_terminal_sees_the_draft_dimmed_and_a_pipe_does_not(english) -> None:
    import os
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(CLI + [str(english), "--model", "tiny.en"], stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=300)
    os.close(leader)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert process.returncode == 0
    assert "\x1b[2m" in screen, "a terminal shows the tentative words dimmed"
    piped = _asr(str(english), "--model", "tiny.en")
    assert "\x1b" not in piped.stdout
    # What stays on the terminal is the committed text: drop each dimmed draft (and the cursor
    # move after it), then the clear-to-end-of-line codes.
    import re

    plain = re.sub(r"( ?)\x1b\[2m.*?\x1b\[0m\x1b\[\d+D", "", screen).replace("\x1b[K", "")
    assert plain.split() == piped.stdout.split()
