"""Streaming-Whisper peers against lsg-edge on librispeech-dev: same weights, same utterances, one table.

    python benchmarks/asr_peers.py --data DATA --peers-python VENV/bin/python \
        --whisper-online whisper_online.py --n 50 --threads 1 --jobs 7
    python benchmarks/asr_peers.py --data DATA --score-only       # score the logs in --work again

`DATA` is the folder holding librispeech-dev/transcripts.tsv. Systems (`--systems`, comma-separated):

- `fw-offline`: faster-whisper greedy fp32 on the whole utterance;
- `ws-la2-640`, `ws-la2-1000`: ufal/whisper_streaming's LocalAgreement-2 (`OnlineASRProcessor` of its
  `whisper_online.py`, faster-whisper beam 5, 200-character prompt, segment trimming at 15 s) fed
  640 ms / 1 s chunks;
- `wlk-alignatt`: WhisperLiveKit's SimulStreaming AlignAtt (faster-whisper encoder, PyTorch decoder,
  its config defaults: greedy, frame threshold 25) fed 640 ms chunks;
- `wlk-la2`: WhisperLiveKit's LocalAgreement (its port of whisper_streaming's, faster-whisper) fed 1 s chunks;
- `lsg`, `local-agreement`, `offline`: `lsg-edge eval --audio-manifest` with that policy.

The peers are benchmark dependencies, never runtime ones: they run in another Python environment
(`--peers-python`, which has whisperlivekit, faster-whisper and torch), as a subprocess executing
this file in `peer` mode. Every peer runs on CPU in float32 with `--threads` threads
(faster-whisper's `cpu_threads`, torch's intra-op threads, `OMP_NUM_THREADS`) over the CTranslate2
Whisper model that lsg-edge converts to ONNX; WhisperLiveKit's AlignAtt decoder reads the same
weights, rewritten once into a PyTorch checkpoint in `--work`.

Simulated real time, computation measured, not waited for: audio goes in chunk by chunk as fast as
the system takes it. A word's delay is the audio (ms) that had been fed when the text completing it
was committed — the end of the current chunk, or the whole utterance for what a final flush (or an
offline system) returns. Its computation-aware time adds the computation spent on the utterance so
far, as `lsg-edge eval` defines `elapsed` for speech. `--clock cpu` (default) counts computation as
the process's CPU time — with one thread, the time on an otherwise idle core — so figures do not
depend on what else the machine runs and systems may run side by side (`--jobs`); `--clock wall`
counts elapsed time. Everything is scored by `lsg_edge.evaluation`: WER after its normalisation,
SimulEval AL (reference length) and AL_CA in ms; RTF = computation ÷ audio duration. Each peer writes
an utterance's record as soon as it is done; the table scores every system on the utterances that
all of them finished.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

SAMPLE_RATE = 16_000
PEER_SYSTEMS = {
    # name: (runner, chunk ms; 0 = offline)
    "fw-offline": ("fw-offline", 0),
    "ws-la2-640": ("whisper-streaming", 640),
    "ws-la2-1000": ("whisper-streaming", 1000),
    "wlk-alignatt": ("wlk-alignatt", 640),
    "wlk-la2": ("wlk-la2", 1000),
}
OUR_SYSTEMS = ("lsg", "local-agreement", "offline")
# "cpu": computation is the system's process CPU time (one thread: what it takes on an idle core,
# whatever else the machine runs, so systems can run side by side); "wall": elapsed time.
CLOCKS = ("cpu", "wall")
LABELS = {
    "fw-offline": "faster-whisper offline greedy fp32",
    "ws-la2-640": "whisper_streaming LA-2, 640 ms chunks",
    "ws-la2-1000": "whisper_streaming LA-2, 1 s chunks",
    "wlk-alignatt": "WhisperLiveKit AlignAtt, 640 ms chunks",
    "wlk-la2": "WhisperLiveKit LocalAgreement, 1 s chunks",
    "lsg": "lsg-edge LSG (defaults)",
    "local-agreement": "lsg-edge LocalAgreement-2",
    "offline": "lsg-edge offline (VAD windows)",
}


# --- peer side: runs in the peers' environment, imports neither lsg_edge nor anything of the main one ---


def _word_delays(pieces: list[tuple[str, float, float]]) -> tuple[list[str], list[float], list[float]]:
    """Committed text pieces (text, delay ms, elapsed ms), in order → words with the delay of the
    piece that completed them (a piece may end inside a word that the next one finishes)."""
    words: list[str] = []
    delays: list[float] = []
    elapsed: list[float] = []
    current, last = "", (0.0, 0.0)
    for text, delay, spent in pieces:
        for char in text:
            if char.isspace():
                if current:
                    words.append(current)
                    delays.append(last[0])
                    elapsed.append(last[1])
                current = ""
            else:
                current += char
                last = (delay, spent)
    if current:
        words.append(current)
        delays.append(last[0])
        elapsed.append(last[1])
    return words, delays, elapsed


class _Clock:
    """Computation spent on one utterance (`now`: CPU or wall seconds), and the pieces committed
    with their delays."""

    now = staticmethod(time.process_time)

    def __init__(self) -> None:
        self.start = self.now()
        self.pieces: list[tuple[str, float, float]] = []

    def commit(self, text: str, audio_ms: float) -> None:
        if text:
            self.pieces.append((text, audio_ms, audio_ms + 1000.0 * (self.now() - self.start)))

    def record(self, index: int, duration_ms: float) -> dict:
        spent = self.now() - self.start
        words, delays, elapsed = _word_delays(self.pieces)
        return {"index": index, "words": words, "delays": delays, "elapsed": elapsed,
                "duration_ms": duration_ms, "compute_s": spent}


def _cpu_whisper_model(threads: int):
    """faster-whisper's WhisperModel pinned to CPU, float32, `threads` threads, whatever the caller asks."""
    import faster_whisper

    class CpuWhisperModel(faster_whisper.WhisperModel):
        def __init__(self, model_size_or_path, *args, **kwargs):
            kwargs.update(device="cpu", compute_type="float32", cpu_threads=threads)
            super().__init__(model_size_or_path, **kwargs)

    return CpuWhisperModel


