"""Evaluate text settings on a corpus and write the output folder, chunk by chunk.

Output folder (rewritten after every chunk, so a long run can be read while it goes):
- `instances.log` for the first setting, `<setting>/instances.log` for the others (SimulEval's
  one-JSON-line-per-sentence format, see `instance.py`);
- `scores.json` (meta + one row per setting), `scores.txt` (the printed table);
- `quality_latency.png` when more than one setting runs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..folders import output_folder
from ..policy.options import PolicyOptions
from .instance import Instance, write_instances
from .report import format_table, plot_quality_latency, write_scores
from .scoring import LatencyOptions
from .sweep import Setting, SettingResult, run_sweep, score_row
from .text_run import Pair, run_text

__all__ = ["TextEvalOptions", "evaluate_text"]


@dataclass(frozen=True)
class TextEvalOptions:
    """How a text evaluation runs and where it writes."""

    src: str = "de"  # source language code
    tgt: str = "en"  # target language code
    prompt_style: str | None = None  # None: the manifest's
    with_offline: bool = False  # also run offline and report compute ratios against it
    chunk_size: int = 10  # sentences per setting before the next setting runs, sentences
    progress: bool = True  # tqdm bars on stderr
    latency: LatencyOptions = LatencyOptions()


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", label).strip("_") or "setting"


def evaluate_text(
    engine,
    pairs: Sequence[Pair],
    settings: Sequence[Setting],
    base: PolicyOptions,
    output: Path,
    options: TextEvalOptions = TextEvalOptions(),
) -> list[dict[str, Any]]:
    """Run `settings` (over `base` policy options) on `pairs` with `engine`; return the score rows.

    With `options.with_offline`, an offline setting joins the run (once) and every row gets its
    compute ratio against it.
    """
    if not pairs:
        raise InputError("nothing to evaluate: no sentence pairs")
    settings = list(dict.fromkeys(settings))
    offline = Setting("offline")
    if options.with_offline and offline not in settings:
        settings.append(offline)
    output = output_folder(output)
    n_chunks = -(-len(pairs) // options.chunk_size)
    # Warm-up, not timed: the first request prefills the shared prompt into both contexts, a cost
    # that would otherwise fall on whichever setting happens to run first.
    run_text(engine, pairs[:1], replace(base, name="offline"), options.src, options.tgt,
             options.prompt_style, progress=False)

    def run_chunk(policy: PolicyOptions, start: int, stop: int) -> tuple[list[Instance], float, int]:
        label = f"{policy.name} [{start // options.chunk_size + 1}/{n_chunks}]"
        run = run_text(engine, pairs[start:stop], policy, options.src, options.tgt,
                       options.prompt_style, options.progress, label, first_index=start)
        return list(run.instances), run.wall_s, run.llama_tokens

    rows: list[dict[str, Any]] = []

    def on_chunk(results: list[SettingResult]) -> None:
        reference = next((r for r in results if r.setting == offline), None) if options.with_offline else None
        rows[:] = [score_row(r, reference, options.latency) for r in results]
        for i, result in enumerate(results):
            folder = output if i == 0 else output / _slug(result.setting.label)
            folder.mkdir(exist_ok=True)
            write_instances(folder / "instances.log", result.instances)
        meta = {
            "n_sentences": len(results[0].instances),
            "src": options.src,
            "tgt": options.tgt,
            "model": engine.manifest.name,
            "base_policy": asdict(base),
            "latency": asdict(options.latency),
            "units": {"AL/LAAL/DAL": "source words", "AP": "proportion", "*_CA": "ms",
                      "s_per_sentence": "s wall time, source pushed as fast as taken"},
        }
        write_scores(output / "scores.json", rows, meta)
        (output / "scores.txt").write_text(format_table(rows) + "\n", encoding="utf-8")
        if len(results) > 1:
            plot_quality_latency(rows, output / "quality_latency.png",
                                 title=f"{engine.manifest.name}, {options.src}→{options.tgt}, "
                                       f"{meta['n_sentences']} sentences")

    run_sweep(run_chunk, settings, base, len(pairs), options.chunk_size, on_chunk)
    return rows
