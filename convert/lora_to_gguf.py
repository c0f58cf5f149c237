"""Write a PEFT LoRA adapter as a llama.cpp LoRA GGUF, applied at run time (`--lora`).

llama.cpp's adapter format (llama.cpp convert_lora_to_gguf.py and src/llama-adapter.cpp):
- keys: general.architecture = the base's, general.type = "adapter", adapter.type = "lora",
  adapter.lora.alpha (float32);
- per adapted base tensor "<name>.weight": "<name>.weight.lora_a" holding A in NumPy shape
  [r, in_features] (ggml ne = [in, r]) and "<name>.weight.lora_b" holding B as [out_features, r];
- at run time llama.cpp adds scale · B (A x) with scale = user_scale · alpha / r, r read from B.

So PEFT's per-module scale is reproduced by writing alpha = scale · r; when modules have different
alpha/r ratios (rank_pattern / alpha_pattern), the remaining factor is folded into that module's B.
Llama Q/K rows get the same permutation as in the merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from ..errors import OptionsError
from .gguf_file import add_tensor_info, atomic_output, check_output_path, open_base_model, progress_bar
from .lora_plan import PlannedPair, plan_adapter
from .peft_adapter import PeftAdapter, load_peft_adapter
from .provenance import LORA_TO_GGUF_PREFIX

__all__ = ["LoraGgufOptions", "lora_to_gguf", "OUT_TYPES"]

# Output tensor types: F32 reproduces the adapter exactly; F16 halves the file.
OUT_TYPES = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16}
_LORA_A_SUFFIX = ".lora_a"
_LORA_B_SUFFIX = ".lora_b"
# Relative difference between a module's scale and alpha / r below which nothing is folded into B.
_SCALE_RTOL = 1e-6


@dataclass(frozen=True)
class LoraGgufOptions:
    """One conversion: PEFT adapter folder (+ its base GGUF, for names and checks) → LoRA GGUF."""

    base_path: Path  # the base model GGUF the adapter was trained on (only read for names/shapes)
    adapter_path: Path  # PEFT folder: adapter_config.json + adapter_model.safetensors
    out_path: Path  # adapter GGUF, written through a temporary file and renamed at the end
    out_type: str = "f32"  # tensor type of lora_a / lora_b: "f32" or "f16"
    progress: bool = True  # tqdm progress bar on stderr

    def __post_init__(self) -> None:
        if self.out_type not in OUT_TYPES:
            raise OptionsError(f"--outtype must be one of {', '.join(OUT_TYPES)}, got {self.out_type!r}")


def lora_to_gguf(options: LoraGgufOptions) -> int:
    """Write the adapter GGUF; returns the number of adapted base tensors.

    Raises ModelError when the adapter does not fit the base (same checks as the merge).
    """
    check_output_path(options.out_path)  # before reading the input, which may take long
    base = open_base_model(options.base_path)
    adapter = load_peft_adapter(options.adapter_path)
    planned = plan_adapter(base, adapter)
    alpha = adapter.default_scale() * adapter.rank  # llama.cpp divides by r again
    qtype = OUT_TYPES[options.out_type]
    tensors = []
    for item in planned:
        a = np.ascontiguousarray(item.pair.a, dtype=np.float32)
        b = np.ascontiguousarray(item.lora_b_rows() * np.float32(_folded_factor(item, alpha)))
        tensors.append((item.tensor_name + _LORA_A_SUFFIX, gguf.quants.quantize(a, qtype)))
        tensors.append((item.tensor_name + _LORA_B_SUFFIX, gguf.quants.quantize(b, qtype)))

    with atomic_output(options.out_path) as temporary:
        writer = gguf.GGUFWriter(temporary, base.architecture)
        try:
            writer.add_type(gguf.GGUFType.ADAPTER)
            writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
            writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
            _add_provenance(writer, base.path, adapter)
            for name, data in tensors:
                add_tensor_info(writer, name, data, qtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            with progress_bar(sum(d.nbytes for _, d in tensors), "lora-to-gguf", options.progress) as bar:
                for _, data in tensors:
                    writer.write_tensor_data(data)
                    bar.update(data.nbytes)
        finally:
            writer.close()
    return len(planned)


def _folded_factor(item: PlannedPair, alpha: float) -> float:
    """What llama.cpp's alpha / r misses of this module's PEFT scale (1.0 almost always)."""
    runtime_scale = alpha / item.pair.rank
    factor = item.pair.scale / runtime_scale
    return 1.0 if abs(factor - 1.0) <= _SCALE_RTOL else factor


def _add_provenance(writer: gguf.GGUFWriter, base_path: Path, adapter: PeftAdapter) -> None:
    key = LORA_TO_GGUF_PREFIX
    writer.add_string(key + "base", base_path.name)
    writer.add_string(key + "adapter", adapter.path.resolve().name)
    writer.add_string(key + "adapter_sha256", adapter.weights_sha256)
    writer.add_float32(key + "lora_alpha", adapter.lora_alpha)
    writer.add_uint32(key + "rank", adapter.rank)
    writer.add_bool(key + "use_rslora", adapter.use_rslora)


if __name__ == "__main__":  # `python -m lsg_edge.convert.lora_to_gguf`, the script form of the command
    from .cli import lora_to_gguf_command
    from .standalone import run_standalone

    run_standalone(lora_to_gguf_command)