def _chunks(audio, chunk_ms: int):
    step = SAMPLE_RATE * chunk_ms // 1000
    for begin in range(0, audio.size, step):
        end = min(begin + step, audio.size)
        yield audio[begin:end], 1000.0 * end / SAMPLE_RATE


def _run_fw_offline(args, utterances) -> Iterator[dict]:
    model = _cpu_whisper_model(args.threads)(args.ct2)
    for index, audio in utterances:
        clock = _Clock()
        segments, _ = model.transcribe(audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True,
                                       condition_on_previous_text=False)
        text = " ".join(s.text for s in segments)
        duration_ms = 1000.0 * audio.size / SAMPLE_RATE
        clock.commit(text, duration_ms)
        yield clock.record(index, duration_ms)


def _run_whisper_streaming(args, utterances, chunk_ms: int) -> Iterator[dict]:
    sys.path.insert(0, str(Path(args.whisper_online).resolve().parent))
    import whisper_online

    model_class = _cpu_whisper_model(args.threads)

    class CpuFasterWhisperASR(whisper_online.FasterWhisperASR):
        # Upstream loads on CUDA in float16; everything else (beam 5, word timestamps, prompt) is kept.
        def load_model(self, modelsize=None, cache_dir=None, model_dir=None):
            return model_class(model_dir)

    asr = CpuFasterWhisperASR("en", model_dir=args.ct2)
    online = whisper_online.OnlineASRProcessor(asr, None, buffer_trimming=("segment", 15))
    asr.transcribe(utterances[0][1][:SAMPLE_RATE])  # upstream's warm-up: the first second
    for index, audio in utterances:
        online.init()
        clock = _Clock()
        for chunk, end_ms in _chunks(audio, chunk_ms):
            online.insert_audio_chunk(chunk)
            clock.commit(online.process_iter()[2], end_ms)
        duration_ms = 1000.0 * audio.size / SAMPLE_RATE
        clock.commit(online.finish()[2], duration_ms)
        yield clock.record(index, duration_ms)


