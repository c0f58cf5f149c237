"""A simultaneous translation session: source words in, committed target words out.

The session holds one stream's state (the current sentence's source words and committed target
tokens) and the llama.cpp contexts it borrowed from its engine's pool — the full prefix, and the
wait-1 baseline once a policy asks for it — until `close()`. Committed text is final: it is never
retracted or revised.
"""

from __future__ import annotations

import functools
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from ..backends.base import ScoringContext, Vocabulary
from ..backends.pool import ContextPool
from ..commits import CommitBuilder, WrittenTokens
from ..errors import InputWarning, LsgEdgeError, OptionsError
from ..events import Commit
from ..policy.drafting import Draft, greedy_draft, word_limit
from ..policy.interface import Write, run_decisions
from ..policy.options import PolicyOptions
from ..policy.strategies import Policy, make_policy
from ..policy.words import word_starts
from .loops import ECHO_SPAN_TOKENS, echo_start, repeat_start, spans
from .escapes import strip_escapes
from .limits import check_session_limits
from .prompt import TranslationPrompt
from .source import CONTROL_CHARACTERS, SourceEvent, has_letter_or_digit, join_words

__all__ = ["Commit", "SessionOptions", "TranslationSession"]

# A source repeating a span of this many words turns the target's repetition guard off.
SOURCE_REPEAT_WORDS = 3
# Word budget of a hypothesis: the draft is then bounded by its token budget only.
_UNBOUNDED_WORDS = 1 << 30


@dataclass(frozen=True)
class SessionOptions:
    """Limits that keep a stream bounded whatever arrives."""

    max_source_words: int = 64  # longer sentences are cut here and finished, words
    max_prefix_fraction: float = 0.5  # a sentence is cut once its prompt fills this share of n_ctx
    # Cap on a sentence's target, tokens per source token (+ 8): a loop the repetition guard does
    # not recognise still ends. wmt15-deen-dev's 500 references, Gemma 3 tokenizer: median 0.91
    # (De→En) and 1.22 (En→De) tokens per source token; none over the cap in either direction.
    max_target_per_source_token: float = 2.0
    max_word_chars: int = 100  # a longer "word" is dropped with an InputWarning (not language)

    def __post_init__(self) -> None:
        if self.max_source_words < 1:
            raise OptionsError(f"max_source_words must be positive, got {self.max_source_words}")
        if self.max_word_chars < 1:
            raise OptionsError(f"max_word_chars must be positive, got {self.max_word_chars}")
        if not 0.1 <= self.max_prefix_fraction <= 0.9:
            raise OptionsError(f"max_prefix_fraction must be in [0.1, 0.9], got {self.max_prefix_fraction}")


@dataclass
class _Sentence:
    """Per-sentence state."""

    index: int
    words: list[str] = field(default_factory=list)
    target: list[int] = field(default_factory=list)  # committed target tokens
    n_words_committed: int = 0
    guess: list[int] = field(default_factory=list)  # the last draft's uncommitted tokens
    held: list[str] = field(default_factory=list)  # words before the first with a letter or digit
    # (number of words they were built from, echo-length token spans the target may not hold,
    # whether the source repeats a span of words itself)
    source_facts: tuple[int, set, bool] = field(default_factory=lambda: (-1, set(), False))


