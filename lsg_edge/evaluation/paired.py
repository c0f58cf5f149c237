"""Is system B really better than system A on this data? A paired bootstrap over the test items.

Both systems translated (or transcribed) the same items. Each item contributes sufficient
statistics — for WER its word errors and reference words, for BLEU sacrebleu's n-gram match and
length counts — and a corpus score is a function of their sum. The bootstrap draws the items with
replacement `n_resamples` times (the same draw for both systems: that is what makes it paired) and
scores both systems on each draw (Koehn 2004, "Statistical significance tests for machine
translation evaluation").

p-value: two-sided, under the null hypothesis that the true difference is zero. The bootstrap
differences δ*_b scatter around the observed difference δ; shifted to mean zero they show how far
chance alone moves a difference, so p = (1 + #{b : |δ*_b − δ| ≥ |δ|}) / (1 + n_resamples)
(Efron & Tibshirani 1993, ch. 16). Identical systems give p = 1. (sacrebleu's own `paired_bs`
counts strictly greater deviations, which makes identical systems p = 1/(n+1); we keep ≥.)

The same resamples give the difference's standard error and a 95 % percentile interval. The
standard error says how big a difference these items can show at all: with the normal
approximation, p < 0.05 needs an observed |δ| of about 1.96 standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import OptionsError
from .scoring import normalize_for_wer

__all__ = ["PairedOptions", "PairedResult", "paired_bootstrap", "paired_wer", "paired_bleu", "wer_statistics"]


@dataclass(frozen=True)
class PairedOptions:
    """How the bootstrap is drawn."""

    n_resamples: int = 1000  # bootstrap draws of the items
    seed: int = 12345  # of NumPy's default_rng; the same seed gives the same p-value

    def __post_init__(self) -> None:
        if self.n_resamples < 1:
            raise OptionsError(f"n_resamples must be at least 1, got {self.n_resamples}")


@dataclass(frozen=True)
class PairedResult:
    """Corpus scores of A and B on the same items, B − A, and the paired-bootstrap p-value."""

    metric: str  # "WER" (%, lower is better) or "BLEU"
    score_a: float
    score_b: float
    difference: float  # score_b - score_a
    p_value: float  # two-sided; small means the difference is unlikely to be chance
    n_items: int  # items compared (WER: those with a non-empty reference)
    n_resamples: int
    standard_error: float  # of the difference, over the resamples
    interval: tuple[float, float]  # 95 % percentile interval of the difference

    def significant(self, level: float = 0.05) -> bool:
        return self.p_value < level

    def summary(self) -> str:
        verdict = "significant" if self.significant() else "no measurable difference"
        low, high = self.interval
        return (f"{self.metric} A {self.score_a:.2f}  B {self.score_b:.2f}  B-A {self.difference:+.2f} "
                f"(95 % {low:+.2f} … {high:+.2f}, s.e. {self.standard_error:.2f})  "
                f"p={self.p_value:.4f} ({verdict} at 0.05; {self.n_items} items, {self.n_resamples} resamples)")


def paired_bootstrap(
    stats_a: np.ndarray,
    stats_b: np.ndarray,
    score: Callable[[np.ndarray], np.ndarray],
    metric: str,
    options: PairedOptions = PairedOptions(),
) -> PairedResult:
    """The paired bootstrap over per-item statistics.

    `stats_a`, `stats_b`: (n_items, n_stats) float64, one row per item, same item order.
    `score`: summed statistics (..., n_stats) -> corpus scores (...), vectorised over leading axes.
    """
    stats_a = np.asarray(stats_a, dtype=np.float64)
    stats_b = np.asarray(stats_b, dtype=np.float64)
    if stats_a.shape != stats_b.shape or stats_a.ndim != 2:
        raise OptionsError(f"paired statistics must have one equal shape (items, stats), got {stats_a.shape} and {stats_b.shape}")
    n_items = stats_a.shape[0]
    if n_items == 0:
        raise OptionsError("a paired test needs at least one item")
    score_a = float(score(stats_a.sum(0)))
    score_b = float(score(stats_b.sum(0)))
    observed = score_b - score_a
    rng = np.random.default_rng(options.seed)
    draws = rng.integers(0, n_items, size=(options.n_resamples, n_items))
    # Counting how often each item is drawn turns each resample's sum into one matrix product.
    counts = np.zeros((options.n_resamples, n_items))
    np.add.at(counts, (np.arange(options.n_resamples)[:, None], draws), 1.0)
    deltas = score(counts @ stats_b) - score(counts @ stats_a)
    # A tolerance so that a zero difference counts as reached by every resample.
    reached = np.abs(deltas - observed) >= abs(observed) - 1e-9
    p_value = (1.0 + float(np.count_nonzero(reached))) / (1.0 + options.n_resamples)
    low, high = (float(x) for x in np.percentile(deltas, [2.5, 97.5]))
    return PairedResult(metric, score_a, score_b, observed, p_value, n_items, options.n_resamples,
                        float(np.std(deltas)), (low, high))


def _wer_percent(sums: np.ndarray) -> np.ndarray:
    errors, words = sums[..., 0], sums[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(words > 0, 100.0 * errors / np.maximum(words, 1.0), math.nan)


def wer_statistics(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per item (word errors, reference words) after `normalize_for_wer`, and the indices of the
    items kept: those with a non-empty reference, as `scoring.word_error_rate` keeps them. Summed,
    the rows give that corpus WER."""
    import jiwer

    if len(references) != len(hypotheses):
        raise OptionsError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    rows, kept = [], []
    for index, (reference, hypothesis) in enumerate(zip(references, hypotheses)):
        ref = normalize_for_wer(reference)
        if not ref:
            continue
        hyp = normalize_for_wer(hypothesis)
        n_ref = len(ref.split())
        if hyp:
            out = jiwer.process_words(ref, hyp)
            errors = out.substitutions + out.deletions + out.insertions
        else:
            errors = n_ref  # everything deleted
        rows.append((float(errors), float(n_ref)))
        kept.append(index)
    return np.array(rows, dtype=np.float64).reshape(-1, 2), np.array(kept, dtype=np.int64)


