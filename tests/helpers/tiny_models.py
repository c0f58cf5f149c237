"""Tiny random-weight models for the convert/ tests, and an independent NumPy reference.

Everything here is written from the Hugging Face side, independently of convert/: weights are made
in the Hugging Face layout and names, turned into a GGUF by this file's own small converter (an
explicit name table, an index-based rotary row interleave for llama Q/K, Gemma's +1 on norm
weights), and the reference forward pass runs in float64 in the Hugging Face layout and
semantics (rotate-half RoPE, Gemma's (1 + w) norms, scaled embeddings, post-norms, GELU-tanh).

tests/test_convert_tiny_models.py checks the harness itself: llama.cpp's logits on each tiny base
GGUF equal the reference's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import gguf
import numpy as np

from lsg_edge.backends.llama import LlamaModel, LlamaOptions

ARCHITECTURES = ("llama", "qwen2", "gemma3")
# Max |llama.cpp − reference| on F32 weights. The contexts use an F32 KV cache and no flash
# attention (LlamaOptions.f32_attention: F16 there alone gives ~3e-3 to 1e-2 on these models); what
# remains is float32 arithmetic (~1e-5) and, for Gemma, llama.cpp's F16 GELU table on CPU (~6e-4;
# rounding the reference's GELU input and output to F16 brings Gemma down to ~6e-6 as well).
F32_LOGITS_ATOL = 1e-3
N_CTX_TOKENS = 64
TOKENS = [1, 17, 250, 33, 101, 7, 290, 64, 5, 199, 42, 311]  # BOS then arbitrary ordinary tokens
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class TinySpec:
    """Hyperparameters of a tiny model, Hugging Face style."""

    arch: str
    n_vocab: int = 320
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    head_dim: int = 16
    d_ff: int = 128
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    tied_embeddings: bool = False
    qkv_bias: bool = False

    @property
    def is_gemma(self) -> bool:
        return self.arch == "gemma3"


def tiny_spec(arch: str, wide: bool = False) -> TinySpec:
    """The tiny model of each architecture; `wide` = 256 columns, so that K-quants apply."""
    spec = {
        "llama": TinySpec("llama"),
        "qwen2": TinySpec("qwen2", rms_eps=1e-6, tied_embeddings=True, qkv_bias=True),
        # Gemma 3: n_heads·head_dim (128) ≠ d_model (64), as in the real models.
        "gemma3": TinySpec("gemma3", head_dim=32, rms_eps=1e-6, tied_embeddings=True),
    }[arch]
    if wide:
        spec = replace(spec, d_model=256, d_ff=512, head_dim=64)
    return spec


# --- weights, Hugging Face layout ------------------------------------------------------------


def make_hf_weights(spec: TinySpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights under Hugging Face state-dict names."""
    rng = np.random.default_rng(seed)

    def linear(n_out: int, n_in: int) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in)) / math.sqrt(n_in)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        # Gemma stores w in (1 + w); the others store the multiplier itself.
        offset = 0.0 if spec.is_gemma else 1.0
        return (offset + 0.1 * rng.standard_normal(n)).astype(np.float32)

    d, q_rows, kv_rows = spec.d_model, spec.n_heads * spec.head_dim, spec.n_kv_heads * spec.head_dim
    w = {"model.embed_tokens.weight": (0.5 * rng.standard_normal((spec.n_vocab, d))).astype(np.float32)}
    if spec.is_gemma:
        w["model.embed_tokens.weight"] /= math.sqrt(d)  # Gemma multiplies embeddings by sqrt(d)
    for i in range(spec.n_layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(d)
        w[p + "self_attn.q_proj.weight"] = linear(q_rows, d)
        w[p + "self_attn.k_proj.weight"] = linear(kv_rows, d)
        w[p + "self_attn.v_proj.weight"] = linear(kv_rows, d)
        w[p + "self_attn.o_proj.weight"] = linear(d, q_rows)
        if spec.qkv_bias:
            for name, n in (("q_proj", q_rows), ("k_proj", kv_rows), ("v_proj", kv_rows)):
                w[p + f"self_attn.{name}.bias"] = (0.1 * rng.standard_normal(n)).astype(np.float32)
        w[p + "post_attention_layernorm.weight"] = norm(d)
        if spec.is_gemma:
            w[p + "self_attn.q_norm.weight"] = norm(spec.head_dim)
            w[p + "self_attn.k_norm.weight"] = norm(spec.head_dim)
            w[p + "pre_feedforward_layernorm.weight"] = norm(d)
            w[p + "post_feedforward_layernorm.weight"] = norm(d)
        w[p + "mlp.gate_proj.weight"] = linear(spec.d_ff, d)
        w[p + "mlp.up_proj.weight"] = linear(spec.d_ff, d)
        w[p + "mlp.down_proj.weight"] = linear(d, spec.d_ff)
    w["model.norm.weight"] = norm(d)
    if not spec.tied_embeddings:
        w["lm_head.weight"] = linear(spec.n_vocab, d)
    return w


# --- this file's own HF → GGUF converter -----------------------------------------------------

_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
}
_GEMMA_LAYER_NAMES = {
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
}


