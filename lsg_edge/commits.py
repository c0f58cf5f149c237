"""From the tokens a policy writes to the `Commit` events a stream emits: one builder for text
translation and for captions.

Both kinds of session hand it the tokens of each write; it turns them into text the same way:
- bytes are decoded incrementally within a sentence, so a character whose bytes two writes split
  comes out whole with the second write (never as two replacement characters);
- control characters (a terminal escape a model copied from its input, or made up) never leave;
- the whitespace a write starts with becomes the commit's `separator`; a write with no visible
  text emits nothing and hands its whitespace to the next one.
Where the two differ is one flag, `words_flow_across_sentences`: captions run on across audio
windows, so a window's first words are separated from the last window's (a commit with an empty
separator continues the previous word, as captions may commit "ring", then "leader,"); translated
sentences are lines of their own and every one of them ends with a commit, an empty one included,
so output stays one line per source sentence.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass
from typing import Callable

from .events import Commit
from .text.source import CONTROL_CHARACTERS

__all__ = ["WrittenTokens", "CommitBuilder"]


@dataclass(frozen=True)
class WrittenTokens:
    """The tokens of one write, and why the policy wrote them (`policy.interface.WRITE_CAUSES`)."""

    tokens: list[int]
    cause: str


class CommitBuilder:
    """Commits of one stream, sentence by sentence (see the module docstring).

    `piece(token)` gives a token's bytes; `stream` is the events' `Commit.stream`.
    """

    def __init__(self, piece: Callable[[int], bytes], stream: str = "source",
                 words_flow_across_sentences: bool = False) -> None:
        self._piece = piece
        self._stream = stream
        self._flowing = words_flow_across_sentences
        self.reset()

    def reset(self) -> None:
        """A new stream: nothing emitted yet."""
        self._stream_has_output = False
        self.start_sentence(0)

    def start_sentence(self, index: int, started_at: float | None = None) -> None:
        """Sentence (or audio window) `index` starts; its commits' `elapsed_ms` count from
        `started_at` (time.monotonic(); now if None)."""
        self.sentence_index = index
        self.started_at = time.monotonic() if started_at is None else started_at
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._sentence_has_output = False
        self._pending_space = ""  # whitespace of writes that had no visible text

    def build(self, written: WrittenTokens | None, source_read: int, end: bool = False,
              audio_ms: int | None = None) -> Commit | None:
        """The commit of one write (`written`; None: no tokens, only the sentence's `end`), or
        None when it shows nothing and ends nothing a reader needs to see end."""
        tokens = written.tokens if written is not None else []
        raw = self._decoder.decode(b"".join(self._piece(t) for t in tokens), final=end)
        text = CONTROL_CHARACTERS.sub("", self._pending_space + raw)
        stripped = text.lstrip()
        if not stripped:
            self._pending_space = text
            if not (end and (self._sentence_has_output or not self._flowing)):
                return None
            separator = ""
        else:
            self._pending_space = ""
            separator = text[: len(text) - len(stripped)]
            if not self._sentence_has_output:
                # The first words of a sentence: a line of their own (text), or words after the
                # last window's (captions); the very first words of a stream have nothing before them.
                separator = (separator or " ") if self._flowing and self._stream_has_output else ""
            self._sentence_has_output = self._stream_has_output = True
        now = time.monotonic()
        return Commit(
            text=stripped.rstrip() if end else stripped,
            separator=separator,
            sentence_index=self.sentence_index,
            source_read=source_read,
            elapsed_ms=(now - self.started_at) * 1000.0,
            n_words=len(stripped.split()),
            sentence_end=end,
            wall_time_s=now,
            stream=self._stream,
            audio_ms=audio_ms,
            cause=written.cause if written is not None and stripped else None,
        )
