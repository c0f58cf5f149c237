"""The oracle benchmark (benchmarks/oracle.py) keeps LSG's range constraint on the real default model.

The oracle bounds what any read/write policy can reach, so it must obey the same [L, U] as the
policies it bounds: word i not before min(L+i-1, J) source words, and out once min(L+i-1+U, J)
are read. An oracle that skips the upper bound writes later than any policy could and overstates
the headroom at a given lag.
"""

from __future__ import annotations

import numpy as np
import pytest

from lsg_edge.policy.words import word_starts
from tests.helpers.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def oracle_module():
    yield from load_benchmark("oracle")


@pytest.fixture(scope="module")
def sentence(engine, wmt_pairs, oracle_module):
    """One oracle (it holds a context of its own), a 22-word source and its offline target."""
    oracle = oracle_module.Oracle(engine, "de", "en")
    words = wmt_pairs[0][0].split()
    return oracle, words, oracle.offline(words)


def _word_read_at(oracle, tokens: list[int], read_at: list[int]) -> list[int]:
    """Source words read when each written word (by the policy's word starts) began."""
    starts = word_starts(oracle._pieces(tokens), True)
    return [read_at[i] for i in np.flatnonzero(starts)]


@pytest.mark.parametrize("low, top", [(1, 2), (3, 2)])
def test_every_word_is_written_inside_the_range(sentence, oracle_module, low, top):
    oracle, words, target = sentence
    n_source = len(words)
    tokens, read_at = oracle.schedule(words, target, oracle_module.Bounds(low, top))
    assert len(tokens) == len(read_at)
    read = _word_read_at(oracle, tokens, read_at)
    assert len(read) >= n_source // 2
    for i, j in enumerate(read, start=1):
        assert j >= min(low + i - 1, n_source), f"word {i} written after only {j} source words"
        assert j <= min(low + i - 1 + top, n_source), f"word {i} written only after {j} source words"


def test_without_an_upper_bound_it_writes_the_offline_translation(sentence, oracle_module):
    oracle, words, target = sentence
    tokens, read_at = oracle.schedule(words, target, oracle_module.Bounds(1, 0))
    assert tokens == target
    assert read_at == sorted(read_at)
