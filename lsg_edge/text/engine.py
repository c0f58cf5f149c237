"""The translation engine: one loaded model and its two contexts, shared by sessions."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..assets import assemble_package_files, assemble_packaged_gguf, cached_model_path
from ..backends.llama import LlamaContext, LlamaModel, LlamaOptions
from ..errors import ModelError, OptionsError
from ..manifest import DEFAULT_TEXT_MANIFEST, ModelManifest, load_manifest
from ..policy.options import PolicyOptions
from .prompt import TranslationPrompt
from .session import SessionOptions, TranslationSession

__all__ = ["TranslationEngine"]


class TranslationEngine:
    """Owns a GGUF model and two llama.cpp contexts over it: the full prefix and the wait-1 baseline.

    Example::

        with TranslationEngine.load() as engine:              # the embedded default model
            session = engine.create_session("de", "en")       # policy settings from the manifest
            for word in "Die Polizei sucht nach Zeugen .".split():
                for commit in session.push(word):
                    print(commit.separator + commit.text, end="", flush=True)
            for commit in session.finish():
                print(commit.separator + commit.text)

    Sessions created from one engine share its contexts; each context keeps whatever prefix it last
    evaluated, so interleaving sessions is correct but re-evaluates more.

    Thread safety: sessions of one engine may be used from different threads (one thread per
    session). A llama.cpp context is not thread-safe, so each session's `push` / `finish` holds the
    engine's lock: calls run one at a time, in whatever order the threads make them, and give the
    outputs they give serially. For parallel throughput, load one engine per thread.
    """

    def __init__(self, model: LlamaModel, manifest: ModelManifest) -> None:
        self.model = model
        self.manifest = manifest
        self.full_context = model.new_context()
        self._baseline_context: LlamaContext | None = None
        self.lock = threading.RLock()  # held by each session call that uses the contexts

    @property
    def baseline_context(self) -> LlamaContext:
        """The wait-1 context, created on first use: wait-k and offline never need it, and a
        context's KV cache is memory an edge device may not have to spare."""
        if self._baseline_context is None:
            self._baseline_context = self.model.new_context()
        return self._baseline_context

    @classmethod
    def load(
        cls,
        manifest: str | Path | ModelManifest = DEFAULT_TEXT_MANIFEST,
        model_path: str | Path | None = None,
        **llama_overrides: Any,
    ) -> "TranslationEngine":
        """Load a model by manifest (name, TOML path or object), optionally with another GGUF.

        `llama_overrides` are fields of `LlamaOptions` (n_threads, n_gpu_layers, n_ctx_tokens, ...).
        """
        if not isinstance(manifest, ModelManifest):
            manifest = load_manifest(manifest)
        if model_path is not None:
            manifest = manifest.with_gguf(Path(model_path))
        path = resolve_gguf(manifest)
        options = LlamaOptions(model_path=path, n_ctx_tokens=manifest.n_ctx_tokens, device=manifest.device,
                               lora_path=resolve_runtime_lora(manifest, path))
        try:
            options = replace(options, **llama_overrides)
        except TypeError as e:
            raise OptionsError(f"unknown llama option: {e}") from e
        return cls(LlamaModel(options), manifest)

    def policy_options(self, src: str, tgt: str, **overrides: Any) -> PolicyOptions:
        """The manifest's recommended settings for this pair, with `overrides` (None values ignored)."""
        settings = self.manifest.policy_settings(src, tgt)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        known = set(PolicyOptions.__dataclass_fields__)
        unknown = set(settings) - known
        if unknown:
            raise OptionsError(f"unknown policy settings: {', '.join(sorted(unknown))}")
        return PolicyOptions(**settings)

    def create_session(
        self,
        src: str,
        tgt: str,
        policy: PolicyOptions | None = None,
        options: SessionOptions | None = None,
        prompt_style: str | None = None,
    ) -> TranslationSession:
        """A new stream translating `src` → `tgt` (language codes, e.g. "de", "en")."""
        vocab = self.model.vocab
        chat_template = self.model.metadata.get("tokenizer.chat_template")
        style = prompt_style or self.manifest.prompt_style
        if style == "auto":
            style = "chat" if chat_template else "few-shot"
        prompt = TranslationPrompt(
            vocab,
            src,
            tgt,
            style=style,
            chat_template=chat_template,
            bos_text=self.model.bos_text,
        )
        return TranslationSession(
            full=self.full_context,
            baseline=_Deferred(lambda: self.baseline_context),
            vocab=vocab,
            prompt=prompt,
            policy=policy or self.policy_options(src, tgt),
            options=options or SessionOptions(),
            n_ctx_tokens=self.model.options.n_ctx_tokens,
            lock=self.lock,
        )

    @property
    def counters(self) -> dict[str, int]:
        """llama_decode calls, tokens evaluated and logits rows computed so far, per context."""
        baseline = self._baseline_context
        return {
            "full_decode_calls": self.full_context.n_decode_calls,
            "full_tokens": self.full_context.n_tokens_evaluated,
            "full_logits_rows": self.full_context.n_logits_rows,
            "baseline_decode_calls": baseline.n_decode_calls if baseline else 0,
            "baseline_tokens": baseline.n_tokens_evaluated if baseline else 0,
            "baseline_logits_rows": baseline.n_logits_rows if baseline else 0,
        }

    def close(self) -> None:
        with self.lock:
            self.model.close()

    def __enter__(self) -> "TranslationEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Deferred:
    """A scoring context created the first time it is asked for logits."""

    def __init__(self, create) -> None:
        self._create = create

    def logits_at(self, tokens, positions):
        return self._create().logits_at(tokens, positions)


def resolve_gguf(manifest: ModelManifest) -> Path:
    """The GGUF file of a manifest, assembling packaged weights (and merging a packaged adapter into
    them, for a `merged_file` manifest) into the cache on first use."""
    if manifest.gguf_path is not None:
        base = manifest.gguf_path
    elif manifest.package_module and manifest.package_file:
        base = assemble_packaged_gguf(manifest.package_module, manifest.package_file)
    elif manifest.package_parts and manifest.package_file:
        base = assemble_package_files(
            cached_model_path(manifest.package_file), manifest.package_parts,
            manifest.package_install or "lsg-edge", f"the model {manifest.name}", sha256=manifest.package_sha256,
        )
    else:
        raise ModelError(f"manifest {manifest.name!r} names no weights ([weights] gguf, package_module or parts)")
    if manifest.adapter is None or manifest.merged_file is None:
        return base
    from ..adapters import merged_adapter_gguf, packaged_adapter_dir

    adapter = packaged_adapter_dir(manifest.adapter)
    return merged_adapter_gguf(base, adapter, cached_model_path(manifest.merged_file), manifest.merged_type)


def resolve_runtime_lora(manifest: ModelManifest, base: Path) -> Path | None:
    """The llama.cpp LoRA GGUF a `lora_file` manifest applies to `base` at run time (built into the
    cache from its packaged adapter on first use), or None."""
    if manifest.adapter is None or manifest.lora_file is None:
        return None
    from ..adapters import packaged_adapter_dir, runtime_adapter_gguf
    from ..assets import cached_model_path

    return runtime_adapter_gguf(base, packaged_adapter_dir(manifest.adapter), cached_model_path(manifest.lora_file))
