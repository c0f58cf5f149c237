"""Why LSG writes: per written word, which test let it out, and whether the offline translation has it.

    python benchmarks/write_causes.py run --data DATA --manifest gemma3-270m-translate --first 1 --limit 50 \
        --setting "lsg:L/U=3/4;delta=3;alpha=0.6" --setting "wait-k:k=3,5" --output /tmp/causes-270m
    python benchmarks/write_causes.py report /tmp/causes-270m            # tables again from the logs
    lsg-edge compare /tmp/causes-270m/wait-k-k-3 /tmp/causes-270m/lsg-…     # paired bootstrap of two rows

A word that LSG commits leaves because of one of four causes:
- `confidence`: every token of it passed max P_cur > α;
- `KL`: every token passed the write test, at least one only by KL(P_cur‖P_base) > δ;
- `forced (U)`: the range constraint's upper bound made it due although the test failed on it;
- `end of source`: written after the last source word (decoded at full context).
The cause is replayed in this process: the policy's leading-run test is wrapped so that it records,
per draft token, whether the confidence test alone passed it, and each Write is matched to the run
that made it. Per cause the table gives the words, their share, and how many of them the model's
own offline translation also holds (bag of words, each offline word matched once). A cause whose
words are rarely in the offline translation marks the threshold that lets too much out.

`run` also writes each setting's SimulEval `instances.log` (and the offline one) under --output,
so the same run gives the BLEU/AL rows, and `lsg-edge compare` tests two of them against each other.
That makes it the tuning sweep too: `--share-rows` lets the settings take each other's logits rows
for the sentence they all translate (`lsg_edge.evaluation.shared_rows`), which cuts the llama.cpp
work of a grid several-fold; a shared row can differ from a context's own in the last bits, so
check a chosen setting with a plain run (`lsg-edge eval`) on other sentences.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from lsg_edge import TranslationEngine
from lsg_edge.evaluation.instance import Instance, read_instances, write_instances
from lsg_edge.evaluation.scoring import latency_scores, quality_scores
from lsg_edge.evaluation.shared_rows import SharedRows, sharing_pool
from lsg_edge.evaluation.sweep import Setting, parse_sweep
from lsg_edge.evaluation.text_run import instance_from_commits, read_parallel
from lsg_edge.policy import strategies
from lsg_edge.policy.decision import log_softmax
from lsg_edge.policy.words import word_starts
from lsg_edge.text.source import split_words

CAUSES = ("confidence", "KL", "forced (U)", "end of source")
_PRIORITY = {"confidence": 0, "KL": 1, "forced (U)": 2}  # a word is as weak as its weakest token


class _RecordingRun(strategies.LeadingRun):
    """The policy's leading run, recording per tested token whether confidence alone passed it."""

    last: "_RecordingRun | None" = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.confident: list[bool] = []
        _RecordingRun.last = self

    def _passes(self, tokens, k, row) -> bool:
        self.confident.append(bool(np.exp(float(log_softmax(row[None, :]).max())) > self._options.alpha))
        return super()._passes(tokens, k, row)


