"""A tiny random-weight audio-LLM for the audio_llm tests: an encoder ONNX graph built with the
`onnx` package, its independent NumPy forward, a tiny GGUF LLM (tests/helpers/tiny_models.py), and a
manifest tying them together.

Encoder: log-mel [1, n_mels, T] → Conv1d (kernel = stride = 4 frames) → tanh → per-row linear
+ a linear of the time-mean (so every row depends on all the audio, as in Whisper's bidirectional
encoder) → embeddings [1, T // 4, d_model]; `n_embeddings` = mel_frames // 4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tests.helpers.tiny_models import make_hf_weights, tiny_spec, write_tiny_gguf

N_MELS = 16
N_HIDDEN = 24
FRAMES_PER_ROW = 4  # mel frames (10 ms) per embedding row: 40 ms, as Qwen2-Audio


def encoder_weights(d_model: int, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv_w": (rng.standard_normal((N_HIDDEN, N_MELS, FRAMES_PER_ROW)) / np.sqrt(N_MELS * FRAMES_PER_ROW)).astype(np.float32),
        "conv_b": (0.1 * rng.standard_normal(N_HIDDEN)).astype(np.float32),
        "out_w": (rng.standard_normal((N_HIDDEN, d_model)) / np.sqrt(N_HIDDEN)).astype(np.float32),
        "out_b": (0.1 * rng.standard_normal(d_model)).astype(np.float32),
        "mean_w": (rng.standard_normal((N_HIDDEN, d_model)) / np.sqrt(N_HIDDEN)).astype(np.float32),
    }


def write_encoder_onnx(weights: dict[str, np.ndarray], path: Path, with_counts: bool = True) -> Path:
    """The encoder graph (module docstring), opset 17."""
    d_model = weights["out_w"].shape[1]
    nodes = [
        helper.make_node("Conv", ["mel", "conv_w", "conv_b"], ["conv"], kernel_shape=[FRAMES_PER_ROW],
                         strides=[FRAMES_PER_ROW]),
        helper.make_node("Tanh", ["conv"], ["hidden_t"]),
        helper.make_node("Transpose", ["hidden_t"], ["hidden"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["hidden", "out_w"], ["rows"]),
        helper.make_node("ReduceMean", ["hidden"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("MatMul", ["mean", "mean_w"], ["global"]),
        helper.make_node("Add", ["rows", "global"], ["summed"]),
        helper.make_node("Add", ["summed", "out_b"], ["embeddings"]),
    ]
    inputs = [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, N_MELS, "n_frames"])]
    outputs = [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, "n_rows", d_model])]
    initializers = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    if with_counts:
        inputs.append(helper.make_tensor_value_info("mel_frames", TensorProto.INT64, [1]))
        outputs.append(helper.make_tensor_value_info("n_embeddings", TensorProto.INT64, [1]))
        initializers.append(numpy_helper.from_array(np.array([FRAMES_PER_ROW], np.int64), "frames_per_row"))
        nodes.append(helper.make_node("Div", ["mel_frames", "frames_per_row"], ["n_embeddings"]))
    graph = helper.make_graph(nodes, "tiny_audio_encoder", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def reference_encoder(weights: dict[str, np.ndarray], mel: np.ndarray, n_valid_frames: int | None = None) -> np.ndarray:
    """float64 embeddings [n, d_model] of log-mel `mel` [N_MELS, T], written without ONNX."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    n_rows = mel.shape[1] // FRAMES_PER_ROW
    groups = mel[:, : n_rows * FRAMES_PER_ROW].astype(np.float64).reshape(N_MELS, n_rows, FRAMES_PER_ROW)
    hidden = np.tanh(np.einsum("hmk,mtk->th", w["conv_w"], groups) + w["conv_b"])
    out = hidden @ w["out_w"] + hidden.mean(axis=0, keepdims=True) @ w["mean_w"] + w["out_b"]
    if n_valid_frames is not None:
        out = out[: n_valid_frames // FRAMES_PER_ROW]
    return out


def prefer_words(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Zero the output rows of the 256 byte tokens (ids 3…258): a random model otherwise writes
    mostly bytes — no word boundaries, so LSG would have no whole word to commit."""
    name = "lm_head.weight" if "lm_head.weight" in weights else "model.embed_tokens.weight"
    table = weights[name].copy()
    table[3:259] = 0.0
    return {**weights, name: table}


MANIFEST = """
[model]
kind = "audio-llm"
name = "tiny-audio-llm"

[weights]
gguf = "llm.gguf"

[encoder]
onnx = "encoder.onnx"
sample_rate_hz = {rate}
n_mels = {n_mels}
n_frames = {n_frames}

[prompt]
template = "{template}"
add_bos = true
stop = []

[prompt.instructions]
transcribe = "c d"
translate = "e f g"

[runtime]
n_ctx_tokens = 256

[policy.default]
delta = 7.0
alpha = 0.5
"""
# Words of the tiny SentencePiece vocabulary ("▁a", "▁b", …): every word is one token.
TEMPLATE = "a b{audio}h i {instruction} j"


def write_tiny_audio_llm(folder: Path, arch: str = "qwen2", *, n_frames: int = 0, rate: int = 16_000,
                         template: str = TEMPLATE, encoder_width: int | None = None,
                         with_counts: bool = True) -> tuple[Path, dict, dict, object]:
    """Write llm.gguf, encoder.onnx and manifest.toml into `folder`.

    Returns (manifest path, LLM weights in the HF layout, encoder weights, TinySpec)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = tiny_spec(arch)
    llm = prefer_words(make_hf_weights(spec))
    write_tiny_gguf(spec, llm, folder / "llm.gguf")
    enc = encoder_weights(encoder_width or spec.d_model)
    write_encoder_onnx(enc, folder / "encoder.onnx", with_counts=with_counts)
    text = MANIFEST.format(rate=rate, n_mels=N_MELS, n_frames=n_frames, template=template.replace("\n", "\\n"))
    (folder / "manifest.toml").write_text(text, encoding="utf-8")
    return folder / "manifest.toml", llm, enc, spec
