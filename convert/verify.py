"""Parity check of a merge through an independent path, on the device, without PyTorch.

Path 1: the merged GGUF, W' = W + s·B·A baked into the weights.
Path 2: the *base* GGUF with the adapter applied by llama.cpp at run time, W x + s·B (A x), from a
runtime adapter GGUF written to a temporary folder.
Both run the same text through llama.cpp and their logits are compared. A wrong row permutation,
scale or tensor mapping in the merge shows up as an error of the order of the adapter's effect;
rounding the merged weights to F16/BF16 shows up as a small one.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends.llama import LlamaModel, LlamaOptions
from ..errors import ModelError, OptionsError

__all__ = ["VerifyOptions", "VerifyResult", "verify_merge"]

# Short, mixed-language, covers letters, digits and punctuation; tokenized by the model itself.
_DEFAULT_TEXT = "Der schnelle braune Fuchs springt über den faulen Hund. The quick brown fox, 1995!"
_N_CTX_TOKENS = 256


@dataclass(frozen=True)
class VerifyOptions:
    """Compare a merged GGUF with its base + the adapter applied at run time."""

    base_path: Path  # base GGUF the merge started from
    adapter_path: Path  # PEFT adapter folder that was merged
    merged_path: Path  # the merged GGUF to check
    lora_scale: float = 1.0  # the --lora-scale the merge used
    # Bound on rms(merged − runtime) / std(runtime) over all logits. F32 merges reach ~1e-5;
    # F16/BF16 rounding of the merged weights and a dequantized base stay well below this.
    max_normalized_rms: float = 0.05
    text: str = _DEFAULT_TEXT  # what both paths read
    n_threads: int = 0  # llama.cpp threads; 0 = the backend's default

    def __post_init__(self) -> None:
        if not self.max_normalized_rms > 0:
            raise OptionsError(f"max_normalized_rms must be positive, got {self.max_normalized_rms}")


@dataclass(frozen=True)
class VerifyResult:
    n_tokens: int  # tokens compared (each gives one row of logits)
    max_abs_diff: float  # max |merged − runtime| over all logits
    normalized_rms: float  # rms(merged − runtime) / std(runtime)
    adapter_effect: float  # rms(runtime − base) / std(runtime): how much the adapter moves the logits


def _logits(path: Path, text: str, n_threads: int, lora: Path | None = None, lora_scale: float = 1.0):
    options = LlamaOptions(
        model_path=path, n_ctx_tokens=_N_CTX_TOKENS, n_threads=n_threads, lora_path=lora, lora_scale=lora_scale,
        f32_attention=True,
    )
    with LlamaModel(options) as model:
        tokens = model.vocab.tokenize(text, add_bos=True)[:_N_CTX_TOKENS]
        return tokens, model.new_context().logits_at(tokens, range(len(tokens))).astype(np.float64)


def verify_merge(options: VerifyOptions) -> VerifyResult:
    """Run both paths; ModelError if they disagree by more than `max_normalized_rms`."""
    from .lora_to_gguf import LoraGgufOptions, lora_to_gguf

    with tempfile.TemporaryDirectory(prefix="lsg-edge-verify-") as folder:
        adapter = Path(folder) / "adapter.gguf"
        lora_to_gguf(LoraGgufOptions(options.base_path, options.adapter_path, adapter, progress=False))
        tokens, runtime = _logits(Path(options.base_path), options.text, options.n_threads, adapter, options.lora_scale)
    merged_tokens, merged = _logits(Path(options.merged_path), options.text, options.n_threads)
    _, base = _logits(Path(options.base_path), options.text, options.n_threads)
    if merged_tokens != tokens:
        raise ModelError(f"{options.merged_path} tokenizes differently from its base {options.base_path}")
    spread = float(np.std(runtime)) or 1.0
    result = VerifyResult(
        n_tokens=len(tokens),
        max_abs_diff=float(np.max(np.abs(merged - runtime))),
        normalized_rms=float(np.sqrt(np.mean((merged - runtime) ** 2)) / spread),
        adapter_effect=float(np.sqrt(np.mean((runtime - base) ** 2)) / spread),
    )
    if not result.normalized_rms <= options.max_normalized_rms:
        raise ModelError(
            f"merged model disagrees with base + runtime adapter: normalized RMS of logits "
            f"{result.normalized_rms:.3g} > {options.max_normalized_rms:g} (max |Δ| {result.max_abs_diff:.3g})"
        )
    return result
