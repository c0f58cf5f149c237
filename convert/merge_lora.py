"""Merge a PEFT LoRA adapter into a base GGUF: W' = W + scale · B @ A for every adapted weight.

Pipeline: open the base and the adapter → match every LoRA pair to a base tensor of the right
shape (refusing the adapter otherwise, before anything is written) → copy the metadata and add
provenance keys → stream the tensors into a temporary file, merging the adapted ones → optionally
check the result against base + runtime adapter in llama.cpp (verify.py) → rename.

F32, F16 and BF16 base tensors are merged in float32 and stored back in their own type. A
quantized base cannot hold an exact merge: its quantized tensors are dequantized (gguf-py) and the
whole output is written as F16, with a warning — quantize the result again afterwards.

Run as a script: `python -m lsg_edge.convert.merge_lora --base B.gguf --adapter DIR --out M.gguf`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gguf
import numpy as np

from ..errors import OptionsError
from .gguf_file import (
    BaseModel, add_tensor_info, atomic_output, check_output_path, copy_metadata, open_base_model, progress_bar,
)
from .lora_plan import PlannedPair, plan_adapter
from .peft_adapter import PeftAdapter, load_peft_adapter
from .provenance import MERGE_LORA_PREFIX

if TYPE_CHECKING:
    from .verify import VerifyResult

__all__ = ["MergeOptions", "MergeResult", "merge_lora", "ConversionWarning", "PROVENANCE_PREFIX"]

# Provenance keys in the merged file: where its weights came from.
PROVENANCE_PREFIX = MERGE_LORA_PREFIX
_FLOAT_TYPES = (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.BF16)
_MERGED_QUANTIZED_TYPE = gguf.GGMLQuantizationType.F16


class ConversionWarning(UserWarning):
    """The conversion succeeded, but its output is not what the user probably expects."""


@dataclass(frozen=True)
class MergeOptions:
    """One merge: base GGUF + PEFT adapter folder → merged GGUF."""

    base_path: Path  # base model GGUF (F32/F16/BF16; a quantized base is dequantized to F16)
    adapter_path: Path  # PEFT folder: adapter_config.json + adapter_model.safetensors
    out_path: Path  # merged GGUF, written through a temporary file and renamed at the end
    lora_scale: float = 1.0  # extra multiplier of every adapter's delta (1.0 = as trained)
    progress: bool = True  # tqdm progress bar on stderr
    # Before the rename, compare the merged model's logits with base + adapter applied at run time
    # by llama.cpp (convert/verify.py); a failed check leaves no output.
    verify: bool = False

    def __post_init__(self) -> None:
        if not np.isfinite(self.lora_scale):
            raise OptionsError(f"--lora-scale must be a finite number, got {self.lora_scale}")
        if Path(self.out_path).resolve() == Path(self.base_path).resolve():
            raise OptionsError(f"--out must differ from --base ({self.out_path})")


@dataclass(frozen=True)
class MergeResult:
    """What a merge did."""

    out_path: Path
    n_merged_tensors: int  # base tensors that received a LoRA delta
    dequantized: bool  # the base was quantized and the output is F16
    verification: "VerifyResult | None" = None  # the parity check, when MergeOptions.verify


def merge_lora(options: MergeOptions) -> MergeResult:
    """Merge the adapter into the base and write the result; see the module docstring.

    Raises ModelError (unreadable files, adapter/base mismatch) or OptionsError; in either case
    nothing is left at `options.out_path`.
    """
    check_output_path(options.out_path)  # before reading the input, which may take long
    base = open_base_model(options.base_path)
    adapter = load_peft_adapter(options.adapter_path)
    planned = {p.tensor_name: p for p in plan_adapter(base, adapter)}
    quantized = sorted({t.tensor_type.name for t in base.tensors.values() if _is_quantized(t.tensor_type)})
    if quantized:
        warnings.warn(
            f"{base.path.name} is quantized ({', '.join(quantized)}): its tensors are dequantized and the "
            "merged model is written as F16, with the base's quantization error baked in; merge into an "
            "F16/BF16 base if you have one, and quantize the result again",
            ConversionWarning,
            stacklevel=2,
        )
    with atomic_output(options.out_path) as temporary:
        writer = gguf.GGUFWriter(temporary, base.architecture)
        try:
            _write(writer, base, adapter, planned, options, dequantize=bool(quantized))
        finally:
            writer.close()
        verification = _verify(options, temporary) if options.verify else None
    return MergeResult(Path(options.out_path), len(planned), bool(quantized), verification)


def _verify(options: MergeOptions, merged: Path) -> "VerifyResult":
    from .verify import VerifyOptions, verify_merge

    return verify_merge(VerifyOptions(options.base_path, options.adapter_path, merged, lora_scale=options.lora_scale))


def _is_quantized(qtype: gguf.GGMLQuantizationType) -> bool:
    return qtype not in _FLOAT_TYPES and qtype not in (
        gguf.GGMLQuantizationType.F64,
        gguf.GGMLQuantizationType.I8,
        gguf.GGMLQuantizationType.I16,
        gguf.GGMLQuantizationType.I32,
        gguf.GGMLQuantizationType.I64,
    )


def _write(
    writer: gguf.GGUFWriter,
    base: BaseModel,
    adapter: PeftAdapter,
    planned: dict[str, PlannedPair],
    options: MergeOptions,
    dequantize: bool,
) -> None:
    skip = frozenset({gguf.Keys.General.FILE_TYPE}) if dequantize else frozenset()
    copy_metadata(writer, base, skip=skip)
    if dequantize:
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    _add_provenance(writer, base, adapter, options, len(planned))

    # Pass 1 declares every tensor from its shape alone (the header needs all sizes up front);
    # pass 2 computes the merged tensors one at a time, so that only one is in memory.
    for tensor in base.tensors.values():
        data, qtype = _output_tensor(base, tensor, planned, options.lora_scale, dequantize, declare_only=True)
        add_tensor_info(writer, tensor.name, data, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    total = sum(t.n_bytes for t in base.tensors.values())
    with progress_bar(total, "merge-lora", options.progress) as bar:
        for tensor in base.tensors.values():
            data, _ = _output_tensor(base, tensor, planned, options.lora_scale, dequantize, declare_only=False)
            writer.write_tensor_data(data)
            bar.update(tensor.n_bytes)


def _output_tensor(
    base: BaseModel,
    tensor: gguf.ReaderTensor,
    planned: dict[str, PlannedPair],
    lora_scale: float,
    dequantize: bool,
    declare_only: bool,
) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
    """The bytes to write for one base tensor and their GGML type.

    With `declare_only`, a merged tensor is returned as an empty array of the right shape and
    dtype: pass 1 needs sizes, not values.
    """
    qtype = tensor.tensor_type
    pair = planned.get(tensor.name)
    needs_float = pair is not None or (dequantize and _is_quantized(qtype))
    if not needs_float:
        return tensor.data, qtype
    out_type = qtype if qtype in _FLOAT_TYPES else _MERGED_QUANTIZED_TYPE
    shape = base.matrix_shape(tensor.name)
    if declare_only:
        if out_type == gguf.GGMLQuantizationType.BF16:
            return np.empty((*shape[:-1], shape[-1] * 2), np.uint8), out_type
        return np.empty(shape, np.float32 if out_type == gguf.GGMLQuantizationType.F32 else np.float16), out_type
    weights = gguf.quants.dequantize(tensor.data, qtype).reshape(shape)
    if pair is not None:
        weights = weights + pair.delta() * np.float32(lora_scale)
    return gguf.quants.quantize(np.ascontiguousarray(weights, dtype=np.float32), out_type), out_type


def _add_provenance(writer, base: BaseModel, adapter: PeftAdapter, options: MergeOptions, n_merged: int) -> None:
    key = PROVENANCE_PREFIX
    writer.add_string(key + "base", base.path.name)
    writer.add_uint64(key + "base_bytes", base.path.stat().st_size)
    writer.add_string(key + "adapter", adapter.path.resolve().name)
    writer.add_string(key + "adapter_sha256", adapter.weights_sha256)
    writer.add_float32(key + "lora_alpha", adapter.lora_alpha)
    writer.add_uint32(key + "rank", adapter.rank)
    writer.add_bool(key + "use_rslora", adapter.use_rslora)
    # alpha/r (or alpha/sqrt(r)) times --lora-scale; rank_pattern/alpha_pattern modules differ.
    writer.add_float32(key + "scale", adapter.default_scale() * options.lora_scale)
    writer.add_uint32(key + "n_merged_tensors", n_merged)
    writer.add_string(key + "tool", f"lsg-edge {_package_version()}")


def _package_version() -> str:
    from .. import __version__

    return __version__


if __name__ == "__main__":  # `python -m lsg_edge.convert.merge_lora`, the script form of the command
    from .cli import merge_lora_command
    from .standalone import run_standalone

    run_standalone(merge_lora_command)
