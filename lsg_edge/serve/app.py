"""The ASGI application of `lsg-edge serve` (starlette): the page, its scripts, and the WebSocket.

One connection is one stream (`streams.ServedStream`). Its work runs on a thread pool sized to the
session cap, so a connection never waits for another's thread; past the cap a new connection is
refused with a message (`CLOSE_TRY_AGAIN`) instead of slowing every stream down.

Per connection two tasks share an `asyncio.Queue`: the receiver reads the socket (and enforces the
timeouts and the frame or message checks), the processor takes whatever is queued, lets the stream
cut it into pushes (`ServedStream.pieces`: one with catch-up, 100 ms or one word each without) and
sends what each push commits. The queue is bounded: a client sending faster than the session
decodes is slowed by TCP, not buffered without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

import numpy as np

from ..errors import OptionsError
from .protocol import (
    CLOSE_INTERNAL, CLOSE_NORMAL, CLOSE_TRY_AGAIN, CLOSE_UNSUPPORTED, MAX_FRAME_BYTES,
    PCM_FORMAT, SAMPLE_RATE_HZ, ProtocolError, StreamSettings, decode_pcm, done_message, error_message,
    parse_control, parse_settings, parse_text_message, progress_message, ready_message,
)
from .streams import ServedStream, ServeEngines

__all__ = ["ServeOptions", "create_app", "default_max_sessions"]

log = logging.getLogger("lsg_edge.serve")

_STOP = object()  # queue markers: the client's stop message, the client gone
_GONE = object()


def default_max_sessions() -> int:
    """One real-time stream per core (each decodes on one thread)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeOptions:
    """Limits of one server."""

    max_sessions: int = 2  # connections streaming at once; more are refused
    settings_timeout_s: float = 10.0  # a connection must send its settings within this, s
    idle_timeout_s: float = 30.0  # a stream that sends nothing for this long is closed, s
    max_queued_frames: int = 64  # frames received but not yet decoded, per connection (backpressure)
    progress_every_ms: int = 250  # audio between two progress messages, ms (text: after every push)

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise OptionsError(f"--max-sessions must be at least 1, got {self.max_sessions}")
        if self.settings_timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise OptionsError(f"--idle-timeout-s must be positive, got {self.idle_timeout_s}")
        if self.max_queued_frames < 1:
            raise OptionsError(f"max_queued_frames must be at least 1, got {self.max_queued_frames}")


def _static_dir() -> str:
    return str(resources.files("lsg_edge.serve") / "static")


def create_app(engines: ServeEngines, options: ServeOptions = ServeOptions()) -> Any:
    """The starlette application serving `engines` within `options`' limits."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles

    executor = ThreadPoolExecutor(max_workers=options.max_sessions, thread_name_prefix="lsg-serve")
    slots = _Slots(options.max_sessions)

    async def page(request: Any) -> Any:
        return FileResponse(os.path.join(_static_dir(), "index.html"))

    async def config(request: Any) -> Any:
        return JSONResponse({"sample_rate_hz": SAMPLE_RATE_HZ, "format": PCM_FORMAT,
                             "max_frame_bytes": MAX_FRAME_BYTES,
                             "translation_available": engines.translation_available,
                             "max_sessions": options.max_sessions})

    async def status(request: Any) -> Any:
        return JSONResponse({"sessions": slots.in_use, "max_sessions": options.max_sessions,
                             "streams_open": engines.sessions_open, "contexts_in_use": engines.contexts_in_use})

    async def websocket(ws: Any) -> None:
        await ws.accept()
        if not slots.take():
            await _refuse(ws, f"the server is full: {options.max_sessions} streams at once (--max-sessions); "
                              "try again later", CLOSE_TRY_AGAIN)
            return
        try:
            await _Connection(ws, engines, options, executor).run()
        finally:
            slots.give_back()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    app = Starlette(routes=[
        Route("/", page),
        Route("/config", config),
        Route("/status", status),
        WebSocketRoute("/ws", websocket),
        Mount("/static", StaticFiles(directory=_static_dir()), name="static"),
    ], lifespan=lifespan)
    app.state.engines = engines
    app.state.slots = slots
    return app


class _Slots:
    """Connections streaming now, at most `capacity` (the event loop is the only user)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0

    def take(self) -> bool:
        if self.in_use >= self.capacity:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        self.in_use -= 1


async def _refuse(ws: Any, message: str, code: int) -> None:
    try:
        await ws.send_text(json.dumps(error_message(message)))
        await ws.close(code)
    except Exception:  # noqa: BLE001 - the client may already be gone; there is nobody left to tell
        pass


