"""`lsg-edge eval` end to end with the real default model on three short newstest sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsg_edge.errors import InputError
from lsg_edge.evaluation.cli import eval_command


@pytest.fixture(scope="module")
def short_corpus(wmt_pairs, tmp_path_factory) -> tuple[Path, Path]:
    """The three shortest of the first 40 sentence pairs (keeps the test to seconds)."""
    pairs = sorted(wmt_pairs[:40], key=lambda p: len(p[0].split()))[:3]
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "de.txt").write_text("\n".join(p[0] for p in pairs) + "\n", encoding="utf-8")
    (folder / "en.txt").write_text("\n".join(p[1] for p in pairs) + "\n", encoding="utf-8")
    return folder / "de.txt", folder / "en.txt"


@pytest.mark.model  # the CLI loads the default model itself
def test_eval_sweep_writes_instances_scores_and_plot(short_corpus, tmp_path):
    source, reference = short_corpus
    out = tmp_path / "out"
    result = CliRunner().invoke(eval_command, [
        "--source", str(source), "--reference", str(reference), "--output", str(out),
        "--sweep", "wait-k:k=3", "--sweep", "local-agreement", "--with-offline",
        "--threads", "1", "--no-progress",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "wait-k k=3" in result.output and "local-agreement" in result.output

    scores = json.loads((out / "scores.json").read_text())
    rows = {row["setting"]: row for row in scores["rows"]}
    assert set(rows) == {"wait-k k=3", "local-agreement", "offline"}
    assert rows["offline"]["compute_ratio"] == pytest.approx(1.0)
    for row in rows.values():
        assert row["n_sentences"] == 3 and row["BLEU"] is not None and row["AL"] is not None
    assert (out / "quality_latency.png").stat().st_size > 1000

    records = [json.loads(line) for line in (out / "instances.log").read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2]
    for r in records:  # wait-3: word i is written with at least min(3 + i - 1, |X|) words read
        assert r["prediction_length"] == len(r["delays"]) == len(r["elapsed"]) == len(r["prediction"].split())
        assert all(d >= min(3 + i, r["source_length"]) for i, d in enumerate(r["delays"]))
        assert r["elapsed"] == sorted(r["elapsed"])
    offline = [json.loads(line) for line in (out / "offline" / "instances.log").read_text().splitlines()]
    assert all(d == r["source_length"] for r in offline for d in r["delays"])
    assert rows["offline"]["AL"] == pytest.approx(sum(r["source_length"] for r in offline if r["delays"]) /
                                                  sum(1 for r in offline if r["delays"]))


def test_eval_refuses_misaligned_files_before_loading_a_model(tmp_path):
    (tmp_path / "de.txt").write_text("Ein Satz .\nNoch einer .\n")
    (tmp_path / "en.txt").write_text("A sentence .\n")
    with pytest.raises(InputError, match="must be aligned"):
        CliRunner().invoke(eval_command, [
            "--source", str(tmp_path / "de.txt"), "--reference", str(tmp_path / "en.txt"),
            "--output", str(tmp_path / "out"),
        ], catch_exceptions=False)
