"""Quantize a GGUF with llama.cpp's own quantizer (`llama_model_quantize` in llama-cpp-python).

This is the only module of `convert/` that imports `llama_cpp`. llama.cpp reports progress and
errors only through its log; while quantizing, its error lines are collected
(`lsg_edge.backends.llama_log`) so that a failure comes back as one line, and progress is shown by
watching the output file grow.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

from ..backends.llama_log import collected_llama_errors
from ..errors import ModelError, OptionsError
from .gguf_file import atomic_output, check_output_path, open_base_model, progress_bar

__all__ = ["QuantizeOptions", "quantize", "QUANT_TYPES"]

# User-facing type name → llama_cpp constant of the llama_ftype enum. "_M"/"_S" mixes keep some
# tensors (attention V, FFN down, output) at a higher type, as llama.cpp's llama-quantize does.
QUANT_TYPES = {
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q5_K_S": "LLAMA_FTYPE_MOSTLY_Q5_K_S",
    "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "Q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q4_K_S": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
    "Q3_K_L": "LLAMA_FTYPE_MOSTLY_Q3_K_L",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "Q3_K_S": "LLAMA_FTYPE_MOSTLY_Q3_K_S",
    "Q2_K": "LLAMA_FTYPE_MOSTLY_Q2_K",
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "BF16": "LLAMA_FTYPE_MOSTLY_BF16",
}
# How often the progress bar looks at the output file, seconds.
_POLL_INTERVAL_S = 0.2
# Tensor types a source may hold without counting as already quantized.
_FLOAT_TYPES = frozenset({"F32", "F16", "BF16"})


@dataclass(frozen=True)
class QuantizeOptions:
    """One quantization: F32/F16/BF16 GGUF → quantized GGUF."""

    in_path: Path  # source GGUF (usually the F16 output of merge-lora)
    out_path: Path  # quantized GGUF, written through a temporary file and renamed at the end
    type_name: str = "Q4_K_M"  # one of QUANT_TYPES (case-insensitive)
    n_threads: int = 0  # quantizer threads; 0 = all cores (llama.cpp's default)
    allow_requantize: bool = False  # accept an already quantized source (adds a second error)
    progress: bool = True  # progress bar (bytes written) on stderr

    def __post_init__(self) -> None:
        if self.type_name.upper() not in QUANT_TYPES:
            raise OptionsError(f"--type must be one of {', '.join(QUANT_TYPES)}, got {self.type_name!r}")
        if self.n_threads < 0:
            raise OptionsError(f"--threads must be 0 (all cores) or positive, got {self.n_threads}")
        if Path(self.out_path).resolve() == Path(self.in_path).resolve():
            raise OptionsError(f"the output must differ from the input ({self.out_path})")


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ModelError("llama-cpp-python is not installed: pip install llama-cpp-python") from e
    return llama_cpp


def quantize(options: QuantizeOptions) -> Path:
    """Quantize `options.in_path` into `options.out_path`; ModelError on failure (nothing left behind)."""
    check_output_path(options.out_path)  # before reading the input, which may take long
    source = open_base_model(options.in_path)  # checks magic and readability, refuses adapters
    quantized = sorted({t.tensor_type.name for t in source.tensors.values()} - _FLOAT_TYPES)
    del source
    if quantized and not options.allow_requantize:
        # Checked here rather than left to llama.cpp, whose message names neither the flag nor the file.
        raise ModelError(
            f"{options.in_path} is already quantized ({', '.join(quantized)}); quantizing it again adds "
            "error: pass --allow-requantize to do it anyway, or start from the F16/F32 model"
        )
    llama_cpp = _llama_cpp()
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = options.n_threads
    params.ftype = getattr(llama_cpp, QUANT_TYPES[options.type_name.upper()])
    params.allow_requantize = options.allow_requantize
    with atomic_output(options.out_path) as temporary:
        with collected_llama_errors(llama_cpp) as errors:
            code = _run_with_progress(llama_cpp, Path(options.in_path), temporary, params, options)
        if code != 0 or not temporary.is_file():
            reason = errors[-1] if errors else "no message from llama.cpp"
            raise ModelError(f"llama.cpp could not quantize {options.in_path} to {options.type_name}: {reason}")
    return Path(options.out_path)


def _run_with_progress(llama_cpp, in_path: Path, temporary: Path, params, options: QuantizeOptions) -> int:
    """Run the quantizer in a thread (ctypes releases the GIL) and report the output's growth."""
    result: list[int] = []

    def work() -> None:
        code = llama_cpp.llama_model_quantize(str(in_path).encode(), str(temporary).encode(), ctypes.byref(params))
        result.append(int(code))

    thread = threading.Thread(target=work, name="llama-quantize", daemon=True)
    # Total unknown in advance (it depends on the type mix): the bar counts bytes written.
    with progress_bar(None, f"quantize {options.type_name.upper()}", options.progress) as bar:
        thread.start()
        while thread.is_alive():
            thread.join(_POLL_INTERVAL_S)
            if temporary.exists():
                bar.n = temporary.stat().st_size
                bar.refresh()
    return result[0] if result else -1


if __name__ == "__main__":  # `python -m lsg_edge.convert.quantize`, the script form of the command
    from .cli import quantize_command
    from .standalone import run_standalone

    run_standalone(quantize_command)
