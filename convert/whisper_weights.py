"""Whisper weights, torch-free, from a CTranslate2 `model.bin` or a Hugging Face safetensors file.

Both formats are mapped onto one canonical naming (the `_CT2_NAMES` / `_HF_NAMES` tables) with
float32 arrays, so the ONNX graph builder never sees where the weights came from. Linear weights
keep the PyTorch layout [out_features, in_features].

CTranslate2 `model.bin` (as written by ctranslate2/specs/model_spec.py `_serialize`, binary
version 6): uint32 version, string spec name, uint32 revision, uint32 variable count, then per
variable: string name, uint8 rank, rank × uint32 dims, uint8 dtype id, uint32 byte count, raw data;
then uint32 alias count and (alias, target) string pairs. Strings are uint16 length (including a
trailing NUL) followed by the UTF-8 bytes and the NUL. Everything is little-endian.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .safetensors_file import read_safetensors as read_tensors

__all__ = ["WhisperDims", "WhisperWeights", "load_weights", "read_ct2_model", "read_safetensors"]

_CT2_SPEC_NAME = "WhisperSpec"
_CT2_BINARY_VERSIONS = (5, 6)
# Order of the DataType enum in ctranslate2/include/ctranslate2/types.h.
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# Every Whisper size uses 64-dimensional attention heads (tiny 384/6 … large 1280/20).
_HEAD_DIM = 64


@dataclass(frozen=True)
class WhisperDims:
    """Shape of one Whisper model."""

    n_mels: int  # mel bins of the input spectrogram (80; 128 for large-v3)
    n_audio_ctx: int  # encoder positions, frames of 20 ms (1500 = 30 s)
    n_text_ctx: int  # decoder positions, tokens (448)
    d_model: int  # width of both stacks
    n_heads: int  # attention heads per layer
    n_encoder_layers: int
    n_decoder_layers: int
    n_vocab: int  # output vocabulary, tokens


@dataclass
class WhisperWeights:
    """Canonical float32 tensors of one model, plus its shape and where it came from."""

    dims: WhisperDims
    tensors: dict[str, np.ndarray]
    source: str  # provenance: file and format, recorded in the ONNX metadata


def load_weights(path: Path) -> WhisperWeights:
    """Read `path`: a CTranslate2 model directory or model.bin, or a .safetensors file."""
    path = Path(path)
    if path.is_dir():
        if (path / "model.bin").exists():
            return read_ct2_model(path / "model.bin")
        found = sorted(path.glob("*.safetensors"))
        if found:
            return read_safetensors(found[0])
        raise ModelError(f"no model.bin or *.safetensors in {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    return read_ct2_model(path)


# --- CTranslate2 ------------------------------------------------------------------------------


def read_ct2_model(path: Path) -> WhisperWeights:
    """Parse a CTranslate2 WhisperSpec `model.bin` into canonical float32 tensors."""
    path = Path(path)
    try:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read the Whisper model {path}: {e}") from e
    try:
        variables = _parse_ct2(raw, path)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as e:
        raise ModelError(f"corrupt or truncated CTranslate2 model {path}: {e}") from e
    n_heads = int(variables["encoder/num_heads"]) if "encoder/num_heads" in variables else None
    tensors: dict[str, np.ndarray] = {}
    n_enc = _count_layers(variables, "encoder/layer_")
    n_dec = _count_layers(variables, "decoder/layer_")
    for name, (source, transform) in _ct2_table(n_enc, n_dec).items():
        if source not in variables:
            raise ModelError(f"{path} lacks the Whisper variable {source!r} (not a Whisper model?)")
        tensors[name] = transform(np.asarray(variables[source], dtype=np.float32))
    return WhisperWeights(_dims(tensors, n_enc, n_dec, n_heads), tensors, f"ctranslate2:{path.name}")


def _parse_ct2(raw: np.ndarray, path: Path) -> dict[str, np.ndarray]:
    buffer = memoryview(raw)
    offset = 0

    def read(fmt: str):
        nonlocal offset
        values = struct.unpack_from("<" + fmt, buffer, offset)
        offset += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def read_string() -> str:
        nonlocal offset
        length = read("H")
        text = bytes(buffer[offset : offset + length - 1]).decode("utf-8")
        offset += length
        return text

    version = read("I")
    if version not in _CT2_BINARY_VERSIONS:
        raise ValueError(f"unsupported binary version {version}")
    spec = read_string()
    if spec != _CT2_SPEC_NAME:
        raise ModelError(f"{path} holds a {spec!r}, not a {_CT2_SPEC_NAME}")
    read("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(read("I")):
        name = read_string()
        rank = read("B")
        shape = tuple(read("I") for _ in range(rank))
        dtype_id = read("B")
        n_bytes = read("I")
        if offset + n_bytes > len(raw):
            raise ValueError(f"variable {name!r} runs past the end of the file")
        data = raw[offset : offset + n_bytes]
        offset += n_bytes
        if name.endswith("weight_scale"):
            # Quantized weights carry a separate scale variable; we only read float checkpoints.
            raise ValueError("int8-quantized models are not supported; convert with --quantization float16")
        variables[name] = _ct2_array(data, dtype_id, shape)
    for _ in range(read("I")):
        alias, target = read_string(), read_string()
        variables[alias] = variables[target]
    return variables


def _ct2_array(data: np.ndarray, dtype_id: int, shape: tuple[int, ...]) -> np.ndarray:
    if dtype_id >= len(_CT2_DTYPES):
        raise ValueError(f"unknown dtype id {dtype_id}")
    name = _CT2_DTYPES[dtype_id]
    if name == "bfloat16":
        # bfloat16 is the upper half of a float32.
        values = (data.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        values = data.view(np.dtype(name))
    return values.reshape(shape)


def _count_layers(variables: dict, prefix: str) -> int:
    n = 0
    while any(k.startswith(f"{prefix}{n}/") for k in variables):
        n += 1
    if n == 0:
        raise ModelError(f"no {prefix}* variables: not a Whisper model")
    return n


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _rows(start: int, stop: int):
    """Slice of a fused projection: CTranslate2 stores q|k|v (or k|v) stacked along the output rows."""

    def take(x: np.ndarray) -> np.ndarray:
        third = x.shape[0] // stop
        return np.ascontiguousarray(x[start * third : (start + 1) * third])

    return take


def _ct2_table(n_enc: int, n_dec: int) -> dict[str, tuple[str, object]]:
    """Canonical name → (CTranslate2 variable, transform)."""
    table: dict[str, tuple[str, object]] = {}
    for part in ("weight", "bias"):
        table[f"encoder.conv1.{part}"] = (f"encoder/conv1/{part}", _identity)
        table[f"encoder.conv2.{part}"] = (f"encoder/conv2/{part}", _identity)
    table["encoder.positions"] = ("encoder/position_encodings/encodings", _identity)
    table["decoder.positions"] = ("decoder/position_encodings/encodings", _identity)
    table["decoder.tokens"] = ("decoder/embeddings/weight", _identity)
    for stack, ln in (("encoder", "encoder.ln_post"), ("decoder", "decoder.ln")):
        table[f"{ln}.weight"] = (f"{stack}/layer_norm/gamma", _identity)
        table[f"{ln}.bias"] = (f"{stack}/layer_norm/beta", _identity)
    for stack, n in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n):
            src, dst = f"{stack}/layer_{i}", f"{stack}.layers.{i}"
            _ct2_attention(table, f"{src}/self_attention", f"{dst}.attn", fused_qkv=True)
            if stack == "decoder":
                _ct2_attention(table, f"{src}/attention", f"{dst}.cross_attn", fused_qkv=False)
            for part, ct2 in (("weight", "gamma"), ("bias", "beta")):
                table[f"{dst}.mlp_ln.{part}"] = (f"{src}/ffn/layer_norm/{ct2}", _identity)
                table[f"{dst}.mlp.fc1.{part}"] = (f"{src}/ffn/linear_0/{part}", _identity)
                table[f"{dst}.mlp.fc2.{part}"] = (f"{src}/ffn/linear_1/{part}", _identity)
    return table


def _ct2_attention(table: dict, src: str, dst: str, *, fused_qkv: bool) -> None:
    for part, ct2 in (("weight", "gamma"), ("bias", "beta")):
        table[f"{dst}_ln.{part}"] = (f"{src}/layer_norm/{ct2}", _identity)
    for part in ("weight", "bias"):
        if fused_qkv:  # self-attention: linear_0 = q|k|v, linear_1 = out
            for k, name in enumerate("qkv"):
                table[f"{dst}.{name}.{part}"] = (f"{src}/linear_0/{part}", _rows(k, 3))
            table[f"{dst}.o.{part}"] = (f"{src}/linear_1/{part}", _identity)
        else:  # cross-attention: linear_0 = q, linear_1 = k|v, linear_2 = out
            table[f"{dst}.q.{part}"] = (f"{src}/linear_0/{part}", _identity)
            table[f"{dst}.k.{part}"] = (f"{src}/linear_1/{part}", _rows(0, 2))
            table[f"{dst}.v.{part}"] = (f"{src}/linear_1/{part}", _rows(1, 2))
            table[f"{dst}.o.{part}"] = (f"{src}/linear_2/{part}", _identity)


# --- Hugging Face safetensors -----------------------------------------------------------------

# Canonical suffix → Hugging Face suffix, per attention block / MLP (transformers' WhisperModel).
_HF_ATTENTION = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}


def read_safetensors(path: Path) -> WhisperWeights:
    """Read a Hugging Face `WhisperForConditionalGeneration` safetensors file (any float dtype)."""
    path = Path(path)
    hf = {k.removeprefix("model."): v for k, v in read_tensors(path).items()}
    n_enc = _count_hf_layers(hf, "encoder.layers.")
    n_dec = _count_hf_layers(hf, "decoder.layers.")
    tensors: dict[str, np.ndarray] = {}
    for name, source in _hf_table(n_enc, n_dec).items():
        if source not in hf:
            if source.endswith("k_proj.bias"):  # Whisper's key projections have no bias
                continue
            raise ModelError(f"{path} lacks the Whisper tensor {source!r} (not a Whisper model?)")
        tensors[name] = np.asarray(hf[source], dtype=np.float32)
    for stack, n in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n):
            for block in ("attn", "cross_attn") if stack == "decoder" else ("attn",):
                key = f"{stack}.layers.{i}.{block}.k.bias"
                tensors.setdefault(key, np.zeros(tensors[key[:-4] + "weight"].shape[0], np.float32))
    n_heads = _hf_heads(path)
    return WhisperWeights(_dims(tensors, n_enc, n_dec, n_heads), tensors, f"safetensors:{path.name}")


def _count_hf_layers(hf: dict, prefix: str) -> int:
    n = 0
    while f"{prefix}{n}.fc1.weight" in hf:
        n += 1
    if n == 0:
        raise ModelError(f"no {prefix}* tensors: not a Whisper model")
    return n


def _hf_heads(path: Path) -> int | None:
    config = path.with_name("config.json")
    if config.exists():
        try:
            return int(json.loads(config.read_text())["encoder_attention_heads"])
        except (ValueError, KeyError) as e:
            raise ModelError(f"unreadable Whisper config {config}: {e}") from e
    return None


def _hf_table(n_enc: int, n_dec: int) -> dict[str, str]:
    table = {
        "encoder.positions": "encoder.embed_positions.weight",
        "decoder.positions": "decoder.embed_positions.weight",
        "decoder.tokens": "decoder.embed_tokens.weight",
    }
    for part in ("weight", "bias"):
        table[f"encoder.conv1.{part}"] = f"encoder.conv1.{part}"
        table[f"encoder.conv2.{part}"] = f"encoder.conv2.{part}"
        table[f"encoder.ln_post.{part}"] = f"encoder.layer_norm.{part}"
        table[f"decoder.ln.{part}"] = f"decoder.layer_norm.{part}"
    for stack, n in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n):
            src, dst = f"{stack}.layers.{i}", f"{stack}.layers.{i}"
            blocks = {"attn": "self_attn"}
            if stack == "decoder":
                blocks["cross_attn"] = "encoder_attn"
            for block, hf_block in blocks.items():
                for part in ("weight", "bias"):
                    table[f"{dst}.{block}_ln.{part}"] = f"{src}.{hf_block}_layer_norm.{part}"
                    for name, hf_name in _HF_ATTENTION.items():
                        table[f"{dst}.{block}.{name}.{part}"] = f"{src}.{hf_block}.{hf_name}.{part}"
            for part in ("weight", "bias"):
                table[f"{dst}.mlp_ln.{part}"] = f"{src}.final_layer_norm.{part}"
                table[f"{dst}.mlp.fc1.{part}"] = f"{src}.fc1.{part}"
                table[f"{dst}.mlp.fc2.{part}"] = f"{src}.fc2.{part}"
    return table


def _dims(tensors: dict[str, np.ndarray], n_enc: int, n_dec: int, n_heads: int | None) -> WhisperDims:
    d_model = tensors["encoder.conv1.weight"].shape[0]
    return WhisperDims(
        n_mels=tensors["encoder.conv1.weight"].shape[1],
        n_audio_ctx=tensors["encoder.positions"].shape[0],
        n_text_ctx=tensors["decoder.positions"].shape[0],
        d_model=d_model,
        n_heads=n_heads or d_model // _HEAD_DIM,
        n_encoder_layers=n_enc,
        n_decoder_layers=n_dec,
        n_vocab=tensors["decoder.tokens"].shape[0],
    )
