"""A real `lsg-edge serve` application on a free loopback port, in a thread of the test process
(so that tests can read the engines' pool counts), and a raw WebSocket client for bad input."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["running_server", "raw_socket", "read_until_closed", "refused", "assert_released", "wait_until",
           "read_utterance", "librispeech_rows"]

_START_TIMEOUT_S = 30.0
_RELEASE_TIMEOUT_S = 60.0  # bound on waiting for a session's running decode to end (not a timing check)


@contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 and a free port; yields "127.0.0.1:PORT"."""
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, _START_TIMEOUT_S, "the test server did not start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10.0)
        listener.close()


def wait_until(condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
    """Poll `condition` until true; AssertionError(`failure`) after `timeout_s` (a bound, not a timing check)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.05)


@contextmanager
def raw_socket(address: str) -> Iterator[Any]:
    """A bare websockets connection to /ws, for messages the Python client never sends."""
    from websockets.sync.client import connect

    with connect(f"ws://{address}/ws", open_timeout=10, max_size=None) as ws:
        yield ws


def read_until_closed(ws: Any, timeout_s: float = 60.0) -> tuple[list[dict], int | None]:
    """Every message until the server closes the socket, and the close code it sent."""
    from websockets.exceptions import ConnectionClosed

    messages = []
    try:
        while True:
            messages.append(json.loads(ws.recv(timeout=timeout_s)))
    except ConnectionClosed:
        pass
    return messages, ws.close_code




def refused(address: str, *messages: str | bytes) -> tuple[str, int | None]:
    """Send `messages` after connecting; the server's one error text and its close code."""
    with raw_socket(address) as ws:
        for message in messages:
            ws.send(message)
        answers, code = read_until_closed(ws)
    errors = [m["message"] for m in answers if m["type"] == "error"]
    assert len(errors) == 1, answers
    return errors[0], code


def assert_released(engines: Any) -> None:
    """Every stream of `engines` (a `ServeEngines`) closed, and every decoder context given back."""
    wait_until(lambda: engines.sessions_open == 0 and engines.contexts_in_use == 0, _RELEASE_TIMEOUT_S,
               f"contexts not given back: {engines.sessions_open} streams, {engines.contexts_in_use} contexts")

def librispeech_rows(data_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(data_dir / "librispeech-dev" / "transcripts.tsv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_utterance(data_dir: Path, k: int) -> tuple[np.ndarray, str, Path]:
    """The k-th librispeech-dev utterance: float32 16 kHz samples, transcript, path."""
    from lsg_edge.speech.audio_io import read_audio

    row = librispeech_rows(data_dir)[k]
    path = data_dir / "librispeech-dev" / row["audio_path"]
    return read_audio(path), row["transcript"], path
