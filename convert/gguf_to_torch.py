"""Float PyTorch weights of a GGUF model, rebuilt with gguf-py — the trainer's starting point.

No hub, no download: the embedded default model exists only as a quantized GGUF, so the LoRA
trainer dequantizes it and loads the result into `transformers`' own Gemma 3 text model.
Two conversions undo what llama.cpp's converter did to Gemma checkpoints:
- tensor names go back from GGUF's (`blk.3.attn_q.weight`) to Hugging Face's;
- RMSNorm weights are stored as (1 + w) in GGUF (Gemma's norm multiplies by 1 + w, llama.cpp's by
  w), so 1 is subtracted again.
Workstation only: imports torch and transformers (the `train` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np

from ..errors import ModelError

__all__ = ["gemma3_config_from_gguf", "gemma3_state_from_gguf", "load_gemma3_from_gguf"]

# GGUF block tensor → Hugging Face module path inside `model.layers.N.`
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "post_ffw_norm": "post_feedforward_layernorm",
}
_NORM_OFFSET = 1.0  # Gemma RMSNorm scales by (1 + w); llama.cpp's converter stored w + 1


def _field(reader: gguf.GGUFReader, key: str, default: Any = None) -> Any:
    field = reader.fields.get(key)
    if field is None:
        if default is None:
            raise ModelError(f"the GGUF has no {key} (not a complete Gemma 3 model file)")
        return default
    return field.contents()


def gemma3_config_from_gguf(reader: gguf.GGUFReader) -> dict[str, Any]:
    """Keyword arguments for `transformers.Gemma3TextConfig`, read from the GGUF's metadata."""
    arch = _field(reader, "general.architecture")
    if arch != "gemma3":
        raise ModelError(f"the trainer rebuilds Gemma 3 models only; this GGUF is {arch!r}")
    p = "gemma3."
    n_head = int(_field(reader, p + "attention.head_count"))
    head_dim = int(_field(reader, p + "attention.key_length"))
    return {
        "vocab_size": len(_field(reader, "tokenizer.ggml.tokens")),
        "hidden_size": int(_field(reader, p + "embedding_length")),
        "intermediate_size": int(_field(reader, p + "feed_forward_length")),
        "num_hidden_layers": int(_field(reader, p + "block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": int(_field(reader, p + "attention.head_count_kv")),
        "head_dim": head_dim,
        "rms_norm_eps": float(_field(reader, p + "attention.layer_norm_rms_epsilon")),
        "rope_theta": float(_field(reader, p + "rope.freq_base")),
        # Local (sliding-window) layers use their own base; llama.cpp's default for Gemma 3 is 1e4.
        "rope_local_base_freq": float(_field(reader, p + "rope.freq_base_swa", 10000.0)),
        "sliding_window": int(_field(reader, p + "attention.sliding_window")),
        "max_position_embeddings": int(_field(reader, p + "context_length")),
        # llama.cpp scales queries by 1/sqrt(head_dim) for every Gemma 3 size below 27B.
        "query_pre_attn_scalar": head_dim,
        "tie_word_embeddings": "output.weight" not in {t.name for t in reader.tensors},
    }


def gemma3_state_from_gguf(reader: gguf.GGUFReader) -> dict[str, np.ndarray]:
    """Hugging Face state dict (float32 NumPy arrays) of a Gemma 3 GGUF, dequantized."""
    state: dict[str, np.ndarray] = {}
    for tensor in reader.tensors:
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        weights = np.asarray(weights, dtype=np.float32).reshape([int(d) for d in reversed(tensor.shape)])
        name = tensor.name
        if name == "token_embd.weight":
            state["model.embed_tokens.weight"] = weights
        elif name == "output_norm.weight":
            state["model.norm.weight"] = weights - _NORM_OFFSET
        elif name == "output.weight":
            state["lm_head.weight"] = weights
        elif name.startswith("blk."):
            _, index, kind, _suffix = name.split(".", 3)
            if kind not in _BLOCK_NAMES:
                raise ModelError(f"unexpected tensor {name} in a Gemma 3 GGUF")
            hf = f"model.layers.{index}.{_BLOCK_NAMES[kind]}.weight"
            state[hf] = weights - _NORM_OFFSET if kind.endswith("norm") else weights
        else:
            raise ModelError(f"unexpected tensor {name} in a Gemma 3 GGUF")
    return state


def load_gemma3_from_gguf(path: Path, dtype: str = "float32"):
    """A `transformers.Gemma3ForCausalLM` holding the GGUF's weights (dequantized), in eval mode."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    reader = gguf.GGUFReader(str(path))
    config = Gemma3TextConfig(**_config_kwargs(Gemma3TextConfig, gemma3_config_from_gguf(reader)))
    model = Gemma3ForCausalLM(config).to(getattr(torch, dtype))
    state = {k: torch.from_numpy(v) for k, v in gemma3_state_from_gguf(reader).items()}
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("inv_freq")]:
        raise ModelError(f"GGUF → Gemma 3 weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.eval()
    return model


def _config_kwargs(config_class, values: dict[str, Any]) -> dict[str, Any]:
    """transformers 5 takes both RoPE bases as `rope_parameters`; 4.x as two plain fields."""
    import inspect

    if "rope_parameters" not in inspect.signature(config_class.__init__).parameters:
        return values
    values = dict(values)
    full, local = values.pop("rope_theta"), values.pop("rope_local_base_freq")
    values["rope_parameters"] = {
        "full_attention": {"rope_type": "default", "rope_theta": full},
        "sliding_attention": {"rope_type": "default", "rope_theta": local},
    }
    return values
