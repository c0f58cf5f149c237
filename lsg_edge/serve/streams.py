"""What the server runs per connection: the engines loaded once, and one stream per connection.

`ServeEngines.open_stream(settings)` makes a `ServedStream` (audio) or a `ServedTextStream` (text)
from the engines' pools. A stream cuts what the connection received into pushes (`pieces`: one per
decision with catch-up, else one per 100 ms or per word), and its `push`, `finish` and `close` turn
the session's commits and drafts into protocol messages. `push` and `finish` are synchronous: the
server calls them from worker threads.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ..errors import EngineBusy, LsgEdgeError
from ..events import Commit, Tentative
from ..policy.options import SPEECH_POLICY_DEFAULTS
from ..text.source import SourceEvent, WordSplitter
from .protocol import CLOSE_TRY_AGAIN, SAMPLE_RATE_HZ, ProtocolError, StreamSettings, commit_message

__all__ = ["ServeEngines", "ServedStream", "ServedTextStream"]

_PIECE_SAMPLES = SAMPLE_RATE_HZ // 10  # audio per push without catch-up, 100 ms


class ServedStream:
    """One connection's session and the messages it produces.

    `session` is an `AsrSession` (captions) or a `cascade.SpeechTranslationSession` (captions and
    their translation, the commits tagged with their `stream`); both list their drafts, the text not
    yet committed, per stream (`drafts()`).
    """

    progress_unit = "heard_ms"  # what `progress` counts, as the progress and done messages name it

    def __init__(self, session: Any, catch_up: bool = True, on_close: Callable[[], None] | None = None) -> None:
        self.session = session
        self.catch_up = catch_up
        self._on_close = on_close  # told once, when the session has gone back
        self.heard_ms = 0  # audio pushed so far, ms
        self._samples = 0
        self._drafts: dict[str, str] = {}  # last draft text sent, per stream
        self._closed = False

    @property
    def progress(self) -> int:
        return self.heard_ms

    def pieces(self, received: list[np.ndarray]) -> list[np.ndarray]:
        """The pushes for the audio received since the last ones. With catch-up, everything that
        came while the last push was decoding goes in one push: the session decides once, on the
        newest audio, so a stream on a machine slower than real time catches up instead of falling
        further behind (`speech.session`). Without, 100 ms pieces, each decided on in turn."""
        audio = np.concatenate(received) if received else np.zeros(0, np.float32)
        piece = max(audio.size if self.catch_up else _PIECE_SAMPLES, 1)
        return [audio[offset : offset + piece] for offset in range(0, audio.size, piece)]

    def push(self, samples: np.ndarray) -> list[dict]:
        """Feed float32 mono 16 kHz samples; the messages to send."""
        self._samples += samples.size
        self.heard_ms = 1000 * self._samples // SAMPLE_RATE_HZ
        return self._messages(self.session.push(samples))

    def finish(self) -> list[dict]:
        """End of audio: the last commits (and the drafts, emptied)."""
        return self._messages(self.session.finish())

    def close(self) -> None:
        """Give the session's contexts back to the engines (idempotent)."""
        if not self._closed:
            self._closed = True
            self.session.close()
            if self._on_close is not None:
                self._on_close()

    def _messages(self, events: list[Commit]) -> list[dict]:
        messages = [commit_message(event) for event in events]
        for draft in self._current_drafts():
            # A draft is sent when it changed: an emptied one too (the display drops its tail).
            if self._drafts.get(draft.stream, "") != draft.text:
                self._drafts[draft.stream] = draft.text
                messages.append(draft.to_json())
        return messages

    def _current_drafts(self) -> list[Tentative]:
        return self.session.drafts()


