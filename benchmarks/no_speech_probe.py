"""Whisper's no-speech quantities on sounds that are not speech and on librispeech-dev.

    python benchmarks/no_speech_probe.py --data DATA                 # whisper base, 50 utterances
    python benchmarks/no_speech_probe.py --data DATA --model tiny.en --n 10

Per sound (3 s synthetic tones, beeps, a chord, noise) and per utterance (whole): P(<|nospeech|>)
after <|startoftranscript|>, the greedy transcript's mean log-probability per token (end of
transcript included), whether the session's rule (`lsg_edge.speech.no_speech`) would drop it, and
the transcript. For utterances also P(<|nospeech|>) over their first 0.64 and 1.28 s — what the
test sees while a window is young. No VAD here: every sound reaches the decoder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lsg_edge.evaluation.speech_run import read_audio_manifest
from lsg_edge.policy.drafting import greedy_draft
from lsg_edge.speech.audio_io import read_audio
from lsg_edge.speech.engine import EncoderOptions, SpeechEngine
from lsg_edge.speech.loops import token_budget
from lsg_edge.speech.no_speech import NoSpeechOptions, holds_no_speech, mean_log_probability

RATE = 16_000


def synthetic_sounds(seconds: float = 3.0) -> dict[str, np.ndarray]:
    t = np.arange(int(RATE * seconds)) / RATE
    sine = lambda hz: np.sin(2 * np.pi * hz * t)  # noqa: E731
    sounds = {
        "tone 200 Hz": 0.3 * sine(200),
        "tone 440 Hz": 0.3 * sine(440),
        "tone 1000 Hz": 0.3 * sine(1000),
        "square 220 Hz": 0.2 * np.sign(sine(220)),
        "chirp 200-2000 Hz": 0.3 * np.sin(2 * np.pi * (200 * t + 300 * t * t)),
        "beeps 880 Hz, 4/s": 0.3 * sine(880) * ((t % 0.5) < 0.25),
        "C major chord": 0.1 * (sine(261.6) + sine(329.6) + sine(392.0)),
        "white noise": 0.1 * np.random.default_rng(0).standard_normal(t.size),
    }
    return {name: sound.astype(np.float32) for name, sound in sounds.items()}


def measure(engine: SpeechEngine, audio: np.ndarray) -> tuple[float, float, str]:
    """(P(no speech), mean token log-probability, transcript) of one window of `audio`."""
    prompt = engine.prompt(None if not engine.vocab.multilingual else "en", "transcribe")
    context = engine.new_context(prompt)
    context.set_audio(engine.encode(audio))
    draft = greedy_draft(context, prompt, min(engine.n_text_ctx // 2 - len(prompt), token_budget(audio.size, RATE)),
                         engine.vocab.is_end_of_generation)
    tokens = draft.tokens + ([engine.vocab.eot] if draft.ended else [])
    rows = context.logits_at(prompt + tokens, range(len(prompt) - 1, len(prompt) - 1 + len(tokens)))
    return context.no_speech_probability, mean_log_probability(rows, tokens), engine.vocab.text(draft.tokens).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (holds librispeech-dev)")
    parser.add_argument("--model", default="base")
    parser.add_argument("--n", type=int, default=50, help="librispeech-dev utterances")
    args = parser.parse_args()
    engine = SpeechEngine.load(args.model, encoder_options=EncoderOptions(window="tight"))
    rule = NoSpeechOptions()
    print(f"# {args.model}; dropped = P > {rule.threshold} and mean log-probability < {rule.logprob_threshold}")
    print("| sound | P(no speech) | mean log-prob | dropped | transcript |")
    print("|---|---|---|---|---|")
    for name, sound in synthetic_sounds().items():
        p, logprob, text = measure(engine, sound)
        print(f"| {name} | {p:.2f} | {logprob:.2f} | {holds_no_speech(p, logprob, rule)} | {text} |", flush=True)
    print("\n| utterance | P(no speech) | mean log-prob | dropped | P at 0.64 s | P at 1.28 s |")
    print("|---|---|---|---|---|---|")
    worst_p, worst_logprob, n_dropped = 0.0, 0.0, 0
    for item in read_audio_manifest(args.data / "librispeech-dev" / "transcripts.tsv", args.n):
        audio = read_audio(item.audio_path)
        p, logprob, _ = measure(engine, audio)
        early = [measure(engine, audio[: int(RATE * s)])[0] for s in (0.64, 1.28)]
        dropped = holds_no_speech(p, logprob, rule)
        worst_p, worst_logprob, n_dropped = max(worst_p, p), min(worst_logprob, logprob), n_dropped + dropped
        print(f"| {item.case_id} | {p:.3f} | {logprob:.2f} | {dropped} | {early[0]:.2f} | {early[1]:.2f} |", flush=True)
    print(f"\nutterances: highest P(no speech) {worst_p:.3f}, lowest mean log-prob {worst_logprob:.2f}, "
          f"dropped {n_dropped}")


if __name__ == "__main__":
    main()