class _Recorder:
    """Wraps LsgPolicy.decide: each Write's per-word causes, in the order the commits come."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        original = strategies.LsgPolicy.decide
        recorder = self

        def decide(policy, view):
            _RecordingRun.last = None
            decision = original(policy, view)
            if isinstance(decision, strategies.Write):
                recorder.writes.append(recorder._word_causes(view, decision.n_tokens, _RecordingRun.last))
            return decision

        strategies.LeadingRun = _RecordingRun
        strategies.LsgPolicy.decide = decide

    @staticmethod
    def _word_causes(view, n_tokens: int, run: _RecordingRun | None) -> list[str]:
        tokens = view.last_draft.tokens[:n_tokens]
        causes = []
        for k in range(n_tokens):
            if run is None or k >= run.n_accepted:
                causes.append("forced (U)")
            else:
                causes.append("confidence" if run.confident[k] else "KL")
        starts = word_starts(view.pieces(tokens), view.at_target_start)
        words: list[str] = []
        for k, cause in enumerate(causes):
            if starts[k] or not words:
                words.append(cause)
            elif _PRIORITY[cause] > _PRIORITY[words[-1]]:
                words[-1] = cause
        return words


def _normal(word: str) -> str:
    return re.sub(r"[^\w]", "", word.lower())


def run(args: argparse.Namespace) -> None:
    """Sentence-major, as `lsg-edge eval` sweeps: every setting translates sentence n before any goes
    on, and the logs are rewritten after each sentence, so a run stopped early still compares
    every setting on the same sentences."""
    recorder = _Recorder()
    pairs = read_parallel(args.source, args.reference)[args.first - 1 : args.first - 1 + args.limit]
    settings = [Setting("offline")] + [s for spec in args.setting for s in parse_sweep(spec)]
    # Every setting keeps its session (and contexts) open for the whole run: two contexts each.
    shared = SharedRows() if args.share_rows else None
    with TranslationEngine.load(args.manifest, n_threads=args.threads, max_contexts=len(settings)) as engine:
        if shared is not None:
            engine.pool = sharing_pool(engine, shared, len(settings))
        base = engine.policy_options(args.src, args.tgt)
        sessions = {s.label: engine.create_session(args.src, args.tgt, policy=s.policy_options(base)) for s in settings}
        results: dict[str, list[Instance]] = {s.label: [] for s in settings}
        counts: dict[str, Counter] = {s.label: Counter() for s in settings}
        cpu_s: dict[str, float] = {s.label: 0.0 for s in settings}
        for n, pair in enumerate(pairs):
            words = split_words(pair.source)
            if shared is not None:
                shared.clear()  # rows of other sentences are never asked for again
            for setting in settings:
                started = time.process_time()
                instance, causes = _translate(sessions[setting.label], recorder, words, pair.reference,
                                              args.first - 1 + n)
                cpu_s[setting.label] += time.process_time() - started
                results[setting.label].append(instance)
                if setting.name == "lsg":
                    _count(counts[setting.label], instance.prediction.split(), causes,
                           results["offline"][n].prediction.split())
            for setting in settings:
                _save(args.output / _slug(setting.label), results[setting.label], counts[setting.label],
                      cpu_s[setting.label] / (n + 1), setting.name == "lsg")
            print(f"\r{n + 1}/{len(pairs)} sentences", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"{args.manifest}, {args.src}→{args.tgt}, sentences {args.first}–{args.first - 1 + len(pairs)}, "
          f"{args.threads} threads")
    if shared is not None:
        print(f"rows shared between settings: {shared.n_shared} taken, {shared.n_computed} computed")
    report([args.output])


def _translate(session, recorder: _Recorder, words: list[str], reference: str, index: int) -> tuple[Instance, list[str]]:
    """One sentence through `session`: its instance, and the cause of each output word."""
    recorder.writes.clear()
    commits, reads, causes = [], [], []
    for n_read, word in enumerate(words, 1):
        pushed = session.push(word)
        commits += pushed
        reads += [n_read] * len(pushed)
    write_causes = list(recorder.writes)
    for commit in commits:
        causes += write_causes.pop(0) if write_causes else ["unknown"] * len(commit.text.split())
    finished = session.finish()
    commits += finished
    reads += [len(words)] * len(finished)
    causes += ["end of source"] * sum(len(c.text.split()) for c in finished)
    return instance_from_commits(index, words, reference, commits, reads), causes


def _count(counts: Counter, written: list[str], causes: list[str], offline_words: list[str]) -> None:
    """Per (cause, in the offline translation): words; each offline word matches one written word."""
    offline = Counter(_normal(w) for w in offline_words)
    for word, cause in zip(written, causes):
        key = _normal(word)
        hit = offline[key] > 0
        offline[key] -= hit
        counts[(cause, hit)] += 1


def _save(folder: Path, instances: list[Instance], counts: Counter, cpu_s_per_sentence: float, lsg: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_instances(folder / "instances.log", instances)
    (folder / "cpu.json").write_text(json.dumps({"cpu_s_per_sentence": cpu_s_per_sentence}))
    if lsg:
        (folder / "causes.json").write_text(json.dumps({f"{c}|{h}": v for (c, h), v in counts.items()}))


def _slug(label: str) -> str:
    return re.sub(r"[^\w.]+", "-", label).strip("-")


def report(folders: list[Path], first: int | None = None) -> None:
    """BLEU/AL rows of every log under `folders` (the first `first` sentences of each, if given),
    then the cause table of the LSG runs (over all their sentences)."""
    print("| setting | n | BLEU | AL | LAAL | CPU s/sentence |")
    print("|---|---|---|---|---|---|")
    cause_rows = []
    for folder in folders:
        for log in sorted(folder.glob("*/instances.log")):
            instances = read_instances(log)[:first]
            bleu = quality_scores(instances, ("BLEU",))["BLEU"]
            lag = latency_scores(instances, computation_aware=False)
            cpu_file = log.parent / "cpu.json"
            cpu = json.loads(cpu_file.read_text())["cpu_s_per_sentence"] if cpu_file.exists() else float("nan")
            print(f"| {log.parent.name} | {len(instances)} | {bleu:.2f} | {lag['AL']:.2f} | {lag['LAAL']:.2f} "
                  f"| {cpu:.2f} |")
            causes_file = log.parent / "causes.json"
            if causes_file.exists():
                cause_rows.append((log.parent.name, json.loads(causes_file.read_text())))
    if not cause_rows:
        return
    print("\n| setting | cause | words | share | in the offline translation |")
    print("|---|---|---|---|---|")
    for label, raw in cause_rows:
        counts = Counter({(k.split("|")[0], k.split("|")[1] == "True"): v for k, v in raw.items()})
        total = sum(counts.values())
        for cause in (*CAUSES, "unknown"):
            n = counts[(cause, True)] + counts[(cause, False)]
            if n:
                print(f"| {label} | {cause} | {n} | {100 * n / total:.1f} % | {100 * counts[(cause, True)] / n:.1f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("run")
    command.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder")
    command.add_argument("--manifest", default="gemma3-270m-translate")
    command.add_argument("--source", type=Path)
    command.add_argument("--reference", type=Path)
    command.add_argument("--src", default="de")
    command.add_argument("--tgt", default="en")
    command.add_argument("--first", type=int, default=1, help="first sentence, 1-based")
    command.add_argument("--limit", type=int, default=50)
    command.add_argument("--setting", action="append", default=[], help="a --sweep spec of lsg-edge eval")
    command.add_argument("--threads", type=int, default=1)
    command.add_argument("--output", type=Path, required=True)
    command.add_argument("--share-rows", action="store_true",
                         help="settings take each other's logits rows (a tuning sweep; see the docstring)")
    report_command = commands.add_parser("report")
    report_command.add_argument("folders", type=Path, nargs="+")
    report_command.add_argument("--first", type=int, help="score only the first N sentences of each log")
    args = parser.parse_args()
    if args.command == "run":
        args.source = args.source or args.data / "wmt15-deen-dev" / f"{args.src}.txt"
        args.reference = args.reference or args.data / "wmt15-deen-dev" / f"{args.tgt}.txt"
        run(args)
    else:
        report(args.folders, args.first)


if __name__ == "__main__":
    main()
