"""Read/write policies over one audio window: LSG, LocalAgreement-2 and offline.

A window is the audio since the last cut (≤ 30 s). Source elements are segments of
`segment_ms`; after each new segment the session calls `step`, which returns the tokens to commit
now (whole words only, possibly none = READ). At the cut, `finish` returns everything left,
decoded at full context. Committed tokens are final; each policy continues after them.

LSG (Guo et al. 2025, arXiv 2501.00868) on audio:
  full context  = decoder over the encoder output of all j segments read;
  baseline      = decoder over the first min(i+1, j) segments, i = words committed in the window
                  (its encoder output changes only when a word is committed, and is cached);
  draft greedily from the full context, testing each token as it comes (max P_cur > α, else
  KL(P_cur‖P_base) > δ with the baseline teacher-forced on the draft) and stopping at the first
  failure; commit the leading run that passed, clamped by the range constraint, cut to whole
  words. Range bounds count source elements as `words_per_segment` × segments, because one 640 ms
  segment holds ~1.7 spoken words: with 1 word per segment the lower bound alone would make the
  lag grow without limit on ordinary speech.
LocalAgreement-2 (Macháček et al. 2023, whisper_streaming): re-decode the window after every
  segment; commit the longest word prefix on which the last two hypotheses agree.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from ..backends.base import Draft, common_prefix_length, greedy_draft
from ..errors import OptionsError
from ..policy.bounds import words_allowed, words_required
from ..policy.options import check_lsg_parameters
from ..policy.strategies import LeadingRun
from ..policy.words import cut_at_words, word_starts
from .engine import SpeechEngine
from .features import SAMPLE_RATE_HZ
from .loops import first_repeat, token_budget, trim_repetition
from .onnx_runtime import EncodedAudio

__all__ = ["SpeechPolicyOptions", "SPEECH_POLICIES", "WindowPolicy", "make_policy"]

SPEECH_POLICIES = ("lsg", "local-agreement", "offline")


@dataclass(frozen=True)
class SpeechPolicyOptions:
    """Which policy commits words, and its parameters (units in comments)."""

    name: str = "lsg"  # one of SPEECH_POLICIES
    segment_ms: int = 640  # source element, ms of audio
    delta: float = 7.0  # LSG KL threshold δ, nats (paper's speech Fr→En setting)
    alpha: float = 0.8  # LSG confidence threshold α on max P_cur (0.5, the paper's, commits Whisper's guesses)
    low_bound: int = 1  # LSG range constraint L, source words (segments × words_per_segment)
    top_bound: int = 4  # LSG range constraint U, source words
    words_per_segment: int = 2  # source words one segment counts as in the range constraint
    kl_direction: str = "paper"  # "paper" = KL(P_cur‖P_base); "code" = KL(P_base‖P_cur)
    draft_tokens: int = 10  # tokens drafted per decision

    def __post_init__(self) -> None:
        if self.name not in SPEECH_POLICIES:
            raise OptionsError(f"--policy must be one of {', '.join(SPEECH_POLICIES)}, got {self.name!r}")
        if not 100 <= self.segment_ms <= 5000:
            raise OptionsError(f"--segment-ms must be within 100…5000, got {self.segment_ms}")
        check_lsg_parameters(self.delta, self.alpha, self.low_bound, self.top_bound, self.kl_direction, self.draft_tokens)
        if self.words_per_segment < 1:
            raise OptionsError(f"--words-per-segment must be at least 1, got {self.words_per_segment}")

    @property
    def segment_samples(self) -> int:
        return SAMPLE_RATE_HZ * self.segment_ms // 1000


class WindowPolicy(abc.ABC):
    """Commits tokens for one window; `reset` starts the next window."""

    def __init__(self, engine: SpeechEngine, prompt: list[int], options: SpeechPolicyOptions) -> None:
        self.engine = engine
        self.prompt = prompt
        self.options = options
        self.full = engine.new_context(prompt)
        self._encoded: dict[int, EncodedAudio] = {}  # n_samples → encoder output, this window
        self.reset()

    def reset(self) -> None:
        self.committed: list[int] = []  # tokens committed in this window
        self.n_words = 0  # words committed in this window
        self._encoded.clear()

    def encode(self, audio: np.ndarray) -> EncodedAudio:
        """Encoder output of `audio` (a prefix of the window), computed once per length."""
        key = audio.size
        if key not in self._encoded:
            if len(self._encoded) >= 4:  # only the latest lengths are ever asked for again
                self._encoded.pop(min(self._encoded))
            self._encoded[key] = self.engine.encode(audio)
        return self._encoded[key]

    @abc.abstractmethod
    def step(self, window: np.ndarray, n_segments: int) -> list[int]:
        """Tokens to commit after segment `n_segments` of `window` was read ([] = READ)."""

    def finish(self, window: np.ndarray) -> list[int]:
        """Everything left of the window, decoded greedily at full context."""
        self.full.set_audio(self.encode(window))
        draft = self._draft(token_budget(window.size, SAMPLE_RATE_HZ) - len(self.committed))
        return self._take(trim_repetition(draft.tokens))

    def _draft(self, max_tokens: int, guess: list[int] = (), should_stop=None) -> Draft:
        """Greedy continuation of the committed tokens, cut where it starts repeating the window."""
        if max_tokens <= 0:
            return Draft()
        max_tokens = min(max_tokens, self.engine.n_text_ctx // 2 - len(self.prompt) - len(self.committed))
        draft = greedy_draft(self.full, self.prompt + self.committed, max(0, max_tokens),
                             self.engine.vocab.is_end_of_generation, guess, should_stop)
        cut = first_repeat(self.committed + draft.tokens, len(self.committed))
        if cut is not None:
            n = cut - len(self.committed)
            draft = Draft(draft.tokens[:n], draft.logits[:n], ended=True)
        return draft

    def starts(self, tokens: list[int]) -> np.ndarray:
        pieces = [self.engine.vocab.piece(t).decode("utf-8", errors="replace") for t in tokens]
        starts = word_starts(pieces)
        if tokens and not self.committed:
            starts[0] = True
        return starts

    def _take(self, tokens: list[int]) -> list[int]:
        """Commit `tokens` (a whole-word prefix)."""
        self.committed += tokens
        self.n_words += int(self.starts(tokens).sum()) if tokens else 0
        return tokens


class LsgPolicy(WindowPolicy):
    def __init__(self, engine: SpeechEngine, prompt: list[int], options: SpeechPolicyOptions) -> None:
        super().__init__(engine, prompt, options)
        self.baseline = engine.new_context(prompt)
        self._guess: list[int] = []

    def reset(self) -> None:
        super().reset()
        self._guess = []

    def step(self, window: np.ndarray, n_segments: int) -> list[int]:
        o = self.options
        n_read = n_segments * o.words_per_segment
        out: list[int] = []
        while True:
            allowed = words_allowed(n_read, self.n_words, o.low_bound)
            if allowed == 0:
                break  # nothing may be written: no need to even encode
            self.full.set_audio(self.encode(window[: n_segments * o.segment_samples]))
            required = words_required(n_read, self.n_words, o.low_bound, o.top_bound)
            # The write test runs as the draft grows and ends it once the decision is known (the
            # first failing token, or the first token of a word that may not be written now):
            # every further token is a decoder call.
            run = LeadingRun(_BaselineView(self, window, n_segments), o, allowed, required)
            draft = self._draft(o.draft_tokens, self._guess, should_stop=run.complete)
            if not draft.tokens:
                break
            # A draft that "ended" on audio still arriving is no word boundary: Whisper closes a
            # sentence on a half-heard word ("the ancient fla" → "the ancient flag."), so the last
            # word waits for more audio or for the window's end.
            n_tokens, n_new_words = cut_at_words(self.starts(draft.tokens), run.n_accepted, allowed, required)
            if n_new_words == 0:
                self._guess = draft.tokens
                break
            out += self._take(draft.tokens[:n_tokens])
            self._guess = draft.tokens[n_tokens:]
            if n_tokens < len(draft.tokens):
                break  # the rest of this draft was judged already; decide again after the next READ
        return out

    def finish(self, window: np.ndarray) -> list[int]:
        self._guess = []
        return super().finish(window)


class _BaselineView:
    """What `LeadingRun` asks of a decision: token texts, and the wait-1 baseline — the decoder on
    the first min(i+1, j) segments, i = words committed in the window, j = segments read."""

    def __init__(self, policy: LsgPolicy, window: np.ndarray, n_segments: int) -> None:
        self._policy = policy
        self._window = window
        self._n_segments = n_segments
        self.at_target_start = not policy.committed

    def pieces(self, tokens: list[int]) -> list[str]:
        return [self._policy.engine.vocab.piece(t).decode("utf-8", errors="replace") for t in tokens]

    def baseline_logits(self, tokens: list[int], positions: list[int]) -> np.ndarray | None:
        policy = self._policy
        n_base = min(policy.n_words + 1, self._n_segments)
        if n_base == self._n_segments:
            return None  # the baseline reads everything too: P_base = P_cur
        policy.baseline.set_audio(policy.encode(self._window[: n_base * policy.options.segment_samples]))
        prefix = policy.prompt + policy.committed
        first = len(prefix) - 1
        return policy.baseline.logits_at(prefix + tokens[: max(positions) + 1], [first + k for k in positions])


class LocalAgreementPolicy(WindowPolicy):
    """LocalAgreement-2: commit what two consecutive hypotheses agree on (whole words)."""

    def reset(self) -> None:
        super().reset()
        self._previous: list[int] = []

    def step(self, window: np.ndarray, n_segments: int) -> list[int]:
        audio = window[: n_segments * self.options.segment_samples]
        self.full.set_audio(self.encode(audio))
        budget = token_budget(audio.size, SAMPLE_RATE_HZ) - len(self.committed)
        hypothesis = trim_repetition(self._draft(budget, self._previous).tokens)
        n_agree = common_prefix_length(hypothesis, self._previous)
        self._previous = hypothesis
        if n_agree == 0:
            return []
        # Whole words only: the agreed prefix must end where the next hypothesis token starts a word.
        starts = self.starts(hypothesis)
        n_tokens, _ = cut_at_words(starts, n_agree, max_words=len(hypothesis))
        taken = self._take(hypothesis[:n_tokens])
        self._previous = hypothesis[n_tokens:]
        return taken


class OfflinePolicy(WindowPolicy):
    """Full-window decoding at the cut: the quality reference, with the worst latency."""

    def step(self, window: np.ndarray, n_segments: int) -> list[int]:
        return []


def make_policy(engine: SpeechEngine, prompt: list[int], options: SpeechPolicyOptions) -> WindowPolicy:
    kinds = {"lsg": LsgPolicy, "local-agreement": LocalAgreementPolicy, "offline": OfflinePolicy}
    return kinds[options.name](engine, prompt, options)
