"""Whisper's no-speech test: tones and beeps pass the VAD, and must not become captions."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from lsg_edge.errors import OptionsError
from lsg_edge.speech.audio_io import file_blocks, read_audio
from lsg_edge.speech.engine import EncoderOptions, SpeechEngine
from lsg_edge.speech.no_speech import NoSpeechOptions, holds_no_speech, mean_log_probability, no_speech_probability
from lsg_edge.speech.session import AsrSessionOptions
from lsg_edge.speech.vad import EnergyVad
from tests.helpers.markers import SPEECH, loads

RATE = 16_000


def _tone(hz: float, seconds: float = 3.0, on_off_s: float | None = None) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    signal = 0.3 * np.sin(2 * np.pi * hz * t)
    if on_off_s is not None:
        signal *= (t % (2 * on_off_s)) < on_off_s
    return signal.astype(np.float32)


def test_the_rule_needs_both_the_no_speech_probability_and_an_unlikely_decode() -> None:
    options = NoSpeechOptions()
    assert holds_no_speech(0.8, -1.9, options)
    assert not holds_no_speech(0.8, -0.3, options)  # the model is unsure, but decoded speech fluently
    assert not holds_no_speech(0.3, -1.9, options)  # a mumbled word is still speech
    assert not holds_no_speech(0.99, -5.0, NoSpeechOptions(threshold=1.0))  # 1 turns the test off
    with pytest.raises(OptionsError, match="--no-speech-threshold"):
        NoSpeechOptions(threshold=1.5)


def test_probabilities_come_from_a_softmax_over_the_row() -> None:
    row = np.log(np.array([0.1, 0.2, 0.7], dtype=np.float32)) + 3.0  # logits up to a constant
    assert no_speech_probability(row, 2) == pytest.approx(0.7, rel=1e-5)
    rows = np.stack([row, row])
    assert mean_log_probability(rows, [2, 0]) == pytest.approx((np.log(0.7) + np.log(0.1)) / 2, rel=1e-5)
    banned = row.copy()
    banned[1] = -np.inf  # the token filter's bans leave the other tokens' shares
    assert mean_log_probability(banned[None, :], [2]) == pytest.approx(np.log(0.7 / 0.8), rel=1e-5)
    assert mean_log_probability(rows, []) == 0.0


@pytest.fixture(scope="module")
@loads(SPEECH)
def engine() -> SpeechEngine:
    return SpeechEngine.load("tiny.en", encoder_options=EncoderOptions(window="tight"))


def _captions(engine: SpeechEngine, audio: np.ndarray, threshold: float = NoSpeechOptions.threshold) -> list[str]:
    with engine.create_session(AsrSessionOptions(no_speech=NoSpeechOptions(threshold=threshold))) as session:
        commits = [c for block in file_blocks(audio) for c in session.push(block)] + session.finish()
    return [c.text for c in commits if c.text]


@pytest.mark.parametrize("sound", [_tone(440), _tone(200), _tone(880, on_off_s=0.25)], ids=["440Hz", "200Hz", "beeps"])
def test_tones_pass_the_vad_and_are_not_captioned(engine: SpeechEngine, sound: np.ndarray) -> None:
    # Loud and far from flat: the VAD takes at least its onset for speech, which opens a window.
    assert EnergyVad().push(sound).any()
    assert _captions(engine, sound, threshold=1.0), "without the test Whisper writes words for the tone"
    assert _captions(engine, sound) == []


def test_speech_is_captioned_as_without_the_test(engine: SpeechEngine, data_dir: Path) -> None:
    audio = read_audio(data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0003.wav")
    with_test, without = _captions(engine, audio), _captions(engine, audio, threshold=1.0)
    assert with_test == without and "bishop" in " ".join(with_test).lower()


def test_speech_after_a_tone_in_the_same_window_is_captioned(engine: SpeechEngine, data_dir: Path) -> None:
    # The test holds a window only until its first word: speech that follows a beep still comes out.
    speech = read_audio(data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0002.wav")  # "there was not a single note of gloom"
    text = " ".join(_captions(engine, np.concatenate([_tone(440, seconds=1.0), speech]))).lower()
    assert "gloom" in text


def test_the_cli_writes_nothing_for_a_tone(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(RATE)
        f.writeframes((_tone(440) * 32767).astype(np.int16).tobytes())
    command = [sys.executable, "-m", "lsg_edge.cli", "asr", str(path), "--model", "tiny.en"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
    refused = subprocess.run([*command, "--no-speech-threshold", "2"], capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "--no-speech-threshold must be a probability" in refused.stderr