def gguf_name(spec: TinySpec, hf_name: str) -> str:
    if hf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    table = {**_LAYER_NAMES, **_GEMMA_LAYER_NAMES} if spec.is_gemma else _LAYER_NAMES
    return f"blk.{layer}.{table[rest]}"


def interleave_rotary_rows(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """HF rows i and i + d/2 of each head become GGUF rows 2i and 2i + 1 (llama only)."""
    head_dim = rows.shape[0] // n_heads
    order = [h * head_dim + j * head_dim // 2 + i for h in range(n_heads) for i in range(head_dim // 2) for j in (0, 1)]
    return rows[order]


def to_gguf_tensor(spec: TinySpec, hf_name: str, value: np.ndarray) -> np.ndarray:
    if spec.arch == "llama" and hf_name.endswith("q_proj.weight"):
        return interleave_rotary_rows(value, spec.n_heads)
    if spec.arch == "llama" and hf_name.endswith("k_proj.weight"):
        return interleave_rotary_rows(value, spec.n_kv_heads)
    if spec.is_gemma and hf_name.endswith("norm.weight"):
        return value + np.float32(1.0)
    return value


def _vocabulary(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """A small SentencePiece ('llama') vocabulary: specials, the 256 byte tokens, word pieces."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    words = [f"\u2581{chr(ord('a') + i % 26)}{i // 26 or ''}" for i in range(n_vocab - len(tokens))]
    scores = [0.0] * len(tokens) + [-float(i) for i in range(len(words))]
    return tokens + words, scores, types + [gguf.TokenType.NORMAL] * len(words)


def write_tiny_gguf(
    spec: TinySpec,
    weights: dict[str, np.ndarray],
    path: Path,
    dtype: gguf.GGMLQuantizationType = gguf.GGMLQuantizationType.F32,
) -> Path:
    """Write `weights` (HF layout) as a GGUF llama.cpp can load; 2-D tensors stored as `dtype`."""
    writer = gguf.GGUFWriter(path, spec.arch)
    writer.add_name(f"tiny-{spec.arch}")
    writer.add_context_length(N_CTX_TOKENS * 4)
    writer.add_embedding_length(spec.d_model)
    writer.add_block_count(spec.n_layers)
    writer.add_feed_forward_length(spec.d_ff)
    writer.add_head_count(spec.n_heads)
    writer.add_head_count_kv(spec.n_kv_heads)
    writer.add_layer_norm_rms_eps(spec.rms_eps)
    writer.add_rope_freq_base(spec.rope_theta)
    writer.add_key_length(spec.head_dim)
    writer.add_value_length(spec.head_dim)
    writer.add_rope_dimension_count(spec.head_dim)
    if spec.is_gemma:
        writer.add_sliding_window(512)
        swa_key = gguf.Keys.Rope.FREQ_BASE_SWA.format(arch=spec.arch)
        writer.add_key_value(swa_key, spec.rope_theta, gguf.GGUFValueType.FLOAT32)
    file_type = {
        gguf.GGMLQuantizationType.F32: gguf.LlamaFileType.ALL_F32,
        gguf.GGMLQuantizationType.F16: gguf.LlamaFileType.MOSTLY_F16,
        gguf.GGMLQuantizationType.BF16: gguf.LlamaFileType.MOSTLY_BF16,
        gguf.GGMLQuantizationType.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
    }[dtype]
    writer.add_file_type(file_type)
    tokens, scores, types = _vocabulary(spec.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    for hf_name, value in weights.items():
        tensor = np.ascontiguousarray(to_gguf_tensor(spec, hf_name, value), dtype=np.float32)
        qtype = dtype if tensor.ndim == 2 else gguf.GGMLQuantizationType.F32
        writer.add_tensor(gguf_name(spec, hf_name), gguf.quants.quantize(tensor, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# --- PEFT adapters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterSpec:
    """A random PEFT LoRA adapter."""

    r: int = 8
    lora_alpha: float = 16.0
    use_rslora: bool = False
    targets: tuple[str, ...] = LINEAR_MODULES
    rank_pattern: dict | None = None
    alpha_pattern: dict | None = None
    fan_in_fan_out: bool = False
    seed: int = 1


def _module_path(module: str) -> str:
    return f"self_attn.{module}" if module in _ATTENTION_MODULES else f"mlp.{module}"


def _matching(patterns: dict | None, module: str, default):
    for key, value in (patterns or {}).items():
        if module.endswith("." + key):
            return value
    return default


def write_peft_adapter(
    spec: TinySpec, adapter: AdapterSpec, folder: Path
) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Write adapter_config.json + adapter_model.safetensors; return {HF weight name: (A, B, scale)}."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(adapter.seed)
    folder.mkdir(parents=True, exist_ok=True)
    hf = make_hf_weights(spec)  # shapes only
    tensors, deltas = {}, {}
    for i in range(spec.n_layers):
        for module in adapter.targets:
            name = f"model.layers.{i}.{_module_path(module)}"
            n_out, n_in = hf[name + ".weight"].shape
            r = int(_matching(adapter.rank_pattern, name, adapter.r))
            alpha = float(_matching(adapter.alpha_pattern, name, adapter.lora_alpha))
            a = (rng.standard_normal((r, n_in)) / math.sqrt(n_in)).astype(np.float32)
            b = (0.3 * rng.standard_normal((n_out, r)) / math.sqrt(r)).astype(np.float32)
            scale = alpha / math.sqrt(r) if adapter.use_rslora else alpha / r
            tensors[f"base_model.model.{name}.lora_A.weight"] = a
            tensors[f"base_model.model.{name}.lora_B.weight"] = b
            deltas[name + ".weight"] = (a, b, scale)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "r": adapter.r,
        "lora_alpha": adapter.lora_alpha,
        "use_rslora": adapter.use_rslora,
        "target_modules": list(adapter.targets),
        "rank_pattern": adapter.rank_pattern or {},
        "alpha_pattern": adapter.alpha_pattern or {},
        "fan_in_fan_out": adapter.fan_in_fan_out,
        "bias": "none",
        "lora_dropout": 0.0,
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": f"tiny-{spec.arch}",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=1))
    return deltas


def merged_hf_weights(weights: dict[str, np.ndarray], deltas: dict) -> dict[str, np.ndarray]:
    """W + scale · B @ A in the Hugging Face layout, float64."""
    merged = {k: v.astype(np.float64) for k, v in weights.items()}
    for name, (a, b, scale) in deltas.items():
        merged[name] = merged[name] + scale * (b.astype(np.float64) @ a.astype(np.float64))
    return merged


# --- reference forward pass (Hugging Face semantics, float64) ----------------------------------


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float, gemma: bool) -> np.ndarray:
    normed = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return normed * ((1.0 + weight) if gemma else weight)


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _rope(x: np.ndarray, base: float) -> np.ndarray:
    """x [T, heads, head_dim]; HF rotary embedding with positions 0..T-1."""
    n_tokens, _, head_dim = x.shape
    inv_freq = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(n_tokens, dtype=np.float64)[:, None] * inv_freq[None, :]
    emb = np.concatenate([angles, angles], axis=-1)[:, None, :]
    return x * np.cos(emb) + _rotate_half(x) * np.sin(emb)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def reference_logits(spec: TinySpec, weights: dict[str, np.ndarray], tokens: list[int]) -> np.ndarray:
    """float64 logits [len(tokens), n_vocab]; row k predicts token k + 1."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    gemma, eps = spec.is_gemma, spec.rms_eps
    n = len(tokens)
    x = w["model.embed_tokens.weight"][tokens]
    if gemma:
        x = x * math.sqrt(spec.d_model)
    causal = np.triu(np.full((n, n), -np.inf), k=1)
    group = spec.n_heads // spec.n_kv_heads
    for i in range(spec.n_layers):
        p = f"model.layers.{i}."

        def proj(name: str, h: np.ndarray) -> np.ndarray:
            out = h @ w[p + name + ".weight"].T
            return out + w[p + name + ".bias"] if p + name + ".bias" in w else out

        h = _rms_norm(x, w[p + "input_layernorm.weight"], eps, gemma)
        q = proj("self_attn.q_proj", h).reshape(n, spec.n_heads, spec.head_dim)
        k = proj("self_attn.k_proj", h).reshape(n, spec.n_kv_heads, spec.head_dim)
        v = proj("self_attn.v_proj", h).reshape(n, spec.n_kv_heads, spec.head_dim)
        if gemma:
            q = _rms_norm(q, w[p + "self_attn.q_norm.weight"], eps, gemma)
            k = _rms_norm(k, w[p + "self_attn.k_norm.weight"], eps, gemma)
        q, k = _rope(q, spec.rope_theta), _rope(k, spec.rope_theta)
        heads = []
        for head in range(spec.n_heads):
            kv = head // group
            scores = q[:, head] @ k[:, kv].T / math.sqrt(spec.head_dim) + causal
            probs = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            heads.append(probs @ v[:, kv])
        attn = np.concatenate(heads, axis=-1) @ w[p + "self_attn.o_proj.weight"].T
        if gemma:
            attn = _rms_norm(attn, w[p + "post_attention_layernorm.weight"], eps, gemma)
        x = x + attn
        ffn_norm = "pre_feedforward_layernorm" if gemma else "post_attention_layernorm"
        h = _rms_norm(x, w[p + ffn_norm + ".weight"], eps, gemma)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        activated = _gelu_tanh(gate) if gemma else gate / (1.0 + np.exp(-gate))
        mlp = (activated * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        if gemma:
            mlp = _rms_norm(mlp, w[p + "post_feedforward_layernorm.weight"], eps, gemma)
        x = x + mlp
    x = _rms_norm(x, w["model.norm.weight"], eps, gemma)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


# --- llama.cpp side -------------------------------------------------------------------------------


def llama_logits(
    model_path: Path, tokens: list[int] = TOKENS, lora_path: Path | None = None, lora_scale: float = 1.0
) -> np.ndarray:
    """float32 logits [len(tokens), n_vocab] from llama.cpp (the project's backend)."""
    options = LlamaOptions(
        model_path=Path(model_path),
        n_ctx_tokens=N_CTX_TOKENS,
        n_threads=1,
        lora_path=lora_path,
        lora_scale=lora_scale,
        f32_attention=True,
    )
    with LlamaModel(options) as model:
        return model.new_context().logits_at(tokens, range(len(tokens)))


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
