"""Speed benchmark: what LSG costs compared with offline translation of the same sentences.

For each setting — offline, wait-5, LSG with the manifest's settings for the pair — with the KV cache reused
(the optimised path) and, with --naive, recomputed from scratch at every request (the
straightforward path), prints seconds per sentence, the ratio to offline (cached), llama_decode
calls and tokens evaluated per sentence, process CPU time (less sensitive than wall time to a
shared machine; use --threads 1 there, as spinning worker threads inflate it), and the peak RSS of a process that runs only that setting.
It also times every llama_decode call (a wrapper around llama-cpp-python's binding, the same for any
checkout) and prints the host share: wall time outside llama_decode, in all and per logits row — the
Python and NumPy work a GPU would expose. With --tree PATH (repeatable) each setting also runs on
another checkout (e.g. a `git worktree` of the commit before a change), in the same run.
It then fits llama.cpp's cost per call, per token and per logits row on this machine and prints the
floor on each ratio set by the tokens the setting must evaluate beyond offline's.
Each setting runs in its own process (peak RSS is per process), one after the other, so the ratios
come from one run on one machine. It also reports whether the naive and cached paths committed the
same text at the same source positions.

    python benchmarks/text_speed.py --data DATA --limit 100 [--naive] [--tree BEFORE] [--manifest NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "offline": {"name": "offline"},
    "wait-5": {"name": "wait-k", "k": 5},
    "lsg": {"name": "lsg"},  # the manifest's LSG settings for de→en
}


class DecodeClock:
    """Wraps llama-cpp-python's llama_decode binding: counts calls and the wall time inside them."""

    def __init__(self) -> None:
        import llama_cpp

        self.seconds = 0.0
        self.calls = 0
        inner = llama_cpp.llama_decode

        def timed(*args):
            started = time.perf_counter()
            try:
                return inner(*args)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        llama_cpp.llama_decode = timed


