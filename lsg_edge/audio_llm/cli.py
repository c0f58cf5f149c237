"""What `lsg-edge asr --manifest X.toml` needs from this package (the asr command stays in
lsg_edge/speech/cli.py; its hook calls `load_for_asr`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from ..policy.options import POLICY_FLAGS
from ..speech.session import AsrSessionOptions
from .engine import AudioLlmEngine, AudioLlmOptions

__all__ = ["load_for_asr"]

# PolicyOptions field → the asr command's parameter that sets it.
_POLICY_FLAGS = {field: flag for flag, field in POLICY_FLAGS.items()}


def load_for_asr(manifest: Path, options: AsrSessionOptions, threads: int, ctx: click.Context | None = None,
                 device: str = "auto") -> tuple[AudioLlmEngine, AsrSessionOptions]:
    """The engine a manifest names (on `device`), and the session options with the manifest's
    recommended policy settings in place of every policy flag the user did not give on the command
    line."""
    engine = AudioLlmEngine.load(manifest, AudioLlmOptions(n_threads=threads, device=device))
    ctx = ctx or click.get_current_context(silent=True)
    given = {}
    for field, parameter in _POLICY_FLAGS.items():
        source = ctx.get_parameter_source(parameter) if ctx is not None else None
        if source is not None and source != click.core.ParameterSource.DEFAULT:
            given[field] = getattr(options.policy, field)
    options = replace(options, policy=engine.policy_options(**given))
    segment_source = ctx.get_parameter_source("segment_ms") if ctx is not None else None
    if engine.manifest.segment_ms is not None and segment_source in (None, click.core.ParameterSource.DEFAULT):
        options = replace(options, segment_ms=engine.manifest.segment_ms)
    return engine, options
