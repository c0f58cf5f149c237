"""The paired bootstrap on known data: identical systems are never significant, a system with clearly
fewer errors is, a one-word difference is not; scores equal the corpus scorers'; seeded runs repeat;
`lsg-edge compare` reports it from two runs' instances.log."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lsg_edge.evaluation.compare import compare_instances
from lsg_edge.evaluation.instance import Instance, write_instances
from lsg_edge.evaluation.paired import PairedOptions, paired_bleu, paired_bootstrap, paired_wer
from lsg_edge.evaluation.scoring import word_error_rate


@pytest.fixture(scope="module")
def transcripts(data_dir: Path) -> list[str]:
    with open(data_dir / "librispeech-dev" / "transcripts.tsv", encoding="utf-8", newline="") as f:
        return [row["transcript"] for row in csv.DictReader(f, delimiter="\t")]


def _drop_every(text: str, n: int) -> str:
    """Every n-th word deleted."""
    return " ".join(w for k, w in enumerate(text.split(), 1) if k % n)


def test_identical_systems_are_not_significant(transcripts: list[str]) -> None:
    noisy = [_drop_every(t, 5) for t in transcripts]
    result = paired_wer(transcripts, noisy, list(noisy))
    assert result.difference == 0.0
    assert result.p_value == 1.0
    assert not result.significant()


def test_fewer_errors_is_significant_and_scores_match_corpus_wer(transcripts: list[str]) -> None:
    worse = [_drop_every(t, 4) for t in transcripts]
    better = [_drop_every(t, 12) for t in transcripts]
    result = paired_wer(transcripts, worse, better)
    assert result.score_a == pytest.approx(word_error_rate(transcripts, worse), abs=1e-9)
    assert result.score_b == pytest.approx(word_error_rate(transcripts, better), abs=1e-9)
    assert result.difference < -10.0
    assert result.p_value < 0.05
    assert result.n_items == len(transcripts)


def test_one_word_difference_is_noise(transcripts: list[str]) -> None:
    a = [_drop_every(t, 6) for t in transcripts]
    b = list(a)
    b[3] = _drop_every(b[3], 2)  # a few more errors in one utterance only
    result = paired_wer(transcripts, a, b)
    assert result.difference > 0
    assert result.p_value > 0.2


def test_seeded_runs_repeat_and_seeds_differ(transcripts: list[str]) -> None:
    a = [_drop_every(t, 7) for t in transcripts]
    b = transcripts[:3] + a[3:]  # better on three utterances only: a p-value between the extremes
    first = paired_wer(transcripts, a, b, PairedOptions(n_resamples=500, seed=7))
    again = paired_wer(transcripts, a, b, PairedOptions(n_resamples=500, seed=7))
    assert first == again
    others = {paired_wer(transcripts, a, b, PairedOptions(n_resamples=500, seed=s)).p_value for s in range(5)}
    assert len(others) > 1
    assert 1.0 / 501 < first.p_value < 1.0


def test_empty_hypothesis_counts_every_reference_word(transcripts: list[str]) -> None:
    hyps = list(transcripts)
    hyps[0] = ""
    result = paired_wer(transcripts, transcripts, hyps)
    assert result.score_b == pytest.approx(word_error_rate(transcripts, hyps), abs=1e-9)


def test_bleu_scores_are_sacrebleus_and_a_real_gain_is_significant(wmt_pairs: list[tuple[str, str]]) -> None:
    import sacrebleu

    references = [en for _, en in wmt_pairs[:200]]
    worse = [_drop_every(r, 2) for r in references]
    better = [_drop_every(r, 6) for r in references]
    result = paired_bleu(references, worse, better)
    assert result.score_a == pytest.approx(sacrebleu.corpus_bleu(worse, [references]).score, abs=1e-9)
    assert result.score_b == pytest.approx(sacrebleu.corpus_bleu(better, [references]).score, abs=1e-9)
    assert result.difference > 10.0
    assert result.p_value < 0.05
    assert 0.0 < result.interval[0] < result.difference < result.interval[1]
    assert 0.0 < result.standard_error < result.difference / 1.96
    assert paired_bleu(references, worse, list(worse)).p_value == 1.0


def test_bootstrap_p_value_on_planted_statistics() -> None:
    # Ten items; B has one error fewer on every item: every resample agrees, p is the minimum.
    a = np.array([[3.0, 10.0]] * 10)
    b = np.array([[2.0, 10.0]] * 10)
    result = paired_bootstrap(a, b, lambda s: 100.0 * s[..., 0] / s[..., 1], "WER", PairedOptions(n_resamples=99))
    assert result.difference == pytest.approx(-10.0)
    # |δ* − δ| = 0 < |δ| on every resample
    assert result.p_value == pytest.approx(1.0 / 100.0)
    assert result.standard_error == pytest.approx(0.0, abs=1e-12)
    assert result.interval == pytest.approx((-10.0, -10.0))


def _instances(texts: list[str], references: list[str]) -> list[Instance]:
    return [Instance(index=k, prediction=" ".join(t.split()), reference=r, source_length=1000.0,
                     delays=tuple(100.0 for _ in t.split()), elapsed=tuple(100.0 for _ in t.split()), unit="ms")
            for k, (t, r) in enumerate(zip(texts, references))]


def test_compare_restricts_to_an_item_range(transcripts: list[str]) -> None:
    a = _instances([_drop_every(t, 4) for t in transcripts], transcripts)
    b = _instances(transcripts, transcripts)
    whole = compare_instances(a, b)
    half = compare_instances(a, b, items=(1, 25))
    assert whole.metric == "WER" and whole.n_items == len(transcripts)
    assert half.n_items == 25
    assert half.score_a == pytest.approx(word_error_rate(transcripts[:25], [i.prediction for i in a[:25]]))


def test_compare_cli_reports_and_refuses_mismatched_runs(tmp_path: Path, transcripts: list[str]) -> None:
    run_a, run_b, run_c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder in (run_a, run_b, run_c):
        folder.mkdir()
    write_instances(run_a / "instances.log", _instances([_drop_every(t, 4) for t in transcripts], transcripts))
    write_instances(run_b / "instances.log", _instances(transcripts, transcripts))
    write_instances(run_c / "instances.log", _instances(transcripts, [t + " extra" for t in transcripts]))
    command = [sys.executable, "-m", "lsg_edge.cli"]
    out = subprocess.run(command + ["compare", str(run_a), str(run_b), "--json", "--items", "26-50"],
                         capture_output=True, text=True, check=True)
    record = json.loads(out.stdout)
    assert record["metric"] == "WER" and record["n_items"] == 25 and record["p_value"] < 0.05
    # B, the true transcripts, has fewer errors: the whole interval lies below zero.
    low, high = record["interval"]
    assert low <= record["difference"] <= high < 0.0
    bad = subprocess.run(command + ["compare", str(run_a), str(run_c)], capture_output=True, text=True)
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and "different references" in bad.stderr
    missing = subprocess.run(command + ["compare", str(run_a), str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode != 0 and "no instances.log" in missing.stderr and "Traceback" not in missing.stderr
