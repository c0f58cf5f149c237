"""The audio encoder: float32 16 kHz audio → log-mel → ONNX graph → embeddings of the LLM's width.

Graph contract (what convert/export_audio_encoder.py writes, and what a user's own graph must offer):
  input  `mel`          float32 [1, n_mels, n_frames]  Whisper log-mel (lsg_edge.speech.features)
  input  `mel_frames`   int64 [1], optional            frames of `mel` that are audio (the rest is padding)
  output `embeddings`   float32 [1, n, n_embd]         projector folded in: n_embd = the LLM's width
  output `n_embeddings` int64 [1], optional            leading rows of `embeddings` that belong to the audio
An encoder with a fixed window (Qwen2-Audio: 3000 frames = 30 s) gets its input padded as its
feature extractor pads it: zero samples after the audio, then the log-mel of the whole window.
"""

from __future__ import annotations

import numpy as np

from ..backends.llama import EmbeddingBlock
from ..errors import InputError, ModelError
from ..speech.features import HOP_SAMPLES, SAMPLE_RATE_HZ, LogMel
from ..onnx_session import RuntimeOptions, open_session
from .manifest import EncoderSpec

__all__ = ["AudioEncoder"]

_MEL, _MEL_FRAMES, _EMBEDDINGS, _N_EMBEDDINGS = "mel", "mel_frames", "embeddings", "n_embeddings"


class AudioEncoder:
    """One loaded encoder graph and its log-mel front end (built once; calls are pure)."""

    def __init__(self, spec: EncoderSpec, runtime: RuntimeOptions = RuntimeOptions()) -> None:
        self.spec = spec
        self._session = open_session(spec.onnx_path, runtime, "audio encoder")
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        outputs = {o.name: o.shape for o in self._session.get_outputs()}
        where = spec.onnx_path
        if _MEL not in inputs or _EMBEDDINGS not in outputs:
            raise ModelError(f"audio encoder {where} must take '{_MEL}' and return '{_EMBEDDINGS}' "
                             f"(has inputs {sorted(inputs)}, outputs {sorted(outputs)})")
        n_mels = inputs[_MEL][1] if len(inputs[_MEL]) == 3 else None
        if isinstance(n_mels, int) and n_mels != spec.n_mels:
            raise ModelError(f"audio encoder {where} takes {n_mels} mel bins; the manifest says n_mels = {spec.n_mels}")
        width = outputs[_EMBEDDINGS][-1]
        # None when the graph leaves the width symbolic: it is then checked on the first output.
        self.n_embd: int | None = width if isinstance(width, int) else None
        self._takes_lengths = _MEL_FRAMES in inputs
        self._counts = _N_EMBEDDINGS in outputs
        self.log_mel = LogMel(spec.n_mels)
        self.n_calls = 0

    @property
    def max_samples(self) -> int:
        """Longest audio one call takes (a fixed window), or 0 for no limit."""
        return self.spec.n_frames * HOP_SAMPLES

    def __call__(self, audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> EmbeddingBlock:
        """Embeddings of float32 mono `audio` at 16 kHz, as one block [n, n_embd]."""
        if sample_rate_hz != self.spec.sample_rate_hz:
            raise InputError(f"audio at {sample_rate_hz} Hz for an encoder of {self.spec.sample_rate_hz} Hz "
                             "(resample it: lsg_edge.speech.audio_io.to_mono_16k)")
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise InputError(f"audio must be mono [n_samples], got shape {audio.shape}")
        n_valid = audio.size // HOP_SAMPLES
        if self.spec.n_frames:
            if audio.size > self.max_samples:
                raise InputError(f"{audio.size / SAMPLE_RATE_HZ:.1f} s of audio exceed the encoder's window "
                                 f"of {self.max_samples / SAMPLE_RATE_HZ:.1f} s")
            audio = np.concatenate([audio, np.zeros(self.max_samples - audio.size, np.float32)])
        mel = self.log_mel(audio)
        if self.spec.n_frames:
            mel = mel[:, : self.spec.n_frames]
        feeds = {_MEL: np.ascontiguousarray(mel[None], dtype=np.float32)}
        if self._takes_lengths:
            feeds[_MEL_FRAMES] = np.asarray([n_valid], dtype=np.int64)
        names = [_EMBEDDINGS, _N_EMBEDDINGS] if self._counts else [_EMBEDDINGS]
        results = self._session.run(names, feeds)
        self.n_calls += 1
        embeddings = results[0][0]
        if self._counts:
            embeddings = embeddings[: int(np.asarray(results[1]).reshape(-1)[0])]
        if self.n_embd is not None and embeddings.shape[-1] != self.n_embd:
            raise ModelError(f"audio encoder {self.spec.onnx_path} returned width {embeddings.shape[-1]}, "
                             f"declared {self.n_embd}")
        return EmbeddingBlock(embeddings)
