"""Latency metrics of simultaneous generation, as pure NumPy functions.

Every function takes one sentence's delays — for each output word, how much source had been read
when it was written (source words for text, milliseconds of audio for speech) — and returns one
number in the same unit. They reproduce SimulEval 1.1.4 (`simuleval/evaluator/scorers/
latency_scorer.py`) exactly, quirks included, because numbers that only agree with themselves are
what peers' users complain about; each quirk is named in the docstring that has it.

Which target length a metric uses is the caller's choice in the formulas below; SimulEval's
choices (reference length where it has one) are made in `scoring.py`, not here.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "average_lagging",
    "length_adaptive_average_lagging",
    "differentiable_average_lagging",
    "average_proportion",
    "reference_length",
]


def _checked(delays: np.ndarray | list[float], source_length: float) -> np.ndarray:
    d = np.asarray(delays, dtype=np.float64)
    if d.ndim != 1 or d.size == 0:
        raise ValueError(f"delays must be a non-empty 1-D sequence, got shape {d.shape}")
    if not source_length > 0:
        raise ValueError(f"source_length must be positive, got {source_length}")
    return d


def _lagging(d: np.ndarray, source_length: float, gamma: float) -> float:
    """Shared AL/LAAL body: mean of d_t − (t−1)/γ over t ≤ τ, τ the first t with d_t ≥ |X|."""
    if d[0] > source_length:
        # SimulEval returns the first delay when even it lies past the source end (possible with
        # computation-aware delays): it does not average anything.
        return float(d[0])
    reached = np.flatnonzero(d >= source_length)
    tau = int(reached[0]) + 1 if reached.size else d.size
    t = np.arange(tau, dtype=np.float64)
    return float(np.mean(d[:tau] - t / gamma))


def average_lagging(delays: np.ndarray | list[float], source_length: float, target_length: float) -> float:
    r"""Average Lagging (Ma et al. 2019, STACL, arXiv 1810.08398).

    AL = (1/τ) Σ_{t=1..τ} [ d_t − (t−1)·|X|/|Y| ],  τ = min{ t : d_t ≥ |X| } (|delays| if none).

    `delays` d: float [n], source read when output word t was written; `source_length` |X|;
    `target_length` |Y|. SimulEval quirks reproduced:
    - |Y| is the *reference* length when a reference exists (the caller passes it), so an output
      longer than the reference is rewarded with lower AL — the problem LAAL fixes;
    - γ = |Y|/|X| and the lag is d_t − (t−1)/γ, as SimulEval computes it;
    - if d_1 > |X| the result is d_1 itself.
    """
    d = _checked(delays, source_length)
    if not target_length > 0:
        raise ValueError(f"target_length must be positive, got {target_length}")
    return _lagging(d, source_length, target_length / source_length)


def length_adaptive_average_lagging(
    delays: np.ndarray | list[float], source_length: float, reference_length: float
) -> float:
    r"""Length-Adaptive Average Lagging (Papi et al. 2022, arXiv 2206.05807; Polák et al. 2022).

    LAAL = (1/τ) Σ_{t=1..τ} [ d_t − (t−1)·|X| / max(|Y|, |Y*|) ],  τ as in AL,

    with |Y| the reference length and |Y*| = len(delays) the output length: an over-long output no
    longer lowers the lag. Same τ and d_1 > |X| quirks as `average_lagging`. Without a reference
    SimulEval passes |Y| = |Y*|, which makes LAAL equal AL.
    """
    d = _checked(delays, source_length)
    longest = max(d.size, reference_length)
    return _lagging(d, source_length, longest / source_length)


def differentiable_average_lagging(delays: np.ndarray | list[float], source_length: float) -> float:
    r"""Differentiable Average Lagging (Arivazhagan et al. 2019, MILk, arXiv 1906.05218).

    d'_1 = d_1,  d'_t = max(d_t, d'_{t−1} + 1/γ),  DAL = (1/|Y*|) Σ_{t=1..|Y*|} [ d'_t − (t−1)/γ ]

    with γ = |Y*|/|X|. SimulEval quirks reproduced: |Y*| is always the *output* length (its DAL
    ignores the reference even when it has one); every output word counts (no τ cut-off); no
    special case for d_1 > |X|. Unrolling the recursion, d'_t − (t−1)/γ = max_{k≤t} (d_k − (k−1)/γ),
    a running maximum.
    """
    d = _checked(delays, source_length)
    gamma = d.size / source_length
    t = np.arange(d.size, dtype=np.float64)
    return float(np.mean(np.maximum.accumulate(d - t / gamma)))


def average_proportion(delays: np.ndarray | list[float], source_length: float, target_length: float) -> float:
    r"""Average Proportion (Cho & Esipova 2016, arXiv 1606.02012).

    AP = Σ_{t=1..|Y*|} d_t / ( |X| · |Y| ).

    SimulEval quirk reproduced: |Y| is the reference length when a reference exists, while the sum
    runs over the |Y*| output words, so AP is not bounded by 1 for outputs longer than the
    reference. For speech the delays and |X| are both milliseconds (SimulEval 1.1.4 has no separate
    source-duration correction), so AP stays a proportion.
    """
    d = _checked(delays, source_length)
    if not target_length > 0:
        raise ValueError(f"target_length must be positive, got {target_length}")
    return float(np.sum(d) / (source_length * target_length))


def reference_length(reference: str) -> int:
    """Reference length in words as SimulEval counts it: `len(reference.split(" "))`.

    Quirk reproduced: a single-space split, so an empty reference counts 1 word and runs of spaces
    count empty words. Callers strip line ends (SimulEval's text loader keeps the newline, which
    changes nothing for a split on spaces).
    """
    return len(reference.split(" "))
