"""SIGTERM handled like Ctrl-C.

`systemd`, `docker stop` and `kill` send SIGTERM, whose default action kills the process on the
spot: no `finally` runs, so temporary files stay behind. Turned into an exception in the main
thread, SIGTERM takes the path Ctrl-C takes — everything committed is already written, cleanups
run — and the process then exits with 143 (128 + 15), as a shell reports a process SIGTERM ended.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["Terminated", "install_sigterm_handler", "terminated", "interrupted_exit_code", "DeferredInterrupts"]

EXIT_SIGINT = 130
EXIT_SIGTERM = 143
_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives; code that handles Ctrl-C handles it too."""


def install_sigterm_handler() -> None:
    """Raise `Terminated` on SIGTERM (only the main thread may install signal handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: object) -> None:  # noqa: ARG001 - signature fixed by `signal`
    _received.append(signum)
    raise Terminated()


def terminated() -> bool:
    """Whether SIGTERM arrived since the handler was installed."""
    return bool(_received)


def interrupted_exit_code() -> int:
    """The exit code after an interruption: 143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_SIGTERM if terminated() else EXIT_SIGINT


class DeferredInterrupts:
    """Within `with`: the first SIGINT or SIGTERM only sets `requested`, so that the step in
    progress completes and its commits are written before the caller stops at a safe point (an
    exception raised inside a session call would lose what that call had committed). A second
    signal raises as usual, for a user who does not want to wait. Main thread only; elsewhere it
    does nothing."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _on_signal(self, signum: int, frame: object) -> None:  # noqa: ARG002 - signature fixed by `signal`
        if signum == signal.SIGTERM and signum not in _received:
            _received.append(signum)
        if self.requested:
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        self.requested = True

    def __enter__(self) -> "DeferredInterrupts":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
