"""What `lsg-edge serve` costs: latency added by the WebSocket server, and concurrent real-time clients.

Part 1, latency (the same N librispeech-dev utterances, the same Whisper model and threads):
  eval       `lsg-edge eval --audio-manifest`'s own procedure (`speech_run.run_speech`): audio pushed
             as fast as the session takes it; computation-aware delay = audio read + compute so far.
  in-process the same session fed 100 ms blocks at the speed of speech; computation-aware delay =
             wall time from the first sample to the commit.
  server     `lsg-edge serve` in a child process, the utterance streamed by `lsg_edge.client` at the
             speed of speech; computation-aware delay = wall time from the first sample sent to the
             commit's arrival at the client.
The in-process and server runs take the utterances in turn (one in process, then the same through
the server), so that the machine's load drifts alike over both. AL (non computation-aware) is the
audio read at each commit; the server's added latency is server − in-process AL_CA, with a paired
bootstrap over utterances (its p-value says whether it is beyond the noise of the run).

Part 2, concurrency: 1, 2, 4 clients streaming at once, each its own utterances at the speed of
speech. Per client: the processing lag (at every progress message: arrival time minus the time its
audio was sent; mean and max) and whether it kept up (lag at the end under --keep-up-s). Server:
CPU seconds per second of audio streamed (all clients), resident memory (RSS now and peak).

    python benchmarks/serve_latency.py --data $DATA --n 10 --clients 1,2,4 --model base

Wall-clock figures depend on what else the machine runs: report the load with them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsg_edge.client import CaptionClient, ReceivedMessage
from lsg_edge.evaluation.instance import Instance, build_instance
from lsg_edge.evaluation.paired import paired_bootstrap
from lsg_edge.evaluation.scoring import instance_latency, latency_scores, quality_scores
from lsg_edge.evaluation.speech_run import AudioItem, read_audio_manifest, run_speech
from lsg_edge.events import Commit
from lsg_edge.speech.audio_io import read_audio
from lsg_edge.speech.features import SAMPLE_RATE_HZ

BLOCK_MS = 100  # what the page sends per frame
_BLOCK = SAMPLE_RATE_HZ * BLOCK_MS // 1000


@dataclass
class Streamed:
    """One utterance through the server: messages with arrival times, and when its first sample went."""

    item: AudioItem
    duration_ms: float
    started_at_s: float
    messages: list[ReceivedMessage]


def start_server(model: str, threads: int, max_sessions: int, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "lsg_edge.cli", "serve", "--model", model, "--threads", str(threads),
               "--max-sessions", str(max_sessions), "--port", "0", *extra]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    for line in process.stderr:
        match = re.search(r"serving on http://(127\.0\.0\.1:\d+)/", line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
            return process, match.group(1)
    raise SystemExit(f"lsg-edge serve did not start (exit {process.wait()})")


def stream_realtime(address: str, item: AudioItem, audio: np.ndarray) -> Streamed:
    with CaptionClient(f"ws://{address}/ws", language="en") as client:
        started = time.monotonic()
        for k, offset in enumerate(range(0, audio.size, _BLOCK)):
            delay = started + k * BLOCK_MS / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            client.send(audio[offset : offset + _BLOCK])
        messages = client.stop()
    return Streamed(item, 1000.0 * audio.size / SAMPLE_RATE_HZ, started, messages)


def server_instance(index: int, streamed: Streamed) -> Instance:
    """The instance as `speech_run.instance_from_speech_commits` builds it, timed at the client: the
    commits after the progress message that reports all the audio are the stream's final ones."""
    commits, reads, elapsed = [], [], []
    all_in = False
    for received in streamed.messages:
        message = received.message
        if message["type"] == "progress" and message["heard_ms"] >= int(streamed.duration_ms):
            all_in = True
        if message["type"] != "commit" or message.get("stream", "source") != "source":
            continue
        commits.append(Commit(message["text"], message.get("separator", " "), message["sentence"],
                              message["source_read"], message["elapsed_ms"], message["words"]))
        reads.append(streamed.duration_ms if all_in else float(message["source_read"]))
        elapsed.append((received.at_s - streamed.started_at_s) * 1000.0)
    return build_instance(index, commits, reads, elapsed, streamed.item.transcript, streamed.duration_ms, "ms",
                          str(streamed.item.audio_path))


def in_process_realtime(engine, options, index: int, item: AudioItem) -> Instance:
    audio = read_audio(item.audio_path)
    with engine.create_session(options) as session:
        started = time.monotonic()
        commits = []
        for k, offset in enumerate(range(0, audio.size, _BLOCK)):
            delay = started + k * BLOCK_MS / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            commits += session.push(audio[offset : offset + _BLOCK])
        final = session.finish()
        commits += final
    duration_ms = 1000.0 * audio.size / SAMPLE_RATE_HZ
    reads = [duration_ms if k >= len(commits) - len(final) else float(c.source_read)
             for k, c in enumerate(commits)]
    elapsed = [(c.wall_time_s - started) * 1000.0 for c in commits]
    return build_instance(index, commits, reads, elapsed, item.transcript, duration_ms, "ms", str(item.audio_path))


