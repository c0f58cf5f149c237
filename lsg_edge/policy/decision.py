"""LSG's per-position write test, as pure NumPy functions.

Guo et al., "LLM-driven Simultaneous Generation" (AAAI 2025, arXiv 2501.00868), §3: with the
distribution of the model on everything read so far (P_cur) and the distribution under the wait-1
baseline (P_base), the next target token is written if

    KL(P_cur ‖ P_base) > δ    or    max P_cur > α.

The paper's direction is KL(P_cur ‖ P_base); the official implementation computes the reverse,
KL(P_base ‖ P_cur). Both are offered (`KL_DIRECTIONS`), the paper's is the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "KL_DIRECTIONS",
    "RowStats",
    "row_stats",
    "kl_between",
    "log_softmax",
    "kl_divergence",
    "write_test",
    "leading_run",
]

# "paper": KL(P_cur ‖ P_base) as written in the paper; "code": KL(P_base ‖ P_cur) as in ictnlp/LSG.
KL_DIRECTIONS = ("paper", "code")


@dataclass(frozen=True)
class RowStats:
    """What both write tests need of one logits row, computed in one sweep over the vocabulary.

    `peak`: the largest logit; `weights`: exp(row − peak), float32; `total`: their sum. Then
    max P = 1 / total (the peak's weight is 1) and log Σ exp(row) = peak + log(total).
    """

    row: np.ndarray
    peak: float
    weights: np.ndarray
    total: float

    @property
    def max_probability(self) -> float:
        return 1.0 / self.total

    @property
    def log_sum_exp(self) -> float:
        return self.peak + math.log(self.total)


def row_stats(row: np.ndarray) -> RowStats:
    """`RowStats` of one logits row [vocab] (float32; -inf entries allowed, not all of them)."""
    row = np.asarray(row, dtype=np.float32)
    peak = float(row.max())
    weights = row - np.float32(peak)
    np.exp(weights, out=weights)
    # A float32 sum (NumPy sums pairwise: relative error ~1e-7 here) halves the time of a float64 one.
    return RowStats(row, peak, weights, float(weights.sum()))


def kl_between(cur: RowStats, base: RowStats, kl_direction: str = "paper") -> float:
    """KL between the distributions of two rows without forming either: for p = softmax(a),
    q = softmax(b), KL(p ‖ q) = Σ p·(a − b) − LSE(a) + LSE(b). Direction as in `write_test`.

    Rows with −inf entries (tokens a decoder bans) can make a − b undefined where both are −inf;
    those rows take the exact path, where such terms count zero."""
    if kl_direction not in KL_DIRECTIONS:
        raise ValueError(f"kl_direction must be one of {KL_DIRECTIONS}, got {kl_direction!r}")
    p, q = (cur, base) if kl_direction == "paper" else (base, cur)
    with np.errstate(invalid="ignore"):
        difference = p.row - q.row
    kl = float(np.dot(p.weights, difference)) / p.total - p.log_sum_exp + q.log_sum_exp
    if math.isfinite(kl):
        return max(kl, 0.0)  # a KL is never negative; rounding can take a near-zero one below
    logp = log_softmax(p.row[None, :])
    logq = log_softmax(q.row[None, :])
    return float(kl_divergence(logp, logq)[0])


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of `logits` [n, vocab] (any float dtype) → float32 [n, vocab]."""
    logits = np.asarray(logits, dtype=np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def kl_divergence(logp: np.ndarray, logq: np.ndarray) -> np.ndarray:
    """KL(p ‖ q) = Σ_v p(v) (log p(v) − log q(v)) per row, in nats.

    `logp`, `logq`: log-probabilities [n, vocab], float32 or float64. Returns float64 [n]. Terms
    where p(v) = 0 count zero (the limit of p log p), so -inf entries of `logp` are safe.
    """
    # Computed in the inputs' precision (float32 rows from the model: a 262k-wide row in float64
    # costs twice the memory traffic), summed in float64.
    logp = np.asarray(logp)
    logq = np.asarray(logq)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        terms = p * (logp - logq)
    terms = np.where(p > 0.0, terms, 0.0)
    return terms.sum(axis=-1, dtype=np.float64)


def write_test(
    cur_logprobs: np.ndarray,
    base_logprobs: np.ndarray,
    delta: float,
    alpha: float,
    kl_direction: str = "paper",
) -> np.ndarray:
    """Which draft positions pass LSG's write test.

    `cur_logprobs`: log P_cur [n, vocab], the full-prefix model at each draft position.
    `base_logprobs`: log P_base [n, vocab], the wait-1 baseline teacher-forced on the same draft.
    `delta`: KL threshold δ in nats; `alpha`: confidence threshold α on max P_cur.
    Returns bool [n]: position k passes if the KL (direction per `kl_direction`) exceeds δ or the
    top probability of P_cur exceeds α.
    """
    if kl_direction not in KL_DIRECTIONS:
        raise ValueError(f"kl_direction must be one of {KL_DIRECTIONS}, got {kl_direction!r}")
    cur = np.asarray(cur_logprobs)
    base = np.asarray(base_logprobs)
    if cur.shape != base.shape:
        raise ValueError(f"distribution shapes differ: {cur.shape} vs {base.shape}")
    if kl_direction == "paper":
        kl = kl_divergence(cur, base)
    else:
        kl = kl_divergence(base, cur)
    confidence = np.exp(cur.max(axis=-1).astype(np.float64))
    return (kl > delta) | (confidence > alpha)


def leading_run(passes: np.ndarray) -> int:
    """Length of the run of True values at the start of `passes` (bool [n])."""
    passes = np.asarray(passes, dtype=bool)
    failing = np.flatnonzero(~passes)
    return int(failing[0]) if failing.size else int(passes.size)
