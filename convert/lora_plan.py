"""Where each LoRA pair of a PEFT adapter lands in a base GGUF, checked before anything is written.

Hugging Face module names are mapped to GGUF tensor names with gguf-py's own table
(`gguf.get_tensor_name_map`), the one llama.cpp's converter used to write the base. One layout
difference is not a renaming: for llama-architecture models, convert_hf_to_gguf permutes the rows
of the Q and K projections so that llama.cpp can apply rotary embeddings to adjacent pairs
(Hugging Face rotates the two halves of each head). The same row permutation must be applied to
B (and so to B @ A) before it meets the GGUF weight. Qwen2 and Gemma 3 use the halves layout in
llama.cpp too (NEOX rope) and are written unpermuted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import gguf
import numpy as np

from ..errors import ModelError
from .gguf_file import BaseModel
from .peft_adapter import LoraPair, PeftAdapter

__all__ = ["ArchitectureRules", "SUPPORTED_ARCHITECTURES", "PlannedPair", "plan_adapter", "permute_rope_rows"]


@dataclass(frozen=True)
class ArchitectureRules:
    """What the Hugging Face → GGUF conversion did to the weights a LoRA adapter touches."""

    permute_qk_rows: bool  # Q/K rows reordered from rotate-half to interleaved pairs


# Data, not logic: add an architecture here once its conversion rules are known and tested.
SUPPORTED_ARCHITECTURES: dict[str, ArchitectureRules] = {
    "llama": ArchitectureRules(permute_qk_rows=True),
    "qwen2": ArchitectureRules(permute_qk_rows=False),
    "gemma3": ArchitectureRules(permute_qk_rows=False),
}
# Prefixes of multimodal wrappers (Gemma3ForConditionalGeneration, old and new transformers) in
# front of the text model's own names; the GGUF holds the text model only.
_LANGUAGE_MODEL_PREFIXES = (("model.language_model.", "model."), ("language_model.", ""))
_Q_SUFFIX = ".attn_q.weight"
_K_SUFFIX = ".attn_k.weight"
_LAYER_INDEX = re.compile(r"\.layers\.(\d+)\.")


@dataclass(frozen=True)
class PlannedPair:
    """A LoRA pair matched to its base tensor."""

    pair: LoraPair
    tensor_name: str  # GGUF name, e.g. "blk.0.attn_q.weight"
    n_rope_heads: int  # > 0: permute rows of B for this many heads (llama Q/K); 0: keep the order

    def delta(self) -> np.ndarray:
        """scale · B @ A in the base GGUF's row order, float32 [out_features, in_features]."""
        return self.lora_b_rows() @ self.pair.a * np.float32(self.pair.scale)

    def lora_b_rows(self) -> np.ndarray:
        """lora_B with its rows in the base GGUF's order, float32 [out_features, r]."""
        b = self.pair.b.astype(np.float32)
        return permute_rope_rows(b, self.n_rope_heads) if self.n_rope_heads else b


def permute_rope_rows(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder rows as llama.cpp's convert_hf_to_gguf does for llama Q/K weights.

    Within each head of d rows, Hugging Face keeps the two rotated halves apart (rows i and i+d/2
    form a pair); llama.cpp wants them adjacent (rows 2i and 2i+1).
    """
    n_rows = rows.shape[0]
    if n_rows % (2 * n_heads):
        raise ModelError(f"cannot split {n_rows} rows into {n_heads} rotary heads")
    head_dim = n_rows // n_heads
    return rows.reshape(n_heads, 2, head_dim // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _text_module_name(module: str) -> str:
    for prefix, replacement in _LANGUAGE_MODEL_PREFIXES:
        if module.startswith(prefix):
            return replacement + module[len(prefix) :]
    return module


def architecture_rules(base: BaseModel) -> ArchitectureRules:
    rules = SUPPORTED_ARCHITECTURES.get(base.architecture)
    if rules is None:
        supported = ", ".join(sorted(SUPPORTED_ARCHITECTURES))
        raise ModelError(f"{base.path}: architecture {base.architecture!r} is not supported (supported: {supported})")
    return rules


def plan_adapter(base: BaseModel, adapter: PeftAdapter) -> list[PlannedPair]:
    """Match every LoRA pair to a base tensor of the right shape, or raise ModelError.

    The message names the module, the GGUF tensor and both shapes, so that a user who picked the
    wrong base model sees it in one line.
    """
    rules = architecture_rules(base)
    arch = next(key for key, name in gguf.MODEL_ARCH_NAMES.items() if name == base.architecture)
    # Deep enough for the adapter's own layers, so that a layer the base lacks is named as such.
    layers = [int(m[1]) for p in adapter.pairs if (m := _LAYER_INDEX.search(p.module))]
    name_map = gguf.get_tensor_name_map(arch, max([base.n_blocks, *(i + 1 for i in layers)]))
    planned, problems = [], []
    for pair in adapter.pairs:
        try:
            planned.append(_plan_pair(base, rules, name_map, pair))
        except ModelError as e:
            problems.append(str(e))
    seen: dict[str, str] = {}
    for item in planned:
        if item.tensor_name in seen:
            first = seen[item.tensor_name]
            problems.append(f"adapter modules {first!r} and {item.pair.module!r} both target {item.tensor_name}")
        seen[item.tensor_name] = item.pair.module
    if problems:
        more = f" (and {len(problems) - 1} more mismatched modules)" if len(problems) > 1 else ""
        raise ModelError(problems[0] + more)
    return planned


def _plan_pair(base: BaseModel, rules: ArchitectureRules, name_map: gguf.TensorNameMap, pair: LoraPair) -> PlannedPair:
    module = _text_module_name(pair.module)
    tensor_name = name_map.get_name(module + ".weight", try_suffixes=(".weight",))
    if tensor_name is None:
        raise ModelError(
            f"adapter module {pair.module!r} has no counterpart in GGUF architecture {base.architecture!r}"
        )
    if tensor_name not in base.tensors:
        hint = " (tied embeddings: the base has no separate output matrix)" if tensor_name == "output.weight" else ""
        raise ModelError(
            f"adapter module {pair.module!r} targets {tensor_name}, which {base.path.name} does not have{hint}"
        )
    base_shape = base.matrix_shape(tensor_name)
    lora_shape = (pair.b.shape[0], pair.a.shape[1])
    if base_shape != lora_shape:
        raise ModelError(
            f"adapter module {pair.module!r} is {lora_shape[0]}×{lora_shape[1]} but {tensor_name} in "
            f"{base.path.name} is {'×'.join(map(str, base_shape))} (adapter trained on another base model?)"
        )
    n_rope_heads = 0
    if rules.permute_qk_rows and tensor_name.endswith(_Q_SUFFIX):
        n_rope_heads = base.n_heads
    elif rules.permute_qk_rows and tensor_name.endswith(_K_SUFFIX):
        n_rope_heads = base.n_kv_heads
    return PlannedPair(pair, tensor_name, n_rope_heads)
