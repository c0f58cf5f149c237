"""Speech translation in one process (captions → text LSG) against Whisper's own translation.

    nice -n 10 python benchmarks/speech_cascade.py --data DATA --threads 1              # fr→en, all 5 clips
    nice -n 10 python benchmarks/speech_cascade.py --data DATA --en-de 20 --threads 1    # + en→de, 20 utterances

fr→en on fr-en-speech-samples, against the English references:
  (a) whisper-translate  Whisper `task=translate` streamed with LSG (one model, X→English only);
  (b) cascade-lsg        Whisper captions streamed with LSG, each committed word pushed into the text
                         model's LSG session (`lsg_edge.cascade`);
  (c) cascade-offline    the whole clip transcribed, then translated at full context.
BLEU, chrF; AL and AL_CA in ms (SimulEval's speech convention: a word's time is the audio read when
it was committed, plus for _CA the computation so far); "MT lag": mean over target words of their
computation-aware time minus the audio time of the source word that made them writable (the
translation stage's own delay); RTF = computation ÷ audio of the whole chain.

en→de on librispeech-dev (no German references): latency (AL with the output length as |Y|),
MT lag, RTF, the share of caption words whose sentence reached the translation (a sentence whose
translation came out empty drops its words), the target/source length ratio, and example lines.

`--clock cpu` (default) times computation with the process's CPU time, so a loaded machine does
not inflate it: with one thread that is what an idle core takes. Figures are on a handful of clips:
read the gaps, not the absolute BLEU.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import replace
from pathlib import Path

# The CPU clock must be in place before the sessions time their commits.
if "--clock" not in sys.argv or sys.argv[sys.argv.index("--clock") + 1] == "cpu":
    time.monotonic = time.perf_counter = time.process_time  # type: ignore[assignment]

from lsg_edge.cascade import SpeechTranslator  # noqa: E402
from lsg_edge.evaluation.instance import Instance  # noqa: E402
from lsg_edge.evaluation.scoring import LatencyOptions, latency_scores, quality_scores  # noqa: E402
from lsg_edge.evaluation.speech_run import AudioItem, instance_from_speech_commits, read_audio_manifest  # noqa: E402
from lsg_edge.events import Commit  # noqa: E402
from lsg_edge.policy.options import SPEECH_POLICY_DEFAULTS  # noqa: E402
from lsg_edge.speech.audio_io import file_blocks, read_audio  # noqa: E402
from lsg_edge.speech.features import SAMPLE_RATE_HZ  # noqa: E402
from lsg_edge.speech.onnx_runtime import RuntimeOptions  # noqa: E402
from lsg_edge.speech.session import AsrSessionOptions  # noqa: E402
from lsg_edge.text.source import ends_sentence, split_words  # noqa: E402


def fr_en_items(data: Path) -> list[AudioItem]:
    folder = data / "fr-en-speech-samples"
    with open(folder / "items.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [AudioItem(r["id"], (folder / r["audio_path"]).resolve(), float(r["duration_s"]), r["en_translation"].strip())
            for r in rows]


class Run:
    """One system's instances, MT lags and computation."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.instances: list[Instance] = []
        self.mt_lags_ms: list[float] = []
        self.compute_s = 0.0
        self.audio_s = 0.0
        self.captions: list[str] = []
        self.dropped_words = 0
        self.source_words = 0

    def add(self, index: int, item: AudioItem, audio, commits: list[Commit], n_final: int, started: float,
            compute_s: float) -> None:
        duration_ms = 1000.0 * audio.size / SAMPLE_RATE_HZ
        instance = instance_from_speech_commits(index, commits, duration_ms, item.transcript, started,
                                                str(item.audio_path), n_final=n_final)
        self.instances.append(instance)
        self.compute_s += compute_s
        self.audio_s += duration_ms / 1000.0
        # A word's computation-aware time is in `elapsed`, one per word, in commit order.
        k = 0
        for commit in commits:
            for _ in commit.text.split():
                if commit.audio_ms is not None and commit.stream == "target":
                    self.mt_lags_ms.append(instance.elapsed[k] - commit.audio_ms)
                k += 1

    def row(self, options: LatencyOptions) -> str:
        latency = latency_scores(self.instances, options)
        quality = quality_scores(self.instances) if options.use_reference_length else {"BLEU": float("nan"),
                                                                                        "chrF": float("nan")}
        lag = sum(self.mt_lags_ms) / len(self.mt_lags_ms) if self.mt_lags_ms else float("nan")
        return (f"{self.name:<20}{quality['BLEU']:>7.2f}{quality['chrF']:>7.2f}{latency['AL']:>8.0f}"
                f"{latency['AL_CA']:>10.0f}{lag:>11.0f}{self.compute_s / self.audio_s:>7.3f}")


