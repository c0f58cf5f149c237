"""Speech policies side by side from `lsg-edge eval --audio-manifest` runs, each against a baseline
with the paired bootstrap of WER over utterances, and a two-fold cross-validated choice.

    # one run per setting, same utterances, one onnxruntime thread (niced on a shared machine):
    lsg-edge eval --audio-manifest $DATA/librispeech-dev/transcripts.tsv --threads 1 \\
        --output runs/lsg --policy lsg
    lsg-edge eval ... --output runs/aa25_b5 --policy alignatt --frames 25 --beam 5
    python benchmarks/speech_policy_table.py runs/ --baseline lsg [--max-al 1400]

Prints a Markdown table — WER, AL, AL_CA (ms), CPU-RTF (the run's CPU time ÷ audio: unlike wall
time not inflated by other load; from scores.json), WER difference and p-value against the
baseline over all utterances — then the cross-validation: on each half of the utterances (the first
and the second), the candidate with the lowest WER at AL ≤ --max-al on that half is chosen, and it
is tested against the baseline on the *other* half, which played no part in the choice.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from lsg_edge.evaluation.compare import compare_instances, load_run
from lsg_edge.evaluation.paired import PairedOptions
from lsg_edge.evaluation.scoring import latency_scores


def _half_al(instances, first: int, last: int) -> float:
    return latency_scores([i for i in instances if first <= i.index + 1 <= last], computation_aware=False)["AL"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="Folder holding one eval output folder per setting.")
    parser.add_argument("--baseline", default="lsg", help="Run the others are tested against.")
    parser.add_argument("--max-al", type=float, default=1400.0, help="Latency budget of the choice, ms of AL.")
    parser.add_argument("--resamples", type=int, default=PairedOptions.n_resamples)
    parser.add_argument("--exclude", nargs="*", default=["offline", "offline_b5"],
                        help="Runs shown but never chosen (they are not streaming).")
    args = parser.parse_args()
    options = PairedOptions(n_resamples=args.resamples)

    names = sorted(p.name for p in args.runs.iterdir() if (p / "instances.log").exists())
    runs = {name: load_run(args.runs / name) for name in names}
    if args.baseline not in runs:
        raise SystemExit(f"no run {args.baseline!r} in {args.runs}")
    base = runs[args.baseline]
    n = len(base)
    print("| run | WER % | AL ms | AL_CA ms | CPU-RTF | ΔWER vs " + args.baseline + " | p |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        scores = json.loads((args.runs / name / "scores.json").read_text())["rows"][0]
        test = compare_instances(base, runs[name], "WER", options=options)
        al = scores.get("AL")
        cpu_rtf = scores.get("cpu_real_time_factor")
        fmt = lambda v, f: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f.format(v)  # noqa: E731
        print(f"| {name} | {test.score_b:.2f} | {fmt(al, '{:.0f}')} | {fmt(scores.get('AL_CA'), '{:.0f}')} | "
              f"{fmt(cpu_rtf, '{:.3f}')} | {test.difference:+.2f} | {test.p_value:.3f} |")

    half = n // 2
    folds = (((1, half), (half + 1, n)), ((half + 1, n), (1, half)))
    print(f"\nCross-validation (choose at AL ≤ {args.max_al:.0f} ms on one half, test on the other):")
    for tune, check in folds:
        candidates = []
        for name in names:
            if name == args.baseline or name in args.exclude:
                continue
            tuned = compare_instances(base, runs[name], "WER", items=tune, options=options)
            al = _half_al(runs[name], *tune)
            if al <= args.max_al:
                candidates.append((tuned.score_b, name, al))
        if not candidates:
            print(f"  tune {tune[0]}-{tune[1]}: no candidate within the latency budget")
            continue
        wer, chosen, al = min(candidates)
        held = compare_instances(base, runs[chosen], "WER", items=check, options=options)
        verdict = "wins" if held.significant() and held.difference < 0 else (
            "loses" if held.significant() else "no measurable difference")
        print(f"  tune {tune[0]}-{tune[1]}: {chosen} (WER {wer:.2f}, AL {al:.0f}); "
              f"check {check[0]}-{check[1]}: {args.baseline} {held.score_a:.2f} vs {held.score_b:.2f} "
              f"(Δ {held.difference:+.2f}, AL {_half_al(runs[chosen], *check):.0f} vs "
              f"{_half_al(base, *check):.0f}), p={held.p_value:.3f}: {verdict}")


if __name__ == "__main__":
    main()
