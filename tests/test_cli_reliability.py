"""The CLI under signals, closed pipes, hostile input and bad flags: committed text kept, no
temporary files left, one-line messages that name the flag."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tests.helpers.cli import CLI, one_line_error, run_cli
from tests.helpers.read_only import can_mount_read_only, run_with_read_only
from tests.helpers.tiny_models import make_hf_weights, tiny_spec, write_tiny_gguf

SENTENCE = "Die Polizei sucht nach Zeugen des Unfalls auf der Autobahn."


def _read_until(process, predicate, timeout_s: float = 120) -> bytes:
    """stdout read so far, once `predicate(bytes)` holds (or the deadline passes)."""
    os.set_blocking(process.stdout.fileno(), False)
    got, deadline = b"", time.monotonic() + timeout_s
    while not predicate(got) and time.monotonic() < deadline:
        got += process.stdout.read() or b""
        time.sleep(0.05)
    return got


def test_sigterm_keeps_committed_text_and_exits_143(default_gguf):
    process = subprocess.Popen(CLI + ["translate", "--stdin", "--threads", "1", "--policy", "wait-k", "--k", "1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write(b"Die Polizei sucht nach Zeugen ")  # stdin stays open: the sentence is unfinished
    process.stdin.flush()
    first = _read_until(process, lambda b: bool(b.strip()))  # a committed word
    process.send_signal(signal.SIGTERM)
    rest, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert first.strip() and (first + rest).endswith(b"\n")  # written before the signal, line closed
    assert b"Traceback" not in err


@pytest.fixture(scope="module")
def small_f32(tmp_path_factory) -> Path:
    """A small F32 llama GGUF (random weights): quick to quantize."""
    spec = tiny_spec("llama", wide=True)
    return write_tiny_gguf(spec, make_hf_weights(spec), tmp_path_factory.mktemp("small") / "small-f32.gguf")


@pytest.fixture(scope="module")
def larger_f32(tmp_path_factory) -> Path:
    """A 60M-parameter F32 llama GGUF: quantizing it takes long enough to be interrupted."""
    spec = replace(tiny_spec("llama", wide=True), d_model=768, d_ff=3072, n_layers=6, n_heads=12, n_kv_heads=4)
    return write_tiny_gguf(spec, make_hf_weights(spec), tmp_path_factory.mktemp("larger") / "larger-f32.gguf")


def test_sigterm_during_quantize_leaves_no_partial_file(larger_f32, tmp_path):
    process = subprocess.Popen(
        CLI + ["convert", "quantize", str(larger_f32), str(tmp_path / "q.gguf"), "--type", "Q4_K_M",
               "--threads", "1", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".partial") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "quantizing finished before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert list(tmp_path.iterdir()) == []


def test_closed_stdout_exits_0(default_gguf):
    shell = (f"{' '.join(CLI)} translate --stdin --threads 1 --policy wait-k | head -c 3; "
             "echo \"status=${PIPESTATUS[0]}\" >&2")
    text = (SENTENCE + "\n") * 3
    result = subprocess.run(["bash", "-c", shell], input=text.encode(), capture_output=True, timeout=300)
    assert len(result.stdout) == 3 and result.stdout[:1].isupper()  # the first sentence's start
    assert result.stderr.decode().strip().endswith("status=0"), result.stderr


def test_terminal_escapes_in_the_input_never_reach_stdout(default_gguf):
    result = run_cli(["translate", "--stdin", "--threads", "1"], b"\x1b]0;pwned\x07 Guten Morgen \x1b[2J.\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert not any(b < 0x20 and b not in b"\t\n" for b in result.stdout), result.stdout


@pytest.mark.parametrize(("flags", "expected"), [
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    (["--threads", "-3"], "--threads must be at least 1, got -3"),
    (["--n-ctx", "10"], "--n-ctx must be at least 64 tokens, got 10"),
])
def test_bad_runtime_flags_are_named(flags, expected):
    result = run_cli(["translate", "--stdin", *flags], b"Hallo")
    assert result.returncode == 2
    assert one_line_error(result) == f"lsg-edge: error: {expected}"


def test_a_folder_as_model_is_one_line(tmp_path):
    result = run_cli(["translate", "--stdin", "--model", tmp_path], b"Hallo")
    assert result.returncode == 2
    assert one_line_error(result) == f"lsg-edge: error: --model {tmp_path} is a folder; give a GGUF file"


def test_quantizing_a_quantized_model_names_the_flag(small_f32, tmp_path):
    q8 = tmp_path / "q8.gguf"
    assert run_cli(["convert", "quantize", small_f32, q8, "--type", "Q8_0"]).returncode == 0
    # stderr is a pipe here, not a terminal: no progress bar shares the message's line.
    result = run_cli(["convert", "quantize", q8, tmp_path / "q4.gguf", "--type", "Q4_0"])
    assert result.returncode == 2
    line = one_line_error(result)
    assert "already quantized (Q8_0)" in line and "--allow-requantize" in line and "\r" not in result.stderr.decode()
    assert list(tmp_path.iterdir()) == [q8]


def test_quantize_into_a_read_only_folder_is_one_line(small_f32, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if not can_mount_read_only():
        pytest.skip("no user namespaces here to mount a read-only file system")
    result = run_with_read_only(folder, CLI + ["convert", "quantize", small_f32, folder / "q.gguf", "--type", "Q8_0"])
    assert result.returncode == 2
    assert one_line_error(result) == f"lsg-edge: error: output folder is not writable: {folder}"


def test_a_cache_of_links_to_another_cache_translates(default_gguf, tmp_path):
    # Hard links always worked; symbolic links to another cache's models were refused as if the
    # manifest had named a path outside the cache.
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    for path in default_gguf.parent.iterdir():
        if path.is_file():
            (models / path.name).symlink_to(path)
    result = run_cli(["translate", "--stdin", "--threads", "1"], (SENTENCE + "\n").encode(),
                     env={**os.environ, "LSG_EDGE_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "police" in result.stdout.decode().lower()
    assert b"assembling" not in result.stderr and b"building" not in result.stderr  # nothing built again
    assert all(p.is_symlink() for p in models.iterdir())
