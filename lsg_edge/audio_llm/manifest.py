"""The audio-LLM manifest: which encoder graph, which GGUF, how to prompt, which policy settings.

The fields are documented, with comments, in models/qwen2-audio.toml. Paths are expanded (`~`) and
resolved against the manifest's folder. Everything that can be checked without loading a model
is checked here, with one-line `ModelError`s that name the file and the key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..speech.features import SAMPLE_RATE_HZ
from ..policy.options import SPEECH_POLICY_DEFAULTS, PolicyOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["EncoderSpec", "PromptSpec", "AudioLlmManifest", "load_audio_llm_manifest", "AUDIO_SLOT", "MANIFEST_KIND"]

MANIFEST_KIND = "audio-llm"  # [model] kind of an audio-LLM manifest
AUDIO_SLOT = "{audio}"  # where the audio embeddings go in the prompt template
INSTRUCTION_SLOT = "{instruction}"  # where the task's instruction goes (optional)
# [policy.default] keys: the policy's options, and the source element's length.
_POLICY_KEYS = frozenset(PolicyOptions.__dataclass_fields__) | {"segment_ms"}


@dataclass(frozen=True)
class EncoderSpec:
    """The ONNX audio encoder (log-mel → embeddings; see encoder.py for the graph contract)."""

    onnx_path: Path
    sample_rate_hz: int = SAMPLE_RATE_HZ  # audio rate the encoder was trained on, Hz
    n_mels: int = 128  # mel bins of its log-mel input
    n_frames: int = 3000  # mel frames (10 ms) of its fixed input window; 0 = any length (the audio's own)


@dataclass(frozen=True)
class PromptSpec:
    """The prompt around the audio: `template` holds AUDIO_SLOT once, INSTRUCTION_SLOT at most once."""

    template: str
    instructions: dict[str, str]  # task → instruction text; may use {language} and {target}
    target_language: str = "en"  # {target} of the instructions (speech translation), a language code
    stop: tuple[str, ...] = ()  # texts of single tokens that end the output, besides the GGUF's EOG tokens
    add_bos: bool = True  # put the GGUF's BOS token first (if its tokenizer adds one)


@dataclass(frozen=True)
class AudioLlmManifest:
    """One audio-LLM: encoder, LLM, prompt, runtime size and recommended policy settings."""

    name: str
    gguf_path: Path
    encoder: EncoderSpec
    prompt: PromptSpec
    source: str  # the manifest file, for messages
    description: str = ""
    n_ctx_tokens: int = 2048  # per llama.cpp context (two are used), tokens
    policy: dict[str, Any] = field(default_factory=dict)  # PolicyOptions fields and segment_ms

    def policy_options(self, **overrides: Any) -> PolicyOptions:
        """Policy options: the speech defaults, the manifest's settings, then `overrides`."""
        settings = {**self.policy, **overrides}
        settings.pop("segment_ms", None)
        return replace(SPEECH_POLICY_DEFAULTS, **settings)

    @property
    def segment_ms(self) -> int | None:
        """The manifest's source element length, ms (None: the session default)."""
        return self.policy.get("segment_ms")


def load_audio_llm_manifest(path: str | Path) -> AudioLlmManifest:
    """Read and check an audio-LLM manifest TOML file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"audio-LLM manifest not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"manifest {path} is not valid TOML: {e}") from e
    try:
        return _from_toml(data, path)
    except KeyError as e:
        raise ModelError(f"manifest {path} lacks the key {e.args[0]!r}") from e
    except (TypeError, ValueError) as e:
        raise ModelError(f"manifest {path}: {e}") from e


def _from_toml(data: dict[str, Any], path: Path) -> AudioLlmManifest:
    model = data["model"]
    if model.get("kind") != MANIFEST_KIND:
        raise ModelError(f"manifest {path}: [model] kind must be {MANIFEST_KIND!r}, got {model.get('kind')!r}")
    encoder = data["encoder"]
    spec = EncoderSpec(
        onnx_path=_resolve(encoder["onnx"], path),
        sample_rate_hz=int(encoder.get("sample_rate_hz", SAMPLE_RATE_HZ)),
        n_mels=int(encoder.get("n_mels", 128)),
        n_frames=int(encoder.get("n_frames", 3000)),
    )
    if spec.sample_rate_hz != SAMPLE_RATE_HZ:
        # The log-mel front end (lsg_edge.speech.features) is Whisper's, at 16 kHz only.
        raise ModelError(f"manifest {path}: [encoder] sample_rate_hz is {spec.sample_rate_hz}, but the audio "
                         f"front end produces {SAMPLE_RATE_HZ} Hz log-mels")
    if spec.n_mels < 1 or spec.n_frames < 0:
        raise ModelError(f"manifest {path}: [encoder] n_mels must be positive and n_frames non-negative")
    prompt = data["prompt"]
    template = prompt["template"]
    if template.count(AUDIO_SLOT) != 1:
        raise ModelError(f"manifest {path}: [prompt] template must hold the audio slot {AUDIO_SLOT} exactly once "
                         f"(found {template.count(AUDIO_SLOT)})")
    if template.count(INSTRUCTION_SLOT) > 1:
        raise ModelError(f"manifest {path}: [prompt] template holds {INSTRUCTION_SLOT} more than once")
    instructions = {str(k): str(v) for k, v in prompt.get("instructions", {}).items()}
    if INSTRUCTION_SLOT in template and not instructions:
        raise ModelError(f"manifest {path}: [prompt] template has {INSTRUCTION_SLOT} but [prompt.instructions] is empty")
    policy = dict(data.get("policy", {}).get("default", {}))
    unknown = sorted(set(policy) - _POLICY_KEYS)
    if unknown:
        raise ModelError(f"manifest {path}: unknown [policy.default] keys {unknown} (known: {sorted(_POLICY_KEYS)})")
    manifest = AudioLlmManifest(
        name=model["name"],
        description=model.get("description", ""),
        gguf_path=_resolve(data["weights"]["gguf"], path),
        encoder=spec,
        prompt=PromptSpec(
            template=template,
            instructions=instructions,
            target_language=str(prompt.get("target_language", "en")),
            stop=tuple(str(s) for s in prompt.get("stop", ())),
            add_bos=bool(prompt.get("add_bos", True)),
        ),
        source=str(path),
        n_ctx_tokens=int(data.get("runtime", {}).get("n_ctx_tokens", 2048)),
        policy=policy,
    )
    manifest.policy_options()  # bad values fail here, naming the flag, not at the first audio
    return manifest


def _resolve(value: str, manifest: Path) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else manifest.parent / p
