"""`--device` is the compute device in every command; the microphone is `--mic-device`, and the
old spellings keep working for one release with a warning."""

from __future__ import annotations

import pytest

from lsg_edge.errors import InputError
from lsg_edge.speech.cli import _devices


def test_device_is_the_compute_device() -> None:
    assert _devices("cpu", None, None) == ("cpu", None)
    assert _devices("auto", None, "2") == ("auto", "2")


def test_old_spellings_warn_and_still_work() -> None:
    with pytest.warns(DeprecationWarning, match="--mic-device"):
        assert _devices("USB Audio", None, None) == ("auto", "USB Audio")
    with pytest.warns(DeprecationWarning, match="--compute-device"):
        assert _devices("auto", "cuda", None) == ("cuda", None)


def test_an_unknown_device_beside_a_microphone_is_an_error() -> None:
    with pytest.raises(InputError, match="--device must be one of"):
        _devices("USB Audio", None, "2")


def _cli(*args: str):
    import subprocess
    import sys

    command = [sys.executable, "-c", "from lsg_edge.cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_asr_with_an_audio_llm_manifest_honours_device(tmp_path) -> None:
    """`--device cuda` on a build without CUDA is refused, not silently run on the CPU."""
    import numpy as np
    import soundfile as sf

    from tests.helpers.tiny_audio_llm import write_tiny_audio_llm

    manifest, *_ = write_tiny_audio_llm(tmp_path / "model", arch="llama")
    wav = tmp_path / "tone.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(16_000) / 10)).astype(np.float32), 16_000)
    result = _cli("asr", str(wav), "--manifest", str(manifest), "--device", "cuda", "--threads", "1")
    assert result.returncode == 3, result.stderr
    assert "cuda" in result.stderr.lower() and result.stderr.count("\n") == 1


def test_speech_eval_honours_device_and_words_per_segment(tmp_path) -> None:
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "tone.wav", (0.1 * np.sin(np.arange(16_000) / 10)).astype(np.float32), 16_000)
    manifest = tmp_path / "audio.tsv"
    manifest.write_text("case_id\taudio_path\tduration_s\ttranscript\nx\ttone.wav\t1.0\thello\n")
    result = _cli("eval", "--audio-manifest", str(manifest), "--device", "cuda", "--output", str(tmp_path / "out"))
    assert result.returncode == 3, result.stderr
    result = _cli("eval", "--source", str(manifest), "--reference", str(manifest), "--words-per-segment", "2",
                  "--output", str(tmp_path / "out2"))
    assert result.returncode == 2 and "--words-per-segment is for --audio-manifest" in result.stderr


def test_one_table_turns_policy_flags_into_options() -> None:
    from lsg_edge.policy.options import POLICY_FLAGS, SPEECH_POLICY_DEFAULTS, policy_from_flags

    options = policy_from_flags(SPEECH_POLICY_DEFAULTS, policy="wait-k", k=4, words_per_segment=1, alpha=None,
                                threads=2)
    assert (options.name, options.k, options.words_per_element) == ("wait-k", 4, 1)
    assert options.alpha == SPEECH_POLICY_DEFAULTS.alpha
    assert set(POLICY_FLAGS.values()) <= set(type(options).__dataclass_fields__)
