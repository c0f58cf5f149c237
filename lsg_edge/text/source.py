"""The source side of text translation: words as they arrive, and where sentences end.

Words are read from a byte stream as soon as they are complete (followed by whitespace), not when
a line ends, so a person typing sees translation while the sentence is still being typed. Bytes
that are not UTF-8 end the stream: the words before them are translated, then `InvalidSourceBytes`
says where they were (a guess at their meaning would have the model translate noise). Terminal
escape sequences are dropped whole (`escapes`), and any other control character with them. Scripts written
without spaces (Chinese, Japanese) are split into characters, which serve as their source "words".
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass, replace
from typing import BinaryIO, Iterator

from ..errors import InputError
from .escapes import EscapeStripper, strip_escapes

__all__ = [
    "SourceEvent", "InvalidSourceBytes", "WordSplitter", "read_words", "ends_sentence", "join_words", "split_words", "has_letter_or_digit", "CONTROL_CHARACTERS",
]

_READ_SIZE_BYTES = 4096
_SENTENCE_FINAL = ("。", "！", "？", ".", "!", "?", "…")
_CLOSERS = "\"'»«”“’)]"
# Abbreviations after which a period does not end a sentence (lower-case, without the period).
_ABBREVIATIONS = frozenset(
    "dr prof mr mrs ms st nr no vs etc bzw ca usw z.b d.h u.a s. vgl mio mrd jh jr sr inc ltd co "
    "m mme mlle av sra sr dña".split()
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
# C0 and C1 control characters other than tab and line feed: ESC, BEL, CSI … make a terminal run
# commands (set its title, move the cursor), so they never reach a prompt or the output.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class SourceEvent:
    """One item of the source stream: a word, or the end of a sentence."""

    word: str | None = None  # a complete source word, or None for a sentence end
    sentence_end: bool = False  # the sentence ended (line break, or sentence-final punctuation)
    # More words came in the same read as this one: they were already waiting when it was read.
    more_waiting: bool = False


class InvalidSourceBytes(InputError):
    """The source stream holds bytes that are not UTF-8. Raised once the words before them have
    been yielded, with a sentence end, so that their translation is complete."""

    def __init__(self, offset: int, byte: int) -> None:
        done = "the text before it was translated" if offset else "nothing was translated"
        super().__init__(f"the input is not UTF-8: byte 0x{byte:02x} at offset {offset}; {done}")
        self.offset = offset


def split_words(text: str) -> list[str]:
    """Whitespace-separated words; runs of CJK characters split into single characters."""
    words: list[str] = []
    for chunk in strip_escapes(text).split():
        chunk = CONTROL_CHARACTERS.sub("", chunk)
        if not chunk:
            continue
        if _CJK.search(chunk):
            words.extend(_split_cjk(chunk))
        else:
            words.append(chunk)
    return words


def has_letter_or_digit(word: str) -> bool:
    """Whether `word` holds anything to translate: a letter or digit of any script (not only
    punctuation, symbols or emoji)."""
    return any(char.isalnum() for char in word)


def _split_cjk(chunk: str) -> list[str]:
    """Each CJK character is a word; punctuation joins the word before it; Latin runs stay whole."""
    parts: list[str] = []
    for char in chunk:
        if _CJK.match(char) and char.isalnum():
            parts.append(char)
        elif parts and not char.isalnum():
            parts[-1] += char
        elif parts and parts[-1][-1].isalnum() and not _CJK.match(parts[-1][-1]):
            parts[-1] += char
        else:
            parts.append(char)
    return parts


def join_words(words: list[str]) -> str:
    """Inverse of `split_words` for building prompts: spaces between words, none inside CJK."""
    out = ""
    for word in words:
        if out and not (_CJK.match(out[-1]) and _CJK.match(word[0])):
            out += " "
        out += word
    return out


def ends_sentence(word: str) -> bool:
    """Whether a source word ends its sentence (sentence-final punctuation, not an abbreviation,
    an initial or an ordinal number such as German "3.")."""
    core = word.rstrip(_CLOSERS)
    if not core.endswith(_SENTENCE_FINAL):
        return False
    if core.endswith("."):
        stem = core[:-1]
        if not stem or stem.isdigit() or (len(stem) == 1 and stem.isalpha()):
            return False
        if stem.lower() in _ABBREVIATIONS:
            return False
    return True


class WordSplitter:
    """Text that arrives in pieces → source words and sentence ends, each word as soon as it is
    complete (followed by whitespace) and the trailing partial word held for the next piece.

    `feed` takes one piece; the words it completes come out with `more_waiting` set on all but the
    last (they came together). `end` closes the stream: the held word, then a sentence end if one
    is open. A sentence ends at a line break or, if `split_sentences`, after a word that
    `ends_sentence`. Escape sequences are removed whole even when they span two pieces.
    """

    def __init__(self, split_sentences: bool = True) -> None:
        self.split_sentences = split_sentences
        self._escapes = EscapeStripper()
        self._pending = ""  # text after the last whitespace: a word still being typed
        self._sentence_open = False

    def feed(self, text: str) -> list[SourceEvent]:
        """The words and sentence ends that `text` completes."""
        return self._events(self._escapes.feed(text), final=False)

    def end(self) -> list[SourceEvent]:
        """End of the stream: the held word and a closing sentence end (if a sentence is open)."""
        events = self._events(self._escapes.feed("", final=True), final=True)
        if self._sentence_open:
            events.append(SourceEvent(sentence_end=True))
            self._sentence_open = False
        return events

    def _events(self, text: str, final: bool) -> list[SourceEvent]:
        text, self._pending = self._pending + text, ""
        if not final and len(text.rstrip()) == len(text):
            cut = max(text.rfind(c) for c in " \t\r\n\f\v") + 1
            self._pending, text = text[cut:], text[:cut]
        events: list[SourceEvent] = []
        for line_no, line in enumerate(text.split("\n")):
            if line_no > 0 and self._sentence_open:
                events.append(SourceEvent(sentence_end=True))
                self._sentence_open = False
            for word in split_words(line):
                events.append(SourceEvent(word=word, more_waiting=True))
                self._sentence_open = True
                if self.split_sentences and ends_sentence(word):
                    events.append(SourceEvent(sentence_end=True))
                    self._sentence_open = False
        last_word = max((k for k, event in enumerate(events) if event.word is not None), default=-1)
        if last_word >= 0:
            events[last_word] = replace(events[last_word], more_waiting=False)
        return events


def read_words(stream: BinaryIO, split_sentences: bool = True) -> Iterator[SourceEvent]:
    """Yield words from a binary stream as soon as each is complete, and sentence ends
    (`WordSplitter`). Reads whatever bytes are available (no waiting for a full buffer or a newline).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    splitter = WordSplitter(split_sentences)
    fd = stream.fileno() if _has_fileno(stream) else None
    offset = 0  # bytes of the stream before `chunk`
    at_start = True  # no text decoded yet
    while True:
        chunk = os.read(fd, _READ_SIZE_BYTES) if fd is not None else stream.read1(_READ_SIZE_BYTES)  # type: ignore[attr-defined]
        held = decoder.getstate()[0]  # bytes of a character split across reads, decoded with `chunk`
        invalid: InvalidSourceBytes | None = None
        try:
            decoded = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as e:
            # What came before the bad bytes is the stream's last text; it is finished like an end
            # of input before the error is raised.
            invalid = InvalidSourceBytes(offset - len(held) + e.start, e.object[e.start])
            decoded, chunk = bytes(e.object[: e.start]).decode("utf-8"), b""
        if at_start:
            # A byte-order mark (as Windows editors save UTF-8) is not part of the first word.
            at_start = not decoded
            decoded = decoded.removeprefix("\ufeff")
        offset += len(chunk)
        yield from splitter.feed(decoded)
        if not chunk:
            yield from splitter.end()
            if invalid is not None:
                raise invalid
            return


def _has_fileno(stream: BinaryIO) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
