"""The serve protocol's pure parts: settings, PCM frames, and how a client joins commits."""

from __future__ import annotations

import numpy as np
import pytest

from lsg_edge.client import transcript
from lsg_edge.errors import OptionsError
from lsg_edge.events import Commit
from lsg_edge.serve.app import ServeOptions
from lsg_edge.serve.protocol import (
    CLOSE_TOO_BIG, CLOSE_UNSUPPORTED, MAX_FRAME_BYTES, MAX_TEXT_CHARS, ProtocolError, StreamSettings, commit_message,
    decode_pcm, parse_control, parse_settings, parse_text_message,
)


def test_settings_defaults_and_the_optional_start_type() -> None:
    assert parse_settings("{}") == StreamSettings("en", None, "lsg")
    assert parse_settings('{"type": "start", "language": "fr", "target": "de", "policy": "wait-k"}') == \
        StreamSettings("fr", "de", "wait-k")
    assert parse_settings("{}").catch_up and not parse_settings('{"catch_up": false}').catch_up


@pytest.mark.parametrize("text, expected", [
    ("", "not JSON"),
    ('"en"', "must be a JSON object"),
    ('{"type": "begin"}', "unknown setting(s) 'type'"),
    ('{"language": "english"}', "must be a language code"),
    ('{"target": ""}', "must be a language code"),
    ('{"policy": null}', "setting 'policy' must be one of"),
    ('{"catch_up": "yes"}', "setting 'catch_up' must be true or false"),
    ('{"catch_up": 1}', "setting 'catch_up' must be true or false"),
    ("{" + " " * 5000 + "}", "at most 4096"),
])
def test_bad_settings_name_the_problem(text: str, expected: str) -> None:
    with pytest.raises(ProtocolError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_settings(text)


def test_pcm_frames_decode_to_float32_in_range() -> None:
    samples = np.array([-32768, -1, 0, 1, 32767], "<i2")
    decoded = decode_pcm(samples.tobytes())
    assert decoded.dtype == np.float32
    assert decoded.tolist() == [-1.0, -1 / 32768, 0.0, 1 / 32768, 32767 / 32768]


def test_frames_of_the_wrong_size_are_refused_with_their_close_code() -> None:
    for frame, code in ((b"", CLOSE_UNSUPPORTED), (b"\x00" * 3, CLOSE_UNSUPPORTED),
                        (b"\x00" * (MAX_FRAME_BYTES + 2), CLOSE_TOO_BIG)):
        with pytest.raises(ProtocolError) as raised:
            decode_pcm(frame)
        assert raised.value.close_code == code
    assert decode_pcm(b"\x00" * MAX_FRAME_BYTES).size == MAX_FRAME_BYTES // 2


def test_only_stop_is_a_control_message() -> None:
    assert parse_control('{"type": "stop"}') == "stop"
    for text in ('{"type": "reset"}', "[]", "stop"):
        with pytest.raises(ProtocolError):
            parse_control(text)


def test_commit_messages_carry_the_cli_json_fields_and_the_separator() -> None:
    commit = Commit("world.", " ", 2, 1500, 321.04, 1, sentence_end=True)
    assert commit_message(commit) == {"type": "commit", "stream": "source", **commit.to_json(), "separator": " "}


def test_transcript_joins_commits_as_the_cli_prints_them() -> None:
    messages = [
        {"type": "commit", "text": "Hello", "separator": "", "sentence_end": False},
        {"type": "draft", "text": "there"},
        {"type": "commit", "text": "there.", "separator": " ", "sentence_end": True},
        {"type": "commit", "stream": "target", "text": "Hallo.", "separator": "", "sentence_end": True},
        {"type": "commit", "text": "Bye.", "separator": " ", "sentence_end": True},
    ]
    assert transcript(messages) == "Hello there.\nBye.\n"
    assert transcript(messages, stream="target") == "Hallo.\n"


def test_serve_options_refuse_a_zero_cap() -> None:
    with pytest.raises(OptionsError, match="--max-sessions must be at least 1"):
        ServeOptions(max_sessions=0)


def test_text_messages_give_their_text_or_the_stop() -> None:
    import json

    assert parse_text_message('{"type": "text", "text": "Die Polizei su"}') == "Die Polizei su"
    assert parse_text_message('{"type": "stop"}') is None
    # The longest piece, every character escaped on the wire, is still taken.
    escaped = json.dumps({"type": "text", "text": "\x1b" * MAX_TEXT_CHARS})
    assert parse_text_message(escaped) == "\x1b" * MAX_TEXT_CHARS
    for text, code in (('{"type": "text"}', CLOSE_UNSUPPORTED), ('{"type": "text", "text": null}', CLOSE_UNSUPPORTED),
                       ('{"type": "audio", "text": "a"}', CLOSE_UNSUPPORTED), ('"text"', CLOSE_UNSUPPORTED),
                       (json.dumps({"type": "text", "text": "a" * (MAX_TEXT_CHARS + 1)}), CLOSE_TOO_BIG),
                       ("x" * (7 * MAX_TEXT_CHARS), CLOSE_TOO_BIG)):
        with pytest.raises(ProtocolError) as raised:
            parse_text_message(text)
        assert raised.value.close_code == code, text[:40]


def test_text_settings_need_a_target_and_a_text_policy() -> None:
    assert parse_settings('{"input": "text", "language": "de", "target": "en"}').input == "text"
    with pytest.raises(ProtocolError, match="needs a \"target\""):
        parse_settings('{"input": "text", "language": "de"}')
    with pytest.raises(ProtocolError, match="for audio, not text"):
        parse_settings('{"input": "text", "target": "en", "policy": "alignatt"}')
    assert parse_settings('{"policy": "alignatt"}').input == "audio"
