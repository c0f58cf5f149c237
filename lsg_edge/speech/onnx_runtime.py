"""onnxruntime sessions for Whisper's encoder and decoder.

Shapes are those of the converted directory (`whisper_graphs`); the sessions come from
`lsg_edge.onnx_session` with the options every graph of lsg-edge gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..onnx_session import RuntimeOptions, open_session
from .whisper_graphs import ALIGNMENT_OUTPUT, DECODER_FILE, ENCODER_FILE

# RuntimeOptions is the options type of every onnxruntime graph; it is named here as the Whisper
# runtime's options too.
__all__ = ["RuntimeOptions", "EncodedAudio", "DecoderStep", "WhisperRuntime"]


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


@dataclass(frozen=True, eq=False)
class DecoderStep:
    """One decoder call's outputs (batch 1): `logits` float32 [n_new, n_vocab]; the extended caches
    `self_k`/`self_v` [n_layers, 1, n_heads, n_past + n_new, head_dim]; `attention` float32
    [n_new, n_alignment_heads, n_audio], the alignment heads' cross-attention, or None for a
    graph converted before the decoder returned it."""

    logits: np.ndarray
    self_k: np.ndarray
    self_v: np.ndarray
    attention: np.ndarray | None


class WhisperRuntime:
    """Loaded encoder and decoder sessions of one converted model directory."""

    def __init__(self, model_dir: Path, options: RuntimeOptions = RuntimeOptions()) -> None:
        self._sessions = {
            name: open_session(Path(model_dir) / name, options, "converted Whisper graph",
                               if_unloadable="corrupt? delete it to reconvert")
            for name in (ENCODER_FILE, DECODER_FILE)
        }
        decoder_inputs = {i.name: i.shape for i in self._sessions[DECODER_FILE].get_inputs()}
        self.n_layers, _, self.n_heads, _, self.head_dim = decoder_inputs["self_k"]
        self.n_vocab = self._sessions[DECODER_FILE].get_outputs()[0].shape[-1]
        self.n_mels = self._sessions[ENCODER_FILE].get_inputs()[0].shape[1]
        decoder_outputs = [o.name for o in self._sessions[DECODER_FILE].get_outputs()]
        self.has_alignment_attention = ALIGNMENT_OUTPUT in decoder_outputs
        self._outputs = ["logits", "new_self_k", "new_self_v"] + [ALIGNMENT_OUTPUT] * self.has_alignment_attention
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
        step = self.decode_step(tokens, self_k, self_v, audio)
        return step.logits, step.self_k, step.self_v

    def decode_batch(
        self, tokens: np.ndarray, self_k: np.ndarray, self_v: np.ndarray, cross_k: np.ndarray, cross_v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch of sequences at once (beam search): `tokens` int64 [batch, n_new], caches and
        cross keys/values with that batch dimension. Returns (logits [batch, n_new, n_vocab],
        new self_k, new self_v)."""
        feeds = {"tokens": tokens, "self_k": self_k, "self_v": self_v, "cross_k": cross_k, "cross_v": cross_v}
        logits, new_k, new_v = self._sessions[DECODER_FILE].run(self._outputs[:3], feeds)
        self.n_decoder_calls += 1
        return logits, new_k, new_v

    def decode_step(self, tokens: list[int], self_k: np.ndarray, self_v: np.ndarray, audio: EncodedAudio) -> DecoderStep:
        """`decode` with the alignment heads' attention (see `DecoderStep`)."""
        feeds = {
            "tokens": np.asarray([tokens], dtype=np.int64),
            "self_k": self_k,
            "self_v": self_v,
            "cross_k": audio.cross_k,
            "cross_v": audio.cross_v,
        }
        outputs = self._sessions[DECODER_FILE].run(self._outputs, feeds)
        self.n_decoder_calls += 1
        attention = outputs[3][0].transpose(1, 0, 2) if self.has_alignment_attention else None
        return DecoderStep(outputs[0][0], outputs[1], outputs[2], attention)
