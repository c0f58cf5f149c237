"""Drive one audio stream to its outputs: stdout (plain, a live terminal line, or JSON lines),
draft events, and subtitle files; stopped cleanly by Ctrl-C or SIGTERM.

The session is either an `AsrSession` (captions) or a `cascade.SpeechTranslationSession`
(captions and their translation); `shown` names the stream that plain output and subtitles carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol, TextIO

import numpy as np

from ..display import LiveLineWriter
from ..events import Commit, JsonLinesWriter, PlainTextWriter, Tentative
from ..signals import DeferredInterrupts
from ..subtitles import SubtitleWriter

__all__ = ["StreamOutputs", "run_stream"]


class _Stream(Protocol):
    def push(self, samples: np.ndarray) -> list[Commit]: ...
    def finish(self) -> list[Commit]: ...
    def drafts(self) -> list[Tentative]: ...
    @property
    def tentative(self) -> str: ...


@dataclass
class StreamOutputs:
    """Where the commits of one stream go."""

    out: TextIO  # stdout
    as_json: bool = False  # one JSON object per commit (both streams) instead of plain text
    drafts: bool = False  # with as_json: a "draft" event whenever a stream's draft changes
    live_line: bool = False  # plain output on a terminal: show the draft dimmed after the committed text
    shown: str = "source"  # the stream plain text and subtitles carry
    subtitles: list[SubtitleWriter] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.as_json:
            self._writer: JsonLinesWriter | PlainTextWriter | LiveLineWriter = JsonLinesWriter(self.out)
        elif self.live_line:
            self._writer = LiveLineWriter(self.out)
        else:
            self._writer = PlainTextWriter(self.out)
        self._last_drafts: dict[str, str] = {}
        self._closed = False

    def commits(self, commits: Iterable[Commit]) -> None:
        for commit in commits:
            if self.as_json or commit.stream == self.shown:
                self._writer.write(commit)
            if commit.stream == self.shown:
                for subtitles in self.subtitles:
                    subtitles.write(commit)

    def show_drafts(self, session: _Stream) -> None:
        if self.as_json and self.drafts:
            for draft in session.drafts():
                if self._last_drafts.get(draft.stream, "") != draft.text:
                    self._last_drafts[draft.stream] = draft.text
                    self._writer.write(draft)
        elif isinstance(self._writer, LiveLineWriter):
            self._writer.show_tentative(session.tentative)

    def close(self) -> None:
        """Close the open line and the subtitle files (their open cues are written first); idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.close()
        finally:
            for subtitles in self.subtitles:
                subtitles.close()


def run_stream(session: _Stream, blocks: Iterable[np.ndarray], outputs: StreamOutputs) -> None:
    """Push every block and write what is committed; at the end of the blocks, or at the first
    Ctrl-C / SIGTERM, commit what was heard and close the outputs. A block in progress completes
    before an interruption takes effect, so no committed word is lost; a second interruption
    stops at once (subtitle files still get their last complete cue)."""
    try:
        with DeferredInterrupts() as interrupts:
            for block in blocks:
                outputs.commits(session.push(block))
                outputs.show_drafts(session)
                if interrupts.requested:
                    break
            outputs.commits(session.finish())
            outputs.show_drafts(session)
    finally:
        outputs.close()
