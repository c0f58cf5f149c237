"""`lsg-edge convert` lists every conversion tool as a subcommand, each with working --help; the
Whisper → ONNX command writes a folder that `lsg-edge asr --model DIR` runs."""

from __future__ import annotations

import subprocess

import pytest
from tests.helpers.cli import CLI

SUBCOMMANDS = ("merge-lora", "lora-to-gguf", "quantize", "train-lora", "whisper-onnx", "export-audio-encoder")


def _run(*args, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout_s)


def test_convert_help_lists_every_tool():
    result = _run("convert", "--help")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:")[1].split()
    assert set(SUBCOMMANDS) <= set(commands), result.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_each_subcommand_has_help(command):
    result = _run("convert", command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.lower().startswith("usage:") and "Traceback" not in result.stderr
    assert f"convert {command}" in result.stdout.splitlines()[0]


def test_export_audio_encoder_without_a_checkpoint_is_one_line(tmp_path):
    result = _run("convert", "export-audio-encoder", tmp_path, tmp_path / "no-folder" / "enc.onnx")
    assert result.returncode == 2
    assert result.stderr.strip() == f"lsg-edge: error: output folder does not exist: {tmp_path / 'no-folder'}"


def test_whisper_onnx_refuses_an_unknown_source(tmp_path):
    result = _run("convert", "whisper-onnx", "no-such-model", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "lsg-edge: error: SOURCE 'no-such-model' is neither a folder nor a built-in model (base, tiny.en)")
    assert not (tmp_path / "out").exists()


@pytest.mark.speech
def test_whisper_onnx_output_runs_in_asr(tmp_path, data_dir):
    out = tmp_path / "tiny-onnx"
    result = _run("convert", "whisper-onnx", "tiny.en", out, timeout_s=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert {"encoder.onnx", "decoder.onnx", "vocabulary.txt"} <= {p.name for p in out.iterdir()}
    wav = data_dir / "librispeech-dev" / "audio" / "dev-clean-2-0003.wav"  # "in fact the ringleader john rex …"
    captions = _run("asr", wav, "--model", out, "--threads", "1", timeout_s=600)
    assert captions.returncode == 0, captions.stderr
    assert "ringleader" in captions.stdout.lower()
