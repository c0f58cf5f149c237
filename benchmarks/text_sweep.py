"""The text benchmark: quality–latency of offline, wait-k, LocalAgreement and LSG.

Runs on the first N sentences of WMT15 newstest2015 De→En (wmt15-deen-dev in the shared evaluation data, `--data`) with
the embedded default model, sentence-major (every setting on the same sentences at any time), and
rewrites benchmarks/results/text_sweep/ after every chunk:

    nohup python benchmarks/text_sweep.py --data DATA --limit 200 > /tmp/text_sweep.out 2>&1 &
    python benchmarks/text_sweep.py --data DATA --grid core --limit 100 --output /tmp/core   # the text core's five rows

The same run through the CLI:

    lsg-edge eval --source de.txt --reference en.txt --limit 200 --output DIR --with-offline \
        --sweep "wait-k:k=1,3,5,7" --sweep local-agreement \
        --sweep "lsg:L/U=1/4,3/4,5/6,7/6;delta=9.0;alpha=0.6"
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lsg_edge import TranslationEngine
from lsg_edge.evaluation.runner import TextEvalOptions, evaluate_text
from lsg_edge.evaluation.sweep import Setting, parse_sweep
from lsg_edge.evaluation.text_run import read_parallel

GRIDS = {
    # The field's comparison set.
    "full": (
        "offline",
        "wait-k:k=1,3,5,7",
        "local-agreement",
        "lsg:L/U=1/4,3/4,5/6,7/6;delta=9.0;alpha=0.6",
    ),
    # The text core's acceptance benchmark (first 100 sentences).
    "core": ("offline", "wait-k:k=3,5", "lsg:L/U=1/4,3/4;delta=9.0;alpha=0.6"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder (holds wmt15-deen-dev)")
    parser.add_argument("--limit", type=int, default=200, help="first N sentences")
    parser.add_argument("--chunk", type=int, default=10, help="sentences per setting per round")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: default)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "text_sweep")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full", help="which settings to run")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from --output's scores.json")
    args = parser.parse_args()
    if args.plot_only:
        import json

        from lsg_edge.evaluation.report import plot_quality_latency

        scores = json.loads((args.output / "scores.json").read_text())
        plot_quality_latency(scores["rows"], args.output / "quality_latency.png",
                             title=f"{scores['meta']['model']}, de→en, {scores['meta']['n_sentences']} sentences")
        return

    pairs = read_parallel(args.data / "wmt15-deen-dev" / "de.txt", args.data / "wmt15-deen-dev" / "en.txt", limit=args.limit)
    settings: list[Setting] = [s for spec in GRIDS[args.grid] for s in parse_sweep(spec)]
    engine = TranslationEngine.load(**({"n_threads": args.threads} if args.threads else {}))
    base = engine.policy_options("de", "en")
    rows = evaluate_text(engine, pairs, settings, base, args.output,
                         TextEvalOptions(with_offline=True, chunk_size=args.chunk))
    from lsg_edge.evaluation.report import format_table

    print(format_table(rows))


if __name__ == "__main__":
    main()
