"""Whisper's own test for audio that holds no speech: a tone, a beep, music, a chair scraping.

The energy VAD (`vad`) keeps silence and noise away from the decoder, but a sound with a clear pitch
passes it (a steady 440 Hz tone is loud and its spectrum is anything but flat), and Whisper,
asked to transcribe it, writes a word ("I", "You", "Oh"). Whisper was trained to say when there is
no speech: the probability of its <|nospeech|> token at the row after <|startoftranscript|>. Its
own decoding drops a segment when that probability is high *and* the transcript it decoded is
unlikely (mean log-probability per token low), since either alone also happens on real speech —
the same rule and defaults as openai/whisper and faster-whisper (0.6 and −1.0).

On librispeech-dev (Whisper base, whole utterances) the probability stayed at 0.31 or below and
the mean log-probability at −1.53 or above, never both past the thresholds; on eight synthetic
sounds of 3 s (tones at 200, 440 and 1000 Hz, a square wave, a chirp, beeps, white noise and a
chord) it was 0.56–0.96 with mean log-probabilities of −1.45 to −2.54: all but the chord pass the
rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import OptionsError
from ..policy.decision import log_softmax

__all__ = ["NoSpeechOptions", "no_speech_probability", "mean_log_probability", "holds_no_speech"]


@dataclass(frozen=True)
class NoSpeechOptions:
    """When a window's decode counts as no speech (both must hold); threshold 1.0 turns it off."""

    threshold: float = 0.6  # P(<|nospeech|>) above this, probability
    logprob_threshold: float = -1.0  # and the decode's mean log-probability per token below this, nats

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise OptionsError(f"--no-speech-threshold must be a probability in [0, 1], got {self.threshold}")

    @property
    def enabled(self) -> bool:
        return self.threshold < 1.0


def no_speech_probability(raw_row: np.ndarray, no_speech_token: int) -> float:
    """P(<|nospeech|>) from the decoder's unfiltered logits row after <|startoftranscript|>."""
    return float(np.exp(log_softmax(raw_row[None, :])[0, no_speech_token]))


def mean_log_probability(rows: np.ndarray, tokens: Sequence[int]) -> float:
    """Mean log-probability of `tokens` under the logits `rows` (row k chose token k); 0 for none."""
    if not len(tokens):
        return 0.0
    log_probs = log_softmax(np.asarray(rows))
    return float(np.mean(log_probs[np.arange(len(tokens)), list(tokens)]))


def holds_no_speech(no_speech: float, mean_logprob: float, options: NoSpeechOptions) -> bool:
    """Whisper's rule: the model says there is no speech, and what it decoded is unlikely."""
    return options.enabled and no_speech > options.threshold and mean_logprob < options.logprob_threshold
