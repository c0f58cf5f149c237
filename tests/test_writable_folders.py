"""Folders lsg-edge must write into — the cache, `eval --output`, a converter's output — that cannot be
written: one line naming the folder and what to change, a non-zero exit, and no model read first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lsg_edge.errors import ModelError, OptionsError
from lsg_edge.folders import folder_problem, output_folder
from tests.helpers.read_only import can_mount_read_only, run_with_read_only, run_with_read_only_view
from tests.helpers.cli import CLI, one_line_error


@pytest.fixture()
def read_only_folder(tmp_path: Path) -> Path:
    if not can_mount_read_only():
        pytest.skip("no user namespaces here to mount a read-only file system")
    folder = tmp_path / "ro"
    folder.mkdir()
    return folder


@pytest.fixture()
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    t = np.arange(16_000) / 16_000
    soundfile.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16_000)
    return path


def _with_cache(cache: Path) -> dict[str, str]:
    return {**os.environ, "LSG_EDGE_CACHE": str(cache)}


# --- the pure check ----------------------------------------------------------------------------


def test_a_missing_folder_is_created_and_passes(tmp_path):
    assert folder_problem(tmp_path / "a" / "b") is None
    assert (tmp_path / "a" / "b").is_dir() and list((tmp_path / "a" / "b").iterdir()) == []  # no probe left


def test_a_file_in_the_path_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    assert folder_problem(tmp_path / "f") == f"a file, not a folder: {tmp_path / 'f'}"
    assert folder_problem(tmp_path / "f" / "sub") == f"a file, not a folder: {tmp_path / 'f'}"
    with pytest.raises(OptionsError, match=r"^--output .*/f/sub: cannot write there \(a file, not a folder: .*/f\)$"):
        output_folder(tmp_path / "f" / "sub")


def test_a_cache_that_is_a_file_is_a_model_error(tmp_path, monkeypatch):
    from lsg_edge.assets import assemble_once

    (tmp_path / "cache").write_text("x")
    monkeypatch.setenv("LSG_EDGE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="set LSG_EDGE_CACHE to a writable folder"):
        assemble_once(tmp_path / "cache" / "models" / "m.bin", lambda partial: partial.write_bytes(b"m"), "m")


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["translate", "asr"])
def test_a_cache_that_is_a_file_is_one_line(tmp_path, wav, command):
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    args = ["translate", "--stdin"] if command == "translate" else ["asr", str(wav), "--model", "tiny.en"]
    result = subprocess.run(CLI + args, input=b"Hallo Welt.\n", capture_output=True, timeout=120,
                            env=_with_cache(cache))
    assert result.returncode == 2
    assert one_line_error(result) == (f"lsg-edge: error: cannot write to the lsg-edge cache {cache} "
                                 f"(a file, not a folder: {cache}); set LSG_EDGE_CACHE to a writable folder")
    assert cache.read_text() == "not a folder"


@pytest.mark.parametrize("command", ["translate", "asr"])
def test_a_read_only_empty_cache_is_one_line(read_only_folder, wav, command):
    args = ["translate", "--stdin"] if command == "translate" else ["asr", str(wav), "--model", "tiny.en"]
    result = run_with_read_only(read_only_folder, CLI + args, input=b"Hallo Welt.\n", env=_with_cache(read_only_folder))
    assert result.returncode == 2
    assert one_line_error(result) == (f"lsg-edge: error: cannot write to the lsg-edge cache {read_only_folder} "
                                 "(Read-only file system); set LSG_EDGE_CACHE to a writable folder")


def test_eval_output_in_a_read_only_folder_is_one_line(read_only_folder, tmp_path):
    source, reference = tmp_path / "de.txt", tmp_path / "en.txt"
    source.write_text("Hallo Welt .\n")
    reference.write_text("Hello world .\n")
    output = read_only_folder / "out"
    # A cache the run cannot use either: the output is checked before any model is looked for.
    result = run_with_read_only(read_only_folder, CLI + ["eval", "--source", source, "--reference", reference,
                                                         "--output", output], env=_with_cache(read_only_folder))
    assert result.returncode == 2
    assert one_line_error(result) == f"lsg-edge: error: --output {output}: cannot write there (Read-only file system)"


def test_eval_output_under_a_file_is_one_line(tmp_path):
    (tmp_path / "taken").write_text("x")
    output = tmp_path / "taken" / "out"
    result = subprocess.run(CLI + ["eval", "--audio-manifest", tmp_path / "none.tsv", "--output", output],
                            capture_output=True, timeout=120)
    assert result.returncode == 2
    assert one_line_error(result) == (f"lsg-edge: error: --output {tmp_path / 'taken' / 'out'}: cannot write there "
                                 f"(a file, not a folder: {tmp_path / 'taken'})")


def test_quantize_checks_the_destination_before_reading_the_input(read_only_folder, tmp_path):
    # The input is not even a GGUF: reading it first would have said so instead.
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    result = run_with_read_only(read_only_folder, CLI + ["convert", "quantize", junk, read_only_folder / "q.gguf"])
    assert result.returncode == 2
    assert one_line_error(result) == f"lsg-edge: error: output folder is not writable: {read_only_folder}"


def test_train_lora_checks_its_output_folder_first(tmp_path):
    (tmp_path / "taken").write_text("x")
    (tmp_path / "data").mkdir()
    base = tmp_path / "base.gguf"
    base.write_bytes(b"never read")
    out = tmp_path / "taken" / "adapter"
    result = subprocess.run(CLI + ["convert", "train-lora", "--base", base, "--data", tmp_path / "data", "--out", out],
                            capture_output=True, timeout=120)
    assert result.returncode == 2
    expected = f"lsg-edge: error: --out {out}: cannot write there (a file, not a folder: {tmp_path / 'taken'})"
    assert one_line_error(result) == expected


def test_a_read_only_cache_that_holds_the_models_translates(default_gguf, read_only_folder):
    # A cache shared read-only (a system image, another user's) is fine once it holds the models:
    # nothing is written unless something must be built.
    cache = default_gguf.parent.parent
    result = run_with_read_only_view(cache, read_only_folder, CLI + ["translate", "--stdin", "--threads", "1"],
                                     input=b"Guten Morgen .\n", env=_with_cache(read_only_folder))
    assert result.returncode == 0, result.stderr
    assert "morning" in result.stdout.decode().lower()
