"""`lsg-edge eval`: score a policy (or a sweep of settings) on a parallel text corpus.

Thin: click builds the options, `runner.evaluate_text` does the work. The score table goes to
stdout; progress bars and diagnostics to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..folders import output_folder
from ..text.flags import load_engine, policy_flags, session_policy
from .runner import TextEvalOptions
from .scoring import LatencyOptions

__all__ = ["eval_command"]


@click.command(name="eval")
@click.option("--source", "source_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Source sentences, one per line.")
@click.option("--reference", "reference_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Reference translations, aligned with --source.")
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for instances.log, scores.json, scores.txt (and the plot of a sweep).")
@click.option("--limit", type=int, help="Evaluate only the first N sentences.")
@click.option("--sweep", "sweeps", multiple=True, metavar="SPEC",
              help="A grid POLICY[:KEY=V1,V2[;KEY=...]], e.g. 'wait-k:k=1,3,5' or "
                   "'lsg:L/U=1/4,3/4;delta=9.0'. Repeat for several policies.")
@click.option("--with-offline", is_flag=True, help="Also run offline and report compute ratios against it.")
@click.option("--chunk-size", default=TextEvalOptions.chunk_size, show_default=True,
              help="Sentences each setting translates before the next setting runs.")
@click.option("--source-word-ms", default=LatencyOptions.source_word_ms, show_default=True,
              help="Computation-aware text latency: ms between source words (~150 words/min).")
@click.option("--no-progress", is_flag=True, help="No progress bars on stderr.")
@click.option("--audio-manifest", type=click.Path(dir_okay=False, path_type=Path),
              help="Speech instead of text: a TSV (case_id, audio_path, duration_s, transcript); "
                   "scores WER and latency in ms with the Whisper model --speech-model.")
@click.option("--speech-model", help="Whisper model for --audio-manifest (default: `lsg-edge asr`'s).")
@click.option("--beam", default=1, show_default=True,
              help="--audio-manifest: beams of the decode that commits the rest of a window (1: greedy).")
@click.option("--words-per-segment", type=int,
              help="--audio-manifest: source words one 640 ms segment counts as (default: the speech default).")
@policy_flags
def eval_command(
    source_path: Path,
    reference_path: Path,
    output: Path,
    limit: int | None,
    sweeps: tuple[str, ...],
    with_offline: bool,
    chunk_size: int,
    source_word_ms: float,
    no_progress: bool,
    audio_manifest: Path | None,
    speech_model: str | None,
    beam: int,
    **flags: Any,
) -> None:
    """Quality (BLEU, chrF) and SimulEval latency (AL, LAAL, DAL, AP; plain and
    computation-aware) of simultaneous translation, with SimulEval's instances.log."""
    from .report import format_table
    from .runner import evaluate_text
    from .sweep import Setting, parse_sweep
    from .text_run import read_parallel

    # A folder that cannot be written fails now, not after the model has run.
    output_folder(output)
    if audio_manifest is not None:
        if source_path or reference_path or sweeps:
            raise click.UsageError("--audio-manifest replaces --source/--reference; --sweep is text-only")
        from ..speech.models import DEFAULT_MODEL
        from .speech_run import evaluate_speech

        model = speech_model or DEFAULT_MODEL
        click.echo(format_table(evaluate_speech(audio_manifest, output, model, limit, not no_progress, beam, **flags)))
        return
    if source_path is None or reference_path is None:
        raise click.UsageError("give --source and --reference (or --audio-manifest)")
    if beam != 1:
        raise click.UsageError("--beam is for speech (--audio-manifest)")
    if flags.get("words_per_segment") is not None:
        raise click.UsageError("--words-per-segment is for --audio-manifest (a text source element is one word)")
    # Read and check the data before loading a model: a misaligned file fails in a second.
    pairs = read_parallel(source_path, reference_path, limit)
    settings = [s for spec in sweeps for s in parse_sweep(spec)]
    latency = LatencyOptions(source_word_ms=source_word_ms)
    engine = load_engine(**flags)
    base = session_policy(engine, **flags)
    if not settings:
        settings = [Setting.from_options(base)]
    options = TextEvalOptions(
        src=flags["src"], tgt=flags["tgt"], prompt_style=flags["prompt_style"], with_offline=with_offline,
        chunk_size=chunk_size, progress=not no_progress, latency=latency,
    )
    rows = evaluate_text(engine, pairs, settings, base, output, options)
    click.echo(format_table(rows))
