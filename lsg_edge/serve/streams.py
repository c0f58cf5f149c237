"""What the server runs per connection: the engines loaded once, and one stream per connection.

`ServeEngines.open_stream(settings)` makes a `ServedStream` from the engines' pools; its `push`,
`finish` and `close` turn the session's commits (and its tentative text, where the session has one)
into protocol messages. Everything here is synchronous: the server calls it from worker threads.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import LsgEdgeError
from ..policy.options import SPEECH_POLICY_DEFAULTS
from .protocol import SAMPLE_RATE_HZ, ProtocolError, StreamSettings, commit_message

__all__ = ["ServeEngines", "ServedStream"]


class ServedStream:
    """One connection's session and the messages it produces.

    `session` is an `AsrSession` (captions) or a `cascade.SpeechTranslationSession` (captions and
    their translation, the commits tagged with their `stream`); both list their drafts, the text not
    yet committed, per stream (`drafts()`).
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self.heard_ms = 0  # audio pushed so far, ms
        self._samples = 0
        self._drafts: dict[str, str] = {}  # last draft text sent, per stream
        self._closed = False

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

    def _messages(self, events: list[Any]) -> list[dict]:
        messages = [commit_message(event) for event in events]
        for draft in self.session.drafts():
            # A draft is sent when it changed: an emptied one too (the display drops its tail).
            if self._drafts.get(draft.stream, "") != draft.text:
                self._drafts[draft.stream] = draft.text
                messages.append(draft.to_json())
        return messages


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
        """Decoder contexts lent to open sessions, as the speech engine counts them."""
        return int(getattr(self.speech, "contexts_in_use", 0))

    @property
    def translation_available(self) -> bool:
        return self.translation is not None

    def open_stream(self, settings: StreamSettings) -> ServedStream:
        """A new stream for `settings`; ProtocolError when they cannot be served."""
        from ..speech.session import AsrSessionOptions

        policy = replace(SPEECH_POLICY_DEFAULTS, name=settings.policy)
        options = AsrSessionOptions(language=settings.language, policy=policy)
        try:
            if settings.target is None:
                session = self.speech.create_session(options)
            else:
                session = self._translation_session(settings, options)
        except ProtocolError:
            raise
        except LsgEdgeError as e:
            raise ProtocolError(f"settings {settings.to_json()} cannot be served: {e}") from e
        with self._lock:
            self._open += 1
        return _Counted(session, self)

    def _translation_session(self, settings: StreamSettings, options: Any) -> Any:
        from ..cascade import SpeechTranslator

        if self.translation is None:
            raise ProtocolError("translation is not available on this server: it was started without "
                                "--translate (captions only; send \"target\": null)")
        # LSG: the text model's manifest settings for the pair; another policy by name over them.
        # AlignAtt reads Whisper's attention, which text has not: it runs the captions only, and the
        # translation keeps the manifest's LSG.
        policy = None if settings.policy in ("lsg", "alignatt") else \
            self.translation.policy_options(settings.language, settings.target, name=settings.policy)
        return SpeechTranslator(self.speech, self.translation).create_session(
            settings.language, settings.target, asr_options=options, policy=policy)

    def _closed(self) -> None:
        with self._lock:
            self._open -= 1

    def close(self) -> None:
        for engine in (self.speech, self.translation):
            if engine is not None:
                engine.close()


class _Counted(ServedStream):
    """A stream that tells its engines when it closes."""

    def __init__(self, session: Any, engines: ServeEngines) -> None:
        super().__init__(session)
        self._engines = engines

    def close(self) -> None:
        if not self._closed:
            super().close()
            self._engines._closed()
