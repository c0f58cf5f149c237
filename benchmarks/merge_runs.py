"""Join the runs of one setting made in pieces into one run, and print its scores.

    python benchmarks/merge_runs.py OUT.instances.log RUN [RUN ...]

A long check is run in pieces (a source file per chunk of sentences, one `lsg-edge eval` each), so
that a session's stop leaves whole chunks. Each piece numbers its items from 0; the joined log
numbers them on in the order the runs are given, so `lsg-edge compare` can pair two settings joined
the same way. Prints the items, BLEU, chrF, AL and LAAL of the joined run (the scores
`lsg-edge eval` prints, over all items at once).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from lsg_edge.evaluation.compare import load_run
from lsg_edge.evaluation.instance import Instance, write_instances
from lsg_edge.evaluation.scoring import latency_scores, quality_scores


def join_runs(runs: list[Path]) -> list[Instance]:
    """The runs' instances, renumbered 0, 1, … in the order given."""
    joined: list[Instance] = []
    for run in runs:
        for instance in sorted(load_run(run), key=lambda i: i.index):
            joined.append(dataclasses.replace(instance, index=len(joined)))
    return joined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="the joined instances.log to write")
    parser.add_argument("runs", type=Path, nargs="+", help="run folders or instances.log files, in order")
    args = parser.parse_args()
    joined = join_runs(args.runs)
    write_instances(args.output, joined)
    quality = quality_scores(joined)
    latency = latency_scores(joined, computation_aware=False)
    print(f"{args.output}: {len(joined)} items  BLEU {quality['BLEU']:.2f}  chrF {quality['chrF']:.2f}  "
          f"AL {latency['AL']:.2f}  LAAL {latency['LAAL']:.2f}")


if __name__ == "__main__":
    main()
