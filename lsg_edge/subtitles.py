"""Subtitle files (SubRip .srt, WebVTT .vtt) written cue by cue as words are committed.

Committed words are final, so a cue can be written the moment it is complete: a run killed at any
point leaves a valid file holding every cue completed so far (each is flushed as a whole).

Cues follow the usual broadcast rules: at most `max_lines` lines of at most `max_line_chars`
characters; a cue ends with its sentence (text) or audio window (speech, where windows end at
pauses), or when the next word would not fit. Times come from the audio: each commit's `audio_ms`
(the audio heard when it, or the source word it translates, was committed). A word is committed
after it was spoken, so a cue's start is moved back by the time its words take to say
(`speech_ms_per_word`), never before the previous cue's end.
"""

from __future__ import annotations

import datetime
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .errors import InputError, OptionsError
from .events import Commit

__all__ = ["CueOptions", "Cue", "CueBuilder", "SubtitleWriter", "open_subtitles", "SUBTITLE_FORMATS"]

SUBTITLE_FORMATS = ("srt", "vtt")


@dataclass(frozen=True)
class CueOptions:
    """How words are grouped into cues and timed."""

    max_line_chars: int = 42  # characters per line (the common broadcast and Netflix limit)
    max_lines: int = 2  # lines per cue
    min_cue_ms: int = 1000  # a cue stays on screen at least this long, ms
    # Time one word takes to say (~170 words per minute), ms: how far before its commit a cue starts.
    speech_ms_per_word: int = 350

    def __post_init__(self) -> None:
        if self.max_line_chars < 8 or self.max_lines < 1:
            raise OptionsError(f"a cue needs at least 1 line of 8 characters, got {self.max_lines} × {self.max_line_chars}")
        if self.min_cue_ms < 0 or self.speech_ms_per_word < 0:
            raise OptionsError("cue durations must be non-negative")


@dataclass(frozen=True)
class Cue:
    """One subtitle: its lines and when it shows, ms from the start of the audio."""

    index: int  # 1-based, as both formats number them
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


@dataclass
class _OpenCue:
    words: list[str] = field(default_factory=list)
    first_ms: int = 0  # audio time of the first word's commit
    last_ms: int = 0  # audio time of the last word's commit


class CueBuilder:
    """Turns commits into complete cues. `add` returns the cues a commit completed; `close`
    returns the open one, if any."""

    def __init__(self, options: CueOptions = CueOptions()) -> None:
        self.options = options
        self._open = _OpenCue()
        self._n_cues = 0
        self._last_end_ms = 0

    def add(self, commit: Commit) -> list[Cue]:
        done: list[Cue] = []
        at_ms = commit.audio_ms if commit.audio_ms is not None else commit.source_read
        for k, word in enumerate(commit.text.split()):
            started = bool(self._open.words)
            if k == 0 and not commit.separator and started:
                # The rest of the last word (captions may commit "ring", then "leader,").
                word = self._open.words.pop() + word
            if self._open.words and not self._fits(self._open.words + [word]):
                done.append(self._close())
                started = False
            if not started:
                self._open.first_ms = at_ms
            self._open.words.append(word)
            self._open.last_ms = at_ms
        if commit.sentence_end and self._open.words:
            done.append(self._close())
        return done

    def close(self) -> list[Cue]:
        return [self._close()] if self._open.words else []

    def _fits(self, words: list[str]) -> bool:
        return len(self._wrap(words)) <= self.options.max_lines

    def _wrap(self, words: list[str]) -> list[str]:
        return textwrap.wrap(" ".join(words), self.options.max_line_chars, break_long_words=True,
                             break_on_hyphens=False)

    def _close(self) -> Cue:
        cue, self._open = self._open, _OpenCue()
        o = self.options
        start = max(self._last_end_ms, cue.first_ms - o.speech_ms_per_word * len(cue.words))
        end = max(cue.last_ms, start + o.min_cue_ms)
        self._last_end_ms = end
        self._n_cues += 1
        return Cue(self._n_cues, start, end, tuple(self._wrap(cue.words)))


class SubtitleWriter:
    """Writes the cues of one stream of commits to an open text file as they complete."""

    def __init__(self, out: TextIO, kind: str, options: CueOptions = CueOptions()) -> None:
        if kind not in SUBTITLE_FORMATS:
            raise OptionsError(f"subtitle format must be one of {', '.join(SUBTITLE_FORMATS)}, got {kind!r}")
        self._out = out
        self.kind = kind
        self._builder = CueBuilder(options)
        if kind == "vtt":
            self._put("WEBVTT\n\n")

    def write(self, commit: Commit) -> None:
        for cue in self._builder.add(commit):
            self._put(self._format(cue))

    def close(self) -> None:
        """Write the open cue and close the file (idempotent)."""
        if self._out.closed:
            return
        for cue in self._builder.close():
            self._put(self._format(cue))
        self._out.close()

    def _put(self, text: str) -> None:
        # One write and one flush per cue: a killed run leaves whole cues only.
        self._out.write(text)
        self._out.flush()

    def _format(self, cue: Cue) -> str:
        if self.kind == "srt":
            import srt

            subtitle = srt.Subtitle(cue.index, _delta(cue.start_ms), _delta(cue.end_ms), "\n".join(cue.lines))
            return subtitle.to_srt()
        # "-->" inside a cue's text would read as a timing line.
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        return f"{cue.index}\n{_vtt_time(cue.start_ms)} --> {_vtt_time(cue.end_ms)}\n{text}\n\n"


def _delta(ms: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=ms)


def _vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def open_subtitles(path: Path, kind: str, flag: str, options: CueOptions = CueOptions()) -> SubtitleWriter:
    """A writer to `path` (created or truncated now, so that an unwritable path fails before any
    model loads); `flag` names the option in the error."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder; give a file name")
    try:
        out = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed by the writer
    except OSError as e:
        raise InputError(f"{flag} {path}: cannot write: {e.strerror}") from e
    return SubtitleWriter(out, kind, options)
