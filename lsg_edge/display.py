"""Committed text on a terminal with the tentative tail shown dimmed after it, redrawn each step.

Committed words are written once, as `events.PlainTextWriter` writes them (they are final). The
draft that follows them is written dimmed, and the cursor moves back to where it starts, so the
next commit simply overwrites it (after clearing to the end of the line). The draft is cut to the
columns left on the current line: a draft that wrapped could not be erased by moving the cursor
back. Only for a terminal; piped output never carries escapes or drafts.
"""

from __future__ import annotations

import shutil
import unicodedata
from typing import TextIO

from .events import Commit, PlainTextWriter

__all__ = ["LiveLineWriter", "display_width"]

_DIM = "\x1b[2m"
_RESET = "\x1b[0m"
_CLEAR_TO_END = "\x1b[K"
_MIN_DRAFT_COLUMNS = 4  # fewer free columns than this: the draft is not shown
_ELLIPSIS = "…"


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide (CJK) characters take two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


class _Column:
    """A text stream that tracks the cursor's column on the current line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.column = 0
        self.line_open = False

    def write(self, text: str) -> None:
        self._out.write(text)
        tail = text.rsplit("\n", 1)
        self.column = display_width(tail[-1]) if len(tail) == 2 else self.column + display_width(text)

    def flush(self) -> None:
        self._out.flush()


class LiveLineWriter:
    """A `PlainTextWriter` that also shows the current draft, dimmed (see module docstring)."""

    def __init__(self, out: TextIO, columns: int | None = None) -> None:
        self._out = out
        self._stream = _Column(out)
        self._plain = PlainTextWriter(self._stream)
        self._columns = columns
        self._shown = False
        self._line_open = False  # committed text is on the current line

    def write(self, commit: Commit) -> None:
        self._erase()
        self._plain.write(commit)
        self._line_open = not commit.sentence_end and (self._line_open or bool(commit.text))

    def show_tentative(self, text: str) -> None:
        """Show `text` dimmed after the committed words ("" removes the draft shown)."""
        self._erase()
        text = " ".join(text.split())
        if not text:
            return
        columns = self._columns or shutil.get_terminal_size().columns
        lead = " " if self._line_open else ""
        free = columns - self._stream.column % columns - display_width(lead) - 1  # the cursor's own cell
        if free < _MIN_DRAFT_COLUMNS:
            return
        if display_width(text) > free:
            while text and display_width(text) + 1 > free:
                text = text[:-1]
            text += _ELLIPSIS
        self._out.write(f"{lead}{_DIM}{text}{_RESET}\x1b[{display_width(lead + text)}D")
        self._out.flush()
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            self._out.write(_CLEAR_TO_END)
            self._out.flush()
            self._shown = False

    def close(self) -> None:
        self._erase()
        self._plain.close()
