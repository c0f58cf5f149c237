"""The WebSocket protocol of `lsg-edge serve`: what a client sends, what the server answers.

Pure data and checks, no network: the server, the Python client and the tests share them.

Audio (captions, and their translation when a target is named):

    client → {"language": "en", "target": null, "policy": "lsg", "catch_up": true}   first message, JSON text
    server → {"type": "ready", "sample_rate_hz": 16000, "format": "s16le", "max_frame_bytes": …}
    client → binary frames: PCM, 16 kHz, mono, signed 16-bit little-endian
    server → {"type": "commit", "stream": "source", "text": …, …}        as `lsg-edge asr --json`
             {"type": "draft", "stream": "source", "text": …, "sentence": …} the tentative tail
             {"type": "progress", "heard_ms": …}                        audio the session has taken
    client → {"type": "stop"}                                            end of audio
    server → a progress message with all the audio, the last commits, {"type": "done", "heard_ms": …},
             and a normal close

Text (`"input": "text"`: an app with its own text, typed or recognised, translated as it comes):

    client → {"input": "text", "language": "de", "target": "en"}        first message
    server → {"type": "ready", "input": "text", "max_text_chars": …, "settings": …}
    client → {"type": "text", "text": "Die Polizei su"}                  any pieces: a word is read once
                                                                         whitespace follows it
    server → {"type": "commit", "stream": "target", …}, {"type": "draft", "stream": "target", …},
             {"type": "progress", "words_read": …}                      source words read so far
    client → {"type": "stop"}                                            end of text: the held word and
    server → the last commits, {"type": "done", "words_read": …}, close  the open sentence are finished

Bad input gets {"type": "error", "message": …} and the socket is closed with one of the close codes
below; a full server answers the same way with `CLOSE_TRY_AGAIN`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LsgEdgeError
from ..events import Commit
from ..policy.options import POLICY_NAMES

__all__ = [
    "ProtocolError", "StreamSettings", "parse_settings", "decode_pcm", "parse_control", "parse_text_message",
    "SAMPLE_RATE_HZ", "PCM_FORMAT", "BYTES_PER_SAMPLE", "MAX_FRAME_BYTES", "MAX_TEXT_CHARS", "INPUTS",
    "CLOSE_NORMAL", "CLOSE_PROTOCOL", "CLOSE_UNSUPPORTED", "CLOSE_TOO_BIG", "CLOSE_TRY_AGAIN", "CLOSE_INTERNAL",
    "ready_message", "commit_message", "progress_message", "done_message", "error_message",
]

SAMPLE_RATE_HZ = 16000
PCM_FORMAT = "s16le"  # signed 16-bit little-endian samples, mono: half of float32's bytes on the wire
BYTES_PER_SAMPLE = 2
# One frame holds at most 2 s of audio: browsers send 100 ms, the Python client 200 ms. A larger frame
# is a client that is not streaming; refusing it bounds what one message can make the server hold.
MAX_FRAME_BYTES = 2 * SAMPLE_RATE_HZ * BYTES_PER_SAMPLE
# One text message holds at most this many characters (a long paragraph); a client with more sends
# it in pieces. It bounds what one message can make the server hold, as the frame limit does.
MAX_TEXT_CHARS = 16384
INPUTS = ("audio", "text")

# WebSocket close codes (RFC 6455, section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL = 1008  # policy violation: a message the protocol does not allow here
CLOSE_UNSUPPORTED = 1003  # data of a type the server cannot take (text where PCM is expected, …)
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013  # the server is at its session cap

_SETTING_KEYS = ("input", "language", "target", "policy", "catch_up")
_MAX_SETTINGS_CHARS = 4096


class ProtocolError(LsgEdgeError):
    """A client broke the protocol; `close_code` is what the socket closes with."""

    def __init__(self, message: str, close_code: int = CLOSE_PROTOCOL) -> None:
        super().__init__(message)
        self.close_code = close_code


@dataclass(frozen=True)
class StreamSettings:
    """What one connection asks for (its first message)."""

    language: str = "en"  # the source's language: spoken (a Whisper code) or, for text, written
    target: str | None = None  # translation target language; None = captions only (audio)
    policy: str = "lsg"  # one of POLICY_NAMES, for both the captions and the translation
    # What piled up while the server was decoding goes in at once and is decided on once, so a
    # stream on a machine slower than real time keeps a bounded lag (`speech.session`,
    # `TranslationSession.translate_stream`). false: every 640 ms segment (every word) is decided
    # on, as `lsg-edge asr` does with a file (`translate` with a pipe), however far behind that falls.
    catch_up: bool = True
    input: str = "audio"  # "audio": PCM frames; "text": {"type": "text"} messages to translate

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ProtocolError(f"setting 'input' must be one of {', '.join(INPUTS)}, got {self.input!r}")
        if self.input == "text" and self.target is None:
            raise ProtocolError("a text stream needs a \"target\" language to translate into")
        if self.input == "text" and self.policy == "alignatt":
            raise ProtocolError("policy 'alignatt' reads Whisper's attention: it is for audio, not text")
        if not isinstance(self.catch_up, bool):
            raise ProtocolError(f"setting 'catch_up' must be true or false, got {self.catch_up!r}")
        for key in ("language", "target"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value.isascii() or not value.isalpha()
                                      or not 2 <= len(value) <= 3):
                raise ProtocolError(f"setting {key!r} must be a language code such as \"en\", got {value!r}")
        if self.policy not in POLICY_NAMES:
            raise ProtocolError(f"setting 'policy' must be one of {', '.join(POLICY_NAMES)}, got {self.policy!r}")

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "language": self.language, "target": self.target, "policy": self.policy,
                "catch_up": self.catch_up}


def parse_settings(text: str) -> StreamSettings:
    """The settings of a connection's first message, or ProtocolError saying what is wrong."""
    if len(text) > _MAX_SETTINGS_CHARS:
        raise ProtocolError(f"the settings message is {len(text)} characters; at most {_MAX_SETTINGS_CHARS}")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"the settings message is not JSON: {e.msg} at character {e.pos}",
                            CLOSE_UNSUPPORTED) from e
    if not isinstance(message, dict):
        raise ProtocolError("the settings message must be a JSON object, e.g. {\"language\": \"en\"}")
    message = {k: v for k, v in message.items() if not (k == "type" and v == "start")}
    unknown = sorted(set(message) - set(_SETTING_KEYS))
    if unknown:
        raise ProtocolError(f"unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(_SETTING_KEYS)}")
    return StreamSettings(**message)


