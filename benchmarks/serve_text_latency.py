"""What a text stream through `lsg-edge serve` costs against the same session in process.

Each of the first N wmt15-deen-dev sentences is typed word by word at `--rate` words a second (its
last word followed by a line break), twice in turn so that the machine's load drifts alike over both:
  in-process  a `TranslationSession` of the default model, each word pushed at its time;
  server      `lsg-edge serve --translate` in a child process, each word sent at its time by
              `lsg_edge.client` over a text stream (`"input": "text"`, `catch_up: false`, so that
              both decide after every word and commit the same text).
Lag of a commit: the time it was made (in process) or arrived at the client (server) minus the time
its last source word was typed. Per sentence, the mean over its commits; the server's added lag is
server − in-process with a paired bootstrap over sentences.

    python benchmarks/serve_text_latency.py --data $DATA --n 30 --rate 2.5

Wall-clock figures depend on what else the machine runs: report the load with them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lsg_edge import TranslationEngine
from lsg_edge.client import CaptionClient, transcript
from lsg_edge.evaluation.paired import paired_bootstrap
from lsg_edge.evaluation.text_run import read_parallel
from lsg_edge.text.source import split_words

sys.path.insert(0, str(Path(__file__).parent))
from serve_latency import start_server  # noqa: E402  (a sibling benchmark script)


def typed_at(n_words: int, rate: float, start: float) -> np.ndarray:
    return start + np.arange(n_words) / rate


def wait_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def in_process(engine: TranslationEngine, words: list[str], rate: float) -> tuple[str, list[float]]:
    lags, committed = [], []
    with engine.create_session("de", "en") as session:
        times = typed_at(len(words), rate, time.monotonic() + 0.05)
        for k, word in enumerate(words):
            wait_until(times[k])
            commits = session.push(word) + (session.finish() if k == len(words) - 1 else [])
            now = time.monotonic()
            committed += commits
            lags += [now - times[commit.source_read - 1] for commit in commits if commit.text]
    # Joined as the server's client joins them (each commit's separator: "third" + "-largest").
    messages = [{"type": "commit", **c.to_json(), "separator": c.separator} for c in committed]
    return transcript(messages, "source").strip(), lags


def through_server(address: str, words: list[str], rate: float) -> tuple[str, list[float]]:
    with CaptionClient(f"ws://{address}/ws", input="text", language="de", target="en", catch_up=False) as client:
        times = typed_at(len(words), rate, time.monotonic() + 0.05)
        for k, word in enumerate(words):
            wait_until(times[k])
            client.send_text(word + ("\n" if k == len(words) - 1 else " "))
        messages = client.stop()
    lags = [m.at_s - times[m.message["source_read"] - 1] for m in messages
            if m.message["type"] == "commit" and m.message["text"]]
    return transcript(messages, "target").strip(), lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--n", type=int, default=30, help="wmt15-deen-dev sentences (the first N)")
    parser.add_argument("--rate", type=float, default=2.5, help="words typed a second")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (server and in-process)")
    args = parser.parse_args()
    folder = args.data / "wmt15-deen-dev"
    sentences = [split_words(pair.source) for pair in read_parallel(folder / "de.txt", folder / "en.txt")[: args.n]]
    process, address = start_server("tiny.en", args.threads, 1, extra=("--translate",))
    same, stats = 0, {"in-process": [], "server": []}
    try:
        with TranslationEngine.load(n_threads=args.threads) as engine:
            for words in sentences:
                mine, mine_lags = in_process(engine, words, args.rate)
                served, served_lags = through_server(address, words, args.rate)
                same += mine == served
                stats["in-process"].append([sum(mine_lags), len(mine_lags)])
                stats["server"].append([sum(served_lags), len(served_lags)])
    finally:
        process.terminate()
        process.wait(timeout=30)
    result = paired_bootstrap(np.array(stats["in-process"]), np.array(stats["server"]),
                              lambda s: s[..., 0] / s[..., 1], "lag s")
    print(f"# {len(sentences)} sentences, {sum(map(len, sentences))} words typed at {args.rate:g} words/s, "
          f"{args.threads} thread(s); identical translations: {same} of {len(sentences)}")
    print("| consumer | commits | lag mean s |\n|---|---|---|")
    for name, rows in stats.items():
        rows = np.array(rows)
        print(f"| {name} | {int(rows[:, 1].sum())} | {rows[:, 0].sum() / rows[:, 1].sum():.3f} |")
    print(f"server − in-process: {1000 * result.difference:+.1f} ms a commit, p = {result.p_value:.3f} "
          f"(paired bootstrap over {result.n_items} sentences)")


if __name__ == "__main__":
    main()
