"""The two benchmark tools that read finished runs: joining a check run in pieces, and counting the
outputs that are no translation at all (with the sign test that compares two runs' counts)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lsg_edge.evaluation.compare import load_run
from lsg_edge.evaluation.instance import Instance, write_instances
from lsg_edge.evaluation.scoring import quality_scores
from tests.helpers.benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def merge_runs():
    yield from load_benchmark("merge_runs")


@pytest.fixture(scope="module")
def broken_outputs():
    yield from load_benchmark("broken_outputs")


def _instance(index: int, prediction: str, reference: str, source: str) -> Instance:
    n = len(prediction.split())
    return Instance(index=index, prediction=prediction, reference=reference, source_length=len(source.split()),
                    delays=tuple(float(min(t + 3, len(source.split()))) for t in range(n)), elapsed=(0.0,) * n,
                    source=source)


def _pieces(wmt_pairs: list[tuple[str, str]], tmp_path: Path) -> list[Path]:
    # Two pieces of a run, each numbered from 0 as `lsg-edge eval` numbers a source file's lines;
    # the "system" output is the reference with its first word dropped.
    paths = []
    for piece, rows in enumerate((wmt_pairs[:3], wmt_pairs[3:5])):
        path = tmp_path / f"piece{piece}.log"
        write_instances(path, [_instance(i, " ".join(en.split()[1:]), en, de) for i, (de, en) in enumerate(rows)])
        paths.append(path)
    return paths


def test_joined_pieces_number_on_and_score_as_one_run(merge_runs, wmt_pairs, tmp_path: Path) -> None:
    joined = merge_runs.join_runs(_pieces(wmt_pairs, tmp_path))
    assert [i.index for i in joined] == [0, 1, 2, 3, 4]
    assert [i.reference for i in joined] == [en for _, en in wmt_pairs[:5]]
    whole = [_instance(i, " ".join(en.split()[1:]), en, de) for i, (de, en) in enumerate(wmt_pairs[:5])]
    assert quality_scores(joined) == quality_scores(whole)


def test_a_lead_in_and_a_copied_source_are_broken_a_translation_is_not(broken_outputs, wmt_pairs) -> None:
    de, en = wmt_pairs[0]
    reason = broken_outputs.broken_reason
    assert reason(_instance(0, en, en, de)) is None
    assert reason(_instance(0, "Sure, here's the English translation", en, de)) == "lead-in"
    assert reason(_instance(0, "I'm sorry, but I can't assist with that request.", en, de)) == "lead-in"
    assert reason(_instance(0, de, en, de)) == "untranslated"
    # A reference that itself speaks of translating makes the word no sign of a lead-in.
    assert reason(_instance(0, "The translation was late.", "The translation came late.", "Die Übersetzung kam spät.")) is None


def test_the_sign_test_is_the_exact_binomial(broken_outputs) -> None:
    sign_test = broken_outputs.sign_test
    assert sign_test(0, 0) == 1.0
    assert sign_test(3, 3) == 1.0
    assert sign_test(6, 0) == pytest.approx(2 / 64)  # all six one way: 2 · 0.5⁶
    assert sign_test(0, 5) == pytest.approx(2 / 32)
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024)  # P(X ≤ 1) for n = 10, both tails


def test_the_pair_report_counts_items_broken_in_one_run_only(broken_outputs, wmt_pairs, tmp_path: Path, capsys) -> None:
    rows = wmt_pairs[:4]
    a = [_instance(i, "Here's the English translation", en, de) if i < 3 else _instance(i, en, en, de)
         for i, (de, en) in enumerate(rows)]
    b = [_instance(i, en, en, de) if i != 3 else _instance(i, de, en, de) for i, (de, en) in enumerate(rows)]
    write_instances(tmp_path / "a.log", a)
    write_instances(tmp_path / "b.log", b)
    argv, sys.argv = sys.argv, ["broken_outputs.py", "--pair", str(tmp_path / "a.log"), str(tmp_path / "b.log")]
    try:
        broken_outputs.main()
    finally:
        sys.argv = argv
    out = capsys.readouterr().out
    assert "broken 3 | 1; only in A 3, only in B 1" in out, out
    assert f"p = {broken_outputs.sign_test(3, 1):.3g}" in out
    assert len(load_run(tmp_path / "a.log")) == 4
