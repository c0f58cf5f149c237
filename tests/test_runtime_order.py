"""onnxruntime never loads on the text path, and loads before llama.cpp wherever both are needed.

A CUDA build of llama.cpp loaded before onnxruntime crashes the process (lsg_edge/runtimes.py). The
CPU build here does not crash in either order, so these tests pin the rule itself: which modules a
real run loads, and in which order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]


def _run(code: str, stdin: str = "", timeout: int = 300, cwd: Path | None = None) -> dict:
    """Run `code` in a fresh interpreter (in `cwd`, whose packages it can import); it prints one
    JSON line last."""
    result = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, text=True, timeout=timeout,
                            cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


_LOADED = """
import json, sys
loaded = list(sys.modules)
print(json.dumps({"onnxruntime": "onnxruntime" in loaded, "llama_cpp": "llama_cpp" in loaded,
                  "order": [m for m in loaded if m in ("onnxruntime", "llama_cpp")]}))
"""


@pytest.mark.model  # a child process loads the default model
def test_a_real_translate_run_never_loads_onnxruntime():
    code = (
        "import sys\n"
        "from lsg_edge.cli import main\n"
        "sys.argv = ['lsg-edge', 'translate', '--stdin', '--threads', '1']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "sys.stdout.flush()\n" + _LOADED
    )
    loaded = _run(code, stdin="Die Polizei sucht nach Zeugen.\n")
    assert loaded["llama_cpp"], "the run did not reach llama.cpp"
    assert not loaded["onnxruntime"]


@pytest.mark.model  # a child process loads the default model
def test_a_text_eval_and_the_python_api_never_load_onnxruntime(tmp_path, wmt_pairs):
    source, reference = tmp_path / "de.txt", tmp_path / "en.txt"
    source.write_text("\n".join(de for de, _ in wmt_pairs[:2]) + "\n", encoding="utf-8")
    reference.write_text("\n".join(en for _, en in wmt_pairs[:2]) + "\n", encoding="utf-8")
    code = (
        "import sys\n"
        "from lsg_edge import TranslationEngine\n"
        "with TranslationEngine.load(n_threads=1) as engine:\n"
        "    session = engine.create_session('de', 'en')\n"
        "    assert list(session.push('Hallo')) is not None\n"
        "from lsg_edge.cli import main\n"
        f"sys.argv = ['lsg-edge', 'eval', '--source', {str(source)!r}, '--reference', {str(reference)!r}, "
        f"'--output', {str(tmp_path / 'out')!r}, '--no-progress', '--threads', '1']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "sys.stdout.flush()\n" + _LOADED
    )
    loaded = _run(code)
    assert (tmp_path / "out" / "scores.json").exists()
    assert loaded["llama_cpp"] and not loaded["onnxruntime"]


@pytest.mark.parametrize("first, second", [
    ("lsg_edge.backends.llama", "lsg_edge.speech.onnx_runtime"),
    ("lsg_edge.speech.onnx_runtime", "lsg_edge.backends.llama"),
])
def test_both_import_orders_load_onnxruntime_first(first, second):
    # The project's modules in either order, then a command that needs both runtimes.
    code = (
        f"import {first}, {second}\n"
        "import lsg_edge.info\n"
        "report = lsg_edge.info.runtime_report('auto')\n"
        "assert report['onnxruntime']['providers'] and report['llama_cpp']['backends']\n" + _LOADED
    )
    loaded = _run(code)
    assert loaded["order"] == ["onnxruntime", "llama_cpp"]


def test_onnxruntime_after_a_cuda_llama_cpp_is_an_error_not_a_crash():
    # The CUDA build is simulated (there is none here); the refusal must come before the import.
    code = (
        "import lsg_edge.runtimes as runtimes\n"
        "from lsg_edge.errors import DeviceError\n"
        "import llama_cpp\n"
        "runtimes._llama_has_cuda = lambda: True\n"
        "try:\n    runtimes.import_onnxruntime()\n    raise SystemExit('no error')\n"
        "except DeviceError as e:\n    assert 'import onnxruntime first' in str(e)\n" + _LOADED
    )
    loaded = _run(code)
    assert not loaded["onnxruntime"]


def test_an_audio_llm_engine_loads_onnxruntime_before_llama_cpp(tmp_path):
    # Both runtimes in one engine (an ONNX encoder and a GGUF LLM): a tiny random pair.
    code = (
        "import lsg_edge.backends.llama\n"  # the LLM side's module first, on purpose
        "from pathlib import Path\n"
        "from tests.helpers.tiny_audio_llm import write_tiny_audio_llm\n"
        "from lsg_edge.audio_llm import AudioLlmEngine\n"
        f"manifest = write_tiny_audio_llm(Path({str(tmp_path)!r}), n_frames=0)[0]\n"
        "with AudioLlmEngine.load(manifest, n_threads=1) as engine:\n"
        "    assert engine.llm.n_embd > 0\n" + _LOADED
    )
    loaded = _run(code, cwd=REPO)
    assert loaded["order"] == ["onnxruntime", "llama_cpp"]
