"""One audio stream being captioned: windows, voice activity, and the committed-word events.

    engine = SpeechEngine.load("base")
    with engine.create_session(AsrSessionOptions(language="en")) as session:
        for block in blocks:                   # float32 mono 16 kHz, any block size
            for commit in session.push(block):
                print(commit.separator + commit.text, end="", flush=True)
        for commit in session.finish():        # end of input: everything left is written
            ...

Audio is gathered into a *window* from the first voiced frame (plus a short pre-roll). A pause
of `min_silence_ms`, or a window reaching `max_window_ms`, ends it: everything is committed at
the cut and the next window starts empty, so no window exceeds Whisper's 30 s and silence never
reaches the decoder (Whisper hallucinates and loops on silence). Inside a window the policy
(`lsg_edge.policy`, the same as for text) decides after every segment through `window.SegmentView`
— at most once per `push`, though: when one push brings several segments (a caller that fell
behind real time pushes its whole backlog), only the last of them is decided on. Deciding on each
would cost as much as the audio took to arrive and the lag would grow without bound on a machine
slower than real time; one decision per push keeps it to about one decision's time.
The engine (Whisper or an audio-LLM, `asr_engine.AsrEngine`) lends the decoder contexts; `close()`
gives them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..commits import CommitBuilder, WrittenTokens
from ..errors import OptionsError
from ..events import Commit, Tentative
from ..policy.options import SPEECH_POLICY_DEFAULTS, PolicyOptions
from ..policy.strategies import make_policy
from ..text.source import CONTROL_CHARACTERS
from .asr_engine import AsrEngine
from .features import SAMPLE_RATE_HZ
from .no_speech import NoSpeechOptions
from .vad import EnergyVad, VadOptions
from .window import WindowDecoder

__all__ = ["AsrSessionOptions", "AsrSession"]

# Silence kept after the last voiced frame when a window is cut at a pause, ms: a short tail helps
# Whisper end the last word, more only invites hallucination.
WINDOW_TAIL_MS = 200
# Whisper conditions on at most half its text context of previous tokens (openai/whisper does the
# same); the rest is the transcript's.
MAX_CARRY_TOKENS = 223
# More than a few words held back is a lag of seconds: use a larger --low-bound instead.
MAX_EDGE_WORDS = 8
MAX_BEAMS = 16  # each beam is a decoder batch row: more is slow for no gain (Whisper uses 5)


@dataclass(frozen=True)
class AsrSessionOptions:
    """What to recognise and how to stream it."""

    language: str | None = None  # spoken language code (multilingual models); None = English
    task: str = "transcribe"  # "transcribe", or "translate" (Whisper's X→English)
    policy: PolicyOptions = SPEECH_POLICY_DEFAULTS
    segment_ms: int = 640  # source element, ms of audio
    # Committed tokens carried into the next window's prompt (Whisper's conditioning on previous
    # text, which keeps names and style across pauses); 0 = every window starts afresh.
    carry_tokens: int = 0
    # Words at the end of a hypothesis that reaches the end of the audio heard so far, held back until
    # more audio follows them (`window` module docstring); 1 holds back only the unfinished last word.
    edge_words: int = 2
    # Beams of the decode that commits the rest of a window at its end (1: greedy, as drafts).
    beam_size: int = 1
    vad: VadOptions = field(default_factory=VadOptions)
    # Whisper's test for sounds that pass the VAD but are not speech (tones, beeps): `no_speech`.
    no_speech: NoSpeechOptions = field(default_factory=NoSpeechOptions)

    def __post_init__(self) -> None:
        if not 100 <= self.segment_ms <= 5000:
            raise OptionsError(f"--segment-ms must be within 100…5000, got {self.segment_ms}")
        if not 0 <= self.carry_tokens <= MAX_CARRY_TOKENS:
            raise OptionsError(f"--carry-tokens must be within 0…{MAX_CARRY_TOKENS}, got {self.carry_tokens}")
        if not 1 <= self.beam_size <= MAX_BEAMS:
            raise OptionsError(f"--beam must be within 1…{MAX_BEAMS}, got {self.beam_size}")
        if not 1 <= self.edge_words <= MAX_EDGE_WORDS:
            raise OptionsError(f"--edge-words must be within 1…{MAX_EDGE_WORDS}, got {self.edge_words}")

    @property
    def segment_samples(self) -> int:
        return SAMPLE_RATE_HZ * self.segment_ms // 1000


class AsrSession:
    """Per-stream state over a shared `AsrEngine` (see module docstring); `close()` (or `with`)
    gives the engine's contexts back."""

    def __init__(self, engine: AsrEngine, options: AsrSessionOptions = AsrSessionOptions()) -> None:
        self.engine = engine
        self.options = options
        self._policy = make_policy(options.policy)
        self._task_prompt = engine.prompt(options.language, options.task)
        # AlignAtt's attention test is its own rule for the edge of the audio: no words held back.
        edge_words = 1 if options.policy.name == "alignatt" else options.edge_words
        self._decoder = WindowDecoder(engine, self._task_prompt, options.policy, options.segment_samples, edge_words,
                                      options.beam_size, options.no_speech)
        self._vad = EnergyVad(options.vad)
        self._frame = self._vad._frame
        # Captions run on across windows: a window's first words are separated from the last's.
        self._commits = CommitBuilder(engine.vocab.piece, stream="source", words_flow_across_sentences=True)
        self._reset_stream()

    def close(self) -> None:
        """Give the decoder contexts back to the engine; the session is unusable afterwards."""
        if self._decoder.full is not None:
            self._decoder.close()

    def __enter__(self) -> "AsrSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reset_stream(self) -> None:
        self._history: list[int] = []  # committed tokens of earlier windows, for carry_tokens
        self._heard = 0  # samples pushed since the stream started
        self._unclassified = np.zeros(0, np.float32)  # samples awaiting a full VAD frame
        self._preroll = np.zeros(0, np.float32)
        self._window: np.ndarray | None = None  # samples of the open window
        self._n_segments = 0  # segments of the window the policy has read
        self._silence = 0  # trailing unvoiced samples in the open window
        self._window_index = 0
        # A segment decision the current push has reached and not yet made: (segments, heard_ms).
        self._due: tuple[int, int] | None = None
        self._commits.reset()
        self._new_window()

    def _new_window(self) -> None:
        previous = self._history[-self.options.carry_tokens:] if self.options.carry_tokens else []
        prompt = self.engine.prompt(self.options.language, self.options.task, previous)
        self._decoder.reset(prompt, n_carried=len(prompt) - len(self._task_prompt))
        self._policy.reset()

    @property
    def tentative(self) -> str:
        """The words the decoder currently drafts beyond what the open window committed ("" when
        none): a preview for display that the next segment may change; never committed as such."""
        if self._window is None or not self._decoder.guess:
            return ""
        return CONTROL_CHARACTERS.sub("", self.engine.vocab.text(self._decoder.guess)).strip()

    def drafts(self) -> list[Tentative]:
        """The current draft as an event (an empty one included: a draft that vanished is news
        to a display)."""
        return [Tentative(self.tentative, "source", self._window_index)]

    @property
    def window_index(self) -> int:
        """Index of the open (or next) audio window: the `sentence_index` of its commits."""
        return self._window_index

    @property
    def heard_ms(self) -> int:
        """Audio pushed since the stream started, in whole VAD frames, ms."""
        return 1000 * self._heard // SAMPLE_RATE_HZ

    def reset(self) -> None:
        """Forget the stream (the voice detector's noise floor included); the engine stays loaded."""
        self._vad.reset()
        self._reset_stream()

    def push(self, samples: np.ndarray) -> list[Commit]:
        """Feed float32 mono 16 kHz samples; return what got committed. Pauses in `samples` cut
        windows as they come; of the segments they complete, only the last is decided on (module
        docstring), so pushing a backlog at once is how a caller catches up."""
        samples = np.asarray(samples, dtype=np.float32)
        voiced = self._vad.push(samples)
        audio = np.concatenate([self._unclassified, samples])
        n = voiced.size * self._frame
        self._unclassified = audio[n:]
        commits: list[Commit] = []
        for k, is_speech in enumerate(voiced):
            commits += self._frame_in(audio[k * self._frame : (k + 1) * self._frame], bool(is_speech))
        return commits + self._decide_due()

    def finish(self) -> list[Commit]:
        """End of input: commit everything left."""
        commits = []
        if self._window is not None:
            if self._unclassified.size:
                self._window = np.concatenate([self._window, self._unclassified])
            commits = self._close_window()
        self._heard += self._unclassified.size
        self._unclassified = np.zeros(0, np.float32)
        return commits

    def _frame_in(self, frame: np.ndarray, is_speech: bool) -> list[Commit]:
        vad = self.options.vad
        self._heard += frame.size
        if self._window is None:
            if not is_speech:
                keep = SAMPLE_RATE_HZ * vad.preroll_ms // 1000
                self._preroll = np.concatenate([self._preroll, frame])[-keep:] if keep else self._preroll
                return []
            self._window, self._preroll = self._preroll, np.zeros(0, np.float32)
            self._n_segments, self._silence = 0, 0
            self._commits.start_sentence(self._window_index)  # elapsed time counts from its first voiced frame
        self._window = np.concatenate([self._window, frame])
        self._silence = 0 if is_speech else self._silence + frame.size
        segment = self.options.segment_samples
        if self._window.size >= (self._n_segments + 1) * segment and self._silence < self._window.size:
            self._n_segments = self._window.size // segment
            # Stamped with the audio heard at the segment's end: what the policy will have read.
            self._due = (self._n_segments, self.heard_ms)
        if (self._silence >= SAMPLE_RATE_HZ * vad.min_silence_ms // 1000
                or self._window.size >= SAMPLE_RATE_HZ * vad.max_window_ms // 1000):
            # The decision due comes first, as it would have at its segment's end.
            return self._decide_due() + self._close_window()
        return []

    def _decide_due(self) -> list[Commit]:
        """The policy's decisions on the last segment this push completed, if any."""
        if self._due is None:
            return []
        (n_segments, heard_ms), self._due = self._due, None
        return [commit for written in self._decoder.step(self._policy, self._window, n_segments)
                for commit in self._emit(written, end_of_window=False, heard_ms=heard_ms)]

    def _close_window(self) -> list[Commit]:
        tail = SAMPLE_RATE_HZ * WINDOW_TAIL_MS // 1000
        window = self._window[: max(self._window.size - max(0, self._silence - tail), 1)]
        commits = self._emit(self._decoder.finish(window), end_of_window=True)
        self._history = (self._history + self._decoder.committed)[-MAX_CARRY_TOKENS:]
        self._window = None
        self._window_index += 1
        self._new_window()
        return commits

    def _emit(self, written: WrittenTokens, end_of_window: bool, heard_ms: int | None = None) -> list[Commit]:
        heard_ms = self.heard_ms if heard_ms is None else heard_ms
        commit = self._commits.build(written, source_read=heard_ms, end=end_of_window, audio_ms=heard_ms)
        return [commit] if commit is not None else []