def stream(session, audio) -> tuple[list[Commit], int, float, float]:
    """(commits, how many came from finish, start time, computation s) of one clip streamed."""
    started, cpu = time.monotonic(), time.monotonic()
    commits: list[Commit] = []
    for block in file_blocks(audio):
        commits += session.push(block)
    final = session.finish()
    return commits + final, len(final), started, time.monotonic() - cpu


def whisper_translate(translator: SpeechTranslator, items: list[AudioItem], src: str) -> Run:
    run = Run("whisper-translate")
    options = AsrSessionOptions(language=src, task="translate", policy=SPEECH_POLICY_DEFAULTS)
    for index, item in enumerate(items):
        audio = read_audio(item.audio_path)
        with translator.speech.create_session(options) as session:
            commits, n_final, started, compute_s = stream(session, audio)
        run.add(index, item, audio, commits, n_final, started, compute_s)
    return run


def cascade_lsg(translator: SpeechTranslator, items: list[AudioItem], src: str, tgt: str, name: str = "cascade-lsg") -> Run:
    run = Run(name)
    for index, item in enumerate(items):
        audio = read_audio(item.audio_path)
        with translator.create_session(src, tgt) as session:
            commits, n_final, started, compute_s = stream(session, audio)
        final = commits[len(commits) - n_final:]
        target = [c for c in commits if c.stream == "target"]
        n_final_target = sum(c.stream == "target" for c in final)
        run.add(index, item, audio, target, n_final_target, started, compute_s)
        run.captions.append("".join(c.separator + c.text for c in commits if c.stream == "source").strip())
        _count_reach(run, commits)
    return run


def _count_reach(run: Run, commits: list[Commit]) -> None:
    """Caption words whose translated sentence came out empty never reach the translation."""
    pending = 0  # caption words of the open translation sentence
    produced = False
    for commit in commits:
        if commit.stream == "source":
            # A caption without leading whitespace continues the last word.
            n = len(split_words(commit.text)) - int(not commit.separator and pending > 0)
            pending += n
            run.source_words += n
        else:
            produced = produced or bool(commit.text.strip())
            if commit.sentence_end:
                run.dropped_words += 0 if produced else pending
                pending, produced = 0, False


def cascade_offline(translator: SpeechTranslator, items: list[AudioItem], src: str, tgt: str) -> Run:
    run = Run("cascade-offline")
    policy = translator.text.policy_options(src, tgt, name="offline")
    for index, item in enumerate(items):
        audio = read_audio(item.audio_path)
        started = time.monotonic()
        transcript = translator.speech.transcribe(audio, language=src)
        commits: list[Commit] = []
        with translator.text.create_session(src, tgt, policy=policy) as session:
            for word in split_words(transcript):
                commits += session.push(word)
                if ends_sentence(word):
                    commits += session.finish()
            commits += session.finish()
        commits = [replace(c, stream="target") for c in commits]
        run.add(index, item, audio, commits, len(commits), started, time.monotonic() - started)
        run.captions.append(transcript)
    return run


