"""Quality and latency of streaming ASR, as pure functions.

WER normalisation: lowercase, keep letters, digits and
apostrophes, collapse whitespace.
"""

from __future__ import annotations

import re
from typing import Sequence

__all__ = ["normalize_text", "word_error_rate", "average_lagging_ms"]

_DROP = re.compile(r"[^\w' ]|_", re.UNICODE)


def normalize_text(text: str) -> str:
    """Lowercase, keep letters/digits/apostrophes, collapse whitespace."""
    return " ".join(_DROP.sub(" ", text.lower()).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER in percent over normalised texts: (S + D + I) / N_reference_words · 100."""
    import jiwer

    refs = [normalize_text(r) for r in references]
    hyps = [normalize_text(h) for h in hypotheses]
    return 100.0 * jiwer.wer(refs, hyps)


def average_lagging_ms(delays_ms: Sequence[float], source_ms: float, n_reference_words: int) -> float:
    """Average Lagging for speech input (Ma et al. 2020, SimulEval's speech AL), in ms.

    AL = 1/τ · Σ_{i=1..τ} (d_i − (i − 1) · source_ms / |Y*|), where d_i is the source time read when
    output word i was written, |Y*| the reference length in words, and τ the index of the first word
    written after the whole source was read (or the last word). With computation-aware delays
    (audio time + processing time) this is SimulEval's AL_CA.
    """
    if not delays_ms:
        return float(source_ms)
    rate = source_ms / max(1, n_reference_words)
    total, tau = 0.0, 0
    for i, d in enumerate(delays_ms):
        total += d - i * rate
        tau = i + 1
        if d >= source_ms:
            break
    return total / tau
