"""Text input faster than the machine translates: does the lag stay bounded with `--catch-up`?

    python benchmarks/text_catch_up.py --data DATA --rate 2.5 --rate 12          # the default model
    python benchmarks/text_catch_up.py --data DATA --limit 100 --batches          # quality only

The first `--limit` sentences of wmt15-deen-dev are written word by word into a pipe at `rate`
words a second (a line break after each sentence), and `TranslationSession.translate_stream` reads
them through `read_words`, as `lsg-edge translate --stdin` does, with and without `catch_up`. Per
run: BLEU (sacrebleu), decisions made (llama.cpp calls of the full-prefix context), and the lag of
each commit — from the arrival of the source word it was decided on to the moment it was made —
mean, 90th percentile, maximum, and how long after the last word arrived the last commit came.

`--batches` leaves the clock out: the words are read in fixed batches of 1, 2 and 4, the policy
deciding after the last of each (what catching up does when 2 or 4 words wait), and BLEU is
compared over more sentences than a timed run can afford.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import sacrebleu

from lsg_edge import TranslationEngine
from lsg_edge.evaluation.text_run import read_parallel
from lsg_edge.text.source import read_words, split_words

sys.path.insert(0, str(Path(__file__).parent))
from catch_up import lag_cells  # noqa: E402  (a sibling benchmark script)


def feed(fd: int, sentences: list[list[str]], rate: float, arrivals: list[float]) -> None:
    """Write the words into `fd` at `rate` words a second; `arrivals` gets each word's write time."""
    with os.fdopen(fd, "wb", buffering=0) as pipe:
        start = time.monotonic()
        for sentence in sentences:
            for k, word in enumerate(sentence):
                delay = start + len(arrivals) / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                arrivals.append(time.monotonic())
                pipe.write((word + ("\n" if k == len(sentence) - 1 else " ")).encode())


def run(engine: TranslationEngine, sentences: list[list[str]], rate: float, catch_up: bool) -> dict:
    read_fd, write_fd = os.pipe()
    arrivals: list[float] = []
    first_word = np.cumsum([0] + [len(s) for s in sentences])  # global index of each sentence's first word
    feeder = threading.Thread(target=feed, args=(write_fd, sentences, rate, arrivals), daemon=True)
    lags, outputs, last = [], [""] * len(sentences), 0.0
    with engine.create_session("de", "en") as session, os.fdopen(read_fd, "rb", buffering=0) as stream:
        calls_before = session.counters["full_decode_calls"]
        feeder.start()
        for commit in session.translate_stream(read_words(stream, split_sentences=False), catch_up=catch_up):
            last = time.monotonic()
            if commit.text:
                k = commit.sentence_index
                outputs[k] = (outputs[k] + commit.separator + commit.text).strip()
                lags.append(last - arrivals[first_word[commit.sentence_index] + commit.source_read - 1])
        calls = session.counters["full_decode_calls"] - calls_before
    feeder.join()
    return {"outputs": outputs, "lags": np.array(lags), "tail": last - arrivals[-1], "calls": calls}


def batched(engine: TranslationEngine, sentences: list[list[str]], batch: int) -> tuple[list[str], int]:
    """Outputs when the policy decides only after every `batch`-th word (and a sentence's last),
    and the commits that U forced."""
    outputs, forced = [], 0
    with engine.create_session("de", "en") as session:
        for words in sentences:
            commits = [c for k, word in enumerate(words)
                       for c in session.push(word, decide=(k + 1) % batch == 0 or k == len(words) - 1)]
            commits += session.finish()
            forced += sum(c.cause == "forced" for c in commits)
            outputs.append(" ".join(c.text for c in commits if c.text))
    return outputs, forced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder")
    parser.add_argument("--manifest", default=None, help="model manifest (default: the embedded default)")
    parser.add_argument("--limit", type=int, default=20, help="sentences")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate", type=float, action="append", help="words a second (repeatable)")
    parser.add_argument("--batches", action="store_true", help="BLEU of batched reads instead of timed runs")
    args = parser.parse_args()
    folder = args.data / "wmt15-deen-dev"
    pairs = read_parallel(folder / "de.txt", folder / "en.txt")[: args.limit]
    sentences = [split_words(pair.source) for pair in pairs]
    references = [pair.reference for pair in pairs]
    manifest = {"manifest": args.manifest} if args.manifest else {}
    with TranslationEngine.load(**manifest, n_threads=args.threads) as engine:
        print(f"# {len(sentences)} sentences, {sum(map(len, sentences))} words, {engine.model.path.name}, "
              f"{args.threads} threads")
        if args.batches:
            print("| words read per decision | BLEU | forced commits |\n|---|---|---|")
            for batch in (1, 2, 4):
                outputs, forced = batched(engine, sentences, batch)
                print(f"| {batch} | {sacrebleu.corpus_bleu(outputs, [references]).score:.2f} | {forced} |", flush=True)
            return
        print("| words/s | consumer | BLEU | full-prefix calls | lag mean s | lag p90 s | lag max s | "
              "last commit after the last word s |")
        print("|---|---|---|---|---|---|---|---|")
        for rate in args.rate or [2.5, 12.0]:
            for catch_up in (False, True):
                r = run(engine, sentences, rate, catch_up)
                bleu = sacrebleu.corpus_bleu(r["outputs"], [references]).score
                print(f"| {rate:g} | {'catch-up' if catch_up else 'each word'} | {bleu:.2f} | {r['calls']} "
                      f"| {lag_cells(r['lags'], r['tail'], digits=2)} |", flush=True)


if __name__ == "__main__":
    main()
