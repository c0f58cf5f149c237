"""The audio-LLM engine: one audio encoder and one GGUF LLM, shared by any number of sessions.

It implements the ASR engine protocol (`lsg_edge.speech.asr_engine.AsrEngine`), so the same
sessions, policies, VAD windows and loop guards run on an audio-LLM as on Whisper:

    with AudioLlmEngine.load("models/qwen2-audio.toml") as engine:
        with engine.create_session(AsrSessionOptions(language="fr", task="translate")) as session:
            for block in blocks:                    # float32 mono 16 kHz
                for commit in session.push(block): ...
            for commit in session.finish(): ...

Each decoder context is a llama.cpp context whose sequence is: prompt head, the audio's embedding
rows (the full prefix, or the wait-1 prefix of i+1 segments), prompt tail, committed and drafted
tokens; it keeps its KV cache for the longest common prefix (backends/llama.py). A context holds a
KV cache of n_ctx tokens, so the engine pools them (`backends.pool`, bounded, reset when lent): a
closed session's contexts serve the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..backends.llama import EmbeddingBlock, LlamaContext, LlamaModel, LlamaOptions, LlamaVocabulary
from ..backends.pool import ContextPool
from ..errors import ModelError, OptionsError
from ..policy.drafting import greedy_draft
from ..policy.options import PolicyOptions
from ..runtimes import import_onnxruntime
from ..speech.features import SAMPLE_RATE_HZ
from ..speech.loops import token_budget, trim_repetition
from ..speech.onnx_runtime import RuntimeOptions
from ..speech.session import AsrSession, AsrSessionOptions
from .encoder import AudioEncoder
from .manifest import AudioLlmManifest, load_audio_llm_manifest
from .prompt import AUDIO_SLOT_TOKEN, build_prompt, stop_tokens

__all__ = ["AudioLlmOptions", "AudioLlmEngine", "AudioLlmContext", "AudioLlmVocabulary"]

# Two per LSG session (full prefix and wait-1 baseline): four streams at once.
MAX_CONTEXTS = 8


@dataclass(frozen=True)
class AudioLlmOptions:
    """Runtime choices for an audio-LLM (the model itself comes from the manifest)."""

    n_threads: int = 0  # llama.cpp and onnxruntime threads; 0 = every core up to 4
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "metal", for both parts (lsg_edge.device)
    n_ctx_tokens: int = 0  # per llama.cpp context, tokens (audio rows count); 0 = the manifest's
    reuse_cache: bool = True  # keep KV caches across requests (False: recompute; for equivalence tests)
    f32_attention: bool = False  # F32 KV cache, no flash attention (parity checks)

    def __post_init__(self) -> None:
        if self.n_threads < 0:
            raise OptionsError(f"--threads must be positive, got {self.n_threads}")
        if self.n_ctx_tokens < 0:
            raise OptionsError(f"--n-ctx must be positive, got {self.n_ctx_tokens}")


class AudioLlmVocabulary:
    """The GGUF's tokenizer, with the manifest's stop tokens counted as end of generation."""

    def __init__(self, vocab: LlamaVocabulary, stops: frozenset[int]) -> None:
        self._vocab = vocab
        self._stops = stops
        self.n_vocab = vocab.n_vocab

    def tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        return self._vocab.tokenize(text, add_bos=add_bos)

    def piece(self, token: int) -> bytes:
        return self._vocab.piece(token)

    def text(self, tokens: Sequence[int]) -> str:
        return b"".join(self._vocab.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_end_of_generation(self, token: int) -> bool:
        return token in self._stops or self._vocab.is_end_of_generation(token)


class AudioLlmContext:
    """A llama.cpp context over prompts that hold AUDIO_SLOT_TOKEN; `set_audio` chooses the
    embeddings the slot stands for. Positions are those of the caller's token list (the slot
    counts as one), mapped onto the expanded sequence."""

    def __init__(self, context: LlamaContext) -> None:
        self._context = context
        self._rows: list | None = None

    def set_audio(self, audio: EmbeddingBlock) -> None:
        self._rows = audio.rows()

    def reset(self) -> None:
        """Forget the audio and the KV cache (a context lent to a new session)."""
        self._rows = None
        self._context.reset()

    def logits_at(self, tokens: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """See `base.ScoringContext.logits_at`."""
        if self._rows is None:
            raise RuntimeError("set_audio() before logits_at()")
        tokens = list(tokens)
        try:
            slot = tokens.index(AUDIO_SLOT_TOKEN)
        except ValueError:
            raise ValueError("the token list holds no audio slot (a prompt from AudioLlmEngine.prompt)") from None
        shift = len(self._rows) - 1
        sequence = tokens[:slot] + self._rows + tokens[slot + 1 :]
        return self._context.logits_at(sequence, [p + shift if p >= slot else p for p in positions])


class AudioLlmEngine:
    """Resources of one audio-LLM (see module docstring); `close()` frees them, `with` works."""

    def __init__(self, manifest: AudioLlmManifest, options: AudioLlmOptions = AudioLlmOptions()) -> None:
        self.manifest = manifest
        self.options = options
        # onnxruntime before llama.cpp, whatever fails below: the other order crashes CUDA builds.
        import_onnxruntime()
        # The encoder first: a missing or malformed graph fails before the (large) GGUF is mapped.
        self.encoder = AudioEncoder(manifest.encoder, RuntimeOptions(n_threads=options.n_threads, device=options.device))
        self.llm = LlamaModel(LlamaOptions(
            model_path=manifest.gguf_path,
            n_ctx_tokens=options.n_ctx_tokens or manifest.n_ctx_tokens,
            n_threads=options.n_threads,
            device=options.device,
            reuse_cache=options.reuse_cache,
            f32_attention=options.f32_attention,
        ))
        try:
            self._check_width(self.encoder.n_embd)
            self.vocab = AudioLlmVocabulary(self.llm.vocab, stop_tokens(manifest.prompt, self.llm.vocab))
        except Exception:
            self.llm.close()
            raise
        # What drafts are capped by (half of it); the audio rows count against the same llama.cpp
        # context, which raises ContextOverflow if a window does not fit.
        self.n_text_ctx = self.llm.options.n_ctx_tokens
        # An LSG session holds two (full prefix, wait-1 baseline), each a KV cache of n_ctx tokens;
        # reset when lent, so that a session's output never depends on earlier ones.
        self.pool: ContextPool[AudioLlmContext] = ContextPool(lambda: AudioLlmContext(self.llm.new_context()),
                                                              AudioLlmContext.reset, MAX_CONTEXTS, what="audio-LLM context")

    @classmethod
    def load(cls, manifest: str | Path | AudioLlmManifest, options: AudioLlmOptions = AudioLlmOptions(),
             **overrides: Any) -> "AudioLlmEngine":
        """Load the models a manifest (a path, or a loaded one) names; `overrides` set option fields."""
        if not isinstance(manifest, AudioLlmManifest):
            manifest = load_audio_llm_manifest(manifest)
        if overrides:
            options = AudioLlmOptions(**{**options.__dict__, **overrides})
        return cls(manifest, options)

    def _check_width(self, width: int | None) -> None:
        if width is not None and width != self.llm.n_embd:
            raise ModelError(f"audio encoder {self.manifest.encoder.onnx_path} gives embeddings of width {width}, "
                             f"but the LLM {self.manifest.gguf_path} has width {self.llm.n_embd} (mismatched pair?)")

    # --- the ASR engine protocol -------------------------------------------------------------

    def encode(self, audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> EmbeddingBlock:
        """Audio embeddings of float32 mono `audio`, [n, n_embd]."""
        block = self.encoder(audio, sample_rate_hz)
        self._check_width(block.n_embd)
        return block

    def acquire_context(self, prompt: list[int]) -> AudioLlmContext:
        """An idle pooled context, or a new one (prompts differ only in tokens: any context serves)."""
        if prompt.count(AUDIO_SLOT_TOKEN) != 1:
            raise ValueError("an audio-LLM prompt holds the audio slot exactly once")
        return self.pool.acquire()

    def release_context(self, context: AudioLlmContext) -> None:
        self.pool.release(context)

    @property
    def n_contexts(self) -> int:
        """llama.cpp contexts created so far (in use or idle)."""
        return self.pool.stats.created

    def create_session(self, options: AsrSessionOptions | None = None) -> AsrSession:
        """A new audio stream with the manifest's policy settings unless `options` are given
        (close it, or use `with`, to give its contexts back)."""
        if options is None:
            options = AsrSessionOptions(policy=self.policy_options())
            if self.manifest.segment_ms is not None:
                options = replace(options, segment_ms=self.manifest.segment_ms)
        return AsrSession(self, options)

    def prompt(self, language: str | None, task: str, previous: Sequence[int] = ()) -> list[int]:
        """Prompt tokens for `task` ("transcribe", "translate", or the manifest's own), spoken `language`
        (`previous` text is not given to an audio-LLM: its prompt template has no place for it)."""
        return build_prompt(self.manifest.prompt, self.vocab, language, task)

    def policy_options(self, **overrides: Any) -> PolicyOptions:
        """The manifest's recommended policy settings, then `overrides`."""
        return self.manifest.policy_options(**overrides)

    def transcribe(self, audio: np.ndarray, language: str | None = None, task: str = "transcribe") -> str:
        """Greedy offline output for one window of `audio` (float32, 16 kHz)."""
        prompt = self.prompt(language, task)
        context = self.acquire_context(prompt)
        try:
            context.set_audio(self.encode(audio))
            budget = min(self.n_text_ctx // 2, token_budget(audio.size, SAMPLE_RATE_HZ))
            draft = greedy_draft(context, prompt, budget, self.vocab.is_end_of_generation)
        finally:
            self.release_context(context)
        return self.vocab.text(trim_repetition(draft.tokens)).strip()

    def close(self) -> None:
        self.llm.close()

    def __enter__(self) -> "AudioLlmEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
