"""`lsg-edge serve` over real sockets, without a browser: the captions a WebSocket client gets are
those of an in-process session, four clients at once get what one gets, every kind of bad input is
answered with an error message and a clean close while the server keeps serving the others, and a
closed connection gives its decoder contexts back."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from lsg_edge.client import CaptionClient, ServerError, stream_audio, transcript
from lsg_edge.serve.app import ServeOptions, create_app
from lsg_edge.serve.protocol import (
    CLOSE_NORMAL, CLOSE_PROTOCOL, CLOSE_TOO_BIG, CLOSE_TRY_AGAIN, CLOSE_UNSUPPORTED, MAX_FRAME_BYTES,
    SAMPLE_RATE_HZ,
)
from lsg_edge.serve.streams import ServeEngines
from lsg_edge.speech.engine import SpeechEngine
from lsg_edge.speech.session import AsrSessionOptions
from tests.helpers.markers import SPEECH, loads
from tests.helpers.serve import (
    assert_released, raw_socket, read_until_closed, read_utterance, refused, running_server, wait_until,
)

_SETTINGS = json.dumps({"language": "en", "target": None, "policy": "lsg"})
_RELEASE_TIMEOUT_S = 60.0  # bound on waiting for a session's running decode to end (not a timing check)
_BLOCK = SAMPLE_RATE_HZ // 5  # 200 ms, as the Python client sends


@pytest.fixture(scope="module")
@loads(SPEECH)
def speech_engine() -> SpeechEngine:
    return SpeechEngine.load("tiny.en")


@pytest.fixture(scope="module")
def served(speech_engine: SpeechEngine):
    """A server with room for four streams: (address, engines)."""
    engines = ServeEngines(speech_engine)
    with running_server(create_app(engines, ServeOptions(max_sessions=4))) as address:
        yield address, engines


@pytest.fixture(scope="module")
def impatient(speech_engine: SpeechEngine):
    """A server with short timeouts and room for one stream: (address, engines)."""
    engines = ServeEngines(speech_engine)
    options = ServeOptions(max_sessions=1, settings_timeout_s=1.0, idle_timeout_s=1.0)
    with running_server(create_app(engines, options)) as address:
        yield address, engines


def _blocks(audio: np.ndarray):
    return [audio[i : i + _BLOCK] for i in range(0, audio.size, _BLOCK)]


def _in_process(engine: SpeechEngine, audio: np.ndarray) -> str:
    """What `lsg-edge asr` commits for `audio`, in the same text layout as `client.transcript`."""
    with engine.create_session(AsrSessionOptions(language="en")) as session:
        commits = [c for block in _blocks(audio) for c in session.push(block)] + session.finish()
    messages = [{"type": "commit", "text": c.text, "separator": c.separator, "sentence_end": c.sentence_end}
                for c in commits]
    return transcript(messages)


def _quantized(audio: np.ndarray) -> np.ndarray:
    """`audio` as the server receives it: 16-bit PCM."""
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype(np.int16).astype(np.float32) / 32768.0


def test_socket_captions_equal_an_in_process_session(served, speech_engine, data_dir: Path) -> None:
    address, engines = served
    audio, _, _ = read_utterance(data_dir, 0)
    # Without catch_up every segment is decided on, however fast the audio came: as in-process.
    messages = stream_audio(f"ws://{address}/ws", _blocks(audio), language="en", catch_up=False)
    kinds = [m.message["type"] for m in messages]
    assert kinds[-1] == "done" and "commit" in kinds and "progress" in kinds
    assert messages[-1].message["heard_ms"] == 1000 * audio.size // SAMPLE_RATE_HZ
    got = transcript(messages)
    assert got.strip(), "no captions came back"
    assert got == _in_process(speech_engine, _quantized(audio))
    assert_released(engines)


def test_a_stream_that_falls_behind_catches_up(served, data_dir: Path) -> None:
    # Sent all at once, the audio piles up while the server decodes; with catch_up (the default)
    # each push takes the whole pile and is decided on once, so far fewer decisions come than the
    # utterance's 14 segments, and the captions are still right.
    address, engines = served
    audio, _, _ = read_utterance(data_dir, 0)  # "to say unto virgilius not a drachm of blood remains …"
    messages = stream_audio(f"ws://{address}/ws", [audio], language="en")
    assert messages[-1].message["type"] == "done"
    assert messages[-1].message["heard_ms"] == 1000 * audio.size // SAMPLE_RATE_HZ
    text = transcript(messages).lower()
    assert "blood" in text and "flame" in text
    decided_at = {m.message["source_read"] for m in messages if m.message["type"] == "commit"
                  and not m.message["sentence_end"]}
    assert len(decided_at) < audio.size // (SAMPLE_RATE_HZ * 640 // 1000)
    assert_released(engines)


def test_four_clients_at_once_get_what_one_gets(served, speech_engine, data_dir: Path) -> None:
    address, engines = served
    utterances = [_quantized(read_utterance(data_dir, k)[0]) for k in range(4)]
    alone = [_in_process(speech_engine, audio) for audio in utterances]
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    peak = {"contexts": 0}

    def run(k: int) -> None:
        try:
            results[k] = transcript(stream_audio(f"ws://{address}/ws", _blocks(utterances[k]), language="en",
                                                 catch_up=False))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak["contexts"] = max(peak["contexts"], engines.contexts_in_use)
        threads[0].join(timeout=0.01)
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert [results[k] for k in range(4)] == alone
    assert peak["contexts"] > 2, "the four streams never overlapped"  # two contexts per LSG stream
    assert_released(engines)


def test_a_stream_holds_two_contexts_and_gives_them_back_on_close(served, data_dir: Path) -> None:
    address, engines = served
    audio, _, _ = read_utterance(data_dir, 1)
    with CaptionClient(f"ws://{address}/ws", language="en") as client:
        client.send(audio[:SAMPLE_RATE_HZ])
        assert engines.sessions_open == 1 and engines.contexts_in_use == 2  # LSG: full and wait-1 contexts
        client.stop()
    assert_released(engines)


_PCM = np.zeros(1600, "<i2").tobytes()


@pytest.mark.parametrize("messages, expected, code", [
    (("{language: en}",), "not JSON", CLOSE_UNSUPPORTED),
    (("[1, 2]",), "must be a JSON object", CLOSE_PROTOCOL),
    (('{"language": "en", "speed": 2}',), "unknown setting(s) 'speed'", CLOSE_PROTOCOL),
    (('{"policy": "fastest"}',), "setting 'policy' must be one of", CLOSE_PROTOCOL),
    (('{"language": 7}',), "setting 'language' must be a language code", CLOSE_PROTOCOL),
    (('{"language": "xx"}',), "cannot be served", CLOSE_PROTOCOL),
    (('{"language": "en", "target": "de"}',), "translation is not available", CLOSE_PROTOCOL),
    ((_PCM,), "the first message must be the settings", CLOSE_UNSUPPORTED),
    ((_SETTINGS, _PCM + b"\x00"), "an even number of bytes", CLOSE_UNSUPPORTED),
    ((_SETTINGS, b""), "an empty audio frame", CLOSE_UNSUPPORTED),
    ((_SETTINGS, bytes(MAX_FRAME_BYTES + 2)), f"at most {MAX_FRAME_BYTES}", CLOSE_TOO_BIG),
    ((_SETTINGS, _PCM, '{"type": "pause"}'), "text messages may only be", CLOSE_UNSUPPORTED),
    ((_SETTINGS, _PCM, "stop"), "not JSON", CLOSE_UNSUPPORTED),
], ids=["malformed-json", "not-an-object", "unknown-setting", "bad-policy", "bad-language-type",
        "unknown-language", "no-translation", "binary-before-settings", "odd-frame", "empty-frame",
        "frame-too-big", "unknown-control", "text-for-audio"])
def test_bad_input_gets_an_error_and_a_clean_close(served, messages, expected, code) -> None:
    address, engines = served
    error, close_code = refused(address, *messages)
    assert expected in error
    assert close_code == code
    assert_released(engines)


def test_a_client_that_never_sends_is_closed(impatient) -> None:
    address, engines = impatient
    error, code = refused(address)
    assert "no settings within 1 s" in error and code == CLOSE_PROTOCOL
    error, code = refused(address, _SETTINGS, _PCM)
    assert "no audio for 1 s" in error and code == CLOSE_PROTOCOL
    assert_released(engines)


def test_a_full_server_refuses_with_a_message_and_serves_again_when_free(impatient, data_dir: Path) -> None:
    address, engines = impatient
    audio, _, _ = read_utterance(data_dir, 1)
    with CaptionClient(f"ws://{address}/ws") as first:
        first.send(audio[:_BLOCK])
        with pytest.raises(ServerError, match="the server is full: 1 streams at once"):
            CaptionClient(f"ws://{address}/ws")
        with raw_socket(address) as ws:
            answers, code = read_until_closed(ws)
        assert code == CLOSE_TRY_AGAIN and answers[0]["type"] == "error"
        first.send(audio[_BLOCK:])
        assert transcript(first.stop()).strip()
    assert_released(engines)
    assert transcript(stream_audio(f"ws://{address}/ws", _blocks(audio))).strip()


def test_a_client_vanishing_mid_stream_gives_its_contexts_back(served, data_dir: Path) -> None:
    address, engines = served
    audio, _, _ = read_utterance(data_dir, 0)
    host, port = address.split(":")
    with raw_socket(address) as ws:
        ws.send(_SETTINGS)
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        for block in _blocks(_quantized(audio))[:20]:
            ws.send((block * 32768).astype("<i2").tobytes())
        wait_until(lambda: engines.contexts_in_use == 2, _RELEASE_TIMEOUT_S, "the stream never opened")
        # No close handshake: the TCP connection just goes, as when a laptop lid shuts.
        ws.socket.shutdown(socket.SHUT_RDWR)
        ws.socket.close()
    assert_released(engines)
    # …and the server goes on serving.
    messages = stream_audio(f"ws://{address}/ws", _blocks(read_utterance(data_dir, 1)[0]))
    assert messages[-1].message["type"] == "done"


def test_stop_ends_with_done_and_a_normal_close(served, data_dir: Path) -> None:
    address, _ = served
    with raw_socket(address) as ws:
        ws.send(_SETTINGS)
        ready = json.loads(ws.recv(timeout=30))
        assert ready == {"type": "ready", "input": "audio", "sample_rate_hz": 16000, "format": "s16le",
                         "max_frame_bytes": MAX_FRAME_BYTES,
                         "settings": {"input": "audio", "language": "en", "target": None, "policy": "lsg",
                                      "catch_up": True}}
        ws.send(_PCM)
        ws.send('{"type": "stop"}')
        answers, code = read_until_closed(ws)
    assert answers[-1] == {"type": "done", "heard_ms": 100}
    assert code == CLOSE_NORMAL
