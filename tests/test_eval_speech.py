"""Speech plugs into the harness: manifest rows → ms instances → the same scorers as text."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsg_edge.errors import InputError
from lsg_edge.evaluation.scoring import latency_scores, quality_scores
from lsg_edge.evaluation.speech_run import instance_from_speech_commits, read_audio_manifest
from lsg_edge.events import Commit


def FakeCommit(text: str, audio_ms: int, wall_time_s: float) -> Commit:  # noqa: N802 - reads like the type
    """A speech commit with the fields the harness reads."""
    return Commit(text=text.strip(), separator=" ", sentence_index=0, source_read=audio_ms, elapsed_ms=0.0,
                  n_words=len(text.split()), wall_time_s=wall_time_s)


def test_manifest_rows_resolve_audio_beside_the_tsv(data_dir: Path):
    items = read_audio_manifest(data_dir / "librispeech-dev" / "transcripts.tsv", limit=2)
    assert len(items) == 2 and items[0].audio_path.is_file()
    assert items[1].transcript == "THERE WAS NOT A SINGLE NOTE OF GLOOM" and items[1].duration_s == pytest.approx(2.525)


def test_bad_manifests_are_input_errors(tmp_path):
    (tmp_path / "m.tsv").write_text("case_id\taudio_path\n1\ta.wav\n")
    with pytest.raises(InputError, match="lacks column"):
        read_audio_manifest(tmp_path / "m.tsv")
    with pytest.raises(InputError, match="cannot read"):
        read_audio_manifest(tmp_path / "none.tsv")


def test_speech_commits_become_ms_instances_scored_like_text():
    commits = [FakeCommit(" there was", 1280, 100.5), FakeCommit(" not a single", 1920, 101.0),
               FakeCommit(" note of gloom", 2525, 101.75)]
    instance = instance_from_speech_commits(0, commits, 2525.0, "THERE WAS NOT A SINGLE NOTE OF GLOOM", 100.0)
    assert instance.unit == "ms" and instance.prediction_length == 8
    assert instance.delays[:3] == (1280.0, 1280.0, 1920.0)
    assert instance.elapsed[0] == pytest.approx(1280.0 + 500.0)
    assert quality_scores([instance], ("WER",))["WER"] == pytest.approx(0.0)
    scores = latency_scores([instance])
    assert 0 < scores["AL"] < 2525.0 and scores["AL_CA"] > scores["AL"]


def test_commits_of_finish_are_logged_at_the_full_audio_length():
    # finish() commits after the last, partial VAD frame too: everything was read (SimulEval's delay
    # for a write after the last segment), though source_read counts only whole 20 ms frames.
    commits = [FakeCommit(" there was", 1280, 100.5), FakeCommit(" not a single note of gloom", 2520, 101.0)]
    instance = instance_from_speech_commits(0, commits, 2525.0, "THERE WAS NOT A SINGLE NOTE OF GLOOM", 100.0,
                                            n_final=1)
    assert instance.delays == (1280.0,) * 2 + (2525.0,) * 6
    assert instance.elapsed[-1] == pytest.approx(2525.0 + 1000.0)