class _Connection:
    """One WebSocket from its settings to its close."""

    def __init__(self, ws: Any, engines: ServeEngines, options: ServeOptions, executor: ThreadPoolExecutor) -> None:
        self.ws = ws
        self.engines = engines
        self.options = options
        self.executor = executor
        self.stream: ServedStream | None = None
        self.settings: StreamSettings | None = None
        self._pending: asyncio.Future | None = None  # the session call running on a worker thread
        self._gone = False
        self._abandoned = False  # the receiver saw the client go or break the protocol: stop decoding

    async def run(self) -> None:
        receiver = None
        try:
            settings = self.settings = parse_settings(await self._first_text())
            self.stream = await self._call(self.engines.open_stream, settings)
            log.info("stream opened: %s", settings.to_json())
            await self._send(ready_message(settings))
            queue: asyncio.Queue = asyncio.Queue(self.options.max_queued_frames)
            receiver = asyncio.create_task(self._receive(queue))
            await self._process(queue)
        except ProtocolError as e:
            await self._fail(str(e), e.close_code)
        except _ClientGone:
            pass
        except Exception as e:  # noqa: BLE001 - a bug in one stream must not stop the server
            log.exception("stream failed")
            await self._fail(f"internal error: {type(e).__name__}: {e}", CLOSE_INTERNAL)
        finally:
            if receiver is not None:
                receiver.cancel()
            self._close_stream()

    async def _first_text(self) -> str:
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.options.settings_timeout_s)
        except asyncio.TimeoutError:
            raise ProtocolError(f"no settings within {self.options.settings_timeout_s:g} s of connecting") from None
        if message["type"] == "websocket.disconnect":
            raise _ClientGone()
        if message.get("text") is None:
            raise ProtocolError("the first message must be the settings as JSON text, not a binary frame",
                                CLOSE_UNSUPPORTED)
        return message["text"]

    def _input(self, message: dict) -> Any:
        """One received message as what the stream takes (float32 samples, or a text piece), or _STOP."""
        if self.settings.input == "text":
            if message.get("bytes") is not None:
                raise ProtocolError("a text stream takes {\"type\": \"text\"} messages, not binary frames",
                                    CLOSE_UNSUPPORTED)
            text = parse_text_message(message.get("text") or "")
            return _STOP if text is None else text
        if message.get("bytes") is not None:
            return decode_pcm(message["bytes"])
        parse_control(message.get("text") or "")
        return _STOP

    async def _receive(self, queue: asyncio.Queue) -> None:
        """Socket → queue: the stream's input, then one of _STOP, _GONE or a ProtocolError."""
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), self.options.idle_timeout_s)
                if message["type"] == "websocket.disconnect":
                    self._abandoned = True
                    await queue.put(_GONE)
                    return
                item = self._input(message)
                await queue.put(item)
                if item is _STOP:
                    return
            except asyncio.TimeoutError:
                self._abandoned = True
                await queue.put(ProtocolError(f"no {self.settings.input} for {self.options.idle_timeout_s:g} s"))
                return
            except ProtocolError as e:
                self._abandoned = True
                await queue.put(e)
                return

    async def _process(self, queue: asyncio.Queue) -> None:
        stream = self.stream
        unit = stream.progress_unit
        every = self.options.progress_every_ms if unit == "heard_ms" else 1
        last_progress = 0
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            received = [item for item in items if isinstance(item, (np.ndarray, str))]
            end = next((item for item in items if not isinstance(item, (np.ndarray, str))), None)
            # Each piece's commits are sent before the next is decoded; a client that went away or
            # broke the protocol stops the decoding at the next piece.
            for piece in stream.pieces(received):
                if self._abandoned:
                    break
                for message in await self._call(stream.push, piece):
                    await self._send(message)
                if stream.progress - last_progress >= every:
                    last_progress = stream.progress
                    await self._send(progress_message(stream.progress, unit))
            if end is None and not self._abandoned:
                continue
            end = end if end is not None else await self._end(queue)
            if end == _GONE:
                log.info("stream ended: the client went away")
                return
            if isinstance(end, ProtocolError):
                raise end
            if stream.progress != last_progress:
                # All the audio is in: what follows is what `finish` commits at the end of the stream.
                await self._send(progress_message(stream.progress, unit))
            for message in await self._call(stream.finish):
                await self._send(message)
            await self._send(done_message(stream.progress, unit))
            await self.ws.close(CLOSE_NORMAL)
            log.info("stream done: %s %d", unit, stream.progress)
            return

    @staticmethod
    async def _end(queue: asyncio.Queue) -> Any:
        """The marker the receiver queued after the input (it queues one when it abandons)."""
        while True:
            item = await queue.get()
            if not isinstance(item, (np.ndarray, str)):
                return item

    async def _call(self, function: Callable, *args: Any) -> Any:
        """`function(*args)` on a worker thread; one call at a time per connection."""
        self._pending = asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        try:
            return await asyncio.shield(self._pending)
        finally:
            if self._pending.done():
                self._pending = None

    def _close_stream(self) -> None:
        """Give the session back now, or when its running call ends (never under it)."""
        stream = self.stream
        if stream is None:
            return
        if self._pending is not None and not self._pending.done():
            self._pending.add_done_callback(lambda _: stream.close())
        else:
            stream.close()

    async def _send(self, message: dict) -> None:
        if self._gone:
            raise _ClientGone()
        try:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False))
        except Exception as e:  # noqa: BLE001 - uvicorn raises several types for a closed socket
            self._gone = True
            raise _ClientGone() from e

    async def _fail(self, message: str, code: int) -> None:
        log.info("stream refused: %s", message)
        if not self._gone:
            await _refuse(self.ws, message, code)


class _ClientGone(Exception):
    """The socket closed under a send."""

