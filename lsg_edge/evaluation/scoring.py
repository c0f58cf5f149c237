"""Corpus scores over `Instance`s: latency as SimulEval 1.1.4 aggregates it, and quality.

Latency (`latency_scores`) is the mean of per-instance values from `latency.py`. SimulEval's
aggregation choices are reproduced and named here:
- instances with no output words are *skipped* (SimulEval logs a warning and leaves them out of the
  mean), so an empty prediction does not count as zero lag; with none left the score is NaN
  (SimulEval raises `StatisticsError`);
- AL, LAAL and AP use the reference length as |Y| (`len(reference.split(" "))`); with
  `use_reference_length=False` (SimulEval's `--no-use-ref-len`) they use the output length;
  DAL always uses the output length.

Computation-aware scores ("_CA") replace each delay by the word's computation-aware time. For
speech that is `elapsed` against the audio length, both in ms, exactly as SimulEval. SimulEval
refuses computation-aware latency on text input; we define it the same way on a time axis where
source word j arrives at j · `source_word_ms`: the word's time is d_t · w + elapsed_t (w =
`source_word_ms`) against a source length |X| · w, i.e. what SimulEval would report for a speech
input whose words each last w ms.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import OptionsError
from .instance import Instance
from .latency import (
    average_lagging,
    average_proportion,
    differentiable_average_lagging,
    length_adaptive_average_lagging,
    reference_length,
)

__all__ = ["LatencyOptions", "LATENCY_METRICS", "latency_scores", "quality_scores", "normalize_for_wer", "word_error_rate"]

LATENCY_METRICS = ("AL", "LAAL", "DAL", "AP")


@dataclass(frozen=True)
class LatencyOptions:
    """How latency is scored."""

    use_reference_length: bool = True  # |Y| = reference length for AL/LAAL/AP (SimulEval default)
    source_word_ms: float = 400.0  # text CA time axis: one source word per this many ms (~150 wpm)

    def __post_init__(self) -> None:
        if not self.source_word_ms > 0:
            raise OptionsError(f"--source-word-ms must be positive, got {self.source_word_ms}")


def _per_instance(
    delays: np.ndarray, source_length: float, target_length: float
) -> dict[str, float]:
    return {
        "AL": average_lagging(delays, source_length, target_length),
        "LAAL": length_adaptive_average_lagging(delays, source_length, target_length),
        "DAL": differentiable_average_lagging(delays, source_length),
        "AP": average_proportion(delays, source_length, target_length),
    }


def _timeline(instance: Instance, computation_aware: bool, options: LatencyOptions) -> tuple[np.ndarray, float]:
    """(delays, source length) on the axis a score is computed on (see module docstring)."""
    delays = np.asarray(instance.delays, dtype=np.float64)
    if not computation_aware:
        return delays, float(instance.source_length)
    elapsed = np.asarray(instance.elapsed, dtype=np.float64)
    if instance.unit == "ms":
        return elapsed, float(instance.source_length)
    w = options.source_word_ms
    return delays * w + elapsed, float(instance.source_length) * w


def instance_latency(
    instance: Instance, computation_aware: bool = False, options: LatencyOptions = LatencyOptions()
) -> dict[str, float] | None:
    """AL, LAAL, DAL, AP of one instance; None for an empty output (SimulEval skips it)."""
    if not instance.delays:
        return None
    delays, source_length = _timeline(instance, computation_aware, options)
    if options.use_reference_length:
        target_length = reference_length(instance.reference)
    else:
        target_length = len(delays)
    return _per_instance(delays, source_length, target_length)


def latency_scores(
    instances: Sequence[Instance], options: LatencyOptions = LatencyOptions(), computation_aware: bool = True
) -> dict[str, float]:
    """Corpus AL, LAAL, DAL, AP (and "<name>_CA" if `computation_aware`): means over instances
    with output, NaN when none has any."""
    scores: dict[str, float] = {}
    for aware in (False, True) if computation_aware else (False,):
        rows = [r for r in (instance_latency(i, aware, options) for i in instances) if r is not None]
        suffix = "_CA" if aware else ""
        for name in LATENCY_METRICS:
            scores[name + suffix] = float(np.mean([r[name] for r in rows])) if rows else math.nan
    return scores


def normalize_for_wer(text: str) -> str:
    """Lowercase, keep letters, digits and apostrophes, collapse whitespace
    (the usual LibriSpeech scoring convention). Other characters become spaces, so "well-known" is two words."""
    kept = re.sub(r"[^\w']|_", " ", text.lower())
    return " ".join(kept.split())


def _bleu(hypotheses: list[str], references: list[str]) -> float:
    import sacrebleu

    # sacrebleu defaults: 13a tokenizer on detokenized text, as SimulEval's BLEU scorer.
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def _chrf(hypotheses: list[str], references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_chrf(hypotheses, [references]).score)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER in percent over normalised texts (`normalize_for_wer`); NaN without references."""
    return _wer(list(hypotheses), list(references))


def _wer(hypotheses: list[str], references: list[str]) -> float:
    try:
        import jiwer
    except ImportError as e:  # pragma: no cover - jiwer is in the eval and test extras
        raise OptionsError("WER needs jiwer: pip install 'lsg-edge[eval]'") from e
    refs = [normalize_for_wer(r) for r in references]
    hyps = [normalize_for_wer(h) for h in hypotheses]
    kept = [(r, h) for r, h in zip(refs, hyps) if r]  # jiwer rejects empty references
    if not kept:
        return math.nan
    return 100.0 * float(jiwer.wer([r for r, _ in kept], [h for _, h in kept]))


_QUALITY: dict[str, Callable[[list[str], list[str]], float]] = {"BLEU": _bleu, "chrF": _chrf, "WER": _wer}


def quality_scores(instances: Sequence[Instance], metrics: Sequence[str] = ("BLEU", "chrF")) -> dict[str, float]:
    """Corpus quality: "BLEU", "chrF" (sacrebleu defaults) and/or "WER" (jiwer, %, normalised)."""
    hypotheses = [i.prediction for i in instances]
    references = [i.reference for i in instances]
    unknown = set(metrics) - set(_QUALITY)
    if unknown:
        raise OptionsError(f"unknown quality metrics: {', '.join(sorted(unknown))}")
    return {name: _QUALITY[name](hypotheses, references) for name in metrics}