def run_one(setting: str, data: Path, limit: int, naive: bool, threads: int, manifest: str | None,
            model: str | None = None) -> dict:
    """Runs in a child process: translate `limit` sentences with one setting."""
    clock = DecodeClock()
    from lsg_edge import TranslationEngine
    from lsg_edge.text.source import split_words

    sources = (data / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8").splitlines()[:limit]
    overrides = {"reuse_cache": not naive}
    if threads:
        overrides["n_threads"] = threads
    if manifest:
        overrides["manifest"] = manifest
    if model:  # another GGUF through the generic manifest, as `--model` does
        overrides.update(model_path=model, manifest=manifest or "generic")
    with TranslationEngine.load(**overrides) as engine:
        policy = engine.policy_options("de", "en", **SETTINGS[setting])
        session = engine.create_session("de", "en", policy=policy)
        # Warm-up sentence (page in the weights, build caches) outside the timed loop.
        for word in split_words(sources[0]):
            session.push(word)
        session.finish()
        before = _counters(engine, session)
        decode_s, calls = clock.seconds, clock.calls
        outputs = []
        started, started_cpu = time.perf_counter(), time.process_time()
        for source in sources:
            commits = []
            for word in split_words(source):
                commits += session.push(word)
            commits += session.finish()
            outputs.append([[c.source_read, c.separator + c.text] for c in commits])
        wall_s = time.perf_counter() - started
        cpu_s = time.process_time() - started_cpu
        after = _counters(engine, session)
    rows = after["rows"] - before["rows"]
    return {
        "policy": repr(policy),
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "decode_s": clock.seconds - decode_s,
        "decode_calls": clock.calls - calls,
        "tokens": after["tokens"] - before["tokens"],
        "rows": rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outputs": outputs,
    }


def _counters(engine, session) -> dict:
    """Tokens and logits rows so far, from whichever counters this checkout has (engine-wide
    before sessions owned their contexts, per session after)."""
    counters = getattr(session, "counters", None) or engine.counters
    return {"tokens": sum(v for k, v in counters.items() if k.endswith("tokens")),
            "rows": sum(v for k, v in counters.items() if k.endswith("logits_rows"))}


def calibrate(data: Path, threads: int, manifest: str | None, model: str | None = None) -> dict:
    """Runs in a child process: the cost of one llama_decode call on this machine, fitted as
    `call` (fixed, with its first logits row: the 262k × 640 output matmul) + `token` per token of
    the batch + `row` per further logits row, from medians of repeated calls on a 250-token cache."""
    import numpy as np

    from lsg_edge import TranslationEngine

    overrides = {"n_threads": threads} if threads else {}
    if manifest:
        overrides["manifest"] = manifest
    if model:
        overrides.update(model_path=model, manifest=manifest or "generic")
    with TranslationEngine.load(**overrides) as engine:
        context, vocab = engine.model.new_context(), engine.model.vocab
        text = (data / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8")
        cache = vocab.tokenize(text[:4000], add_bos=True)[:250]
        extra = vocab.tokenize(text[4000:8000], add_bos=False)[:64]
        context.logits_at(cache, [len(cache) - 1])

        def median_ms(n_tokens: int, n_rows: int) -> float:
            times = []
            for _ in range(9):
                sequence = cache + extra[:n_tokens]
                context.reset()  # back to the 250-token cache (a context keeps what it evaluated)
                context.logits_at(cache, [len(cache) - 1])
                start = time.perf_counter()
                context.logits_at(sequence, range(len(sequence) - n_rows, len(sequence)))
                times.append(time.perf_counter() - start)
            return 1000 * float(np.median(times))

        t1, t64, t8x8, t8 = median_ms(1, 1), median_ms(64, 1), median_ms(8, 8), median_ms(8, 1)
    token = (t64 - t1) / 63
    return {"call": t1 - token, "token": token, "row": (t8x8 - t8) / 7}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder (holds wmt15-deen-dev)")
    parser.add_argument("--limit", type=int, default=100, help="first N sentences of newstest2015")
    parser.add_argument("--naive", action="store_true", help="also run the recompute-everything path")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: default)")
    parser.add_argument("--manifest", default=None, help="a model manifest (default: the default model's)")
    parser.add_argument("--model", default=None, help="a GGUF file, run through the generic manifest unless --manifest")
    parser.add_argument("--tree", action="append", default=[], type=Path,
                        help="also run each setting on this checkout (repeatable), in the same run")
    parser.add_argument("--child", nargs=2, metavar=("SETTING", "NAIVE"), help=argparse.SUPPRESS)
    parser.add_argument("--calibrate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calibrate:
        print(json.dumps(calibrate(args.data, args.threads, args.manifest, args.model)))
        return
    if args.child:
        setting, naive = args.child
        print(json.dumps(run_one(setting, args.data, args.limit, naive == "1", args.threads, args.manifest, args.model)))
        return

    results = {}
    runs = [(s, False) for s in SETTINGS] + ([(s, True) for s in SETTINGS] if args.naive else [])
    trees = [None, *args.tree]
    for setting, naive in runs:
        for tree in trees:
            command = [sys.executable, __file__, "--data", str(args.data), "--limit", str(args.limit),
                       "--threads", str(args.threads), "--child", setting, "1" if naive else "0"]
            if args.manifest:
                command += ["--manifest", args.manifest]
            if args.model:
                command += ["--model", args.model]
            env = dict(os.environ, PYTHONPATH=str(tree)) if tree else None
            child = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            label = setting + (" (naive)" if naive else "") + (f" [{tree.name}]" if tree else "")
            results[label] = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"  done: {label}: {results[label]['policy']}", file=sys.stderr)

    command = [sys.executable, __file__, "--data", str(args.data), "--threads", str(args.threads), "--calibrate"]
    if args.manifest:
        command += ["--manifest", args.manifest]
    if args.model:
        command += ["--model", args.model]
    cost = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])

    print(f"{args.limit} sentences of newstest2015 De→En, {args.model or args.manifest or 'default model'}, "
          "one process per row")
    print(f"{'setting':<24} {'s/sent':>7} {'×offline':>9} {'cpu s/sent':>11} {'cpu ×off':>9} "
          f"{'calls/sent':>11} {'tokens/sent':>12} {'rows/sent':>10} {'host %':>7} {'host ms/row':>12} {'peak RSS MB':>12}")
    for label, r in results.items():
        tree_tag = label[label.index(" ["):] if " [" in label else ""
        offline = results["offline" + tree_tag]
        host_s = r["wall_s"] - r["decode_s"]
        print(
            f"{label:<24} {r['wall_s'] / args.limit:>7.3f} {r['wall_s'] / offline['wall_s']:>9.2f} "
            f"{r['cpu_s'] / args.limit:>11.3f} {r['cpu_s'] / offline['cpu_s']:>9.2f} "
            f"{r['decode_calls'] / args.limit:>11.1f} {r['tokens'] / args.limit:>12.1f} {r['rows'] / args.limit:>10.1f} "
            f"{100 * host_s / r['wall_s']:>7.1f} {1000 * host_s / max(r['rows'], 1):>12.3f} {r['peak_rss_mb']:>12.0f}"
        )
    for tree in args.tree:
        for setting in SETTINGS:
            same = [a == b for a, b in zip(results[setting]["outputs"], results[f"{setting} [{tree.name}]"]["outputs"])]
            print(f"{setting}: identical sentences with {tree.name}: {sum(same)}/{len(same)}")

    # Where the time goes, and what exactness forbids saving: with a source-then-target prompt every
    # READ changes the source, so the committed target must be evaluated again under it. Those
    # tokens (beyond offline's) set a floor on the ratio that no call merging can lower.
    print(f"\ncost of one llama_decode here: {cost['call']:.1f} ms per call (with its first logits row) "
          f"+ {cost['token']:.2f} ms per token + {cost['row']:.1f} ms per further row")
    print(f"{'setting':<24} {'model s/sent':>13} {'measured':>9} {'token floor ×offline':>21}")
    for label, r in results.items():
        if "naive" in label:
            continue
        offline = results["offline" + (label[label.index(" ["):] if " [" in label else "")]
        per = {k: r[k] / args.limit for k in ("decode_calls", "tokens", "rows")}
        model_s = (per["decode_calls"] * cost["call"] + per["tokens"] * cost["token"]
                   + (per["rows"] - per["decode_calls"]) * cost["row"]) / 1000
        extra_tokens = per["tokens"] - offline["tokens"] / args.limit
        floor = 1 + extra_tokens * cost["token"] / 1000 / (offline["wall_s"] / args.limit)
        print(f"{label:<24} {model_s:>13.3f} {r['wall_s'] / args.limit:>9.3f} {floor:>21.2f}")
    if args.naive:
        for setting in SETTINGS:
            same = results[setting]["outputs"] == results[f"{setting} (naive)"]["outputs"]
            print(f"{setting}: cached and naive paths committed identical output: {same}")


if __name__ == "__main__":
    main()
