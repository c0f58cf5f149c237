"""Base few-shot model vs the translation-tuned default: quality, lag and speed, one table each.

    python benchmarks/tuned_model.py dev --data DATA --limit 200 --output /tmp/tuned        # De→En dev rows
    python benchmarks/tuned_model.py directions --data DATA --limit 200 --output /tmp/dirs  # offline, other pairs
    python benchmarks/tuned_model.py report /tmp/tuned /tmp/dirs                # tables from finished runs

`dev` runs `lsg-edge eval` on the first N sentences of wmt15-deen-dev for both manifests with the
grid below; `directions` runs offline translation of the news pairs the trainer held back (the same
seeded split it used, rebuilt from the parallel data: never trained on) for en→de and fr/es/zh→en.
Each run is its own `lsg-edge eval` process, so settings never share a warm cache.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MANIFESTS = {"base": "gemma3-270m", "tuned": "gemma3-270m-translate", "qwen": "qwen2.5-1.5b"}
GRID = ("wait-k:k=3,5,7", "lsg:L/U=1/4,3/4;delta=3.0,9.0;alpha=0.6")
DIRECTIONS = (("en", "de"), ("fr", "en"), ("es", "en"), ("zh", "en"))


def _eval(manifest: str, source: Path, reference: Path, src: str, tgt: str, out: Path, limit: int,
          extra: list[str], threads: int) -> None:
    command = [
        sys.executable, "-m", "lsg_edge.cli", "eval", "--manifest", manifest, "--source", str(source),
        "--reference", str(reference), "--src", src, "--tgt", tgt, "--limit", str(limit), "--output", str(out),
        "--threads", str(threads), "--no-progress", *extra,
    ]
    print("$", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)


def run_dev(args: argparse.Namespace) -> None:
    dev = args.data / "wmt15-deen-dev"
    sweeps = [a for spec in args.grid for a in ("--sweep", spec)]
    for label in args.models:
        _eval(MANIFESTS[label], dev / "de.txt", dev / "en.txt", "de", "en", args.output / f"dev-{label}",
              args.limit, ["--with-offline", *sweeps], args.threads)
    report([args.output])


def _heldout(folder: Path, seed: int, n: int) -> dict[str, list[tuple[str, str]]]:
    from lsg_edge.convert.train_lora import TrainOptions, load_direction_pairs

    options = TrainOptions(Path("-"), folder, Path("-"), seed=seed, heldout_pairs=n)
    return load_direction_pairs(options).heldout


def run_directions(args: argparse.Namespace) -> None:
    held = _heldout(args.data / "parallel-train", args.seed, args.heldout)
    for src, tgt in (tuple(d.split("-")) for d in args.directions):
        lang = src if tgt == "en" else tgt
        pairs = held[f"{lang}-en"][: args.limit]
        folder = args.output / f"data-{src}{tgt}"
        folder.mkdir(parents=True, exist_ok=True)
        source, reference = folder / "source.txt", folder / "reference.txt"
        column = 0 if tgt == "en" else 1
        source.write_text("\n".join(p[column] for p in pairs) + "\n", encoding="utf-8")
        reference.write_text("\n".join(p[1 - column] for p in pairs) + "\n", encoding="utf-8")
        for label in args.models:
            _eval(MANIFESTS[label], source, reference, src, tgt, args.output / f"{src}{tgt}-{label}", args.limit,
                  ["--policy", "offline"], args.threads)
    report([args.output])


def report(folders: list[Path], first: int | None = None) -> None:
    """One markdown table of every run under `folders`, scored on the sentences all runs finished.

    Runs write their instances after every chunk, so a run stopped early still scores; BLEU and AL
    are recomputed here from instances.log over the first n sentences common to every run, so all
    rows compare the same sentences.
    """
    import sacrebleu

    from lsg_edge.evaluation.latency import average_lagging, reference_length

    # `lsg-edge eval` writes the first setting's log at the top of its output folder and the
    # others in one folder per setting; scores.json names the first one.
    labels: dict[Path, tuple[str, str]] = {}
    for folder in folders:
        for scores in sorted(folder.glob("**/scores.json")):
            run = scores.parent
            first_setting = json.loads(scores.read_text())["rows"][0]["setting"]
            labels[run / "instances.log"] = (run.name, first_setting)
            for log in sorted(run.glob("*/instances.log")):
                labels[log] = (run.name, log.parent.name)
    logs = {p: [json.loads(line) for line in p.read_text().splitlines()] for p in labels if p.exists()}
    n = min([len(v) for v in logs.values()] + ([first] if first else []))
    print(f"first {n} sentences of each run")
    print("| run | setting | BLEU | AL | s/sent |")
    print("|---|---|---|---|---|")
    for path, instances in logs.items():
        chosen = instances[:n]
        bleu = sacrebleu.corpus_bleu([i["prediction"] for i in chosen], [[i["reference"] for i in chosen]]).score
        lags = [
            average_lagging(i["delays"], i["source_length"], reference_length(i["reference"]))
            for i in chosen if i["delays"]
        ]
        seconds = sum(max(i["elapsed"], default=0.0) for i in chosen) / 1000 / n
        run, setting = labels[path]
        print(f"| {run} | {setting} | {bleu:.2f} | {sum(lags) / len(lags):.2f} | {seconds:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("dev", "directions"):
        command = commands.add_parser(name)
        command.add_argument("--data", type=Path, required=True,
                             help="the shared evaluation data folder (holds wmt15-deen-dev, parallel-train)")
        command.add_argument("--output", type=Path, required=True)
        command.add_argument("--limit", type=int, default=200)
        command.add_argument("--threads", type=int, default=2)
        command.add_argument("--models", nargs="+", choices=sorted(MANIFESTS), default=["base", "tuned"])
        if name == "dev":
            command.add_argument("--grid", nargs="+", default=list(GRID), help="--sweep specs of lsg-edge eval")
        else:
            command.add_argument("--seed", type=int, default=1234, help="the trainer's seed (its held-out split)")
            command.add_argument("--heldout", type=int, default=200, help="the trainer's held-out pairs per language")
            command.add_argument("--directions", nargs="+", default=[f"{s}-{t}" for s, t in DIRECTIONS],
                                 help="SRC-TGT pairs (one side English; de-en reads the held-back de-en news)")
    report_command = commands.add_parser("report")
    report_command.add_argument("folders", type=Path, nargs="+")
    report_command.add_argument("--first", type=int, help="score only the first N sentences")
    args = parser.parse_args()
    if args.command == "dev":
        run_dev(args)
    elif args.command == "directions":
        run_directions(args)
    else:
        report(args.folders, args.first)


if __name__ == "__main__":
    main()
