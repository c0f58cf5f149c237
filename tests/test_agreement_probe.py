"""The agreement probe (benchmarks/agreement_probe.py) is LSG plus one test, on the real default model.

The probe's figures are read against plain LSG runs, so with its extra test switched off it must
commit exactly what LSG commits; with it on, the extra test must actually pass tokens.
"""

from __future__ import annotations

import pytest

from lsg_edge.evaluation.text_run import translate_line
from lsg_edge.policy.options import PolicyOptions
from tests.helpers.benchmark_scripts import load_benchmark

_OPTIONS = PolicyOptions(name="lsg", low_bound=1, top_bound=6, delta=9.0, alpha=0.6)


@pytest.fixture(scope="module")
def probe():
    yield from load_benchmark("agreement_probe")


def _translate(engine, words, policy=None):
    with engine.create_session("de", "en", policy=_OPTIONS) as session:
        if policy is not None:
            session._policy = policy  # as the probe does
        commits, reads = translate_line(session, words)
    return [(c.text, n) for c, n in zip(commits, reads)]


@pytest.fixture(scope="module")
def words(wmt_pairs):
    return wmt_pairs[1][0].split()


def test_with_the_agreement_test_off_it_commits_what_lsg_commits(engine, probe, words):
    plain = _translate(engine, words)
    policy = probe.AgreementLsgPolicy(_OPTIONS, floor=1.0)  # no probability exceeds 1: never agrees
    assert _translate(engine, words, policy) == plain
    assert policy.counts["agreement"] == 0


def test_the_agreement_test_passes_tokens_an_earlier_draft_held(engine, probe, words):
    policy = probe.AgreementLsgPolicy(_OPTIONS, floor=0.0)
    probed = _translate(engine, words, policy)
    assert policy.counts["agreement"] > 0
    assert probed != _translate(engine, words)