def _run_whisperlivekit(args, utterances, chunk_ms: int, policy: str) -> Iterator[dict]:
    import faster_whisper
    import whisperlivekit.simul_whisper.backend as simul_backend
    from whisperlivekit.config import WhisperLiveKitConfig
    from whisperlivekit.core import TranscriptionEngine, online_factory
    from whisperlivekit.whisper import _ALIGNMENT_HEADS

    faster_whisper.WhisperModel = simul_backend.WhisperModel = _cpu_whisper_model(args.threads)
    common = dict(lan="en", vac=False, vad=False, diarization=False, min_chunk_size=chunk_ms / 1000.0,
                  warmup_file=args.warmup_file)
    if policy == "simulstreaming":
        config = WhisperLiveKitConfig(backend_policy="simulstreaming", backend="faster-whisper",
                                      encoder_model_path=args.ct2, decoder_model_path=args.torch_checkpoint,
                                      custom_alignment_heads=_ALIGNMENT_HEADS["base"].decode(), **common)
    else:
        config = WhisperLiveKitConfig(backend_policy="localagreement", backend="faster-whisper",
                                      model_dir=args.ct2, **common)
    engine = TranscriptionEngine(config=config)
    for index, audio in utterances:
        online = online_factory(engine.args, engine.asr)
        clock = _Clock()
        for chunk, end_ms in _chunks(audio, chunk_ms):
            online.insert_audio_chunk(chunk, end_ms / 1000.0)
            tokens, _ = online.process_iter()
            clock.commit("".join(t.text for t in tokens), end_ms)
        duration_ms = 1000.0 * audio.size / SAMPLE_RATE
        tokens, _ = online.finish() if hasattr(online, "finish") else online.process_iter(is_last=True)
        clock.commit("".join(t.text for t in tokens), duration_ms)
        yield clock.record(index, duration_ms)


