"""Text decoding guards: repetition loops and prompt echoes are cut; input that cannot be used
is dropped with a warning; control characters never reach the output."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers.toy_model import ToyPrompt, ToyVocabulary, toy_pool

from lsg_edge import PolicyOptions, TranslationEngine, SessionOptions
from lsg_edge.errors import InputWarning
from lsg_edge.text.loops import echo_start, repeat_start, spans
from lsg_edge.text.prompt import _few_shot
from lsg_edge.text.session import TranslationSession
from lsg_edge.text.source import split_words
from tests.helpers.markers import MODEL, loads


@pytest.fixture(scope="module")
@loads(MODEL)
def engine1():
    """The default model on one llama.cpp thread: on a busy machine, more threads mostly wait."""
    with TranslationEngine.load(n_threads=1) as loaded:
        yield loaded


def _first_stop(tokens, check):
    for n in range(1, len(tokens) + 1):
        start = check(tokens[:n])
        if start is not None:
            return n, start
    return None


def test_a_short_period_loop_is_cut_after_its_first_copy():
    # "X an order of an order of an order of …": period 3.
    tokens = [9] + [1, 2, 3] * 6
    assert _first_stop(tokens, repeat_start) == (12, 4)


def test_a_long_period_loop_is_cut_at_its_second_copy():
    span = list(range(100, 138))  # a 38-token span, repeated
    tokens = [1, 2] + span * 3
    n, start = _first_stop(tokens, repeat_start)
    assert start == 2 + 38 and n == 2 + 38 + 8


def test_ordinary_repetition_is_not_a_loop():
    # Spans shorter than the guard's recur in real sentences; distinct text never stops.
    assert _first_stop([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3], repeat_start) is None
    assert _first_stop(list(range(300)), repeat_start) is None


def test_prompt_echo_is_cut():
    forbidden = spans([50, 51, 52, 53, 54, 55, 56], 6)
    target = [1, 2, 50, 51, 52, 53, 54, 55]
    assert _first_stop(target, lambda t: echo_start(t, forbidden)) == (8, 2)
    assert _first_stop(target, lambda t: echo_start(t, set())) is None


def test_control_characters_never_reach_words():
    # Whole escape sequences go, payload included (an OSC title, a C1 CSI); a lone NUL too.
    assert split_words("\x1b]0;pwned\x07 Hallo\x9b2J Welt \x00") == ["Hallo", "Welt"]


def _translate(engine, words, policy, options=SessionOptions()):
    session = engine.create_session("de", "en", policy=policy, options=options)
    commits = []
    for word in words:
        commits += session.push(word)
    commits += session.finish()
    return "".join(c.separator + c.text for c in commits)


class LoopingContext:
    """A model stuck in a loop: after any prefix it continues the cycle " w5 w6 w7 w5 …"."""

    def logits_at(self, tokens, positions):
        rows = np.full((len(positions), ToyVocabulary.n_vocab), -10.0, np.float32)
        for k, p in enumerate(positions):
            last = tokens[p]
            rows[k, 5 + (last - 4) % 3 if 5 <= last <= 7 else 5] = 10.0
        return rows


def _looping_session(policy: PolicyOptions) -> TranslationSession:
    vocab = ToyVocabulary()
    return TranslationSession(pool=toy_pool(LoopingContext), vocab=vocab, prompt=ToyPrompt(vocab),
                              policy=policy, options=SessionOptions(), n_ctx_tokens=4096)


def _run(session, words):
    commits = [c for w in words for c in session.push(w)] + session.finish()
    return "".join(c.separator + c.text for c in commits)


def test_decoding_to_the_end_stops_a_loop_after_its_first_copy():
    # Before the guard: 3 tokens per source token + 8, i.e. 38 words of "w5 w6 w7 …" here.
    text = _run(_looping_session(PolicyOptions(name="offline")), [f"s{j}" for j in range(10)])
    assert text == "w5 w6 w7"


def test_streaming_stops_committing_a_loop():
    # wait-1 commits a word per source word; the guard sees the loop once its drafts repeat a span.
    text = _run(_looping_session(PolicyOptions(name="wait-k", k=1)), [f"s{j}" for j in range(40)])
    assert len(text.split()) <= 3 + 8, text


def test_a_source_that_repeats_itself_may_be_translated_with_repeats():
    text = _run(_looping_session(PolicyOptions(name="offline")), "a b c a b c a b c".split())
    assert len(text.split()) > 3
    assert len(text.split()) <= 2 * 9 + 8  # the length cap: 2 target tokens per source token, + 8


@pytest.mark.parametrize("length", [3000, 12000])
def test_an_overlong_word_is_dropped_with_a_warning(engine1, length):
    word = ("abcdefghij" * (length // 10 + 1))[:length]
    session = engine1.create_session("de", "en", policy=PolicyOptions(name="wait-k", k=3))
    with pytest.warns(InputWarning, match=f"dropped a source word of {length} characters"):
        commits = session.push(word)
    commits += [c for w in "Guten Morgen .".split() for c in session.push(w)] + session.finish()
    assert "morning" in " ".join(c.text for c in commits).lower()


@pytest.mark.parametrize("word", [("abcdefghij" * 300), "".join(chr(97 + (i * 7) % 26) for i in range(3000))])
def test_prompt_text_never_leaks_into_the_output(engine1, word):
    # With the word-length limit lifted, a 3,000-character word used to make the model recite a
    # few-shot example (German or English) as its "translation".
    text = _translate(engine1, [word], PolicyOptions(name="offline"), SessionOptions(max_word_chars=5000))
    for example in _few_shot()["examples"]:
        for side in (example["de"], example["en"]):
            words = side.split()
            assert not any(" ".join(words[i : i + 4]) in text for i in range(len(words) - 3)), text


def test_a_few_shot_example_as_source_is_still_translated(engine1):
    example = _few_shot()["examples"][0]
    text = _translate(engine1, split_words(example["de"]), PolicyOptions(name="wait-k", k=3))
    assert "bridge" in text.lower() and "river" in text.lower(), text
