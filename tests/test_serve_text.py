"""`lsg-edge serve` translating text (`"input": "text"`): an app that has its own text, typed or
recognised, sends it in pieces of any size and gets back what `lsg-edge translate` commits for the
same words, drafts and progress included; bad text messages get one error and a clean close, and a
stream's context pair goes back to the translation engine when it ends or its client vanishes."""

from __future__ import annotations

import io
import json
import socket

import pytest

from lsg_edge.client import ServerError, stream_text, transcript
from lsg_edge.serve.app import ServeOptions, create_app
from lsg_edge.serve.protocol import CLOSE_NORMAL, CLOSE_PROTOCOL, CLOSE_TOO_BIG, CLOSE_TRY_AGAIN, CLOSE_UNSUPPORTED, \
    MAX_TEXT_CHARS
from lsg_edge.serve.streams import ServeEngines
from lsg_edge.text.source import read_words, split_words
from tests.helpers.serve import assert_released, raw_socket, read_until_closed, refused, running_server, wait_until

_RELEASE_TIMEOUT_S = 60.0  # bound on waiting for a session's running decode to end (not a timing check)
_TEXT = json.dumps({"input": "text", "language": "de", "target": "en"})


@pytest.fixture(scope="module")
def text_server(engine):
    """A server with the default translation model and no speech model: (address, engines)."""
    engines = ServeEngines(None, engine)
    with running_server(create_app(engines, ServeOptions(max_sessions=2, idle_timeout_s=5.0))) as address:
        yield address, engines


@pytest.fixture(scope="module")
def paragraph(wmt_pairs) -> str:
    return "\n".join(de for de, _ in wmt_pairs[:3]) + "\n"


def _in_process(engine, text: str, catch_up: bool) -> str:
    with engine.create_session("de", "en") as session:
        commits = list(session.translate_stream(read_words(io.BytesIO(text.encode())), catch_up=catch_up))
    return transcript([{"type": "commit", **c.to_json(), "separator": c.separator} for c in commits], "source")