def paired_wer(
    references: Sequence[str],
    hypotheses_a: Sequence[str],
    hypotheses_b: Sequence[str],
    options: PairedOptions = PairedOptions(),
) -> PairedResult:
    """Corpus WER (%) of A and B over the same utterances and the paired-bootstrap p-value."""
    stats_a, _ = wer_statistics(references, hypotheses_a)
    stats_b, _ = wer_statistics(references, hypotheses_b)
    return paired_bootstrap(stats_a, stats_b, _wer_percent, "WER", options)


def _bleu_metric():
    from sacrebleu.metrics import BLEU

    # sacrebleu defaults (13a tokenizer, exp smoothing), as `scoring`'s corpus BLEU.
    return BLEU()


def paired_bleu(
    references: Sequence[str],
    hypotheses_a: Sequence[str],
    hypotheses_b: Sequence[str],
    options: PairedOptions = PairedOptions(),
) -> PairedResult:
    """Corpus BLEU of A and B over the same sentences and the paired-bootstrap p-value.

    Per-sentence statistics and the score from summed statistics are sacrebleu's own (the
    functions its significance module resamples with, stable across sacrebleu 2.x), so the two
    scores equal `sacrebleu.corpus_bleu`."""
    if not (len(references) == len(hypotheses_a) == len(hypotheses_b)):
        raise OptionsError(f"{len(references)} references, {len(hypotheses_a)} and {len(hypotheses_b)} hypotheses")
    metric = _bleu_metric()
    refs = [list(references)]
    stats_a = np.array(metric._extract_corpus_statistics(list(hypotheses_a), refs), dtype=np.float64)
    stats_b = np.array(metric._extract_corpus_statistics(list(hypotheses_b), refs), dtype=np.float64)

    def score(sums: np.ndarray) -> np.ndarray:
        flat = sums.reshape(-1, sums.shape[-1])
        scores = [metric._compute_score_from_stats(list(row)).score for row in flat]
        return np.array(scores, dtype=np.float64).reshape(sums.shape[:-1])

    return paired_bootstrap(stats_a, stats_b, score, "BLEU", options)
