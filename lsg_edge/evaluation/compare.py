"""`lsg-edge compare`: two runs' `instances.log` on the same items, scored with a paired test.

A run is the folder `lsg-edge eval` wrote (or its `instances.log`). Items are matched by their
index and must carry the same reference; `--items 1-25` restricts both runs to a 1-based range, so
a setting tuned on one half of a corpus can be checked on the other.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import click

from ..errors import InputError, OptionsError
from .instance import Instance, read_instances
from .paired import PairedOptions, PairedResult, paired_bleu, paired_wer

__all__ = ["compare_command", "compare_instances", "load_run", "parse_item_range"]


def load_run(path: Path) -> list[Instance]:
    """The instances of a run folder (its instances.log) or of an instances.log file."""
    path = Path(path)
    log = path / "instances.log" if path.is_dir() else path
    if not log.is_file():
        raise InputError(f"{path}: no instances.log there")
    instances = read_instances(log)
    if not instances:
        raise InputError(f"{log} holds no instances")
    return instances


def parse_item_range(spec: str) -> tuple[int, int]:
    """'FIRST-LAST' (1-based, inclusive) -> (first, last)."""
    try:
        first, last = (int(part) for part in spec.split("-"))
    except ValueError as e:
        raise OptionsError(f"--items must be FIRST-LAST (1-based), got {spec!r}") from e
    if not 1 <= first <= last:
        raise OptionsError(f"--items {spec!r}: need 1 <= FIRST <= LAST")
    return first, last


def compare_instances(
    run_a: Sequence[Instance],
    run_b: Sequence[Instance],
    metric: str | None = None,
    items: tuple[int, int] | None = None,
    options: PairedOptions = PairedOptions(),
) -> PairedResult:
    """Paired test of B against A on the items both runs hold (optionally only items[0]..items[1],
    1-based). `metric`: "WER" or "BLEU"; default WER for speech (ms) runs, BLEU for text."""
    by_index_b = {i.index: i for i in run_b}
    pairs = [(a, by_index_b[a.index]) for a in sorted(run_a, key=lambda i: i.index) if a.index in by_index_b]
    if items is not None:
        pairs = [(a, b) for a, b in pairs if items[0] <= a.index + 1 <= items[1]]
    if not pairs:
        raise InputError("the two runs have no item in common (in the range asked for)")
    for a, b in pairs:
        if a.reference != b.reference:
            raise InputError(f"item {a.index + 1}: the runs have different references: not the same data")
    metric = metric or ("WER" if pairs[0][0].unit == "ms" else "BLEU")
    test = {"WER": paired_wer, "BLEU": paired_bleu}.get(metric)
    if test is None:
        raise OptionsError(f"--metric must be WER or BLEU, got {metric!r}")
    references = [a.reference for a, _ in pairs]
    return test(references, [a.prediction for a, _ in pairs], [b.prediction for _, b in pairs], options)


@click.command(name="compare")
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--metric", type=click.Choice(["WER", "BLEU"]), help="Default: WER for speech runs, BLEU for text.")
@click.option("--items", "item_range", metavar="FIRST-LAST", help="Only these items (1-based, inclusive).")
@click.option("--resamples", default=PairedOptions.n_resamples, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", default=PairedOptions.seed, show_default=True, help="Seed of the resampling.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a line of text.")
def compare_command(
    run_a: Path, run_b: Path, metric: str | None, item_range: str | None, resamples: int, seed: int, as_json: bool
) -> None:
    """Is run B better than run A? Paired bootstrap over the items of two `lsg-edge eval` outputs
    (folders or instances.log files): corpus WER (speech) or BLEU (text) of both, B − A, p-value."""
    items = parse_item_range(item_range) if item_range else None
    result = compare_instances(load_run(run_a), load_run(run_b), metric, items, PairedOptions(resamples, seed))
    if as_json:
        click.echo(json.dumps(asdict(result)))
    else:
        click.echo(result.summary())