def parse_control(text: str) -> str:
    """The type of a text message sent after the settings of an audio stream; only "stop" is allowed."""
    message = _json_message(text)
    if not isinstance(message, dict) or message.get("type") != "stop":
        raise ProtocolError("after the settings, text messages may only be {\"type\": \"stop\"}; audio goes in "
                            "binary frames", CLOSE_UNSUPPORTED)
    return "stop"


def parse_text_message(text: str) -> str | None:
    """The text of a {"type": "text"} message of a text stream, or None for {"type": "stop"}."""
    if len(text) > 6 * MAX_TEXT_CHARS + 64:  # a piece within the limit, every character escaped (\u001b): refuse unread
        raise ProtocolError(f"a message of {len(text)} characters; text goes in pieces of at most "
                            f"{MAX_TEXT_CHARS}", CLOSE_TOO_BIG)
    message = _json_message(text)
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "stop":
        return None
    if kind != "text" or not isinstance(message.get("text"), str) or set(message) != {"type", "text"}:
        raise ProtocolError("a text stream takes {\"type\": \"text\", \"text\": \"…\"} and {\"type\": \"stop\"} "
                            "messages", CLOSE_UNSUPPORTED)
    if len(message["text"]) > MAX_TEXT_CHARS:
        raise ProtocolError(f"a text piece of {len(message['text'])} characters; at most {MAX_TEXT_CHARS}",
                            CLOSE_TOO_BIG)
    return message["text"]


def _json_message(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"a text message is not JSON: {e.msg} at character {e.pos}", CLOSE_UNSUPPORTED) from e


def decode_pcm(frame: bytes) -> np.ndarray:
    """float32 samples in [-1, 1) of one binary frame, or ProtocolError for a frame of the wrong size."""
    if not frame:
        raise ProtocolError("an empty audio frame", CLOSE_UNSUPPORTED)
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(f"an audio frame of {len(frame)} bytes; at most {MAX_FRAME_BYTES} "
                            f"({MAX_FRAME_BYTES // BYTES_PER_SAMPLE} samples, 2 s)", CLOSE_TOO_BIG)
    if len(frame) % BYTES_PER_SAMPLE:
        raise ProtocolError(f"an audio frame of {len(frame)} bytes: frames are 16-bit samples ({PCM_FORMAT}), "
                            "an even number of bytes", CLOSE_UNSUPPORTED)
    return np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0


def ready_message(settings: StreamSettings) -> dict[str, Any]:
    if settings.input == "text":
        return {"type": "ready", "input": "text", "max_text_chars": MAX_TEXT_CHARS, "settings": settings.to_json()}
    return {"type": "ready", "input": "audio", "sample_rate_hz": SAMPLE_RATE_HZ, "format": PCM_FORMAT,
            "max_frame_bytes": MAX_FRAME_BYTES, "settings": settings.to_json()}


def commit_message(commit: Commit) -> dict[str, Any]:
    """A commit as `lsg-edge asr --json` writes it, tagged with its type, with the whitespace that
    separates it from the sentence's previous commit (clients join commits with it)."""
    return {"type": "commit", **commit.to_json(), "separator": commit.separator}


def progress_message(amount: int, unit: str = "heard_ms") -> dict[str, Any]:
    """How far a stream has been read: "heard_ms" of audio, or "words_read" of text."""
    return {"type": "progress", unit: amount}


def done_message(amount: int, unit: str = "heard_ms") -> dict[str, Any]:
    return {"type": "done", unit: amount}


def error_message(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}
