"""A PEFT LoRA adapter folder, read without PyTorch.

A PEFT folder holds `adapter_config.json` and `adapter_model.safetensors`, whose tensors are named
`base_model.model.<module>.lora_A.weight` (shape [r, in_features]) and `...lora_B.weight`
(shape [out_features, r]). The layer computes y = W x + scale · B (A x), so the merged weight is
W' = W + scale · B @ A with scale = lora_alpha / r, or lora_alpha / √r with rsLoRA; PEFT's
`rank_pattern` / `alpha_pattern` override r and lora_alpha per module.

`fan_in_fan_out` (GPT-2 style Conv1D layers) only says that the *Hugging Face* weight is stored
transposed, [in, out]; A and B keep the shapes above either way, and GGUF always stores the
[out, in] matrix, so B @ A is already in GGUF's layout.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .safetensors_file import read_safetensors

__all__ = ["LoraPair", "PeftAdapter", "load_peft_adapter", "CONFIG_FILE", "WEIGHTS_FILE"]

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
# Prefix PEFT puts in front of the wrapped model's own module names when it saves an adapter.
_PEFT_PREFIX = "base_model.model."
# `<module>.lora_A.weight`, also with the adapter name kept (`<module>.lora_A.default.weight`).
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<side>[AB])(?:\.[^.]+)?\.weight$")
_EMBEDDING_KEY = re.compile(r"\.lora_embedding_[AB]")


@dataclass(frozen=True)
class LoraPair:
    """One adapted linear layer."""

    module: str  # Hugging Face module name without PEFT's prefix, e.g. "model.layers.0.self_attn.q_proj"
    a: np.ndarray  # lora_A, float32 [r, in_features]
    b: np.ndarray  # lora_B, float32 [out_features, r]
    alpha: float  # lora_alpha for this module (after alpha_pattern)
    scale: float  # multiplier of B @ A: alpha / r, or alpha / sqrt(r) with rsLoRA

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


@dataclass(frozen=True)
class PeftAdapter:
    """A loaded PEFT LoRA adapter."""

    path: Path  # the adapter folder
    pairs: tuple[LoraPair, ...]  # in the order of the safetensors file
    lora_alpha: float  # the config's default lora_alpha
    rank: int  # the config's default r
    use_rslora: bool  # scale = alpha / sqrt(r) instead of alpha / r
    weights_sha256: str  # of adapter_model.safetensors, for provenance

    def default_scale(self) -> float:
        return _scale(self.lora_alpha, self.rank, self.use_rslora)


def _scale(alpha: float, rank: int, use_rslora: bool) -> float:
    return alpha / math.sqrt(rank) if use_rslora else alpha / rank


def _pattern_value(patterns: dict, module: str, default):
    """PEFT's rank_pattern / alpha_pattern: the first key that matches the end of the module name."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?{key}$", module):
            return value
    return default


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"not a PEFT adapter folder (no {CONFIG_FILE}): {folder}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"cannot read {path}: {e}") from e
    if not isinstance(config, dict):
        raise ModelError(f"{path} is not a JSON object")
    return config


def _check_config(path: Path, config: dict) -> None:
    """Refuse what a plain W + scale·B·A merge cannot represent."""
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise ModelError(f"{path}: peft_type {peft_type!r} is not supported (only LORA)")
    if config.get("use_dora"):
        raise ModelError(f"{path}: DoRA adapters (use_dora=true) are not supported")
    for key in ("r", "lora_alpha"):
        value = config.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ModelError(f"{path}: {key} must be a positive number, got {value!r}")


def load_peft_adapter(folder: Path) -> PeftAdapter:
    """Read and check a PEFT LoRA adapter folder.

    Raises ModelError with the offending file, key or tensor name when the folder is not a plain
    LoRA adapter (DoRA, trained biases, extra full weights from `modules_to_save`, embedding
    LoRA, an A without its B, a rank that contradicts the config).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"adapter folder not found: {folder}")
    config = _read_config(folder)
    config_path = folder / CONFIG_FILE
    _check_config(config_path, config)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        hint = " (adapter_model.bin needs PyTorch: re-save it with safe_serialization=True)"
        bin_exists = (folder / "adapter_model.bin").is_file()
        raise ModelError(f"no {WEIGHTS_FILE} in {folder}{hint if bin_exists else ''}")
    tensors = read_safetensors(weights_path)
    rank = int(config["r"])
    lora_alpha = float(config["lora_alpha"])
    use_rslora = bool(config.get("use_rslora", False))
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}

    halves: dict[str, dict[str, np.ndarray]] = {}
    for key, array in tensors.items():
        name = key[len(_PEFT_PREFIX) :] if key.startswith(_PEFT_PREFIX) else key
        if _EMBEDDING_KEY.search(name):
            raise ModelError(f"{weights_path}: {key!r} adapts the token embeddings, which is not supported")
        match = _LORA_KEY.match(name)
        if match is None:
            raise ModelError(
                f"{weights_path}: {key!r} is not a LoRA A/B weight (trained biases or modules_to_save "
                "are not supported)"
            )
        if array.ndim != 2 or array.dtype.kind != "f":
            raise ModelError(f"{weights_path}: {key!r} must be a 2-D float tensor, got {array.dtype} {array.shape}")
        halves.setdefault(match["module"], {})[match["side"]] = array

    pairs = []
    for module, sides in halves.items():
        if set(sides) != {"A", "B"}:
            missing = "lora_B" if "A" in sides else "lora_A"
            raise ModelError(f"{weights_path}: {module} has no {missing} weight")
        a, b = sides["A"], sides["B"]
        expected_rank = int(_pattern_value(rank_pattern, module, rank))
        if a.shape[0] != expected_rank or b.shape[1] != expected_rank:
            raise ModelError(
                f"{weights_path}: {module} has lora_A {a.shape} and lora_B {b.shape}, "
                f"but the config gives rank {expected_rank}"
            )
        alpha = float(_pattern_value(alpha_pattern, module, lora_alpha))
        pairs.append(LoraPair(module, a, b, alpha, _scale(alpha, expected_rank, use_rslora)))
    if not pairs:
        raise ModelError(f"{weights_path} holds no LoRA weights")
    return PeftAdapter(
        path=folder,
        pairs=tuple(pairs),
        lora_alpha=lora_alpha,
        rank=rank,
        use_rslora=use_rslora,
        weights_sha256=hashlib.sha256(weights_path.read_bytes()).hexdigest(),
    )
