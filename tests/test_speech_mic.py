"""`lsg-edge asr --mic` through the real PortAudio and ALSA, with a capture device that plays a file.

No sound card is needed: an ALSA `file` plugin (in a private ~/.asoundrc) serves the samples of a
LibriSpeech utterance as the default capture device, at 44.1 kHz — a rate Whisper does not take,
so the resampling path runs too. The CLI is stopped with SIGINT, as a user stops it with Ctrl-C.

That device is not paced: over a `null` slave it delivers thousands of seconds of audio a second.
To the CLI it is a microphone on a machine infinitely far behind, so `MicrophoneStream` hands the
session its whole backlog and the session catches up (`speech.session`): the utterance is decided
on in one or two pushes, not segment by segment. What a real-time source sees — commits while the
speech goes on — is pinned where the clock can be controlled (`paced`, the session's push tests).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from lsg_edge.speech.audio_io import read_audio
from lsg_edge.evaluation.scoring import word_error_rate
from tests.helpers.interrupt import default_sigint

REFERENCE = "TO SAY UNTO VIRGILIUS NOT A DRACHM OF BLOOD REMAINS IN ME THAT DOES NOT TREMBLE I KNOW THE TRACES OF THE ANCIENT FLAME"
DEVICE_RATE_HZ = 44_100


def _portaudio_loads() -> bool:
    result = subprocess.run([sys.executable, "-c", "import sounddevice"], capture_output=True)
    return result.returncode == 0


pytestmark = [
    pytest.mark.speech,
    pytest.mark.skipif(
        not _portaudio_loads(), reason="the PortAudio shared library is not installed (apt install libportaudio2)"
    ),
]


@pytest.fixture()
def file_microphone(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """Environment whose default ALSA capture device reads dev-clean-2-0001 (float32, 44.1 kHz)."""
    audio = read_audio(data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0001.wav")
    samples = soxr.resample(audio, 16_000, DEVICE_RATE_HZ).astype("<f4")
    # A second of silence after the speech lets the voice activity detector close the window.
    samples = np.concatenate([samples, np.zeros(DEVICE_RATE_HZ, "<f4")])
    raw = tmp_path / "capture.raw"
    samples.tofile(raw)
    (tmp_path / ".asoundrc").write_text(
        'pcm.!default {\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n'
        f'  infile "{raw}"\n  format "raw"\n}}\n'
    )
    return {**os.environ, "HOME": str(tmp_path)}


def test_mic_captions_are_committed_live_and_ctrl_c_stops_cleanly(file_microphone: dict[str, str]) -> None:
    command = [sys.executable, "-c", "from lsg_edge.cli import main; main()", "asr", "--mic", "--json",
               "--model", "tiny.en"]
    process = subprocess.Popen(command, env=file_microphone, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    # Lines are read on a thread so that a capture that hangs fails the test instead of blocking it.
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    events = []
    deadline = time.monotonic() + 240
    while not (events and events[-1]["sentence_end"]):
        try:
            events.append(json.loads(lines.get(timeout=max(0.1, deadline - time.monotonic()))))
        except queue.Empty:
            break
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    finally:
        process.kill()
    stderr = process.stderr.read()
    time.sleep(0.2)  # let the reader thread drain what the process wrote before exiting
    while not lines.empty():
        events.append(json.loads(lines.get()))

    assert process.returncode == 0, stderr  # Ctrl-C is how a live session ends
    assert "Traceback" not in stderr
    assert events and all(e["audio_ms"] <= 12_000 for e in events), "commits come from the speech and its pause"
    assert any(e["sentence_end"] for e in events), "the pause after the speech should close the window"
    heard = " ".join(e["text"] for e in events)
    assert word_error_rate([REFERENCE], [heard]) < 25.0, heard


def test_mic_translated_live_and_ctrl_c_keeps_both_streams(file_microphone: dict[str, str]) -> None:
    command = [sys.executable, "-c", "from lsg_edge.cli import main; main()", "asr", "--mic", "--json",
               "--model", "tiny.en", "--translate-to", "de", "--threads", "2"]
    process = subprocess.Popen(command, env=file_microphone, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    events = []
    deadline = time.monotonic() + 300
    while not any(e["stream"] == "target" for e in events):
        try:
            events.append(json.loads(lines.get(timeout=max(0.1, deadline - time.monotonic()))))
        except queue.Empty:
            break
    process.send_signal(signal.SIGINT)  # mid-stream: the words heard so far are still committed
    try:
        process.wait(timeout=300)
    finally:
        process.kill()
    stderr = process.stderr.read()
    time.sleep(0.2)
    while not lines.empty():
        events.append(json.loads(lines.get()))

    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    source = " ".join(e["text"] for e in events if e["stream"] == "source")
    target = [e for e in events if e["stream"] == "target"]
    assert "virgilius" in source.lower() or "blood" in source.lower(), source
    assert target and target[-1]["sentence_end"], "Ctrl-C finishes the open sentence of the translation"
    assert " ".join(e["text"] for e in target).split() != source.split()
