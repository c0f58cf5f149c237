"""The model and policy flags shared by `lsg-edge translate`, `lsg-edge eval` and the SimulEval text
agent, and what they build: a `TranslationEngine` and its `PolicyOptions`.

Choices come from the library's own constants; a flag left unset (None) takes the manifest's value,
so the defaults live in one place. Errors name the flag, not the library's field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from ..backends.cpu_buffers import SETTINGS as EXTRA_BUFTS_SETTINGS
from ..device import DEVICES
from ..errors import ModelError, OptionsError
from ..manifest import PROMPT_STYLES
from ..policy.decision import KL_DIRECTIONS
from ..policy.options import POLICY_NAMES, PolicyOptions, policy_fields

__all__ = ["DEFAULT_SRC", "DEFAULT_TGT", "MIN_N_CTX", "load_engine", "policy_flags", "session_policy"]

# The language pair of the shipped evaluation setting (WMT15 De→En).
DEFAULT_SRC = "de"
DEFAULT_TGT = "en"
MIN_N_CTX = 64  # LlamaOptions' floor for n_ctx_tokens, checked here to name the flag


def policy_flags(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with the model and policy flags (`load_engine` and
    `session_policy` take them as keyword arguments)."""
    decorators = [
        click.option("--src", default=DEFAULT_SRC, show_default=True, help="Source language code."),
        click.option("--tgt", default=DEFAULT_TGT, show_default=True, help="Target language code."),
        click.option("--model", "model_path", type=click.Path(path_type=Path),
                     help="A GGUF model file (default: the embedded Gemma 3 270M)."),
        click.option("--manifest", help="Model manifest: a built-in name or a .toml path."),
        click.option("--prompt-style", type=click.Choice(list(PROMPT_STYLES)),
                     help="Prompt style (default: the manifest's)."),
        click.option("--lora", "lora_path", type=click.Path(path_type=Path),
                     help="A llama.cpp LoRA adapter GGUF applied at run time."),
        click.option("--policy", type=click.Choice(list(POLICY_NAMES)),
                     help="Read/write policy (default: the manifest's)."),
        click.option("--k", type=int, help="wait-k lag in source words."),
        click.option("--delta", type=float, help="LSG KL threshold δ (nats)."),
        click.option("--alpha", type=float, help="LSG confidence threshold α."),
        click.option("--low-bound", type=int, help="LSG range constraint L (source words)."),
        click.option("--top-bound", type=int, help="LSG range constraint U (source words)."),
        click.option("--kl-direction", type=click.Choice(list(KL_DIRECTIONS)),
                     help=f"{KL_DIRECTIONS[0]}: KL(P_cur‖P_base); {KL_DIRECTIONS[1]}: KL(P_base‖P_cur) as ictnlp/LSG."),
        click.option("--draft-tokens", type=int, help="Tokens drafted per decision."),
        click.option("--frames", type=int, help="AlignAtt's f (speech): encoder frames of 20 ms at the end of "
                                                "the audio a token's attention must not point into."),
        click.option("--threads", type=int, help="CPU threads for llama.cpp (default: the cores, up to 4)."),
        click.option("--device", type=click.Choice(list(DEVICES)),
                     help="Where the LLM runs (default: the manifest's, normally auto); auto = the GPU if "
                          "this llama.cpp build offloads, else the CPU. "
                          "A device the build lacks is an error, never a silent CPU fallback."),
        click.option("--n-gpu-layers", type=int,
                     help="Layers offloaded to the GPU (-1: all; default: all on cuda/metal, 0 on cpu)."),
        click.option("--n-ctx", type=int, help="Context length per llama.cpp context (tokens)."),
        click.option("--extra-bufts", type=click.Choice(list(EXTRA_BUFTS_SETTINGS)),
                     help="llama.cpp's AMX / repacked CPU buffers (default: $LSG_EDGE_EXTRA_BUFTS, else "
                          "auto: on unless a one-time probe finds that AMX crashes on this machine)."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def load_engine(model_path, manifest, lora_path, threads, device, n_gpu_layers, n_ctx, extra_bufts=None,
                max_contexts=None, **_: Any):
    """A TranslationEngine from the flags (unset ones: the manifest's values); `max_contexts`: the
    sessions it serves at once (default: the engine's)."""
    from ..manifest import DEFAULT_TEXT_MANIFEST, GENERIC_TEXT_MANIFEST
    from .engine import TranslationEngine

    if threads is not None and threads < 1:
        raise OptionsError(f"--threads must be at least 1, got {threads}")
    if n_ctx is not None and n_ctx < MIN_N_CTX:
        raise OptionsError(f"--n-ctx must be at least {MIN_N_CTX} tokens, got {n_ctx}")
    for flag, path in (("--model", model_path), ("--lora", lora_path)):
        if path is not None and path.is_dir():
            raise ModelError(f"{flag} {path} is a folder; give a GGUF file")
    if manifest is None:
        manifest = GENERIC_TEXT_MANIFEST if model_path else DEFAULT_TEXT_MANIFEST
    given = {"device": device, "n_threads": threads, "n_gpu_layers": n_gpu_layers, "n_ctx_tokens": n_ctx,
             "lora_path": lora_path, "extra_bufts": extra_bufts}
    overrides = {name: value for name, value in given.items() if value is not None}
    pool = {"max_contexts": max_contexts} if max_contexts is not None else {}
    return TranslationEngine.load(manifest, model_path=model_path, **overrides, **pool)


def session_policy(engine, src, tgt, **flags: Any) -> PolicyOptions:
    """PolicyOptions from the manifest's settings for the pair and the flags that were given."""
    return engine.policy_options(src, tgt, **policy_fields(**flags))
