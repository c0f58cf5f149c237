"""Speech translated in one process: both streams of commits, their audio times, the tentative tail."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lsg_edge.cascade import SpeechTranslator, check_language_pair
from lsg_edge.errors import OptionsError
from lsg_edge.events import Commit, Tentative
from lsg_edge.speech.audio_io import file_blocks, read_audio
from tests.helpers.markers import SPEECH, loads


def test_commit_names_its_stream_and_keeps_the_old_keys() -> None:
    caption = Commit("hello", "", 0, 640, 10.0, 1, audio_ms=640)
    record = caption.to_json()
    assert record["stream"] == "source" and record["audio_ms"] == 640
    assert {"text", "sentence", "source_read", "elapsed_ms", "words", "sentence_end"} <= set(record)
    assert "audio_ms" not in Commit("Hallo", "", 0, 1, 1.0, 1, stream="target").to_json()
    with pytest.raises(ValueError, match="stream"):
        Commit("x", "", 0, 0, 0.0, 1, stream="both")


def test_draft_event_has_its_own_type() -> None:
    assert Tentative("the house", "target", 2).to_json() == {
        "type": "draft", "text": "the house", "stream": "target", "sentence": 2}


@pytest.mark.parametrize("src, tgt, flag", [("en", "en", "--translate-to"), ("en", "xx", "--translate-to"),
                                            ("xx", "de", "--language"), (None, "en", "--translate-to")])
def test_bad_language_pairs_name_the_flag(src, tgt, flag) -> None:
    with pytest.raises(OptionsError, match=flag):
        check_language_pair(src, tgt)


@pytest.fixture(scope="module")
@loads(SPEECH)
def translator():
    # The default translation model (a `model` fixture too: the speech marker covers both loads).
    with SpeechTranslator.load("base", n_threads=2) as loaded:
        yield loaded


def _french(data_dir: Path, k: int):
    folder = data_dir / "fr-en-speech-samples"
    with open(folder / "items.tsv", newline="", encoding="utf-8") as f:
        row = list(csv.DictReader(f, delimiter="\t"))[k]
    return read_audio(folder / row["audio_path"]), row


def test_cascade_on_a_recording_commits_both_streams_in_order(data_dir, translator) -> None:
    audio, row = _french(data_dir, 0)  # "je voulais soumettre cette idée à la réflexion de l'assemblée nationale"
    drafts: list[tuple[str, str]] = []  # (committed target text so far, tentative) after each block
    commits: list[Commit] = []
    with translator.create_session("fr", "en") as session:
        for block in file_blocks(audio):
            commits += session.push(block)
            target_so_far = " ".join(c.text for c in commits if c.stream == "target" and c.text)
            drafts.append((target_so_far, session.tentative))
        commits += session.finish()
        assert session.tentative == ""
    source = [c for c in commits if c.stream == "source"]
    target = [c for c in commits if c.stream == "target"]
    source_text = " ".join(c.text for c in source).lower()
    target_text = " ".join(c.text for c in target if c.text).lower()
    assert "assemblée" in source_text or "nationale" in source_text, source_text
    assert "national" in target_text or "assembly" in target_text, target_text
    # The translation follows the captions: a target commit needs a source word committed before it.
    first_source = commits.index(source[0])
    assert all(commits.index(c) > first_source for c in target)
    # Every target word depends on audio that was heard before it was committed, and on the audio
    # of a caption (the source word that made it writable).
    caption_times = {c.audio_ms for c in source}
    for commit in target:
        assert commit.audio_ms is not None and commit.audio_ms <= commit.source_read
        assert commit.audio_ms in caption_times
    assert [c.source_read for c in commits] == sorted(c.source_read for c in commits)
    assert target[-1].sentence_end
    # The tentative tail is shown, never committed: the final text does not carry it along.
    assert any(tentative for _, tentative in drafts), "the translation should draft beyond its commits at times"
    for committed, tentative in drafts:
        if tentative and committed:
            assert not committed.endswith(tentative)


def test_words_read_together_are_decided_once(translator) -> None:
    """`push(word, decide=False)` reads without a decision; the next deciding push catches up, and
    the range constraint still forces what it must: with [L, U] = [3, 4] the first target word is
    due once 7 words are read."""
    policy = translator.text.policy_options("de", "en", name="lsg", low_bound=3, top_bound=4)
    words = "Die Polizei sucht nach Zeugen des Unfalls auf der Autobahn".split()
    with translator.text.create_session("de", "en", policy=policy) as session:
        for word in words[:6]:
            assert session.push(word, decide=False) == []
        assert session.source_words == words[:6] and session.tentative == ""
        commits = session.push(words[6])
        assert commits and commits[0].source_read == 7
        assert session.finish()[-1].sentence_end


def test_a_caption_word_committed_in_two_parts_is_read_as_one(translator) -> None:
    with translator.text.create_session("en", "de") as session:
        session.push("the", decide=False)
        session.push("ring", decide=False)
        session.push("leader,", join=True, decide=False)
        assert session.source_words == ["the", "ringleader,"]
        assert session.finish()[-1].sentence_end
