"""The one commit builder behind text and speech sessions: how written tokens become `Commit`s."""

from __future__ import annotations

from lsg_edge.commits import CommitBuilder, WrittenTokens

# Token → bytes, as a vocabulary's `piece` gives them: "ü" is two bytes, split over tokens 3 and 4.
PIECES = {1: b" Das", 2: b" Haus", 3: b" gr\xc3", 4: b"\xbcn", 5: b" \x1b[2J", 6: b" ", 7: b"ist", 8: b".", 9: b"\n"}


def _builder(flowing: bool = False) -> CommitBuilder:
    return CommitBuilder(PIECES.__getitem__, words_flow_across_sentences=flowing)


def _write(builder: CommitBuilder, tokens: list[int], end: bool = False, cause: str = "kl"):
    return builder.build(WrittenTokens(tokens, cause), source_read=3, end=end)


def test_a_character_split_across_two_writes_comes_out_whole() -> None:
    builder = _builder()
    first = _write(builder, [1, 3])
    second = _write(builder, [4, 2], end=True)
    assert (first.text, second.separator + second.text) == ("Das gr", "ün Haus")
    assert "\ufffd" not in first.text + second.text


def test_separators_words_and_causes() -> None:
    builder = _builder()
    first, second = _write(builder, [1], cause="confidence"), _write(builder, [2, 7], cause="forced")
    assert (first.separator, first.text, first.n_words, first.cause) == ("", "Das", 1, "confidence")
    # "ist" has no leading space: it continues " Haus" within the same write.
    assert (second.separator, second.text, second.n_words, second.cause) == (" ", "Hausist", 1, "forced")
    assert first.sentence_index == second.sentence_index == 0 and second.source_read == 3


def test_control_characters_never_leave() -> None:
    commit = _write(_builder(), [1, 5, 2])
    assert commit.text == "Das [2J Haus" and "\x1b" not in commit.text


def test_a_write_with_nothing_visible_hands_its_space_on() -> None:
    builder = _builder()
    _write(builder, [1])
    assert _write(builder, [6]) is None
    commit = _write(builder, [7])
    assert (commit.separator, commit.text) == (" ", "ist")  # not glued to "Das"


def test_a_text_sentence_always_ends_with_a_commit_and_starts_a_line() -> None:
    builder = _builder()
    end = builder.build(None, source_read=5, end=True)
    assert end is not None and end.sentence_end and end.text == "" and end.cause is None
    builder.start_sentence(1)
    _write(builder, [1, 8])
    commit = _write(builder, [2, 9], end=True)
    assert commit.text == "Haus" and commit.sentence_end  # the line break is the writer's job
    builder.start_sentence(2)
    assert _write(builder, [2]).separator == ""  # a new sentence is a new line


def test_captions_flow_across_windows_and_silent_windows_leave_no_trace() -> None:
    builder = _builder(flowing=True)
    assert builder.build(None, source_read=0, end=True) is None  # a window that wrote nothing
    first = _write(builder, [1])
    assert first.separator == ""  # the stream's first words
    end = builder.build(None, source_read=0, end=True)
    assert end is not None and end.sentence_end and end.text == ""  # the window had words: it ends
    builder.start_sentence(1)
    # A new window starts a new word even where the decoder gave no space ("ist" after "Das").
    assert _write(builder, [7]).separator == " "
    builder.reset()
    assert _write(builder, [7]).separator == ""


def test_json_events_say_why_words_were_written() -> None:
    builder = _builder()
    assert _write(builder, [1], cause="forced").to_json()["cause"] == "forced"
    assert "cause" not in builder.build(None, source_read=1, end=True).to_json()  # no words, no cause
