"""The learned-write probe (benchmarks/learned_write.py): its statistics, and its policy on the real
default model.

Its figures are read against plain LSG runs, so the learned test must slot into LSG's leading run
without changing anything else: a test that passes every token commits what LSG commits when its
confidence test passes every token, and one that passes none commits what LSG commits when none
of its tests pass (forced words only).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from lsg_edge.evaluation.text_run import translate_line
from lsg_edge.policy.options import PolicyOptions
from tests.helpers.benchmark_scripts import load_benchmark

_BOUNDS = dict(name="lsg", low_bound=1, top_bound=4)


@pytest.fixture(scope="module")
def probe():
    yield from load_benchmark("learned_write")


def test_auc_counts_ordered_pairs_and_half_of_ties(probe):
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, 300).astype(float)  # many ties
    label = (rng.random(300) < 0.4).astype(int)
    positives, negatives = score[label == 1], score[label == 0]
    pairwise = ((positives[:, None] > negatives[None, :]).sum()
                + 0.5 * (positives[:, None] == negatives[None, :]).sum()) / (positives.size * negatives.size)
    assert probe.auc(score, label) == pytest.approx(pairwise)


def test_the_regression_recovers_the_weights_it_was_sampled_from(probe):
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(40_000), rng.normal(size=(40_000, 2))])
    truth = np.array([-0.5, 2.0, -1.0])
    y = (rng.random(40_000) < 1 / (1 + np.exp(-(x @ truth)))).astype(float)
    assert probe.fit_logistic(x, y, l2=1e-3) == pytest.approx(truth, abs=0.08)


def test_features_of_a_row_against_itself_and_against_another(probe):
    rng = np.random.default_rng(2)
    row = rng.normal(size=50).astype(np.float32)
    alone = probe.token_features(row, None, lag=3, starts_word=True)
    against_itself = probe.token_features(row, row.copy(), lag=3, starts_word=True)
    assert alone == pytest.approx(against_itself, abs=1e-5)  # KL 0, the same choice, the same log-probability
    other = row.copy()
    other[int(np.argmax(row))] -= 10.0  # the baseline moves away from P_cur's choice
    moved = dict(zip(probe.RAW, probe.token_features(row, other, lag=3, starts_word=True)))
    assert moved["kl"] > 0.1 and moved["base_agrees"] == 0.0 and moved["base_log_prob"] < alone[4]
    assert probe.design(alone, "all").shape == (1, 2 + 6 + 2 * (probe.MAX_LAG - 1))


def _translate(engine, words, options, policy=None):
    with engine.create_session("de", "en", policy=options) as session:
        if policy is not None:
            session._policy = policy  # as the probe does
        commits, reads = translate_line(session, words)
    return [(c.text, n) for c, n in zip(commits, reads)]


def _constant_test(probe, bias: float, columns: str = "all"):
    weights = np.zeros(probe.design(np.zeros(len(probe.RAW) + len(probe.FUTURE)), columns).shape[1])
    weights[0] = bias
    return probe.LearnedTest(columns, weights, threshold=0.5)


@pytest.mark.parametrize("bias, lsg", [(50.0, dict(alpha=0.0, delta=9.0)), (-50.0, dict(alpha=1.0, delta=1e9))])
def test_a_test_that_always_or_never_passes_commits_what_lsg_does_at_its_extremes(engine, probe, wmt_pairs, bias, lsg):
    words = wmt_pairs[2][0].split()
    plain = _translate(engine, words, PolicyOptions(**_BOUNDS, **lsg))
    options = PolicyOptions(**_BOUNDS)
    test = _constant_test(probe, bias)
    assert _translate(engine, words, options, probe.LearnedLsgPolicy(options, test)) == plain
    assert test.counts["passed" if bias > 0 else "failed"] > 0
    assert test.counts["failed" if bias > 0 else "passed"] == 0


def test_the_anticipated_source_is_read_without_changing_what_the_test_decides(engine, probe, wmt_pairs):
    words = wmt_pairs[2][0].split()
    plain = _translate(engine, words, PolicyOptions(**_BOUNDS, alpha=0.0, delta=9.0))
    options = PolicyOptions(**_BOUNDS)
    anticipation = probe.Anticipation(engine, engine.prompt("de", "en"), n_words=2)
    future = probe.FutureView(engine, anticipation, engine.model.new_context())
    test = _constant_test(probe, 50.0, "all+future")
    assert _translate(engine, words, options, probe.LearnedLsgPolicy(options, test, future)) == plain
    anticipated = list(future._anticipated.items())
    assert anticipated and all(len(expected) <= 2 for _, expected in anticipated)
    assert any(expected for _, expected in anticipated)  # the model does expect words after a prefix


def test_fit_writes_weights_that_run_reads(probe, tmp_path):
    rng = np.random.default_rng(3)
    raw = np.column_stack([np.log(rng.uniform(0.05, 1, 400)), -rng.uniform(0, 3, 400), rng.uniform(0, 3, 400),
                           rng.uniform(0, 5, 400), np.log(rng.uniform(0.01, 1, 400)), rng.integers(0, 2, 400),
                           rng.integers(1, 9, 400), rng.integers(0, 2, 400)])
    label = (raw[:, 0] > np.log(0.5)).astype(int)
    np.savez(tmp_path / "rows.npz", raw=raw, label=label, sentence=np.arange(400) // 10)
    sys.argv = ["learned_write.py", "fit", str(tmp_path / "rows.npz"), "--output", str(tmp_path / "w.json")]
    probe.main()
    fitted = json.loads((tmp_path / "w.json").read_text())
    test = probe.LearnedTest(fitted["columns"], np.array(fitted["weights"]), threshold=0.5)
    assert test.passes(raw[np.argmax(raw[:, 0])]) and not test.passes(raw[np.argmin(raw[:, 0])])
