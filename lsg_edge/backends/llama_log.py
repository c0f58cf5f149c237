"""Where llama.cpp's own log goes: nowhere, except while a caller collects its error lines.

llama.cpp writes loading details and warnings to stderr through one process-wide callback, and
stderr is ours, for one-line diagnostics. Some llama.cpp calls (the quantizer) report *why* they
failed only through that log, so a caller may collect the error lines for the length of a call.
The C side keeps only a function pointer: the ctypes callbacks are kept alive here.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
from typing import Iterator

__all__ = ["silence_llama_log", "collected_llama_errors"]

_GGML_LOG_LEVEL_ERROR = 4
_DISCARD: list = []  # the one discarding callback, made on first use


def silence_llama_log(llama_cpp) -> None:
    """Discard llama.cpp's log from now on (`llama_cpp` is the imported llama-cpp-python module)."""
    if not _DISCARD:

        @llama_cpp.llama_log_callback
        def discard(level, text, user_data):  # noqa: ARG001 - signature fixed by ggml
            return None

        _DISCARD.append(discard)
    llama_cpp.llama_log_set(_DISCARD[0], ctypes.c_void_p(0))


@contextmanager
def collected_llama_errors(llama_cpp) -> Iterator[list[str]]:
    """Within the block, llama.cpp's error-level lines are appended to the yielded list; after it,
    the log is discarded again."""
    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level, text, user_data):  # noqa: ARG001 - signature fixed by ggml
        if level == _GGML_LOG_LEVEL_ERROR and text:
            line = text.decode("utf-8", "replace").strip()
            if line:
                lines.append(line)

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        silence_llama_log(llama_cpp)  # `collect` stays alive until here, the last use of its pointer
