"""Count the outputs that are not a translation at all, and test two runs' counts against each other.

    python benchmarks/broken_outputs.py RUN [RUN ...]             # the broken outputs of each run
    python benchmarks/broken_outputs.py --pair A B [--pair A B]   # and a sign test, pairs pooled

BLEU hides a sentence whose translation is missing: it costs the corpus only that sentence's
n-grams. A reader loses the whole sentence. An output is broken when:
- **lead-in**: it talks about the task ("Sure, here's the English translation") or refuses ("I'm
  sorry, but I can't assist with that"), and the reference has no such words; or
- **untranslated**: its sentence BLEU against the *source* is at least 50 (the source copied).

`--pair A B` compares two runs of the same items: of the items broken in exactly one of them, how
many are broken in A. The two-sided exact sign test asks whether that split could be a fair coin.
Repeated pairs are pooled, since each item appears in one pair only.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import sacrebleu

from lsg_edge.evaluation.compare import load_run
from lsg_edge.evaluation.instance import Instance

LEAD_IN = re.compile(r"translat\w*|German|I'm sorry|I can't|I cannot", re.IGNORECASE)
UNTRANSLATED_BLEU = 50.0


def broken_reason(instance: Instance) -> str | None:
    """"lead-in", "untranslated" or None (a translation, good or bad)."""
    if LEAD_IN.search(instance.prediction) and not LEAD_IN.search(instance.reference):
        return "lead-in"
    if instance.prediction and instance.source:
        if sacrebleu.sentence_bleu(instance.prediction, [instance.source]).score >= UNTRANSLATED_BLEU:
            return "untranslated"
    return None


def sign_test(n_a: int, n_b: int) -> float:
    """Two-sided exact p-value that a fair coin splits n_a + n_b discordant items at least this unevenly."""
    n, low = n_a + n_b, min(n_a, n_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)


def _broken(instances: list[Instance]) -> dict[int, str]:
    return {i.index: reason for i in instances if (reason := broken_reason(i)) is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="*", help="run folders or instances.log files")
    parser.add_argument("--pair", type=Path, nargs=2, action="append", default=[], metavar=("A", "B"))
    args = parser.parse_args()
    for run in args.runs:
        instances = load_run(run)
        broken = _broken(instances)
        listed = ", ".join(f"{i + 1} ({reason})" for i, reason in sorted(broken.items()))
        print(f"{run}: {len(broken)} of {len(instances)} broken{': ' + listed if listed else ''}")
    only_a = only_b = 0
    for a, b in args.pair:
        broken_a, broken_b = _broken(load_run(a)), _broken(load_run(b))
        n_a, n_b = len(broken_a.keys() - broken_b.keys()), len(broken_b.keys() - broken_a.keys())
        print(f"{a} | {b}: broken {len(broken_a)} | {len(broken_b)}; only in A {n_a}, only in B {n_b}")
        only_a, only_b = only_a + n_a, only_b + n_b
    if args.pair:
        print(f"pooled over {len(args.pair)} pairs: only in A {only_a}, only in B {only_b}, "
              f"sign test p = {sign_test(only_a, only_b):.3g}")


if __name__ == "__main__":
    main()
