"""The translation engine: one loaded model and a pool of contexts that its sessions borrow."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..assets import assemble_package_files, assemble_packaged_gguf, cached_model_path
from ..backends.llama import LlamaModel, LlamaOptions
from ..backends.pool import DEFAULT_MAX_CONTEXTS, ContextPair, ContextPool
from ..errors import ModelError, OptionsError
from ..manifest import DEFAULT_TEXT_MANIFEST, ModelManifest, load_manifest
from ..policy.options import PolicyOptions
from .prompt import TranslationPrompt
from .session import SessionOptions, TranslationSession

__all__ = ["TranslationEngine"]


class TranslationEngine:
    """Owns a GGUF model and a bounded pool of llama.cpp contexts over it; sessions borrow theirs.

    Example::

        with TranslationEngine.load() as engine:              # the embedded default model
            with engine.create_session("de", "en") as session:  # policy settings from the manifest
                for word in "Die Polizei sucht nach Zeugen .".split():
                    for commit in session.push(word):
                        print(commit.separator + commit.text, end="", flush=True)
                for commit in session.finish():
                    print(commit.separator + commit.text)

    Each session owns one pair of contexts from its creation until `close()`: the full prefix and
    the wait-1 baseline (LSG's; other policies leave it empty). A pair is reset when it is lent out,
    so a session's output never depends on other sessions. Sessions may run on different threads at
    once (one thread per session). The pool holds `max_contexts` pairs (default
    `DEFAULT_MAX_CONTEXTS`: four sessions); creating a session beyond that raises `EngineBusy`.
    """

    def __init__(self, model: LlamaModel, manifest: ModelManifest, max_contexts: int = DEFAULT_MAX_CONTEXTS) -> None:
        self.model = model
        self.manifest = manifest
        self.pool: ContextPool[ContextPair] = ContextPool(lambda: ContextPair(model.new_context(), model.new_context()),
                                                          ContextPair.reset, max_contexts, what="llama.cpp context pair")

    @classmethod
    def load(
        cls,
        manifest: str | Path | ModelManifest = DEFAULT_TEXT_MANIFEST,
        model_path: str | Path | None = None,
        max_contexts: int = DEFAULT_MAX_CONTEXTS,
        **llama_overrides: Any,
    ) -> "TranslationEngine":
        """Load a model by manifest (name, TOML path or object), optionally with another GGUF.

        `max_contexts` bounds the pool of context pairs (one per session); `llama_overrides` are fields
        of `LlamaOptions` (n_threads, n_gpu_layers, n_ctx_tokens, ...).
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
        return cls(LlamaModel(options), manifest, max_contexts)

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
        return TranslationSession(
            pool=self.pool,
            vocab=self.model.vocab,
            prompt=self.prompt(src, tgt, prompt_style),
            policy=policy or self.policy_options(src, tgt),
            options=options or SessionOptions(),
            n_ctx_tokens=self.model.options.n_ctx_tokens,
        )

    def prompt(self, src: str, tgt: str, prompt_style: str | None = None) -> TranslationPrompt:
        """The prompt this engine's sessions use for `src` → `tgt`: the manifest's style unless
        `prompt_style` is given; "auto" is the model's chat template where its GGUF has one."""
        chat_template = self.model.metadata.get("tokenizer.chat_template")
        style = prompt_style or self.manifest.prompt_style
        if style == "auto":
            style = "chat" if chat_template else "few-shot"
        return TranslationPrompt(self.model.vocab, src, tgt, style=style, chat_template=chat_template,
                                 bos_text=self.model.bos_text)

    @property
    def counters(self) -> dict[str, float]:
        """llama_decode calls, tokens evaluated, logits rows computed and seconds spent inside
        llama_decode so far, over every context of the pool."""
        contexts = [context for pair in self.pool.contexts() for context in (pair.full, pair.baseline)]
        return {
            "decode_calls": sum(c.n_decode_calls for c in contexts),
            "tokens": sum(c.n_tokens_evaluated for c in contexts),
            "logits_rows": sum(c.n_logits_rows for c in contexts),
            "decode_seconds": sum(c.decode_seconds for c in contexts),
        }

    def close(self) -> None:
        self.model.close()

    def __enter__(self) -> "TranslationEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