HEADER = f"{'system':<20}{'BLEU':>7}{'chrF':>7}{'AL ms':>8}{'AL_CA ms':>10}{'MT lag ms':>11}{'RTF':>7}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--model", default="base", help="a multilingual Whisper model")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="Whisper's weights")
    parser.add_argument("--threads", type=int, default=1, help="threads for each engine")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--systems", default="whisper-translate,cascade-lsg,cascade-offline")
    parser.add_argument("--en-de", type=int, default=0, metavar="N", help="also en→de on N librispeech-dev utterances")
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args()

    translator = SpeechTranslator.load(args.model, runtime_options=RuntimeOptions(n_threads=args.threads),
                                       precision=args.precision, n_threads=args.threads)
    systems = [name for name in args.systems.split(",") if name]
    items = fr_en_items(args.data)
    if systems:
        fr_en(translator, items, systems, args)
    if args.en_de:
        en_de(translator, args)


def fr_en(translator: SpeechTranslator, items: list[AudioItem], systems: list[str], args: argparse.Namespace) -> None:
    print(f"# fr→en: {len(items)} clips, {sum(i.duration_s for i in items):.1f} s, Whisper {args.model} {args.precision}, "
          f"{args.threads} thread(s), {args.clock} clock")
    print(HEADER)
    runs = []
    for name in systems:
        if name == "whisper-translate":
            run = whisper_translate(translator, items, "fr")
        elif name == "cascade-lsg":
            run = cascade_lsg(translator, items, "fr", "en")
        else:
            run = cascade_offline(translator, items, "fr", "en")
        runs.append(run)
        print(run.row(LatencyOptions()), flush=True)
    for run in runs:
        print(f"## {run.name}")
        for instance, caption in zip(run.instances, run.captions or [""] * len(run.instances)):
            print(f"   {caption}  →  {instance.prediction}" if caption else f"   {instance.prediction}")
    by_name = {run.name: run for run in runs}
    for a, b in (("cascade-lsg", "cascade-offline"), ("cascade-lsg", "whisper-translate")):
        if a in by_name and b in by_name:
            diff, low, high, p = paired_bootstrap(by_name[a].instances, by_name[b].instances)
            print(f"BLEU {a} − {b}: {diff:+.2f} (95% interval {low:+.2f} … {high:+.2f}, "
                  f"two-sided p = {p:.3f}; {len(by_name[a].instances)} clips, paired bootstrap)")


def paired_bootstrap(a: list[Instance], b: list[Instance], n_resamples: int = 1000,
                     seed: int = 0) -> tuple[float, float, float, float]:
    """Corpus BLEU of `a` minus `b` on the same items, its 95 % interval over item resamples, and
    the two-sided p-value of "no difference" (twice the share of resamples on the far side of 0)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_resamples):
        pick = rng.integers(0, len(a), len(a))
        diffs.append(quality_scores([a[k] for k in pick])["BLEU"] - quality_scores([b[k] for k in pick])["BLEU"])
    diffs = np.asarray(diffs)
    return (quality_scores(a)["BLEU"] - quality_scores(b)["BLEU"], float(np.percentile(diffs, 2.5)),
            float(np.percentile(diffs, 97.5)), min(1.0, 2 * float(min(np.mean(diffs <= 0), np.mean(diffs >= 0)))))


def en_de(translator: SpeechTranslator, args: argparse.Namespace) -> None:
    librispeech = read_audio_manifest(args.data / "librispeech-dev" / "transcripts.tsv", args.en_de)
    # No German references: AL over the output length; the reference slot holds the English.
    run = cascade_lsg(translator, librispeech, "en", "de", name="cascade-lsg en→de")
    n_source = sum(len(c.split()) for c in run.captions)
    n_target = sum(i.prediction_length for i in run.instances)
    print(f"\n# en→de: {len(librispeech)} librispeech-dev utterances, "
          f"{sum(i.duration_s for i in librispeech):.1f} s")
    print(HEADER)
    print(run.row(LatencyOptions(use_reference_length=False)))
    reached = 1 - run.dropped_words / max(run.source_words, 1)
    print(f"caption words reaching the translation: {reached:.1%} ({run.source_words - run.dropped_words}"
          f"/{run.source_words}); target/source words {n_target / max(n_source, 1):.2f}")
    for caption, instance in list(zip(run.captions, run.instances))[: args.examples]:
        print(f"   {caption}\n   → {instance.prediction}")




if __name__ == "__main__":
    main()
