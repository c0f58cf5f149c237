"""Subtitle files: cues of at most two 42-character lines, timed from the audio, written as they
complete, and read back by independent parsers (the `srt` and `webvtt-py` packages)."""

from __future__ import annotations

import srt
import webvtt

from lsg_edge.events import Commit
from lsg_edge.subtitles import CueOptions, open_subtitles

WORDS = ("in fact the ringleader john rex gave me his confession and i went to the bishop myself "
         "with it because the assizes are coming on and everyone knows the verdict already").split()


def _commits(sentence_end_at: int = 9) -> list[Commit]:
    """Two or three words per commit, 400 ms of audio apart; a sentence (window) ends at a word."""
    commits, k, index = [], 0, 0
    while k < len(WORDS):
        n = 2 if k % 3 else 3
        chunk = WORDS[k : k + n]
        end = k <= sentence_end_at < k + n or k + n >= len(WORDS)
        commits.append(Commit(" ".join(chunk), " " if k else "", index, 400 * (k + n), 0.0, len(chunk),
                              sentence_end=end, audio_ms=400 * (k + n)))
        index += int(end)
        k += n
    return commits


def _check_cues(cues: list[tuple[float, float, str]]) -> None:
    options = CueOptions()
    assert " ".join(text.replace("\n", " ") for _, _, text in cues).split() == WORDS
    previous_end = 0.0
    for start, end, text in cues:
        lines = text.split("\n")
        assert 1 <= len(lines) <= options.max_lines and all(len(line) <= options.max_line_chars for line in lines)
        assert previous_end <= start < end
        previous_end = end


def test_srt_file_parses_with_the_srt_package(tmp_path) -> None:
    path = tmp_path / "out.srt"
    writer = open_subtitles(path, "srt", "--srt")
    for commit in _commits():
        writer.write(commit)
    writer.close()
    cues = list(srt.parse(path.read_text(encoding="utf-8")))
    assert [c.index for c in cues] == list(range(1, len(cues) + 1))
    _check_cues([(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues])
    # A sentence end closes its cue: some cue ends with the first sentence's last word.
    first_sentence = " ".join(c.text for c in _commits()[: [c.sentence_end for c in _commits()].index(True) + 1])
    ends = set()
    words_so_far = 0
    for cue in cues:
        words_so_far += len(cue.content.split())
        ends.add(words_so_far)
    assert len(first_sentence.split()) in ends


def test_vtt_file_parses_with_webvtt(tmp_path) -> None:
    path = tmp_path / "out.vtt"
    writer = open_subtitles(path, "vtt", "--vtt")
    for commit in _commits():
        writer.write(commit)
    writer.close()
    cues = webvtt.read(str(path))
    _check_cues([(_seconds(c.start), _seconds(c.end), c.text) for c in cues])


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return 3600 * int(hours) + 60 * int(minutes) + float(seconds)


def test_a_killed_run_leaves_every_completed_cue(tmp_path) -> None:
    """Cues are written whole as they complete: the file read mid-stream (as after SIGKILL) is valid
    and holds every cue completed so far."""
    for kind in ("srt", "vtt"):
        path = tmp_path / f"live.{kind}"
        writer = open_subtitles(path, kind, f"--{kind}")
        commits = _commits()
        for commit in commits[: len(commits) // 2]:
            writer.write(commit)
        if kind == "srt":
            partial = list(srt.parse(path.read_text(encoding="utf-8")))
            texts = [c.content for c in partial]
        else:
            texts = [c.text for c in webvtt.read(str(path))]
        assert texts, "the first sentence's cue is complete and must be on disk"
        written = " ".join(texts).split()
        assert written == WORDS[: len(written)]
        writer.close()


def test_unwritable_path_is_an_input_error(tmp_path) -> None:
    import pytest

    from lsg_edge.errors import InputError

    with pytest.raises(InputError, match="--srt .*cannot write"):
        open_subtitles(tmp_path / "no" / "such" / "dir" / "x.srt", "srt", "--srt")
    with pytest.raises(InputError, match="is a folder"):
        open_subtitles(tmp_path, "vtt", "--vtt")


def test_a_word_committed_in_two_parts_is_one_word(tmp_path) -> None:
    path = tmp_path / "joined.srt"
    writer = open_subtitles(path, "srt", "--srt")
    for text, separator in (("In fact, the", ""), ("ring", " "), ("leader, John Rex", ""), (", gave me", "")):
        writer.write(Commit(text, separator, 0, 0, 0.0, len(text.split()), audio_ms=1000))
    writer.close()
    (cue,) = srt.parse(path.read_text(encoding="utf-8"))
    assert cue.content == "In fact, the ringleader, John Rex, gave me"
