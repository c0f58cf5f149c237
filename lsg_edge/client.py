"""A Python client of `lsg-edge serve`: stream a WAV file, the microphone or text, get the commits back.

    from lsg_edge.client import CaptionClient

    with CaptionClient("ws://127.0.0.1:8765/ws", language="en") as client:
        for block in blocks:                   # float32 mono 16 kHz, any block size
            client.send(block)
        for event in client.stop():            # everything the server sent, in order
            if event.message["type"] == "commit":
                print(event.message["separator"] + event.message["text"], end="")

    with CaptionClient(url, input="text", language="de", target="en") as client:
        client.send_text("Die Polizei sucht ")  # pieces of any size; a word is read once whitespace follows
        messages = client.stop()

Messages are received on a thread as they come (`on_message` sees each at once); `stop()` ends the
audio, waits for the server's final message and returns them all with their arrival times. Needs
the `websockets` package (`pip install 'lsg-edge[serve]'`).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from .errors import LsgEdgeError
from .serve.protocol import BYTES_PER_SAMPLE, MAX_TEXT_CHARS, SAMPLE_RATE_HZ

__all__ = ["CaptionClient", "ReceivedMessage", "ServerError", "stream_audio", "stream_text", "transcript"]

_SEND_BLOCK_MS = 200  # audio per binary frame: 6.4 KB, well under the server's frame limit
_OPEN_TIMEOUT_S = 10.0


class ServerError(LsgEdgeError):
    """The server refused the stream or closed it with an error message."""


@dataclass(frozen=True)
class ReceivedMessage:
    """One server message and when it arrived."""

    at_s: float  # time.monotonic() on arrival, s
    message: dict[str, Any]


class CaptionClient:
    """One stream to a server: settings on connect, `send` audio (or `send_text` with
    `input="text"`), `stop` for the rest."""

    def __init__(self, url: str, language: str = "en", target: str | None = None, policy: str = "lsg",
                 catch_up: bool = True, on_message: Callable[[ReceivedMessage], None] | None = None,
                 open_timeout_s: float = _OPEN_TIMEOUT_S, input: str = "audio") -> None:
        try:
            from websockets.exceptions import ConnectionClosed, WebSocketException
            from websockets.sync.client import connect
        except ImportError as e:
            raise LsgEdgeError("lsg_edge.client needs websockets: pip install 'lsg-edge[serve]'") from e
        self.url = url
        self.messages: list[ReceivedMessage] = []
        self._on_message = on_message
        self._stack = ExitStack()  # the connection, closed by `close()`
        try:
            self._ws = self._stack.enter_context(connect(url, open_timeout=open_timeout_s, max_size=None))
        except (OSError, WebSocketException, TimeoutError) as e:
            raise LsgEdgeError(f"cannot connect to {url}: {e}") from e
        try:
            try:
                self._ws.send(json.dumps({"input": input, "language": language, "target": target,
                                          "policy": policy, "catch_up": catch_up}))
            except ConnectionClosed:
                pass  # a full server refuses before reading the settings: its message says so
            self.ready = self._first_message(open_timeout_s)
        except BaseException:
            self._stack.close()
            raise
        self.sent_samples = 0
        self._done = threading.Event()
        self._error: str | None = None
        self._receiver = threading.Thread(target=self._receive, name="lsg-edge-client", daemon=True)
        self._receiver.start()

    def _first_message(self, timeout_s: float) -> dict[str, Any]:
        try:
            message = json.loads(self._ws.recv(timeout=timeout_s))
        except TimeoutError as e:
            raise ServerError(f"{self.url}: no answer to the settings within {timeout_s:g} s") from e
        except Exception as e:  # noqa: BLE001 - websockets raises ConnectionClosed* variants
            raise ServerError(f"{self.url}: the server closed the connection ({e})") from e
        if message.get("type") == "error":
            raise ServerError(message.get("message", "refused"))
        return message

    def send(self, samples: np.ndarray) -> None:
        """Send float32 mono 16 kHz samples (clipped to [-1, 1]) as 16-bit PCM frames."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        pcm = (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
        step = SAMPLE_RATE_HZ * _SEND_BLOCK_MS // 1000 * BYTES_PER_SAMPLE
        self._send_all(pcm[offset : offset + step] for offset in range(0, len(pcm), step))
        self.sent_samples += samples.size

    def send_text(self, text: str) -> None:
        """Send a piece of text to translate (a text stream): any size, cut into messages the
        server takes. A word is read once whitespace follows it; a line break ends a sentence."""
        self._send_all(json.dumps({"type": "text", "text": text[offset : offset + MAX_TEXT_CHARS]}, ensure_ascii=False)
                       for offset in range(0, len(text), MAX_TEXT_CHARS))

    def _send_all(self, messages: Iterable[bytes | str]) -> None:
        try:
            for message in messages:
                self._ws.send(message)
        except Exception as e:  # noqa: BLE001 - the server closed the stream; say why if it told us
            self._done.wait(2.0)
            raise ServerError(self._error or f"{self.url}: the connection closed while sending ({e})") from e

    def stop(self, timeout_s: float | None = None) -> list[ReceivedMessage]:
        """End the input; wait for the server's final message; every message received."""
        try:
            self._ws.send(json.dumps({"type": "stop"}))
        except Exception:  # noqa: BLE001 - already closed: the receiver has the reason
            pass
        if not self._done.wait(timeout_s):
            raise ServerError(f"{self.url}: no final message within {timeout_s:g} s of stopping")
        if self._error is not None:
            raise ServerError(self._error)
        return list(self.messages)

    def close(self) -> None:
        self._stack.close()
        self._receiver.join(timeout=5.0)

    def __enter__(self) -> "CaptionClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self) -> None:
        try:
            for text in self._ws:
                received = ReceivedMessage(time.monotonic(), json.loads(text))
                self.messages.append(received)
                if self._on_message is not None:
                    self._on_message(received)
                kind = received.message.get("type")
                if kind == "error":
                    self._error = received.message.get("message", "error")
                if kind in ("done", "error"):
                    break
            else:
                self._error = self._error or f"{self.url}: the connection closed before the final message"
        except Exception as e:  # noqa: BLE001 - a dropped connection ends the stream with its reason
            self._error = f"{self.url}: connection lost ({e})"
        finally:
            self._done.set()


def stream_audio(url: str, blocks: Iterable[np.ndarray], **settings: Any) -> list[ReceivedMessage]:
    """Stream `blocks` (float32 mono 16 kHz) to the server and return every message it sent
    (`settings`: those of `CaptionClient`)."""
    with CaptionClient(url, **settings) as client:
        for block in blocks:
            client.send(block)
        return client.stop()


def stream_text(url: str, pieces: Iterable[str], **settings: Any) -> list[ReceivedMessage]:
    """Send `pieces` of text to translate and return every message the server sent (`settings`:
    those of `CaptionClient`, with `target`; `input` is "text")."""
    with CaptionClient(url, input="text", **settings) as client:
        for piece in pieces:
            client.send_text(piece)
        return client.stop()


def transcript(messages: Iterable[ReceivedMessage | dict], stream: str = "source") -> str:
    """The committed text of `stream`, as `lsg-edge asr` prints it (a line per sentence)."""
    text = ""
    for item in messages:
        message = item.message if isinstance(item, ReceivedMessage) else item
        if message.get("type") != "commit" or message.get("stream", "source") != stream:
            continue
        at_line_start = not text or text.endswith("\n")
        text += ("" if at_line_start else message.get("separator", " ")) + message["text"]
        if message.get("sentence_end"):
            text += "\n"
    return text
