"""Captions on a machine slower than real time: does the lag stay bounded?

    python benchmarks/catch_up.py --data DATA --speed 1 --speed 3 --speed 5     # whisper base, 1 thread

Librispeech-dev utterances are joined into one talk (0.8 s between them, shorter than the pause
that cuts a window) and arrive in 100 ms blocks at `speed` × real time: at speed 3 the machine has a
third of the time real speech would give it, which is how a machine three times slower than this
one meets live audio. Two consumers of the same arrivals:

- `each block`: every block is pushed on its own, in order, whatever has piled up meanwhile (what
  the microphone loop did before it drained its queue);
- `catch-up`: all blocks that have arrived are pushed at once (`speech.audio_io.paced`,
  `MicrophoneStream`), and the session decides once per push (`speech.session`).

Per consumer: WER over the whole talk, and the *wall-clock lag* of each commit — from the arrival
of the audio it was decided on to the moment it was committed — scaled by `speed` back to real-time
seconds: mean, 90th percentile, maximum, and how long after the talk's last block arrived its last
words came.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lsg_edge.evaluation.scoring import word_error_rate
from lsg_edge.evaluation.speech_run import read_audio_manifest
from lsg_edge.speech.audio_io import BLOCK_MS, read_audio
from lsg_edge.speech.engine import SpeechEngine
from lsg_edge.speech.features import SAMPLE_RATE_HZ
from lsg_edge.speech.onnx_runtime import RuntimeOptions
from lsg_edge.speech.session import AsrSessionOptions

GAP_S = 0.8


def talk(data: Path, n: int) -> tuple[np.ndarray, str]:
    """The first `n` librispeech-dev utterances joined by short pauses, and their transcript."""
    items = read_audio_manifest(data / "librispeech-dev" / "transcripts.tsv", n)
    gap = np.zeros(int(GAP_S * SAMPLE_RATE_HZ), np.float32)
    audio = np.concatenate([part for item in items for part in (read_audio(item.audio_path), gap)])
    return audio, " ".join(item.transcript for item in items)


def stream(engine: SpeechEngine, audio: np.ndarray, speed: float, catch_up: bool) -> dict:
    block = SAMPLE_RATE_HZ * BLOCK_MS // 1000
    blocks = [audio[offset : offset + block] for offset in range(0, audio.size, block)]
    arrival = lambda k: start + (k + 1) * BLOCK_MS / 1000 / speed  # noqa: E731 - block k is whole then
    lags, words = [], []

    def record(commits, now: float) -> None:
        for commit in commits:
            if not commit.text:
                continue
            # The audio the commit was decided on had all arrived once its last block had.
            k_heard = max(0, -(-commit.source_read // BLOCK_MS) - 1)
            lags.append((now - arrival(min(k_heard, len(blocks) - 1))) * speed)
            words.append(commit.text)

    with engine.create_session(AsrSessionOptions(language="en")) as session:
        start = time.monotonic()
        k = 0
        while k < len(blocks):
            delay = arrival(k) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            last = k + 1
            if catch_up:
                while last < len(blocks) and arrival(last) <= time.monotonic():
                    last += 1
            commits = session.push(np.concatenate(blocks[k:last]))
            record(commits, time.monotonic())
            k = last
        commits = session.finish()
        end = time.monotonic()
        record(commits, end)
    return {"text": " ".join(words), "lags": np.array(lags), "tail": (end - arrival(len(blocks) - 1)) * speed}


def lag_cells(lags: np.ndarray, tail_s: float, digits: int = 1) -> str:
    """The lag columns both catch-up benchmarks print: mean, 90th percentile, maximum, tail."""
    return " | ".join(f"{value:.{digits}f}" for value in (lags.mean(), np.percentile(lags, 90), lags.max(), tail_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (holds librispeech-dev)")
    parser.add_argument("--n", type=int, default=10, help="utterances in the talk")
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--speed", type=float, action="append", help="arrival speed × real time (repeatable)")
    args = parser.parse_args()
    audio, transcript = talk(args.data, args.n)
    engine = SpeechEngine.load(args.model, RuntimeOptions(n_threads=args.threads))
    print(f"# a talk of {args.n} librispeech-dev utterances, {audio.size / SAMPLE_RATE_HZ:.1f} s, "
          f"whisper {args.model}, {args.threads} thread(s); lags in real-time seconds")
    print("| speed | consumer | WER % | commits | lag mean s | lag p90 s | lag max s | last words after the end s |")
    print("|---|---|---|---|---|---|---|---|")
    for speed in args.speed or [1.0, 3.0]:
        for catch_up in (False, True):
            r = stream(engine, audio, speed, catch_up)
            wer = word_error_rate([transcript], [r["text"]])
            lags = r["lags"]
            print(f"| {speed:g} | {'catch-up' if catch_up else 'each block'} | {wer:.2f} | {lags.size} "
                  f"| {lag_cells(lags, r['tail'])} |", flush=True)


if __name__ == "__main__":
    main()
