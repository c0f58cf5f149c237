"""Streaming ASR benchmark on librispeech-dev: offline vs LocalAgreement-2 vs LSG, same model.

    python benchmarks/asr_benchmark.py --data DATA              # 50 utterances, whisper base
    python benchmarks/asr_benchmark.py --data DATA --n 10 --policies lsg --reference

Prints, per system: WER (%), AL (ms, non computation-aware), AL_CA (ms: each commit's audio time
plus the computation spent so far, as SimulEval's computation-aware AL), and RTF (computation time
÷ audio duration), all from the code `lsg-edge eval --audio-manifest` scores with. Audio is fed in 100 ms blocks as fast as the machine goes (no pacing), so
computation is measured, not waited for. `--reference` adds faster-whisper greedy (float32,
CTranslate2) over the same weights.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dataclasses import replace

from lsg_edge.evaluation.scoring import latency_scores, quality_scores, word_error_rate
from lsg_edge.evaluation.speech_run import read_audio_manifest, run_speech
from lsg_edge.policy.options import SPEECH_POLICY_DEFAULTS
from lsg_edge.speech.audio_io import read_audio
from lsg_edge.speech.engine import EncoderOptions, SpeechEngine
from lsg_edge.speech.no_speech import NoSpeechOptions
from lsg_edge.speech.session import AsrSessionOptions
from lsg_edge.speech.vad import VadOptions


def load_utterances(data: Path, n: int):
    """The first `n` utterances of librispeech-dev: manifest items and (audio, transcript) pairs."""
    items = read_audio_manifest(data / "librispeech-dev" / "transcripts.tsv", n)
    return items, [(read_audio(item.audio_path), item.transcript) for item in items]


def run_streaming(engine: SpeechEngine, options: AsrSessionOptions, items) -> dict:
    """WER, AL, AL_CA and RTF with the code `lsg-edge eval --audio-manifest` scores with."""
    instances, wall_s = run_speech(lambda: engine.create_session(options), items, progress=False)
    quality, latency = quality_scores(instances, ("WER",)), latency_scores(instances)
    audio_s = sum(i.source_length for i in instances) / 1000.0
    return {"wer": quality["WER"], "al": latency["AL"], "al_ca": latency["AL_CA"], "rtf": wall_s / audio_s}


def run_offline(engine: SpeechEngine, utterances) -> dict:
    start, hypotheses = time.perf_counter(), []
    for audio, _ in utterances:
        hypotheses.append(engine.transcribe(audio, language="en"))
    spent = time.perf_counter() - start
    audio_s = sum(a.size for a, _ in utterances) / 16_000
    return {"wer": word_error_rate([r for _, r in utterances], hypotheses), "al": float("nan"),
            "al_ca": float("nan"), "rtf": spent / audio_s}


def run_faster_whisper(model_name: str, utterances, threads: int) -> dict:
    from faster_whisper import WhisperModel

    from lsg_edge.speech.models import assemble_ct2

    model = WhisperModel(str(assemble_ct2(model_name)), device="cpu", compute_type="float32", cpu_threads=threads)
    start, hypotheses = time.perf_counter(), []
    for audio, _ in utterances:
        segments, _ = model.transcribe(audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True,
                                       condition_on_previous_text=False)
        hypotheses.append(" ".join(s.text for s in segments))
    spent = time.perf_counter() - start
    audio_s = sum(a.size for a, _ in utterances) / 16_000
    return {"wer": word_error_rate([r for _, r in utterances], hypotheses), "al": float("nan"),
            "al_ca": float("nan"), "rtf": spent / audio_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (holds librispeech-dev)")
    parser.add_argument("--n", type=int, default=50, help="utterances (default: all 50)")
    parser.add_argument("--model", default="base")
    parser.add_argument("--policies", default="offline,local-agreement,lsg",
                        help="comma-separated: offline, offline-30s, local-agreement, lsg")
    parser.add_argument("--reference", action="store_true", help="add faster-whisper greedy float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    parser.add_argument("--encoder-window", default="tight", choices=["tight", "30s"])
    parser.add_argument("--encoder-pad-ms", type=int, default=EncoderOptions.pad_ms)
    parser.add_argument("--segment-ms", type=int, default=AsrSessionOptions.segment_ms)
    parser.add_argument("--delta", type=float, default=SPEECH_POLICY_DEFAULTS.delta)
    parser.add_argument("--alpha", type=float, default=SPEECH_POLICY_DEFAULTS.alpha)
    parser.add_argument("--low-bound", type=int, default=SPEECH_POLICY_DEFAULTS.low_bound)
    parser.add_argument("--top-bound", type=int, default=SPEECH_POLICY_DEFAULTS.top_bound)
    parser.add_argument("--words-per-segment", type=int, default=SPEECH_POLICY_DEFAULTS.words_per_element)
    parser.add_argument("--min-silence-ms", type=int, default=VadOptions.min_silence_ms)
    parser.add_argument("--carry-tokens", type=int, default=AsrSessionOptions.carry_tokens)
    parser.add_argument("--no-speech-threshold", type=float, default=NoSpeechOptions.threshold,
                        help="Whisper's no-speech test (1: off)")
    args = parser.parse_args()

    from lsg_edge.speech.onnx_runtime import RuntimeOptions

    items, utterances = load_utterances(args.data, args.n)
    duration_s = sum(a.size for a, _ in utterances) / 16_000
    print(f"# {len(utterances)} utterances, {duration_s:.0f} s of audio, model {args.model}, "
          f"{args.precision}, encoder window {args.encoder_window} (+{args.encoder_pad_ms} ms), {args.threads} threads, "
          f"pause cut {args.min_silence_ms} ms, {args.carry_tokens} tokens carried across windows, "
          f"no-speech threshold {args.no_speech_threshold}")
    runtime = RuntimeOptions(n_threads=args.threads)
    engine = SpeechEngine.load(args.model, runtime, EncoderOptions(args.encoder_window, args.encoder_pad_ms),
                               precision=args.precision)
    print(f"{'system':<28}{'WER %':>8}{'AL ms':>9}{'AL_CA ms':>10}{'RTF':>7}", flush=True)

    def show(name: str, r: dict) -> None:
        print(f"{name:<28}{r['wer']:>8.2f}{r['al']:>9.0f}{r['al_ca']:>10.0f}{r['rtf']:>7.3f}", flush=True)

    if args.reference:
        show("faster-whisper greedy fp32", run_faster_whisper(args.model, utterances, args.threads))
    for name in args.policies.split(","):
        if name == "offline-30s":
            engine_30s = SpeechEngine.load(args.model, runtime, EncoderOptions("30s"), precision=args.precision)
            show("offline ONNX (30 s window)", run_offline(engine_30s, utterances))
            continue
        policy = replace(SPEECH_POLICY_DEFAULTS, name=name, delta=args.delta, alpha=args.alpha,
                         low_bound=args.low_bound, top_bound=args.top_bound, words_per_element=args.words_per_segment)
        options = AsrSessionOptions(language="en", policy=policy, segment_ms=args.segment_ms,
                                 carry_tokens=args.carry_tokens, vad=VadOptions(min_silence_ms=args.min_silence_ms),
                                 no_speech=NoSpeechOptions(threshold=args.no_speech_threshold))
        label = {"offline": "offline (VAD windows)", "local-agreement": "LocalAgreement-2",
                 "lsg": f"LSG d={args.delta} a={args.alpha} L{args.low_bound}U{args.top_bound}"}[name]
        show(label, run_streaming(engine, options, items))


if __name__ == "__main__":
    main()