def test_text_in_pieces_is_translated_as_translate_does_word_by_word(text_server, engine, paragraph) -> None:
    address, engines = text_server
    # Pieces of 7 characters cut words and sentences anywhere, as keystrokes do.
    pieces = [paragraph[i : i + 7] for i in range(0, len(paragraph), 7)]
    messages = [m.message for m in stream_text(f"ws://{address}/ws", pieces, language="de", target="en",
                                               catch_up=False)]
    expected = _in_process(engine, paragraph, catch_up=False)
    assert expected.count("\n") == 3 and len(expected.split()) > 20
    assert transcript(messages, "target") == expected
    commits = [m for m in messages if m["type"] == "commit"]
    assert {m["stream"] for m in commits} == {"target"}
    assert sum(m["sentence_end"] for m in commits) == 3
    n_words = len(split_words(paragraph))
    progress = [m["words_read"] for m in messages if m["type"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == n_words
    assert messages[-1] == {"type": "done", "words_read": n_words}
    drafts = [m for m in messages if m["type"] == "draft"]
    assert drafts and {m["stream"] for m in drafts} == {"target"}
    assert any(m["text"] for m in drafts) and drafts[-1]["text"] == ""  # the last sentence's tail emptied
    assert_released(engines)


def test_text_sent_at_once_is_caught_up_on_as_translate_catch_up_does(text_server, engine, paragraph) -> None:
    address, engines = text_server
    messages = [m.message for m in stream_text(f"ws://{address}/ws", [paragraph], language="de", target="en")]
    assert transcript(messages, "target") == _in_process(engine, paragraph, catch_up=True)
    # One push for the whole text: one progress message, then the end.
    assert [m["words_read"] for m in messages if m["type"] == "progress"] == [len(split_words(paragraph))]
    assert_released(engines)


def test_a_word_still_being_typed_waits_for_whitespace_or_stop(text_server) -> None:
    address, engines = text_server
    with raw_socket(address) as ws:
        ws.send(_TEXT)
        ready = json.loads(ws.recv(timeout=30))
        assert ready == {"type": "ready", "input": "text", "max_text_chars": MAX_TEXT_CHARS,
                         "settings": {"input": "text", "language": "de", "target": "en", "policy": "lsg",
                                      "catch_up": True}}
        ws.send(json.dumps({"type": "text", "text": "Guten Mor"}))
        assert json.loads(ws.recv(timeout=60)) == {"type": "progress", "words_read": 1}
        ws.send(json.dumps({"type": "stop"}))
        answers, code = read_until_closed(ws)
    assert code == CLOSE_NORMAL
    assert answers[-1] == {"type": "done", "words_read": 2}  # "Mor" was read at the stop
    assert [m["sentence_end"] for m in answers if m["type"] == "commit"][-1]
    assert_released(engines)


@pytest.mark.parametrize("messages, expected, code", [
    (('{"input": "text", "language": "de"}',), "needs a \"target\"", CLOSE_PROTOCOL),
    (('{"input": "video", "target": "en"}',), "setting 'input' must be one of audio, text", CLOSE_PROTOCOL),
    (('{"input": "text", "language": "de", "target": "en", "policy": "alignatt"}',), "it is for audio",
     CLOSE_PROTOCOL),
    (('{"input": "text", "language": "de", "target": "xx"}',), "cannot be served", CLOSE_PROTOCOL),
    ((_TEXT, b"\x00\x00"), "not binary frames", CLOSE_UNSUPPORTED),
    ((_TEXT, '{"type": "text", "text": 5}'), "a text stream takes", CLOSE_UNSUPPORTED),
    ((_TEXT, '{"type": "text", "text": "a", "more": 1}'), "a text stream takes", CLOSE_UNSUPPORTED),
    ((_TEXT, "Hallo"), "not JSON", CLOSE_UNSUPPORTED),
    ((_TEXT, json.dumps({"type": "text", "text": "a" * (MAX_TEXT_CHARS + 1)})), f"at most {MAX_TEXT_CHARS}",
     CLOSE_TOO_BIG),
], ids=["no-target", "unknown-input", "alignatt", "unknown-target", "binary", "text-not-a-string",
        "extra-key", "not-json", "piece-too-big"])
def test_bad_text_input_gets_an_error_and_a_clean_close(text_server, messages, expected, code) -> None:
    address, engines = text_server
    error, close_code = refused(address, *messages)
    assert expected in error
    assert close_code == code
    assert_released(engines)


def test_a_text_client_that_goes_quiet_or_vanishes_gives_its_contexts_back(text_server, paragraph) -> None:
    address, engines = text_server
    error, code = refused(address, _TEXT, json.dumps({"type": "text", "text": "Hallo "}))
    assert "no text for 5 s" in error and code == CLOSE_PROTOCOL
    assert_released(engines)
    with raw_socket(address) as ws:
        ws.send(_TEXT)
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        ws.send(json.dumps({"type": "text", "text": paragraph}))
        wait_until(lambda: engines.contexts_in_use == 2, _RELEASE_TIMEOUT_S, "the stream never opened")
        ws.socket.shutdown(socket.SHUT_RDWR)  # no close handshake: the connection just goes
        ws.socket.close()
    assert_released(engines)


def test_more_text_streams_than_context_pairs_are_refused_as_a_full_server(engine) -> None:
    """The translation engine's pool bounds the text streams, whatever the session cap says."""
    engines = ServeEngines(None, engine)
    free = engine.pool.stats.limit - engine.pool.stats.in_use
    held = [engine.create_session("de", "en") for _ in range(free - 1)]  # leave the server one pair
    try:
        with running_server(create_app(engines, ServeOptions(max_sessions=4))) as address:
            with raw_socket(address) as first:
                first.send(_TEXT)
                assert json.loads(first.recv(timeout=30))["type"] == "ready"
                error, code = refused(address, _TEXT)
                assert "the server is full" in error and code == CLOSE_TRY_AGAIN
    finally:
        for session in held:
            session.close()


def test_a_server_without_translation_refuses_text() -> None:
    with running_server(create_app(ServeEngines(None, None), ServeOptions(max_sessions=1))) as address:
        with pytest.raises(ServerError, match="translation is not available"):
            stream_text(f"ws://{address}/ws", ["Hallo "], language="de", target="en")
