"""Memory of `lsg-edge asr` on long audio: resident memory against audio time, and peak RSS.

    python benchmarks/asr_memory.py --data DATA --minutes 5 --model tiny.en
    python benchmarks/asr_memory.py --data DATA --minutes 5 --model base --arena off --mem-pattern off

The long input is librispeech-dev utterances one after another, each followed by 0.5 s of silence
(so the voice detector cuts windows as in a talk), repeated up to `--minutes`. One process per
run (the script re-runs itself), so each run starts from a fresh heap: it prints RSS every
`--every-s` seconds of audio, the peak RSS (getrusage), and the CPU time ÷ audio (RTF).
`--arena` / `--mem-pattern` switch onnxruntime's CPU memory arena and memory-pattern planning
for the experiment ("default": as `lsg_edge.onnx_session` sets them — arena on, patterns off).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def long_audio(data: Path, minutes: float) -> np.ndarray:
    """float32 16 kHz: librispeech-dev utterances and 0.5 s pauses, repeated to `minutes`."""
    from lsg_edge.evaluation.speech_run import read_audio_manifest
    from lsg_edge.speech.audio_io import read_audio

    items = read_audio_manifest(data / "librispeech-dev" / "transcripts.tsv", None)
    pause = np.zeros(8000, np.float32)
    pieces, n = [], 0
    while n < minutes * 60 * 16_000:
        for item in items:
            audio = read_audio(item.audio_path)
            pieces += [audio, pause]
            n += audio.size + pause.size
            if n >= minutes * 60 * 16_000:
                break
    return np.concatenate(pieces)[: int(minutes * 60 * 16_000)]


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _switch_onnxruntime(arena: str, mem_pattern: str) -> None:
    """Make every onnxruntime session of this process use the chosen memory settings (applied as the
    session is created, over what `lsg_edge.onnx_session` chose)."""
    from lsg_edge.runtimes import import_onnxruntime

    ort = import_onnxruntime()
    original = ort.InferenceSession

    def create(path, sess_options=None, **kwargs):
        if arena != "default":
            sess_options.enable_cpu_mem_arena = arena == "on"
        if mem_pattern != "default":
            sess_options.enable_mem_pattern = mem_pattern == "on"
        return original(path, sess_options=sess_options, **kwargs)

    ort.InferenceSession = create


def child(args: argparse.Namespace) -> None:
    from lsg_edge.speech.audio_io import file_blocks
    from lsg_edge.speech.engine import SpeechEngine
    from lsg_edge.speech.onnx_runtime import RuntimeOptions
    from lsg_edge.speech.session import AsrSessionOptions

    _switch_onnxruntime(args.arena, args.mem_pattern)
    audio = long_audio(args.data, args.minutes) if not args.silence else np.zeros(int(args.minutes * 960_000), np.float32)
    engine = SpeechEngine.load(args.model, RuntimeOptions(n_threads=args.threads))
    trace, n_words = [], 0
    start_cpu = time.process_time()
    with engine, engine.create_session(AsrSessionOptions()) as session:
        heard, next_report = 0, 0.0
        for block in file_blocks(audio):
            n_words += sum(c.n_words for c in session.push(block))
            heard += block.size
            if heard / 16_000 >= next_report:
                trace.append((round(heard / 16_000), round(rss_mib(), 1)))
                next_report += args.every_s
        n_words += sum(c.n_words for c in session.finish())
    cpu_s = time.process_time() - start_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"trace": trace, "peak_rss_mib": round(peak, 1), "words": n_words,
                      "rtf_cpu": round(cpu_s / (audio.size / 16_000), 3)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every-s", type=float, default=20.0)
    parser.add_argument("--arena", choices=["default", "on", "off"], default="default")
    parser.add_argument("--mem-pattern", choices=["default", "on", "off"], default="default")
    parser.add_argument("--silence", action="store_true", help="digital silence instead of speech")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    result = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"model {args.model}, {args.minutes} min {'silence' if args.silence else 'speech'}, arena {args.arena}, "
          f"mem-pattern {args.mem_pattern}: peak RSS {report['peak_rss_mib']} MiB, {report['words']} words, "
          f"RTF (CPU) {report['rtf_cpu']}")
    print("audio s -> RSS MiB: " + ", ".join(f"{s}:{m}" for s, m in report["trace"]))


if __name__ == "__main__":
    main()
