"""Speed benchmark: what LSG costs compared with offline translation of the same sentences.

For each setting — offline, wait-5, LSG (δ=9.0, α=0.6, [L,U]=[1,4]) — with the KV cache reused
(the optimised path) and, with --naive, recomputed from scratch at every request (the
straightforward path), prints seconds per sentence, the ratio to offline (cached), llama_decode
calls and tokens evaluated per sentence, process CPU time (less sensitive than wall time to a
shared machine; use --threads 1 there, as spinning worker threads inflate it), and the peak RSS of a process that runs only that setting.
It then fits llama.cpp's cost per call, per token and per logits row on this machine and prints the
floor on each ratio set by the tokens the setting must evaluate beyond offline's.
Each setting runs in its own process (peak RSS is per process), one after the other, so the ratios
come from one run on one machine. It also reports whether the naive and cached paths committed the
same text at the same source positions.

    python benchmarks/text_speed.py --data DATA --limit 100 [--naive]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "offline": {"name": "offline"},
    "wait-5": {"name": "wait-k", "k": 5},
    "lsg": {"name": "lsg", "delta": 9.0, "alpha": 0.6, "low_bound": 1, "top_bound": 4},
}


def run_one(setting: str, data: Path, limit: int, naive: bool, threads: int) -> dict:
    """Runs in a child process: translate `limit` sentences with one setting."""
    from lsg_edge import PolicyOptions, TranslationEngine
    from lsg_edge.text.source import split_words

    sources = (data / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8").splitlines()[:limit]
    overrides = {"reuse_cache": not naive}
    if threads:
        overrides["n_threads"] = threads
    with TranslationEngine.load(**overrides) as engine:
        session = engine.create_session("de", "en", policy=PolicyOptions(**SETTINGS[setting]))
        # Warm-up sentence (page in the weights, build caches) outside the timed loop.
        for word in split_words(sources[0]):
            session.push(word)
        session.finish()
        before = engine.counters
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
        after = engine.counters
    return {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "decode_calls": sum(after[k] - before[k] for k in after if k.endswith("decode_calls")),
        "tokens": sum(after[k] - before[k] for k in after if k.endswith("tokens")),
        "rows": sum(after[k] - before[k] for k in after if k.endswith("logits_rows")),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outputs": outputs,
    }


def calibrate(data: Path, threads: int) -> dict:
    """Runs in a child process: the cost of one llama_decode call on this machine, fitted as
    `call` (fixed, with its first logits row: the 262k × 640 output matmul) + `token` per token of
    the batch + `row` per further logits row, from medians of repeated calls on a 250-token cache."""
    import numpy as np

    from lsg_edge import TranslationEngine

    overrides = {"n_threads": threads} if threads else {}
    with TranslationEngine.load(**overrides) as engine:
        context, vocab = engine.full_context, engine.model.vocab
        text = (data / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8")
        cache = vocab.tokenize(text[:4000], add_bos=True)[:250]
        extra = vocab.tokenize(text[4000:8000], add_bos=False)[:64]
        context.logits_at(cache, [len(cache) - 1])

        def median_ms(n_tokens: int, n_rows: int) -> float:
            times = []
            for _ in range(9):
                sequence = cache + extra[:n_tokens]
                context.logits_at(cache, [len(cache) - 1])  # back to the 250-token cache
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
    parser.add_argument("--child", nargs=2, metavar=("SETTING", "NAIVE"), help=argparse.SUPPRESS)
    parser.add_argument("--calibrate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calibrate:
        print(json.dumps(calibrate(args.data, args.threads)))
        return
    if args.child:
        setting, naive = args.child
        print(json.dumps(run_one(setting, args.data, args.limit, naive == "1", args.threads)))
        return

    results = {}
    runs = [(s, False) for s in SETTINGS] + ([(s, True) for s in SETTINGS] if args.naive else [])
    for setting, naive in runs:
        command = [sys.executable, __file__, "--data", str(args.data), "--limit", str(args.limit), "--threads", str(args.threads),
                   "--child", setting, "1" if naive else "0"]
        child = subprocess.run(command, capture_output=True, text=True, check=True)
        results[(setting, naive)] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"  done: {setting}{' (naive)' if naive else ''}", file=sys.stderr)

    command = [sys.executable, __file__, "--data", str(args.data), "--threads", str(args.threads), "--calibrate"]
    cost = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])

    offline = results[("offline", False)]
    print(f"{args.limit} sentences of newstest2015 De→En, default model, one process per row")
    print(f"{'setting':<16} {'s/sent':>7} {'×offline':>9} {'cpu s/sent':>11} {'cpu ×off':>9} "
          f"{'calls/sent':>11} {'tokens/sent':>12} {'rows/sent':>10} {'peak RSS MB':>12} {'RSS ×off':>9}")
    for (setting, naive), r in results.items():
        label = setting + (" (naive)" if naive else "")
        print(
            f"{label:<16} {r['wall_s'] / args.limit:>7.3f} {r['wall_s'] / offline['wall_s']:>9.2f} "
            f"{r['cpu_s'] / args.limit:>11.3f} {r['cpu_s'] / offline['cpu_s']:>9.2f} "
            f"{r['decode_calls'] / args.limit:>11.1f} {r['tokens'] / args.limit:>12.1f} {r['rows'] / args.limit:>10.1f} "
            f"{r['peak_rss_mb']:>12.0f} {r['peak_rss_mb'] / offline['peak_rss_mb']:>9.2f}"
        )

    # Where the time goes, and what exactness forbids saving: with a source-then-target prompt every
    # READ changes the source, so the committed target must be evaluated again under it. Those
    # tokens (beyond offline's) set a floor on the ratio that no call merging can lower.
    print(f"\ncost of one llama_decode here: {cost['call']:.1f} ms per call (with its first logits row) "
          f"+ {cost['token']:.2f} ms per token + {cost['row']:.1f} ms per further row")
    print(f"{'setting':<16} {'model s/sent':>13} {'measured':>9} {'token floor ×offline':>21}")
    for (setting, naive), r in results.items():
        if naive:
            continue
        per = {k: r[k] / args.limit for k in ("decode_calls", "tokens", "rows")}
        model_s = (per["decode_calls"] * cost["call"] + per["tokens"] * cost["token"]
                   + (per["rows"] - per["decode_calls"]) * cost["row"]) / 1000
        extra_tokens = per["tokens"] - offline["tokens"] / args.limit
        floor = 1 + extra_tokens * cost["token"] / 1000 / (offline["wall_s"] / args.limit)
        print(f"{setting:<16} {model_s:>13.3f} {r['wall_s'] / args.limit:>9.3f} {floor:>21.2f}")
    if args.naive:
        for setting in SETTINGS:
            same = results[(setting, False)]["outputs"] == results[(setting, True)]["outputs"]
            print(f"{setting}: cached and naive paths committed identical output: {same}")


if __name__ == "__main__":
    main()
