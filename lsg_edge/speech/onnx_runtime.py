"""onnxruntime sessions for Whisper's encoder and decoder (onnxruntime itself comes from lsg_edge.runtimes).

Shapes are those of `onnx_export` (see its docstring). Sessions are created with explicit options:
a fixed thread count (the default grabs every core and fights the audio thread), full graph
optimisation, and onnxruntime's own logging at errors only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..device import check_onnx_providers, onnx_providers
from ..errors import ModelError, OptionsError
from ..runtimes import import_onnxruntime
from .onnx_export import DECODER_FILE, ENCODER_FILE

__all__ = ["RuntimeOptions", "EncodedAudio", "WhisperRuntime", "quantize_int8", "open_session"]


@dataclass(frozen=True)
class RuntimeOptions:
    """How onnxruntime runs the graphs."""

    n_threads: int = 0  # intra-op threads; 0 = every core up to 4
    # "auto" | "cpu" | "cuda" | "metal": execution providers chosen by lsg_edge.device,
    # an error when the installed onnxruntime lacks the device — never a silent CPU fallback.
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.n_threads < 0:
            raise OptionsError(f"--threads must be positive, got {self.n_threads}")


@dataclass(frozen=True, eq=False)
class EncodedAudio:
    """One encoder output, ready for the decoder's cross-attention.

    `cross_k` float32 [n_layers, 1, n_heads, head_dim, n_audio]; `cross_v` [n_layers, 1, n_heads,
    n_audio, head_dim]; `n_frames` mel frames encoded (10 ms each, padding included). Compared by
    identity: a decoder state is valid for exactly one EncodedAudio.
    """

    cross_k: np.ndarray
    cross_v: np.ndarray
    n_frames: int


class WhisperRuntime:
    """Loaded encoder and decoder sessions of one converted model directory."""

    def __init__(self, model_dir: Path, options: RuntimeOptions = RuntimeOptions()) -> None:
        ort = import_onnxruntime()
        threads = options.n_threads or max(1, min(4, os.cpu_count() or 1))
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = threads
        session_options.inter_op_num_threads = 1
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session_options.log_severity_level = 3
        providers = onnx_providers(options.device)  # provider choice lives in lsg_edge.device
        self._sessions = {}
        for name in (ENCODER_FILE, DECODER_FILE):
            path = Path(model_dir) / name
            if not path.exists():
                raise ModelError(f"converted Whisper graph missing: {path}")
            try:
                self._sessions[name] = ort.InferenceSession(
                    str(path), sess_options=session_options, providers=providers
                )
            except Exception as e:  # onnxruntime raises its own exception types for bad files
                raise ModelError(f"onnxruntime cannot load {path} (corrupt? delete it to reconvert): {e}") from e
            # onnxruntime only warns when a GPU provider fails to start; make that an error.
            check_onnx_providers(providers, self._sessions[name].get_providers(), f"Whisper {name}")
        decoder_inputs = {i.name: i.shape for i in self._sessions[DECODER_FILE].get_inputs()}
        self.n_layers, _, self.n_heads, _, self.head_dim = decoder_inputs["self_k"]
        self.n_vocab = self._sessions[DECODER_FILE].get_outputs()[0].shape[-1]
        self.n_mels = self._sessions[ENCODER_FILE].get_inputs()[0].shape[1]
        self.n_encoder_calls = 0
        self.n_decoder_calls = 0

    def encode(self, mel: np.ndarray) -> EncodedAudio:
        """Encode one log-mel float32 [n_mels, n_frames] (n_frames even, ≤ 3000)."""
        mel = np.ascontiguousarray(mel[None], dtype=np.float32)
        _, cross_k, cross_v = self._sessions[ENCODER_FILE].run(None, {"mel": mel})
        self.n_encoder_calls += 1
        return EncodedAudio(cross_k, cross_v, mel.shape[-1])

    def encoder_output(self, mel: np.ndarray) -> np.ndarray:
        """The encoder's hidden states float32 [1, n_frames/2, d_model] (for parity checks)."""
        mel = np.ascontiguousarray(mel[None], dtype=np.float32)
        return self._sessions[ENCODER_FILE].run(["encoder_output"], {"mel": mel})[0]

    def empty_cache(self) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.n_layers, 1, self.n_heads, 0, self.head_dim)
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def decode(
        self, tokens: list[int], self_k: np.ndarray, self_v: np.ndarray, audio: EncodedAudio
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Extend a self-attention cache by `tokens`.

        Returns (logits float32 [len(tokens), n_vocab], new self_k, new self_v); the caches are
        [n_layers, 1, n_heads, n_past + len(tokens), head_dim].
        """
        feeds = {
            "tokens": np.asarray([tokens], dtype=np.int64),
            "self_k": self_k,
            "self_v": self_v,
            "cross_k": audio.cross_k,
            "cross_v": audio.cross_v,
        }
        logits, new_k, new_v = self._sessions[DECODER_FILE].run(None, feeds)
        self.n_decoder_calls += 1
        return logits[0], new_k, new_v


def quantize_int8(source_dir: Path, target_dir: Path) -> None:
    """Write int8 dynamically quantized copies of the float32 graphs of `source_dir` (MatMul and
    Gemm weights become int8 with per-tensor scales; activations are quantized per call). About
    1.5× faster on CPU; the token embedding stays float32 for the lookup."""
    import logging

    import_onnxruntime()  # the package first, in the one place that orders it
    from onnxruntime.quantization import QuantType, quantize_dynamic

    Path(target_dir).mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns on the root logger about optional preprocessing
    try:
        _quantize_files(quantize_dynamic, QuantType, Path(source_dir), Path(target_dir))
    finally:
        root.setLevel(level)


def _quantize_files(quantize_dynamic, QuantType, source_dir: Path, target_dir: Path) -> None:
    for name in (ENCODER_FILE, DECODER_FILE):
        partial = Path(target_dir) / (name + ".partial")
        try:
            quantize_dynamic(str(Path(source_dir) / name), str(partial), weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gemm"])
        except Exception as e:  # the quantizer raises assorted exception types
            partial.unlink(missing_ok=True)
            raise ModelError(f"int8 quantization of {source_dir / name} failed: {e}") from e
        os.replace(partial, Path(target_dir) / name)


def open_session(path: Path, options: RuntimeOptions, what: str):
    """An onnxruntime InferenceSession for one more graph (an audio-LLM's audio encoder),
    created with the same explicit options as Whisper's: fixed threads, full graph optimisation,
    errors-only logging, providers from lsg_edge.device and checked after creation. `what` names
    the graph in error messages."""
    ort = import_onnxruntime()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} not found: {path}")
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = options.n_threads or max(1, min(4, os.cpu_count() or 1))
    session_options.inter_op_num_threads = 1
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session_options.log_severity_level = 3
    providers = onnx_providers(options.device)
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"onnxruntime cannot load the {what} {path}: {e}") from e
    check_onnx_providers(providers, session.get_providers(), what)
    return session
