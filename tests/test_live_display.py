"""The terminal line: committed words written once, the draft dimmed after them and erased by the
next step; what the screen ends with is exactly the committed text."""

from __future__ import annotations

import io
import re

from lsg_edge.display import LiveLineWriter
from lsg_edge.events import Commit, PlainTextWriter

_ESCAPE = re.compile(r"\x1b\[(\d*)([A-Za-z])")


class Screen:
    """Just enough of a terminal: printable text, newline, SGR (ignored, but dim text is tracked),
    cursor back (CSI n D) and clear to end of line (CSI K)."""

    def __init__(self) -> None:
        self.lines: list[list[str]] = [[]]
        self.dim: list[list[bool]] = [[]]
        self.column = 0
        self._dim = False

    def feed(self, data: str) -> None:
        k = 0
        while k < len(data):
            match = _ESCAPE.match(data, k)
            if match:
                number, command = match.groups()
                if command == "m":
                    self._dim = number == "2"
                elif command == "D":
                    self.column = max(0, self.column - int(number or 1))
                elif command == "K":
                    del self.lines[-1][self.column:]
                    del self.dim[-1][self.column:]
                k = match.end()
                continue
            char = data[k]
            if char == "\n":
                self.lines.append([])
                self.dim.append([])
                self.column = 0
            else:
                line, dim = self.lines[-1], self.dim[-1]
                if self.column < len(line):
                    line[self.column], dim[self.column] = char, self._dim
                else:
                    line.append(char)
                    dim.append(self._dim)
                self.column += 1
            k += 1

    def text(self) -> str:
        return "\n".join("".join(line) for line in self.lines)

    def dimmed(self) -> str:
        return "".join(c for line, dim in zip(self.lines, self.dim) for c, d in zip(line, dim) if d)


def _commit(text: str, separator: str = " ", end: bool = False) -> Commit:
    return Commit(text, separator, 0, 0, 0.0, len(text.split()), sentence_end=end)


STEPS = [  # (commit or None, the draft after it)
    (None, "The police"),
    (_commit("The", ""), "police are"),
    (None, "police is looking"),
    (_commit("police"), "are looking for"),
    (_commit("are looking"), "for witnesses"),
    (_commit("for witnesses.", end=True), ""),
    (_commit("Second", ""), "sentence here"),
]


def test_screen_shows_the_draft_dimmed_and_ends_with_the_committed_text_only() -> None:
    out = io.StringIO()
    writer = LiveLineWriter(out, columns=80)
    screen = Screen()
    for commit, draft in STEPS:
        if commit is not None:
            writer.write(commit)
        writer.show_tentative(draft)
        screen.feed(out.getvalue())
        out.seek(0)
        out.truncate()
        if draft:
            assert screen.dimmed().strip() == draft
            assert screen.text().endswith(draft)
    writer.close()
    screen.feed(out.getvalue())

    plain = io.StringIO()
    plain_writer = PlainTextWriter(plain)
    for commit, _ in STEPS:
        if commit is not None:
            plain_writer.write(commit)
    plain_writer.close()
    assert screen.text() == plain.getvalue()
    assert screen.dimmed() == ""


def test_a_draft_is_cut_to_the_columns_left_on_the_line() -> None:
    out = io.StringIO()
    writer = LiveLineWriter(out, columns=20)
    writer.write(_commit("0123456789", ""))
    writer.show_tentative("a long draft that would wrap")
    screen = Screen()
    screen.feed(out.getvalue())
    assert len(screen.lines) == 1 and len(screen.lines[0]) < 20
    assert screen.dimmed().endswith("…")