def peer_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="asr_peers.py peer")
    parser.add_argument("system", choices=sorted(PEER_SYSTEMS))
    parser.add_argument("--audio", required=True, help="JSON list of 16 kHz mono WAV paths")
    parser.add_argument("--out", required=True, help="JSON lines, one per utterance")
    parser.add_argument("--ct2", required=True)
    parser.add_argument("--torch-checkpoint")
    parser.add_argument("--whisper-online")
    parser.add_argument("--warmup-file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=CLOCKS, default="cpu")
    args = parser.parse_args(argv)
    if args.clock == "wall":
        _Clock.now = staticmethod(time.perf_counter)

    import soundfile
    import torch

    torch.set_num_threads(args.threads)
    utterances = []
    for index, path in enumerate(json.loads(Path(args.audio).read_text())):
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            raise SystemExit(f"asr_peers: {path} is {rate} Hz, expected {SAMPLE_RATE}")
        utterances.append((index, audio.mean(axis=1)))
    runner, chunk_ms = PEER_SYSTEMS[args.system]
    if runner == "fw-offline":
        records = _run_fw_offline(args, utterances)
    elif runner == "whisper-streaming":
        records = _run_whisper_streaming(args, utterances, chunk_ms)
    else:
        policy = "simulstreaming" if runner == "wlk-alignatt" else "localagreement"
        records = _run_whisperlivekit(args, utterances, chunk_ms, policy)
    # One line per utterance as soon as it is done: a run cut short still leaves its finished ones.
    with open(args.out, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
            f.flush()


# --- main side: lsg-edge's environment; converts the weights, runs everything, scores ---------------


def torch_checkpoint(ct2_dir: Path, target: Path) -> Path:
    """The CTranslate2 Whisper model rewritten as an openai-whisper checkpoint ({"dims",
    "model_state_dict"}), for decoders that run in PyTorch; made once."""
    if target.exists():
        return target
    import numpy as np
    import torch

    from lsg_edge.convert.whisper_weights import load_weights

    weights = load_weights(ct2_dir)
    d = weights.dims
    state = {}
    for name, array in weights.tensors.items():
        key = (name.replace(".layers.", ".blocks.").replace("encoder.positions", "encoder.positional_embedding")
               .replace("decoder.positions", "decoder.positional_embedding")
               .replace("decoder.tokens", "decoder.token_embedding.weight")
               .replace("mlp.fc1", "mlp.0").replace("mlp.fc2", "mlp.2"))
        for short, long in ((".q.", ".query."), (".k.", ".key."), (".v.", ".value."), (".o.", ".out.")):
            key = key.replace(short, long)
        if key.endswith(".key.bias"):
            # Whisper's key projections have no bias; CTranslate2 stores zeros for it in the fused q|k|v.
            if np.any(array):
                raise SystemExit(f"asr_peers: {name} is not zero, the checkpoint would differ")
            continue
        state[key] = torch.from_numpy(np.ascontiguousarray(array))
    dims = {"n_mels": d.n_mels, "n_audio_ctx": d.n_audio_ctx, "n_audio_state": d.d_model,
            "n_audio_head": d.n_heads, "n_audio_layer": d.n_encoder_layers, "n_vocab": d.n_vocab,
            "n_text_ctx": d.n_text_ctx, "n_text_state": d.d_model, "n_text_head": d.n_heads,
            "n_text_layer": d.n_decoder_layers}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    torch.save({"dims": dims, "model_state_dict": state}, partial)
    os.replace(partial, target)
    return target


def _environment(threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    return env


def run_peer(system: str, args, items, ct2_dir: Path, checkpoint: Path | None) -> None:
    work = Path(args.work)
    audio_list = work / f"{system}.audio.json"
    audio_list.write_text(json.dumps([str(i.audio_path) for i in items]))
    command = [args.peers_python, str(Path(__file__).resolve()), "peer", system, "--audio", str(audio_list),
               "--out", str(work / f"{system}.jsonl"), "--ct2", str(ct2_dir),
               "--warmup-file", str(items[0].audio_path), "--threads", str(args.threads), "--clock", args.clock]
    if checkpoint is not None:
        command += ["--torch-checkpoint", str(checkpoint)]
    if args.whisper_online:
        command += ["--whisper-online", args.whisper_online]
    subprocess.run(command, check=True, env=_environment(args.threads), stdout=sys.stderr)


def run_ours(policy: str, args, manifest: Path) -> None:
    # The CPU clock: `lsg-edge eval` times commits and utterances with the time module's clocks.
    cpu_clock = ("import time; time.time = time.perf_counter = time.monotonic = time.process_time; "
                 if args.clock == "cpu" else "")
    command = [sys.executable, "-P", "-c", cpu_clock + "from lsg_edge.cli import main; main()", "eval",
               "--audio-manifest", str(manifest), "--limit", str(args.n), "--policy", policy,
               "--threads", str(args.threads), "--speech-model", args.model, "--no-progress",
               "--output", str(Path(args.work) / f"lsg-edge-{policy}")]
    subprocess.run(command, check=True, env=_environment(args.threads), stdout=sys.stderr)


def load_results(system: str, work: Path, items) -> tuple[dict, dict | None, float | None]:
    """Instances by utterance index, and the computation: seconds by index (peers), or the run's
    RTF over all its utterances (`lsg-edge eval` reports no per-utterance time)."""
    from lsg_edge.evaluation import Instance, read_instances

    if system in OUR_SYSTEMS:
        output = work / f"lsg-edge-{system}"
        if not (output / "instances.log").exists():
            return {}, None, None
        row = json.loads((output / "scores.json").read_text())["rows"][0]
        return {i.index: i for i in read_instances(output / "instances.log")}, None, row["real_time_factor"]
    path = work / f"{system}.jsonl"
    instances, compute = {}, {}
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            break  # the last line of a run cut short
        item = items[r["index"]]
        instances[r["index"]] = Instance(
            index=r["index"], prediction=" ".join(r["words"]), reference=item.transcript,
            source_length=r["duration_ms"], delays=tuple(r["delays"]), elapsed=tuple(r["elapsed"]), unit="ms",
            source=str(item.audio_path))
        compute[r["index"]] = r["compute_s"]
    return instances, compute, None


def score_table(systems: list[str], work: Path, items) -> list[str]:
    """Markdown rows, every system scored on the utterances that all of them finished."""
    from lsg_edge.evaluation import latency_scores, quality_scores

    results = {s: load_results(s, work, items) for s in systems}
    common = sorted(set.intersection(*(set(r[0]) for r in results.values()))) if results else []
    if not common:
        return [f"no utterance finished by all of: {', '.join(systems)}"]
    audio_s = sum(results[systems[0]][0][i].source_length for i in common) / 1000.0
    rows = [f"# scored on {len(common)} utterance(s) ({audio_s:.0f} s) finished by every system",
            "| system | WER % | AL ms | AL_CA ms | RTF |", "|---|---|---|---|---|"]
    for system in systems:
        by_index, compute, run_rtf = results[system]
        instances = [by_index[i] for i in common]
        wer = quality_scores(instances, ("WER",))["WER"]
        latency = latency_scores(instances)
        rtf = sum(compute[i] for i in common) / audio_s if compute is not None else run_rtf
        rows.append(f"| {LABELS[system]} | {wer:.2f} | {latency['AL']:.0f} | {latency['AL_CA']:.0f} | {rtf:.3f} |")
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "peer":
        peer_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="folder holding librispeech-dev/transcripts.tsv")
    parser.add_argument("--n", type=int, default=50, help="first N utterances (default 50)")
    parser.add_argument("--systems", default=",".join([*PEER_SYSTEMS, *OUR_SYSTEMS]),
                        help=f"comma-separated, of: {', '.join([*PEER_SYSTEMS, *OUR_SYSTEMS])}")
    parser.add_argument("--peers-python", help="Python of the environment holding the peers")
    parser.add_argument("--whisper-online", help="ufal/whisper_streaming's whisper_online.py")
    parser.add_argument("--threads", type=int, default=1, help="threads of every system (default 1)")
    parser.add_argument("--model", default="base", help="built-in Whisper model (default base)")
    parser.add_argument("--work", type=Path, default=Path("out/asr-peers"),
                        help="converted checkpoint and per-system logs (default out/asr-peers)")
    parser.add_argument("--clock", choices=CLOCKS, default="cpu",
                        help="computation time: process CPU time (default) or wall time")
    parser.add_argument("--jobs", type=int, default=1, help="systems run at once, each with --threads")
    parser.add_argument("--score-only", action="store_true",
                        help="run nothing: score the logs already in --work (a run cut short included)")
    args = parser.parse_args()

    from lsg_edge.evaluation.speech_run import read_audio_manifest

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in PEER_SYSTEMS and s not in OUR_SYSTEMS]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    manifest = args.data / "librispeech-dev" / "transcripts.tsv"
    items = read_audio_manifest(manifest, args.n)
    if not args.score_only:
        peers = [s for s in systems if s in PEER_SYSTEMS]
        if peers and not args.peers_python:
            parser.error("--peers-python is needed for " + ", ".join(peers))
        if any(PEER_SYSTEMS[s][0] == "whisper-streaming" for s in peers) and not args.whisper_online:
            parser.error("--whisper-online is needed for the whisper_streaming systems")
        if args.jobs > 1 and args.clock == "wall":
            parser.error("--jobs > 1 needs --clock cpu: systems side by side slow each other's wall time")
        from lsg_edge.speech.models import assemble_ct2

        args.work.mkdir(parents=True, exist_ok=True)
        ct2_dir = assemble_ct2(args.model)
        checkpoint = None
        if any(PEER_SYSTEMS[s][0] == "wlk-alignatt" for s in peers):
            checkpoint = torch_checkpoint(ct2_dir, args.work / f"whisper-{args.model}.pt")

        def run(system: str) -> None:
            if system in PEER_SYSTEMS:
                run_peer(system, args, items, ct2_dir, checkpoint)
            else:
                run_ours(system, args, manifest)

        with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
            for future in [pool.submit(run, system) for system in systems]:
                future.result()
    if not args.score_only:
        print(f"# first {len(items)} utterances of librispeech-dev, Whisper {args.model}, "
              f"{args.threads} thread(s) per system, {args.clock} clock")
    print("\n".join(score_table(systems, args.work, items)))


if __name__ == "__main__":
    main()
