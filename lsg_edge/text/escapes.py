"""Terminal escape sequences removed whole from source text, payload included.

Dropping only the control characters leaves a sequence's payload behind as words: an OSC title
`ESC ] 0 ; title BEL` would become `]0;title`, a CSI colour `ESC [ 31 m` would glue `[31m` to the
next word, and the model would translate both. Sequences follow ECMA-48 as terminals parse them:

- CSI: `ESC [` (or C1 0x9B), parameter and intermediate bytes 0x20–0x3F, one final byte 0x40–0x7E;
- strings — OSC `ESC ]`, DCS `ESC P`, SOS `ESC X`, PM `ESC ^`, APC `ESC _` (or their C1 bytes) — up
  to BEL or ST (`ESC \\` or 0x9C); one never terminated ends at the line break, so a stray
  introducer costs at most the rest of its line;
- other escapes: `ESC`, intermediates 0x20–0x2F, one final byte 0x30–0x7E (`ESC 7`, `ESC ( B`).

`EscapeStripper` keeps its state between calls, so a sequence cut across two reads of a stream is
still removed whole.
"""

from __future__ import annotations

__all__ = ["EscapeStripper", "strip_escapes"]

_ESC = "\x1b"
_BEL = "\x07"
_C1_ST = "\x9c"
_C1_CSI = "\x9b"
_C1_STRINGS = frozenset("\x90\x98\x9d\x9e\x9f")  # DCS, SOS, OSC, PM, APC
_STRING_KINDS = frozenset("]PX^_")  # after ESC: OSC, DCS, SOS, PM, APC
_INTRODUCERS = frozenset({_ESC, _C1_CSI, *_C1_STRINGS})

# Parser states.
_GROUND, _ESCAPE, _ESCAPE_INTERMEDIATE, _CSI, _STRING, _STRING_ESCAPE = range(6)


class EscapeStripper:
    """Removes escape sequences from text fed in pieces (see the module docstring)."""

    def __init__(self) -> None:
        self._state = _GROUND

    def feed(self, text: str, final: bool = False) -> str:
        """`text` without escape sequences. A sequence still open at the end is continued by the
        next call; with `final`, the stream ends and an open sequence is dropped."""
        if self._state == _GROUND and not _INTRODUCERS.intersection(text):
            return text  # the common case: nothing to parse
        out: list[str] = []
        for char in text:
            self._step(char, out)
        if final:
            self._state = _GROUND
        return "".join(out)

    def _step(self, char: str, out: list[str]) -> None:
        state, code = self._state, ord(char)
        if state == _ESCAPE:
            if char == "[":
                self._state = _CSI
            elif char in _STRING_KINDS:
                self._state = _STRING
            elif 0x20 <= code <= 0x2F:
                self._state = _ESCAPE_INTERMEDIATE
            elif 0x30 <= code <= 0x7E or char == _ESC:
                self._state = _ESCAPE if char == _ESC else _GROUND
            else:  # not an escape after all: the character is text (or a control, stripped later)
                self._state = _GROUND
                self._step(char, out)
        elif state == _ESCAPE_INTERMEDIATE:
            if not 0x20 <= code <= 0x2F:
                self._state = _GROUND
                if not 0x30 <= code <= 0x7E:
                    self._step(char, out)
        elif state == _CSI:
            if 0x40 <= code <= 0x7E:
                self._state = _GROUND
            elif not 0x20 <= code <= 0x3F:
                self._state = _GROUND
                self._step(char, out)
        elif state == _STRING:
            if char in (_BEL, _C1_ST):
                self._state = _GROUND
            elif char == _ESC:
                self._state = _STRING_ESCAPE
            elif char == "\n":  # never terminated: it ends with its line
                self._state = _GROUND
                out.append(char)
        elif state == _STRING_ESCAPE:
            # ST ends the string; any other escape ends it too and starts a sequence of its own.
            self._state = _GROUND if char == "\\" else _ESCAPE
            if char != "\\":
                self._step(char, out)
        elif char == _ESC:
            self._state = _ESCAPE
        elif char == _C1_CSI:
            self._state = _CSI
        elif char in _C1_STRINGS:
            self._state = _STRING
        else:
            out.append(char)


def strip_escapes(text: str) -> str:
    """`text` (complete in itself) without escape sequences."""
    return EscapeStripper().feed(text, final=True)
