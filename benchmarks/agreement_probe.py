"""A probe, not a product policy: LSG whose write test also passes a token the model already drafted
before the last source word, the way LocalAgreement-2 commits what two hypotheses share.

    python benchmarks/agreement_probe.py --data DATA --manifest qwen2.5-1.5b --first 1 --limit 54 \
        --bounds 1/6 --delta 9 --alpha 0.6 --floor 0 --floor 0.3 --output /tmp/agreement
    lsg-edge compare RUN_A /tmp/agreement/lsg-agree-L1-U6-floor-0     # paired bootstrap of two rows

Why: the oracle (`oracle.py`) writes a word as soon as the model's greedy choice from the source
read so far equals its final choice. LSG's tests look at one moment (how sure P_cur is, how far it
moved from the wait-1 baseline); a token that stayed the model's greedy choice across the last
source word is the observable closest to the oracle's "will not change". Here a draft token passes
if P_cur's confidence exceeds α, or if the draft made before the last read held the same tokens up
to it (committed prefix included) and its confidence exceeds the floor, or if the KL test passes.
The range constraint and whole-word cuts are LSG's own.

The variants run in one process and share logits rows (`evaluation.shared_rows`), like a tuning
sweep in `write_causes.py`; a chosen variant must be checked with plain runs on other sentences.
Each variant writes its SimulEval `instances.log` (rewritten after every sentence) and a line of
counts: tokens passed by confidence, by agreement, by KL.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lsg_edge import TranslationEngine
from lsg_edge.evaluation.instance import write_instances
from lsg_edge.evaluation.scoring import latency_scores, quality_scores
from lsg_edge.evaluation.shared_rows import SharedRows, sharing_pool
from lsg_edge.evaluation.text_run import instance_from_commits, read_parallel, translate_line
from lsg_edge.policy import strategies
from lsg_edge.policy.decision import row_stats
from lsg_edge.policy.options import PolicyOptions
from lsg_edge.text.source import split_words


class AgreeingRun(strategies.LeadingRun):
    """LSG's leading run, with the agreement test between the confidence and the KL tests."""

    def __init__(self, policy: "AgreementLsgPolicy", *args) -> None:
        super().__init__(*args)
        self.policy = policy

    def _passes(self, tokens: list[int], k: int, row: np.ndarray) -> bool:
        policy = self.policy
        confidence = row_stats(row).max_probability
        if confidence > self._options.alpha:
            policy.counts["confidence"] += 1
            return True
        if policy.agrees(tokens[: k + 1]) and confidence > policy.floor:
            policy.counts["agreement"] += 1
            return True
        if super()._passes(tokens, k, row):
            policy.counts["kl"] += 1
            return True
        return False


class AgreementLsgPolicy(strategies.LsgPolicy):
    """LSG plus the agreement test; remembers the committed tokens followed by the last draft, and
    the source words read when it was made."""

    def __init__(self, options: PolicyOptions, floor: float) -> None:
        super().__init__(options)
        self.floor = floor
        self.counts: Counter = Counter()
        self.reset()

    def reset(self) -> None:
        self._committed: list[int] = []
        self._latest: tuple[int, list[int]] | None = None  # (n_read, committed + draft) of the last draft
        self._previous: list[int] | None = None  # the latest such sequence made before the last read

    def agrees(self, draft_head: list[int]) -> bool:
        """Whether the hypothesis made before the last read began with the committed tokens and
        `draft_head`."""
        if self._previous is None:
            return False
        sequence = self._committed + draft_head
        return self._previous[: len(sequence)] == sequence

    def _leading_run(self, view, allowed: int, required: int) -> AgreeingRun:
        return AgreeingRun(self, view, self.options, allowed, required)

    def decide(self, view):
        if self._latest is not None and self._latest[0] < view.n_read:
            self._previous = self._latest[1]
        decision = super().decide(view)
        draft = view.last_draft
        if draft is not None and draft.tokens:
            self._latest = (view.n_read, self._committed + list(draft.tokens))
        if isinstance(decision, strategies.Write):
            self._committed += list(draft.tokens[: decision.n_tokens])
        return decision


@dataclass
class _Variant:
    """One floor's session and what it has produced so far."""

    session: object  # a TranslationSession running an AgreementLsgPolicy
    policy: AgreementLsgPolicy
    instances: list = field(default_factory=list)
    cpu_s: float = 0.0


def run(args: argparse.Namespace) -> None:
    pairs = read_parallel(args.source, args.reference)[args.first - 1 : args.first - 1 + args.limit]
    low, top = (int(x) for x in args.bounds.split("/"))
    shared = SharedRows()
    with TranslationEngine.load(args.manifest, n_threads=args.threads, max_contexts=len(args.floor)) as engine:
        engine.pool = sharing_pool(engine, shared, len(args.floor))
        options = engine.policy_options(args.src, args.tgt, low_bound=low, top_bound=top, delta=args.delta,
                                        alpha=args.alpha)
        variants = {}
        for floor in args.floor:
            session = engine.create_session(args.src, args.tgt, policy=options)
            policy = AgreementLsgPolicy(options, floor)
            session._policy = policy  # the probe's strategy in place of the one the options name
            variants[f"lsg-agree-L{low}-U{top}-delta-{args.delta:g}-alpha-{args.alpha:g}-floor-{floor:g}"] = (
                _Variant(session, policy))
        for n, pair in enumerate(pairs):
            words = split_words(pair.source)
            shared.clear()
            for label, v in variants.items():
                started = time.process_time()
                commits, reads = translate_line(v.session, words)
                v.cpu_s += time.process_time() - started
                v.instances.append(instance_from_commits(args.first - 1 + n, words, pair.reference, commits, reads))
                folder = args.output / label
                folder.mkdir(parents=True, exist_ok=True)
                write_instances(folder / "instances.log", v.instances)
                (folder / "counts.json").write_text(json.dumps({**v.policy.counts, "cpu_s_per_sentence": v.cpu_s / (n + 1)}))
            print(f"\r{n + 1}/{len(pairs)} sentences", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        for label, v in variants.items():
            bleu = quality_scores(v.instances, ("BLEU",))["BLEU"]
            lag = latency_scores(v.instances, computation_aware=False)["AL"]
            print(f"{label}: {len(v.instances)} sentences, BLEU {bleu:.2f} @ AL {lag:.2f}, tokens passed by "
                  f"{dict(v.policy.counts)}, {v.cpu_s / len(v.instances):.1f} CPU s a sentence")
            v.session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder")
    parser.add_argument("--manifest", default="gemma3-270m-translate")
    parser.add_argument("--src", default="de")
    parser.add_argument("--tgt", default="en")
    parser.add_argument("--first", type=int, default=1, help="first sentence, 1-based")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--bounds", default="1/6", help="L/U of the range constraint")
    parser.add_argument("--delta", type=float, default=9.0)
    parser.add_argument("--alpha", type=float, default=0.6)
    parser.add_argument("--floor", type=float, action="append", help="agreement's confidence floor (repeatable)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    args.floor = args.floor or [0.0]
    args.source = args.data / "wmt15-deen-dev" / f"{args.src}.txt"
    args.reference = args.data / "wmt15-deen-dev" / f"{args.tgt}.txt"
    run(args)


if __name__ == "__main__":
    main()