class TranslationSession:
    """One input stream. `push` words, `finish` each sentence; both return new `Commit`s.

    A session is used by one thread at a time; sessions of one engine may run on different threads
    at once, each on its own contexts. `close()` (or `with`) gives the contexts back to the engine.
    """

    def __init__(
        self,
        pool: ContextPool,
        vocab: Vocabulary,
        prompt: TranslationPrompt,
        policy: PolicyOptions,
        options: SessionOptions,
        n_ctx_tokens: int,
    ) -> None:
        check_session_limits(prompt, policy, n_ctx_tokens, options.max_source_words, options.max_prefix_fraction)
        # One pooled pair of contexts: the full prefix and the wait-1 baseline. It goes back to the
        # pool at close(), or when the session is garbage-collected.
        pair = pool.acquire()
        self._release = weakref.finalize(self, pool.release, pair)
        self._full: ScoringContext = pair.full
        self._baseline: ScoringContext = pair.baseline
        self._counted_from = {"full": _work_of(self._full), "baseline": _work_of(self._baseline)}  # pooled: they run on
        self._closed = False
        self._vocab = vocab
        self._commits = CommitBuilder(vocab.piece, stream="source")
        self._prompt = prompt
        self.policy_options = policy
        self._policy: Policy = make_policy(policy)
        self.options = options
        self._n_ctx = n_ctx_tokens
        self._new_sentence(0)
        self._echo_spans: list[tuple[set, set]] | None = None  # (spans of prompt text, of its permit)

    # --- public API -----------------------------------------------------------------------------

    def push(self, word: str, decide: bool = True, join: bool = False) -> list[Commit]:
        """Read one source word; return what the policy commits in response (maybe nothing).

        `decide=False` reads the word without asking the policy: for words that arrive together
        (a caption commit of several words), where a decision between them could only cost time.
        `join=True`: `word` is the rest of the last word read (captions may commit "ring", then
        "leader,"); it is appended to that word, which the next drafts then read whole.

        A "word" longer than `options.max_word_chars` is dropped with an `InputWarning`: no
        language has such words, and a model fed one may recite its prompt instead of translating.
        Words without a letter or digit ("...", "---") wait for one that has: a sentence of them
        alone is written through as it came, since a model given nothing to translate invents."""
        word = CONTROL_CHARACTERS.sub("", strip_escapes(word)).strip()
        if not word:
            return []
        if len(word) > self.options.max_word_chars:
            warnings.warn(
                f"dropped a source word of {len(word)} characters (longer than {self.options.max_word_chars}): "
                f"{word[:20]}…",
                InputWarning,
                stacklevel=2,
            )
            return []
        self._check_open()
        events: list[Commit] = []
        if join and self._sentence.words:
            self._sentence.words[-1] += word
            self._sentence.source_facts = (-1, set(), False)  # computed from the words
            return self._decide() if decide else events
        if not self._sentence.words and not has_letter_or_digit(word):
            self._sentence.held.append(word)
            return events
        if self._must_cut(word):
            events += self._finish()
        s = self._sentence
        if not s.words:
            self._commits.start_sentence(s.index)  # its commits' elapsed time counts from this word
            s.words, s.held = s.held, []
        s.words.append(word)
        if decide:
            events += self._decide()
        return events

    def finish(self) -> list[Commit]:
        """End the current sentence: decode and commit the rest of its translation.

        Returns the remaining commits, the last one flagged `sentence_end` (possibly empty text).
        The next `push` starts a new sentence.
        """
        self._check_open()
        return self._finish()

    def _finish(self) -> list[Commit]:
        s = self._sentence
        if not s.words:
            return self._pass_through()
        prefix = self._full_prefix()
        budget = min(self._n_ctx - len(prefix) - 1, self._target_cap() - len(s.target))
        tokens: list[int] = []
        if budget > 0:
            guard = _LoopGuard(self)
            tokens = greedy_draft(self._full, prefix, budget, self._prompt.is_stop, guess=s.guess,
                                  should_stop=guard).tokens
            tokens = tokens[: guard.keep(len(tokens))]
        event = self._commit(WrittenTokens(tokens, "source-end"), sentence_end=True)
        self._new_sentence(s.index + 1)
        return [event] if event is not None else []  # a text sentence always ends with one

    def translate_stream(self, events: Iterable[SourceEvent], catch_up: bool = False) -> Iterator[Commit]:
        """Translate a stream of source words and sentence ends (see `source.read_words`),
        yielding each commit as soon as it is made. A stream that ends mid-sentence is finished.

        `catch_up`: words that came together with later ones (`SourceEvent.more_waiting`: they were
        waiting while the last decision ran) are read without a decision; the policy decides after
        the last of them. Input faster than the machine translates then keeps a bounded lag instead
        of one that grows with the stream; a file piped in whole is translated sentence by sentence."""
        for event in events:
            yield from self.read(event, catch_up)
        yield from self.finish()

    def read(self, event: SourceEvent, catch_up: bool = False) -> list[Commit]:
        """One item of a source stream (a word, a sentence end, or both): what it commits.
        `catch_up` as in `translate_stream`."""
        commits = self.push(event.word, decide=not (catch_up and event.more_waiting)) if event.word is not None else []
        return commits + self.finish() if event.sentence_end else commits

    def reset(self) -> None:
        """Drop the current sentence without output and start over at sentence 0."""
        self._new_sentence(0)

    def close(self) -> None:
        """Drop the current sentence without output and give the contexts back to the engine
        (idempotent). A closed session takes no more input."""
        self.reset()
        self._closed = True
        self._release()

    def _check_open(self) -> None:
        if self._closed:
            raise LsgEdgeError("this translation session is closed")

    @property
    def counters(self) -> dict[str, float]:
        """This session's llama_decode calls, tokens, logits rows and seconds in llama_decode, per
        context ("full_*", "baseline_*")."""
        out: dict[str, float] = {}
        for name, context in (("full", self._full), ("baseline", self._baseline)):
            now, start = _work_of(context), self._counted_from[name]
            for key, a, b in zip(("decode_calls", "tokens", "logits_rows", "decode_seconds"), now, start):
                out[f"{name}_{key}"] = a - b
        return out

    def __enter__(self) -> "TranslationSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_sentence(self, index: int) -> None:
        self._sentence = _Sentence(index=index)
        self._policy.reset()

    @property
    def sentence_index(self) -> int:
        return self._sentence.index

    @property
    def tentative(self) -> str:
        """The target words the last draft holds beyond the committed ones in the open sentence
        ("" when none): a preview for display that the next word may change; never committed as such."""
        guess = self._sentence.guess
        if not guess or not self._sentence.words:
            return ""
        text = b"".join(self._vocab.piece(t) for t in guess).decode("utf-8", errors="replace")
        return CONTROL_CHARACTERS.sub("", text).strip()

    @property
    def source_words(self) -> list[str]:
        """Source words read in the current sentence."""
        return list(self._sentence.words)

    # --- the decision loop ----------------------------------------------------------------------

    def _decide(self) -> list[Commit]:
        events = []

        def commit(tokens: list[int], rest: list[int], write: Write) -> None:
            self._sentence.guess = rest
            event = self._commit(WrittenTokens(tokens, write.cause))
            if event is not None:
                events.append(event)

        guess = run_decisions(self._policy, lambda: _View(self), commit)
        if guess is not None:
            self._sentence.guess = guess
        return events

    def _commit(self, written: WrittenTokens, sentence_end: bool = False) -> Commit | None:
        """Commit the tokens of one write; the event for it (None: nothing visible yet, such as the
        first bytes of a character that the next write completes)."""
        s = self._sentence
        s.n_words_committed += int(word_starts(self._pieces(written.tokens), not s.target).sum())
        s.target.extend(written.tokens)
        return self._commits.build(written, source_read=len(s.words), end=sentence_end)

    def _pieces(self, tokens: list[int]) -> list[str]:
        """Text of each token."""
        return [self._vocab.piece(t).decode("utf-8", errors="replace") for t in tokens]

    def _pass_through(self) -> list[Commit]:
        """The held words of a sentence without a letter or digit, committed as they came."""
        s = self._sentence
        if not s.held:
            return []
        text = join_words(s.held)
        event = Commit(text=text, separator="", sentence_index=s.index, source_read=len(s.held), elapsed_ms=0.0,
                       n_words=len(s.held), sentence_end=True, wall_time_s=time.monotonic())
        self._new_sentence(s.index + 1)
        return [event]

    def _must_cut(self, next_word: str) -> bool:
        """Whether the current sentence must end before `next_word` joins it (bounded windows)."""
        s = self._sentence
        if not s.words:
            return False
        if len(s.words) >= self.options.max_source_words:
            return True
        n_prefix = len(self._prompt.prefix_tokens(join_words(s.words + [next_word])))
        return n_prefix + len(s.target) > self.options.max_prefix_fraction * self._n_ctx

    def _target_cap(self) -> int:
        """Most target tokens the current sentence may have (see SessionOptions)."""
        source = join_words(self._sentence.words)
        n_source = len(self._prompt.prefix_tokens(source)) - len(self._prompt.prefix_tokens(""))
        return int(self.options.max_target_per_source_token * max(n_source, 1)) + 8

    def _loop_start(self, draft: list[int]) -> int | None:
        """Where the target (committed + `draft`) must end because its newest token completes a
        repeated span or an echo of the prompt (see `loops`); None if it may go on."""
        s = self._sentence
        target = s.target + draft
        if s.source_facts[0] != len(s.words):
            s.source_facts = (len(s.words), *self._source_facts(s.words))
        _, forbidden, source_repeats = s.source_facts
        # A source that repeats itself may rightly be translated with repeats: the length cap
        # still bounds that sentence.
        start = None if source_repeats else repeat_start(target)
        return start if start is not None else echo_start(target, forbidden)

    def _source_facts(self, words: list[str]) -> tuple[set, bool]:
        """(prompt spans the target may not hold given these source words, whether they repeat a
        span of SOURCE_REPEAT_WORDS words)."""
        if self._echo_spans is None:
            echo_texts = getattr(self._prompt, "echo_texts", lambda: [])()
            self._echo_spans = [(self._spans(text), self._spans(permit) if permit else set())
                                for text, permit in echo_texts]
        source = self._spans(join_words(words))
        forbidden = set().union(*(text - source for text, permit in self._echo_spans if not permit & source))
        n = SOURCE_REPEAT_WORDS
        word_spans = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        return forbidden, len(set(word_spans)) < len(word_spans)

    def _spans(self, text: str) -> set:
        return spans(self._vocab.tokenize(" " + text, add_bos=False), ECHO_SPAN_TOKENS)

    def _full_prefix(self) -> list[int]:
        s = self._sentence
        return self._prompt.prefix_tokens(join_words(s.words)) + s.target

    def _baseline_prefix(self) -> list[int]:
        s = self._sentence
        n_source = min(s.n_words_committed + 1, len(s.words))
        return self._prompt.prefix_tokens(join_words(s.words[:n_source])) + s.target


