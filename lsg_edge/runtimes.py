"""The one place lsg-edge imports onnxruntime, and why it must come before llama.cpp.

With llama.cpp built for CUDA, a process that loads llama.cpp first and onnxruntime second dies
with SIGSEGV and no Python traceback (`python -c "import llama_cpp, onnxruntime"`; verified on an
NVIDIA H200 with CUDA 13 and onnxruntime 1.30), while `import onnxruntime, llama_cpp` works. Hence:

- the text path (`translate`, `eval` without audio, `TranslationEngine`) never imports onnxruntime;
- a process that needs both (`lsg-edge info`, audio-LLMs, the test suite) calls `import_onnxruntime()`
  before anything loads llama.cpp;
- asking for onnxruntime after a CUDA llama.cpp is loaded is a one-line error, not a segfault.
"""

from __future__ import annotations

import sys
from types import ModuleType

from .errors import DeviceError

__all__ = ["import_onnxruntime"]


def import_onnxruntime() -> ModuleType:
    """onnxruntime, imported here and nowhere else (see the module docstring for the order)."""
    loaded = sys.modules.get("onnxruntime")
    if loaded is not None:
        return loaded
    if "llama_cpp" in sys.modules and _llama_has_cuda():
        raise DeviceError(
            "onnxruntime was asked for after llama.cpp's CUDA build was loaded, an order that crashes "
            "the process; import onnxruntime first (lsg_edge.runtimes.import_onnxruntime())"
        )
    try:
        import onnxruntime
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise DeviceError("onnxruntime is not installed: pip install onnxruntime") from e
    return onnxruntime


def _llama_has_cuda() -> bool:
    from .backends.llama import llama_build

    return "CUDA" in llama_build().backends
