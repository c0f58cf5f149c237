"""One stream's decoding state over the open audio window, and the decision view it offers.

A window is the audio since the last cut (≤ 30 s). Source elements are segments of
`segment_ms`; after each new segment the session asks the policy (`lsg_edge.policy`) for decisions
through a `SegmentView`, and commits what it writes. At the cut, `finish` decodes everything left
at full context. Committed tokens are final; drafting continues after them.

For LSG the two distributions are:
  full context  = the decoder over the encoder output of all j segments read;
  baseline      = the decoder over the first min(i+1, j) segments, i = words committed in the window
                  (its encoder output changes only when a word is committed, and is cached).
What is audio-specific stays here: the per-window encoder cache, the draft budget of a window, the
guards against Whisper's repetition loops, and the *edge hold-back*: Whisper ends its transcript
where the audio heard so far ends, and transcribes the words it heard only in part there with
confidence, often wrongly ("scrubbed" heard as "grabbed" before its end arrives). So the last
`edge_words` words of a draft that reached the end of the audio are not offered to the policy
until more audio has come after them (the last one never was: nothing marked where it ends).
Until a window has committed a word, Whisper's no-speech test (`no_speech`) may hold it: a window
whose audio the model judges not to be speech reads on, and at its cut commits nothing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..commits import WrittenTokens
from ..errors import OptionsError
from ..policy.drafting import Draft, greedy_draft, word_limit
from ..policy.options import PolicyOptions
from ..policy.interface import Policy, Write, run_decisions
from ..policy.words import word_starts
from .asr_engine import AsrEngine, AudioContext
from .features import HOP_SAMPLES, SAMPLE_RATE_HZ
from .loops import first_repeat, token_budget, trim_repetition
from .no_speech import NoSpeechOptions, holds_no_speech, mean_log_probability

__all__ = ["WindowDecoder", "SegmentView", "hold_back_edge"]

# Encoder outputs kept per window: a decision asks for the full prefix and the baseline prefix,
# and only the latest lengths are ever asked for again.
_ENCODED_KEPT = 4


class WindowDecoder:
    """Committed tokens, the last draft and encoder outputs of the open window, over two contexts
    (the full prefix, and the wait-1 baseline when the policy needs one)."""

    def __init__(self, engine: AsrEngine, prompt: list[int], policy: PolicyOptions, segment_samples: int,
                 edge_words: int = 1, beam_size: int = 1, no_speech: NoSpeechOptions = NoSpeechOptions()) -> None:
        if beam_size > 1 and not hasattr(engine, "beam_search"):
            raise OptionsError("--beam needs a Whisper model")
        self.engine = engine
        self.beam_size = beam_size  # beams of the decode that commits the rest of a window (1: greedy)
        self.prompt = prompt
        self.policy = policy
        self.segment_samples = segment_samples
        self.edge_words = edge_words  # words at the end of the heard audio held back (module docstring)
        self.no_speech = no_speech
        self._acquire_contexts()
        self._encoded: dict[int, object] = {}  # n_samples → encoder output, this window
        self.reset()

    def reset(self, prompt: list[int] | None = None, n_carried: int = 0) -> None:
        """A new window starts, with another decoder `prompt` if given, whose first `n_carried`
        tokens are text carried over from earlier windows (they do not count against the window's
        own token budget, half the decoder context, as in Whisper's own decoding)."""
        self._n_carried = n_carried
        if prompt is not None and prompt != self.prompt:
            # A context is made for one prompt (Whisper's first output position depends on it).
            self.close()
            self.prompt = prompt
            self._acquire_contexts()
        self.committed: list[int] = []  # tokens committed in this window
        self.n_words = 0  # words committed in this window
        self.guess: list[int] = []  # the last draft's uncommitted tokens
        self._encoded.clear()

    def _acquire_contexts(self) -> None:
        """The full-prefix context, and the wait-1 baseline's when the policy tests against it."""
        self.full: AudioContext | None = self.engine.acquire_context(self.prompt)
        self.baseline: AudioContext | None = (
            self.engine.acquire_context(self.prompt) if self.policy.name == "lsg" else None
        )

    def close(self) -> None:
        """Give the contexts back to the engine."""
        for context in (self.full, self.baseline):
            if context is not None:
                self.engine.release_context(context)
        self.full = self.baseline = None

    def encode(self, audio: np.ndarray):
        """Encoder output of `audio` (a prefix of the window), computed once per length."""
        key = audio.size
        if key not in self._encoded:
            if len(self._encoded) >= _ENCODED_KEPT:
                self._encoded.pop(min(self._encoded))
            self._encoded[key] = self.engine.encode(audio)
        return self._encoded[key]

    def view(self, window: np.ndarray, n_segments: int) -> "SegmentView":
        return SegmentView(self, window, n_segments)

    def step(self, policy: Policy, window: np.ndarray, n_segments: int) -> list[WrittenTokens]:
        """Ask `policy` after segment `n_segments` of `window` was read, until it reads; what it
        wrote, write by write ([] = READ)."""
        out: list[WrittenTokens] = []
        if not self.committed and self._holds_no_speech(window[: n_segments * self.segment_samples]):
            return out

        def commit(tokens: list[int], rest: list[int], write: Write) -> None:
            out.append(WrittenTokens(self.take(tokens), write.cause))
            self.guess = rest

        guess = run_decisions(policy, lambda: self.view(window, n_segments), commit)
        if guess is not None:
            self.guess = guess
        return out

    def take(self, tokens: list[int]) -> list[int]:
        """Commit `tokens` (a whole-word prefix of the last draft)."""
        self.committed += tokens
        self.n_words += int(self.starts(tokens).sum()) if tokens else 0
        return tokens

    def finish(self, window: np.ndarray) -> WrittenTokens:
        """Everything left of the window, decoded greedily at full context."""
        self.full.set_audio(self.encode(window))
        self.guess = []
        draft = self.draft(token_budget(window.size, SAMPLE_RATE_HZ) - len(self.committed), beam_size=self.beam_size)
        if not self.committed and self._is_no_speech(draft):
            return WrittenTokens([], "source-end")
        return WrittenTokens(self.take(trim_repetition(draft.tokens)), "source-end")

    def _holds_no_speech(self, audio: np.ndarray) -> bool:
        """Whether the window so far sounds like no speech (then the policy is not asked). The draft
        made here is the one the policy would make first, so its rows are reused, not recomputed."""
        if not self.no_speech.enabled or not hasattr(self.full, "no_speech_probability"):
            return False
        if self.policy.name == "offline":
            return False  # it writes nothing before the cut, where the test is made anyway
        self.full.set_audio(self.encode(audio))
        draft = self.draft(self.policy.draft_tokens, self.guess)
        self.guess = draft.tokens
        return self._is_no_speech(draft)

    def _is_no_speech(self, draft: Draft) -> bool:
        """Whisper's no-speech rule on `draft`, decoded after the committed tokens at full context
        (`no_speech`); never for engines whose contexts do not report the probability."""
        probability = getattr(self.full, "no_speech_probability", None)
        if not self.no_speech.enabled or probability is None:
            return False
        tokens = draft.tokens + ([self.engine.vocab.eot] if draft.ended else [])
        if not tokens:
            return False
        prefix = self.prompt + self.committed
        rows = self.full.logits_at(prefix + tokens, range(len(prefix) - 1, len(prefix) - 1 + len(tokens)))
        return holds_no_speech(probability, mean_log_probability(rows, tokens), self.no_speech)

    def draft(self, max_tokens: int, guess: list[int] = (), should_stop=None, beam_size: int = 1) -> Draft:
        """Greedy (or beam-search) continuation of the committed tokens, cut where it starts
        repeating the window."""
        if max_tokens <= 0:
            return Draft()
        room = self.engine.n_text_ctx // 2 - (len(self.prompt) - self._n_carried) - len(self.committed)
        max_tokens = min(max_tokens, room)
        if beam_size > 1:
            draft = self.engine.beam_search(self.prompt, self.committed, self.full.audio, beam_size, max(0, max_tokens))
        else:
            draft = greedy_draft(self.full, self.prompt + self.committed, max(0, max_tokens),
                                 self.engine.vocab.is_end_of_generation, guess, should_stop)
        cut = first_repeat(self.committed + draft.tokens, len(self.committed))
        if cut is not None:
            draft = draft.cut(cut - len(self.committed), ended=True)
        return draft

    def pieces(self, tokens: list[int]) -> list[str]:
        return [self.engine.vocab.piece(t).decode("utf-8", errors="replace") for t in tokens]

    def starts(self, tokens: list[int]) -> np.ndarray:
        return word_starts(self.pieces(tokens), at_target_start=not self.committed)


def hold_back_edge(draft: Draft, starts: np.ndarray, n_words: int) -> Draft:
    """`draft` without its last `n_words` words if it reached the end of the audio heard so far
    (`draft.ended`), as a draft that did not end; otherwise `draft` itself. `starts`: bool per token,
    whether it begins a word.

    The first token of the first held-back word stays, so that the policy sees where the last word
    it may write ends (a cut falls only before a word's first token); that token itself can never
    be written, as no word start follows it."""
    if not draft.ended or n_words == 0:
        return draft
    first_tokens = np.flatnonzero(starts)
    keep = int(first_tokens[-n_words]) if n_words <= first_tokens.size else 0
    return draft.cut(keep + 1)


class SegmentView:
    """The `policy.interface.DecisionView` of a window after `n_segments` segments were read;
    remembers the draft it made."""

    stop_ends_word = False  # Whisper's end of transcript marks where the audio so far ends
    # After a write that leaves part of the draft, the rest waits for the next segment: the edge
    # hold-back has judged it already.
    decides_again_after_partial_write = False

    def __init__(self, decoder: WindowDecoder, window: np.ndarray, n_segments: int) -> None:
        self._decoder = decoder
        self._window = window
        self.n_read = n_segments
        self.n_committed_words = decoder.n_words
        self.at_target_start = not decoder.committed
        self.last_draft: Draft | None = None

    def _read_audio(self) -> np.ndarray:
        return self._window[: self.n_read * self._decoder.segment_samples]

    def draft(self, max_words: int, should_stop: Callable[[list[int], np.ndarray], bool] | None = None) -> Draft:
        d = self._decoder
        d.full.set_audio(d.encode(self._read_audio()))
        has_enough = word_limit(lambda token: d.engine.vocab.piece(token)[:1].isspace(), max_words)

        # The unfinished last word is never written anyway (no boundary follows it): only holding
        # back more needs to know where the edge is.
        holding_back = d.edge_words > 1

        def stop(tokens: list[int], row: np.ndarray) -> bool:
            policy_done = should_stop is not None and should_stop(tokens, row)
            # Holding back, the policy's early stop is not taken: which words lie at the edge of the
            # audio is known only once the draft reaches the end of transcript. The policy still
            # sees (and tests) every token as it is drafted.
            return (policy_done and not holding_back) or has_enough(tokens)

        self.last_draft = d.draft(d.policy.draft_tokens, d.guess, should_stop=stop)
        if not holding_back:
            return self.last_draft
        return hold_back_edge(self.last_draft, d.starts(self.last_draft.tokens), d.edge_words)

    def hypothesis(self) -> Draft:
        d = self._decoder
        audio = self._read_audio()
        d.full.set_audio(d.encode(audio))
        draft = d.draft(token_budget(audio.size, SAMPLE_RATE_HZ) - len(d.committed), d.guess)
        self.last_draft = Draft(trim_repetition(draft.tokens), draft.ended)
        return self.last_draft

    def baseline_logits(self, tokens: list[int], positions: list[int]) -> np.ndarray | None:
        d = self._decoder
        n_base = min(d.n_words + 1, self.n_read)
        if n_base == self.n_read:
            return None  # the baseline reads everything too: P_base = P_cur
        d.baseline.set_audio(d.encode(self._window[: n_base * d.segment_samples]))
        prefix = d.prompt + d.committed
        first = len(prefix) - 1
        return d.baseline.logits_at(prefix + tokens[: max(positions)], [first + k for k in positions])

    def pieces(self, tokens: list[int]) -> list[str]:
        return self._decoder.pieces(tokens)

    @property
    def n_heard_frames(self) -> int:
        """Encoder frames (2 mel hops each) of the audio read; AlignAtt's "heard so far"."""
        return self.n_read * self._decoder.segment_samples // (2 * HOP_SAMPLES)

    def draft_attention(self, tokens: list[int]) -> np.ndarray:
        """The full context's alignment-head cross-attention of every row from the prompt's first
        through the one that predicted the last draft token: float32 [len(prompt) + len(committed)
        + len(tokens) − 1, n_heads, n_frames] (`policy.alignatt.AttentionView`)."""
        d = self._decoder
        sequence = d.prompt + d.committed + list(tokens)
        return d.full.attention_at(sequence, range(len(sequence) - 1))
