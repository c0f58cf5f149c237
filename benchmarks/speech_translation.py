"""Whisper speech translation (French audio → English text) streamed: offline vs the streaming policies.

    python benchmarks/speech_translation.py --data DATA                # fr-en-speech-samples
    python benchmarks/speech_translation.py --data DATA --policies offline,lsg --threads 1

Prints, per policy: BLEU and chrF against the English references, AL and AL_CA (ms), and RTF
(computation ÷ audio), scored with the code `lsg-edge eval` uses. Whisper's `translate` task writes
English while French arrives, so word order can differ from the audio's: the policy's cost shows as
the BLEU gap to offline at the same weights. The sample set is small (a handful of utterances):
read the gap, not the absolute BLEU.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from pathlib import Path

from lsg_edge.evaluation.scoring import latency_scores, quality_scores
from lsg_edge.evaluation.speech_run import AudioItem, run_speech
from lsg_edge.policy.options import SPEECH_POLICY_DEFAULTS
from lsg_edge.speech.engine import SpeechEngine
from lsg_edge.speech.onnx_runtime import RuntimeOptions
from lsg_edge.speech.session import AsrSessionOptions


def load_items(data: Path) -> list[AudioItem]:
    """fr-en-speech-samples as audio items whose reference is the English translation."""
    folder = data / "fr-en-speech-samples"
    with open(folder / "items.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [AudioItem(row["id"], (folder / row["audio_path"]).resolve(), float(row["duration_s"]),
                      row["en_translation"].strip()) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (holds fr-en-speech-samples)")
    parser.add_argument("--model", default="base", help="a multilingual Whisper model")
    parser.add_argument("--policies", default="offline,local-agreement,lsg")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=SPEECH_POLICY_DEFAULTS.frames, help="AlignAtt's f")
    args = parser.parse_args()

    items = load_items(args.data)
    audio_s = sum(item.duration_s for item in items)
    print(f"# {len(items)} utterances, {audio_s:.0f} s of French audio, Whisper {args.model}, task translate")
    engine = SpeechEngine.load(args.model, RuntimeOptions(n_threads=args.threads))
    print(f"{'policy':<18}{'BLEU':>7}{'chrF':>7}{'AL ms':>8}{'AL_CA ms':>10}{'RTF':>7}")
    for name in args.policies.split(","):
        policy = replace(SPEECH_POLICY_DEFAULTS, name=name, frames=args.frames)
        options = AsrSessionOptions(language="fr", task="translate", policy=policy)
        instances, wall_s = run_speech(lambda: engine.create_session(options), items, progress=False)
        quality, latency = quality_scores(instances), latency_scores(instances)
        print(f"{name:<18}{quality['BLEU']:>7.2f}{quality['chrF']:>7.2f}{latency['AL']:>8.0f}"
              f"{latency['AL_CA']:>10.0f}{wall_s / audio_s:>7.3f}", flush=True)
        for instance in instances:
            print(f"    {instance.prediction}")


if __name__ == "__main__":
    main()