class ServedTextStream(ServedStream):
    """A text stream: a `TranslationSession` fed the words of the text pieces a client sends.

    Pieces are cut into words as `lsg-edge translate` cuts its input (`source.WordSplitter`: a
    word is read once whitespace follows it; a sentence ends at a line break or sentence-final
    punctuation). The session's commits are the translation: they go out as the "target" stream.
    """

    progress_unit = "words_read"

    def __init__(self, session: Any, catch_up: bool = True, on_close: Callable[[], None] | None = None) -> None:
        super().__init__(session, catch_up, on_close)
        self.words_read = 0
        self._splitter = WordSplitter()

    @property
    def progress(self) -> int:
        return self.words_read

    def pieces(self, received: list[str]) -> list[list[SourceEvent]]:
        """The pushes for the text received since the last ones: with catch-up one, the policy
        deciding after its last word only (as `TranslationSession.translate_stream` does); else one
        per word, each decided on."""
        events = self._splitter.feed("".join(received))
        if self.catch_up:
            return [events] if events else []
        pushes: list[list[SourceEvent]] = []
        for event in events:
            if event.word is not None or not pushes:
                pushes.append([])
            pushes[-1].append(event)
        return pushes

    def push(self, events: list[SourceEvent]) -> list[dict]:  # type: ignore[override]
        """Read `events`' words and sentence ends; the messages to send."""
        self.words_read += sum(event.word is not None for event in events)
        commits = [commit for event in events for commit in self.session.read(event, self.catch_up)]
        return self._messages([replace(commit, stream="target") for commit in commits])

    def finish(self) -> list[dict]:
        """End of text: the held word, and the rest of the open sentence."""
        return self.push(self._splitter.end())

    def _current_drafts(self) -> list[Tentative]:
        return [Tentative(self.session.tentative, "target", self.session.sentence_index)]


class ServeEngines:
    """The engines a server loads once: Whisper for captions, optionally a translation model.

    Counts the contexts its sessions hold (`contexts_in_use`) so that a closed connection can be
    seen to give them back.
    """

    def __init__(self, speech: Any, translation: Any | None = None) -> None:
        self.speech = speech
        self.translation = translation
        self._lock = threading.Lock()
        self._open = 0

    @property
    def sessions_open(self) -> int:
        with self._lock:
            return self._open

    @property
    def contexts_in_use(self) -> int:
        """Decoder contexts lent to open sessions: the speech engine's, and the translation
        engine's context pairs (two contexts each: the full prefix and the wait-1 baseline)."""
        speech = int(getattr(self.speech, "contexts_in_use", 0))
        pool = getattr(self.translation, "pool", None)
        return speech + (2 * pool.stats.in_use if pool is not None else 0)

    @property
    def translation_available(self) -> bool:
        return self.translation is not None

    def open_stream(self, settings: StreamSettings) -> ServedStream:
        """A new stream for `settings`; ProtocolError when they cannot be served."""
        from ..speech.session import AsrSessionOptions

        policy = replace(SPEECH_POLICY_DEFAULTS, name=settings.policy)
        options = AsrSessionOptions(language=settings.language, policy=policy)
        try:
            served = (settings.catch_up, self._stream_closed)
            if settings.input == "text":
                stream: ServedStream = ServedTextStream(self._text_session(settings), *served)
            elif settings.target is None:
                stream = ServedStream(self.speech.create_session(options), *served)
            else:
                stream = ServedStream(self._translation_session(settings, options), *served)
        except ProtocolError:
            raise
        except EngineBusy as e:
            raise ProtocolError(f"the server is full: {e}", CLOSE_TRY_AGAIN) from e
        except LsgEdgeError as e:
            raise ProtocolError(f"settings {settings.to_json()} cannot be served: {e}") from e
        with self._lock:
            self._open += 1
        return stream

    def _require_translation(self) -> Any:
        if self.translation is None:
            raise ProtocolError("translation is not available on this server: it was started without "
                                "--translate (captions only; send \"target\": null)")
        return self.translation

    def _text_policy(self, settings: StreamSettings) -> Any:
        """The text model's manifest settings for the pair (LSG), or another policy by name over them.
        AlignAtt reads Whisper's attention, which text has not: a caption stream asking for it keeps
        the manifest's LSG for its translation."""
        if settings.policy in ("lsg", "alignatt"):
            return None
        return self._require_translation().policy_options(settings.language, settings.target, name=settings.policy)

    def _text_session(self, settings: StreamSettings) -> Any:
        engine = self._require_translation()
        return engine.create_session(settings.language, settings.target, policy=self._text_policy(settings))

    def _translation_session(self, settings: StreamSettings, options: Any) -> Any:
        from ..cascade import SpeechTranslator

        return SpeechTranslator(self.speech, self._require_translation()).create_session(
            settings.language, settings.target, asr_options=options, policy=self._text_policy(settings))

    def _stream_closed(self) -> None:
        with self._lock:
            self._open -= 1

    def close(self) -> None:
        for engine in (self.speech, self.translation):
            if engine is not None:
                engine.close()