def row(name: str, instances: list[Instance]) -> dict:
    scores = {"system": name, **quality_scores(instances, ("WER",)), **latency_scores(instances)}
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in scores.items()}


def added_latency(base: list[Instance], server: list[Instance]) -> dict:
    """Server − in-process AL_CA over the utterances both captioned, with a paired bootstrap."""
    pairs = [(instance_latency(a, True), instance_latency(b, True)) for a, b in zip(base, server)]
    pairs = [(a["AL"], b["AL"]) for a, b in pairs if a is not None and b is not None]
    stats_a = np.array([[a, 1.0] for a, _ in pairs])
    stats_b = np.array([[b, 1.0] for _, b in pairs])
    result = paired_bootstrap(stats_a, stats_b, lambda s: s[..., 0] / s[..., 1], "AL_CA ms")
    return {"in_process_AL_CA": round(result.score_a, 1), "server_AL_CA": round(result.score_b, 1),
            "added_ms": round(result.difference, 1), "p_value": round(result.p_value, 4), "n": result.n_items}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    return round(rss, 1), round(peak, 1)


def concurrent(address: str, pid: int, n_clients: int, items: list[AudioItem], keep_up_s: float) -> dict:
    """`n_clients` at once, client c streaming items c, c + n, c + 2n, … back to back."""
    audios = {item.case_id: read_audio(item.audio_path) for item in items}
    per_client: dict[int, list[Streamed]] = {}

    def client(c: int) -> None:
        per_client[c] = [stream_realtime(address, item, audios[item.case_id]) for item in items[c::n_clients]]

    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(n_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu, wall = cpu_seconds(pid) - cpu_before, time.monotonic() - wall_before
    audio_s = sum(s.duration_ms for runs in per_client.values() for s in runs) / 1000.0
    clients = []
    for c in range(n_clients):
        lags, final_lags = [], []
        for streamed in per_client[c]:
            for received in streamed.messages:
                if received.message["type"] == "progress":
                    sent_at = streamed.started_at_s + received.message["heard_ms"] / 1000.0
                    lags.append(received.at_s - sent_at)
            done_at = streamed.messages[-1].at_s
            final_lags.append(done_at - (streamed.started_at_s + streamed.duration_ms / 1000.0))
        clients.append({"client": c, "lag_mean_s": round(float(np.mean(lags)), 2),
                        "lag_max_s": round(float(np.max(lags)), 2),
                        "done_after_end_s_max": round(max(final_lags), 2),
                        "kept_up": bool(max(final_lags) <= keep_up_s)})
    rss, peak = memory_mb(pid)
    return {"clients": n_clients, "audio_s": round(audio_s, 1), "wall_s": round(wall, 1),
            "server_cpu_s_per_audio_s": round(cpu / audio_s, 3), "rss_mb": rss, "peak_rss_mb": peak,
            "per_client": clients, "all_kept_up": all(c["kept_up"] for c in clients)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--n", type=int, default=10, help="librispeech-dev utterances (the first N)")
    parser.add_argument("--clients", default="1,2,4", help="concurrent client counts")
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (server and in-process)")
    parser.add_argument("--keep-up-s", type=float, default=3.0,
                        help="a client kept up if every utterance's done came within this of its last sample")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    items = read_audio_manifest(args.data / "librispeech-dev" / "transcripts.tsv", args.n)
    report: dict = {"model": args.model, "threads": args.threads, "n": len(items),
                    "load_average_at_start": os.getloadavg()}
    counts = [int(c) for c in args.clients.split(",") if c]  # "" skips part 2
    process, address = start_server(args.model, args.threads, max(counts + [1]))
    try:
        if not args.skip_latency:
            from lsg_edge.speech.engine import SpeechEngine
            from lsg_edge.speech.onnx_runtime import RuntimeOptions
            from lsg_edge.speech.session import AsrSessionOptions

            engine = SpeechEngine.load(args.model, RuntimeOptions(n_threads=args.threads))
            options = AsrSessionOptions()
            evaluated, _ = run_speech(lambda: engine.create_session(options), items, progress=False)
            print("eval", row("eval", evaluated), flush=True)
            # Each utterance in process, then through the server, in turn: a change in the machine's
            # load during the run falls on both alike.
            realtime, served = [], []
            for k, item in enumerate(items):
                realtime.append(in_process_realtime(engine, options, k, item))
                served.append(server_instance(k, stream_realtime(address, item, read_audio(item.audio_path))))
            print("in-process", row("in-process", realtime), flush=True)
            print("server", row("server", served), flush=True)
            report["latency"] = [row("eval", evaluated), row("in-process real time", realtime),
                                 row("server real time", served)]
            report["added"] = added_latency(realtime, served)
            print("added", report["added"], flush=True)
        report["concurrency"] = []
        for n_clients in counts:
            result = concurrent(address, process.pid, n_clients, items, args.keep_up_s)
            print("concurrency", json.dumps(result), flush=True)
            report["concurrency"].append(result)
    finally:
        process.terminate()
        process.wait(timeout=30)
    report["load_average_at_end"] = os.getloadavg()
    if args.output:
        args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
