"""Our latency metrics against SimulEval 1.1.4's scorers, fed the very same instance records.

SimulEval re-reads `instances.log` lines as `LogInstance`s (`simuleval --score-only`); we build
those from our `Instance.to_json()` and require AL, LAAL, DAL and AP to agree to 1e-6, per instance
and as corpus means, for text (word delays) and speech (ms delays), plain and computation-aware.
"""

from __future__ import annotations

import json
import math
import statistics
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simuleval.evaluator.instance import LogInstance
from simuleval.evaluator.scorers.latency_scorer import ALScorer, APScorer, DALScorer, LAALScorer

from lsg_edge.evaluation.instance import Instance
from lsg_edge.evaluation.latency import (
    average_lagging,
    average_proportion,
    differentiable_average_lagging,
    length_adaptive_average_lagging,
    reference_length,
)
from lsg_edge.evaluation.scoring import LatencyOptions, instance_latency, latency_scores

SCORERS = {"AL": ALScorer, "LAAL": LAALScorer, "DAL": DALScorer, "AP": APScorer}
TOLERANCE = 1e-6


def simuleval_scores(records: list[dict], computation_aware: bool, use_ref_len: bool = True) -> dict[str, float]:
    """Corpus scores by SimulEval's own scorers over LogInstances of `records`."""
    instances = {i: LogInstance(json.dumps(r)) for i, r in enumerate(records)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SimulEval warns (deprecated logger.warn) on empty outputs
        return {
            name: scorer(computation_aware=computation_aware, use_ref_len=use_ref_len)(instances)
            for name, scorer in SCORERS.items()
        }


def ca_record(instance: Instance, source_word_ms: float) -> dict:
    """The record SimulEval would score for our text computation-aware definition: each word's time
    d·w + elapsed in `elapsed`, the source |X|·w ms long (see scoring.py)."""
    record = instance.to_json()
    if instance.unit == "word":
        record["elapsed"] = [d * source_word_ms + e for d, e in zip(instance.delays, instance.elapsed)]
        record["source_length"] = instance.source_length * source_word_ms
    else:
        record["elapsed"] = list(instance.elapsed)  # unrounded
    return record


def make_instance(index, delays, source_length, reference, unit="word", elapsed=None) -> Instance:
    delays = [float(d) for d in delays]
    elapsed = [float(e) for e in (elapsed if elapsed is not None else [0.0] * len(delays))]
    return Instance(
        index=index,
        prediction=" ".join(f"w{i}" for i in range(len(delays))),
        reference=reference,
        source_length=source_length,
        delays=tuple(delays),
        elapsed=tuple(elapsed),
        unit=unit,
    )


def assert_agree(ours: dict[str, float], theirs: dict[str, float], suffix: str = "") -> None:
    for name, value in theirs.items():
        assert ours[name + suffix] == pytest.approx(value, abs=TOLERANCE, rel=TOLERANCE), name + suffix


# --- text: delays in source words -----------------------------------------------------------------


@st.composite
def text_instances(draw, index: int = 0) -> Instance:
    n_source = draw(st.integers(1, 30))
    n_out = draw(st.integers(1, 45))  # outputs longer than the source included
    steps = draw(st.lists(st.integers(1, n_source), min_size=n_out, max_size=n_out))
    delays = sorted(steps)
    n_ref = draw(st.integers(0, 40))
    reference = " ".join(["ref"] * n_ref)  # "" counts 1 word in SimulEval
    increments = draw(st.lists(st.floats(0.0, 500.0), min_size=n_out, max_size=n_out))
    return make_instance(index, delays, n_source, reference, elapsed=list(np.cumsum(increments)))


@settings(max_examples=50, deadline=None)
@given(st.lists(text_instances(), min_size=1, max_size=6))
def test_text_corpus_scores_match_simuleval(instances):
    instances = [Instance(**{**i.__dict__, "index": n}) for n, i in enumerate(instances)]
    options = LatencyOptions(source_word_ms=400.0)
    ours = latency_scores(instances, options)
    assert_agree(ours, simuleval_scores([i.to_json() for i in instances], computation_aware=False))
    ca = simuleval_scores([ca_record(i, 400.0) for i in instances], computation_aware=True)
    assert_agree(ours, ca, suffix="_CA")


@settings(max_examples=30, deadline=None)
@given(text_instances())
def test_without_reference_length_matches_no_use_ref_len(instance):
    ours = latency_scores([instance], LatencyOptions(use_reference_length=False), computation_aware=False)
    assert_agree(ours, simuleval_scores([instance.to_json()], False, use_ref_len=False))


# --- speech: delays in ms of audio read -----------------------------------------------------------


@st.composite
def speech_instances(draw) -> Instance:
    duration_ms = draw(st.floats(640.0, 20000.0))
    n_out = draw(st.integers(1, 40))
    segments = draw(st.lists(st.integers(1, int(math.ceil(duration_ms / 640.0))), min_size=n_out, max_size=n_out))
    delays = sorted(min(s * 640.0, duration_ms) for s in segments)
    compute = np.cumsum(draw(st.lists(st.floats(0.0, 900.0), min_size=n_out, max_size=n_out)))
    reference = " ".join(["REF"] * draw(st.integers(1, 35)))
    return make_instance(0, delays, duration_ms, reference, unit="ms", elapsed=list(np.asarray(delays) + compute))


@settings(max_examples=50, deadline=None)
@given(st.lists(speech_instances(), min_size=1, max_size=5))
def test_speech_corpus_scores_match_simuleval(instances):
    ours = latency_scores(instances)
    assert_agree(ours, simuleval_scores([i.to_json() for i in instances], computation_aware=False))
    ca = simuleval_scores([ca_record(i, 400.0) for i in instances], computation_aware=True)
    assert_agree(ours, ca, suffix="_CA")


# --- edge cases, named --------------------------------------------------------------------------


def test_empty_prediction_is_skipped_like_simuleval():
    empty = make_instance(0, [], 5, "a b c")
    full = make_instance(1, [2, 3, 5], 5, "a b c d")
    ours = latency_scores([empty, full], computation_aware=False)
    assert_agree(ours, simuleval_scores([empty.to_json(), full.to_json()], False))
    assert instance_latency(empty) is None
    assert ours["AL"] == pytest.approx(instance_latency(full)["AL"])


def test_all_empty_is_nan_where_simuleval_raises():
    empty = make_instance(0, [], 5, "a b c")
    assert all(math.isnan(v) for v in latency_scores([empty]).values())
    with pytest.raises(statistics.StatisticsError):
        simuleval_scores([empty.to_json()], False)


@pytest.mark.parametrize(
    "delays, source_length, reference",
    [
        ([7, 7, 7, 7, 7], 7, "one two three four five"),  # all at the end (offline)
        ([1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3], 3, "a b c d"),  # output longer than source and ref
        ([3], 3, ""),  # empty reference: SimulEval counts 1 word
        ([1, 2, 3], 10, "a  b"),  # double space: SimulEval counts an empty word
        ([12.0, 13.0], 10, "a b"),  # first delay past the source end: AL = d_1
    ],
)
def test_edge_cases_match_simuleval(delays, source_length, reference):
    instance = make_instance(0, delays, source_length, reference)
    ours = latency_scores([instance], computation_aware=False)
    assert_agree(ours, simuleval_scores([instance.to_json()], False))


def test_documented_quirks_hold():
    # AL uses the reference length: a 4-word output against a 2-word reference lags "less".
    assert average_lagging([1, 2, 3, 4], 4, 2) == pytest.approx((1 + 0 - 1 - 2) / 4)
    # LAAL takes the longer of output and reference.
    assert length_adaptive_average_lagging([1, 2, 3, 4], 4, 2) == pytest.approx(average_lagging([1, 2, 3, 4], 4, 4))
    # AL stops at the first word written with the whole source read.
    assert average_lagging([1, 4, 4, 4], 4, 4) == pytest.approx((1 + 3) / 2)
    # DAL's running maximum: words written together are spread |X|/|Y*| apart.
    assert differentiable_average_lagging([4, 4, 4, 4], 4) == pytest.approx(4.0)
    # AP divides by the reference length while summing over the output.
    assert average_proportion([2, 2, 2, 2], 2, 2) == pytest.approx(2.0)
    assert reference_length("") == 1 and reference_length("a  b") == 3


def test_to_json_is_simuleval_instance_format():
    record = make_instance(3, [1, 2], 4, "x y").to_json()
    for key in ("index", "prediction", "reference", "source_length", "delays", "elapsed", "prediction_length"):
        assert key in record
    assert record["prediction_length"] == len(record["prediction"].split()) == len(record["delays"])
