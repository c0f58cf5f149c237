"""`lsg-edge info` and `--device` through the real command line (subprocesses, no mocks)."""

from __future__ import annotations

import json
import subprocess

import onnxruntime
from tests.helpers.cli import CLI


def run(args: list[str], stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, input=stdin, capture_output=True, timeout=timeout)


def test_info_reports_versions_devices_and_threads():
    result = run(["info"])
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "llama-cpp-python 0.3.36" in out
    assert f"onnxruntime {onnxruntime.__version__}" in out
    for part in ("LLM", "audio encoder", "audio decoder"):
        assert part in out
    assert result.stderr == b""


def test_info_json_is_one_object_with_every_part():
    result = run(["info", "--json", "--threads", "2"])
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    parts = {p["part"]: p for p in report["parts"]}
    assert parts["LLM"]["device"] == "cpu" and parts["LLM"]["n_gpu_layers"] == 0
    assert parts["audio encoder"]["providers"] == ["CPUExecutionProvider"]
    assert all(p["threads"] == 2 for p in report["parts"])
    assert report["llama_cpp"]["package"] == "llama-cpp-python 0.3.36"
    assert report["onnxruntime"]["package"].endswith(onnxruntime.__version__)


def test_info_on_an_unavailable_device_reports_then_fails():
    result = run(["info", "--device", "cuda"])
    assert result.returncode == 3  # DeviceError
    assert "unavailable" in result.stdout.decode()
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err and "-DGGML_CUDA=on" in err


def test_translate_on_cuda_fails_in_one_line_without_a_traceback():
    result = run(["translate", "--stdin", "--device", "cuda"], stdin=b"Hallo Welt .\n")
    assert result.returncode == 3
    assert result.stdout == b""
    err = result.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("lsg-edge: error: --device cuda")
    assert "Traceback" not in err and "CMAKE_ARGS" in err


def test_translate_cpu_contradiction_is_an_option_error():
    result = run(["translate", "--stdin", "--device", "cpu", "--n-gpu-layers", "4"], stdin=b"Hallo .\n")
    assert result.returncode == 2
    assert "--device cpu contradicts --n-gpu-layers 4" in result.stderr.decode()