def _work_of(context) -> tuple[int, int, int, float]:
    """A context's work counters so far (contexts that count nothing give zeros)."""
    return (getattr(context, "n_decode_calls", 0), getattr(context, "n_tokens_evaluated", 0),
            getattr(context, "n_logits_rows", 0), getattr(context, "decode_seconds", 0.0))


class _LoopGuard:
    """A draft's `should_stop` that ends it where the target starts to loop or echo the prompt."""

    def __init__(self, session: TranslationSession) -> None:
        self._session = session
        self._committed = len(session._sentence.target)
        self.start: int | None = None  # where the target must end, in target positions

    def __call__(self, tokens: list[int], row: np.ndarray | None = None) -> bool:  # noqa: ARG002
        self.start = self._session._loop_start(tokens)
        return self.start is not None

    def keep(self, n_drafted: int) -> int:
        """How many of the drafted tokens may be used."""
        return n_drafted if self.start is None else max(self.start - self._committed, 0)


class _View:
    """`DecisionView` over a session at one decision; remembers the draft it made."""

    def __init__(self, session: TranslationSession) -> None:
        self._session = session
        self.n_read = len(session._sentence.words)
        self.n_committed_words = session._sentence.n_words_committed
        self.at_target_start = not session._sentence.target
        self.stop_ends_word = True  # the model's stop token closes the translation
        self.decides_again_after_partial_write = True
        self.last_draft: Draft | None = None
        self._guess: list[int] = []  # the previous draft as this view's draft verifies it

    def hypothesis(self) -> Draft:
        # Bounded by the draft budget only: agreement beyond it could not be committed before the
        # words in front of it anyway.
        return self.draft(max_words=_UNBOUNDED_WORDS)

    def draft(self, max_words: int, should_stop: Callable[[list[int], np.ndarray], bool] | None = None) -> Draft:
        session = self._session
        has_enough = word_limit(lambda token: session._vocab.piece(token)[:1].isspace(), max_words)

        guard = _LoopGuard(session)

        def stop(tokens: list[int], row: np.ndarray) -> bool:
            return guard(tokens) or (should_stop is not None and should_stop(tokens, row)) or has_enough(tokens)

        # The previous draft, cut where it would stop anyway, so that verifying it asks for no
        # logits rows the policy cannot use.
        guess = session._sentence.guess
        for end in range(2, len(guess) + 1):
            if has_enough(guess[:end]):
                guess = guess[:end]
                break
        self._guess = guess
        room = min(session.policy_options.draft_tokens, session._target_cap() - len(session._sentence.target))
        if room <= 0:
            self.last_draft = Draft()
            return self.last_draft
        draft = greedy_draft(
            session._full,
            self.full_prefix,
            room,
            session._prompt.is_stop,
            guess=guess,
            should_stop=stop,
        )
        if guard.start is not None:
            # Nothing from the loop's start on is offered for commit; the sentence's end cuts it there.
            keep = guard.keep(len(draft.tokens))
            draft = draft.cut(keep)
        self.last_draft = draft
        return self.last_draft

    def baseline_logits(self, tokens: list[int], positions: list[int]) -> np.ndarray | None:
        session = self._session
        prefix = session._baseline_prefix()
        if prefix == self.full_prefix:
            return None
        first = len(prefix) - 1
        # While the draft follows the previous one (the guess), the baseline rows of the guessed
        # tokens still ahead come in the same call: the leading-run test asks for them next unless
        # confidence passes there, and a further row costs a fraction of a further llama_decode.
        guess = self._guess
        wanted = list(positions)
        if tokens == guess[: len(tokens)] and len(guess) > max(positions) + 1:
            wanted += range(max(positions) + 1, len(guess))
            tokens = guess
        rows = session._baseline.logits_at(prefix + tokens[: max(wanted)], [first + k for k in wanted])
        return rows[: len(positions)]

    @functools.cached_property
    def full_prefix(self) -> list[int]:
        return self._session._full_prefix()

    def pieces(self, tokens: list[int]) -> list[str]:
        return self._session._pieces(tokens)


