"""What a session emits: committed target text, one event type for translation and captions,
and the writers that put it on stdout."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Commit", "Tentative", "STREAMS", "PlainTextWriter", "JsonLinesWriter", "commit_writer"]

# Which words an event carries: "source" = the spoken (or typed) language itself, as captions;
# "target" = the translation of the source stream.
STREAMS = ("source", "target")


@dataclass(frozen=True)
class Commit:
    """Target words committed at one decision; final, never retracted.

    A *sentence* is what a stream is cut into: a source sentence when translating text, an audio
    window between pauses when captioning. `source_read` counts the source read when the words
    were committed in the stream's unit: source words of the sentence (text), or ms of audio since
    the stream started (speech).
    """

    text: str  # the committed words, without the whitespace that separates them from earlier ones
    separator: str  # whitespace between the previous commit of the sentence and `text` ("" at start)
    sentence_index: int  # 0-based index of the sentence in the stream
    source_read: int  # source read when committed: words (text) or audio ms (speech)
    elapsed_ms: float  # wall-clock time since the sentence's first source arrived, ms
    n_words: int  # target words in `text`
    sentence_end: bool = False  # the last commit of its sentence
    wall_time_s: float = 0.0  # time.monotonic() when committed, s
    stream: str = "source"  # one of STREAMS
    audio_ms: int | None = None  # audio time the words depend on, ms since the stream started; None for text
    # Why the policy wrote them (`policy.interface.WRITE_CAUSES`: "confidence", "kl", "forced",
    # "wait-k", …, "source-end"); None for a commit with no words.
    cause: str | None = None

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {self.stream!r}")

    def to_json(self) -> dict:
        record = {
            "text": self.text,
            "sentence": self.sentence_index,
            "source_read": self.source_read,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "words": self.n_words,
            "sentence_end": self.sentence_end,
            "stream": self.stream,
        }
        if self.audio_ms is not None:
            record["audio_ms"] = self.audio_ms
        if self.cause is not None:
            record["cause"] = self.cause
        return record


@dataclass(frozen=True)
class Tentative:
    """What a session currently drafts beyond its committed text in the open sentence (or audio
    window): a preview that the next step may change or drop. Never part of the committed output;
    "" when there is no draft."""

    text: str  # the drafted words, without leading or trailing whitespace
    stream: str  # one of STREAMS
    sentence_index: int  # the sentence (or window) the draft continues

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {self.stream!r}")

    def to_json(self) -> dict:
        return {"type": "draft", "text": self.text, "stream": self.stream, "sentence": self.sentence_index}


class PlainTextWriter:
    """Committed words as plain text, one line per sentence, flushed at every commit."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._line_open = False

    def write(self, commit: Commit) -> None:
        text = (commit.separator if self._line_open else "") + commit.text
        if commit.sentence_end:
            text += "\n"
        if text:
            self._out.write(text)
            self._out.flush()
        self._line_open = not commit.sentence_end and (self._line_open or bool(commit.text))

    def close(self) -> None:
        if self._line_open:
            self._out.write("\n")
            self._out.flush()


class JsonLinesWriter:
    """One JSON object per event (`Commit.to_json`, `Tentative.to_json`), flushed at every event."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, commit: Commit | Tentative) -> None:
        self._out.write(json.dumps(commit.to_json(), ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


def commit_writer(out: TextIO, as_json: bool) -> PlainTextWriter | JsonLinesWriter:
    return JsonLinesWriter(out) if as_json else PlainTextWriter(out)
