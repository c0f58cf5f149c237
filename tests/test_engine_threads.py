"""One TranslationEngine shared by several threads gives each session its serial output."""

from __future__ import annotations

import pytest

from lsg_edge import PolicyOptions, TranslationEngine
from lsg_edge.text.source import split_words
from tests.helpers.markers import MODEL, loads
from tests.helpers.threads import run_together


@pytest.fixture(scope="module")
@loads(MODEL)
def engine1():
    """The default model on one llama.cpp thread: on a busy machine, more threads mostly wait."""
    with TranslationEngine.load(n_threads=1) as loaded:
        yield loaded


def _translate(engine, sentence: str) -> str:
    session = engine.create_session("de", "en", policy=PolicyOptions(name="wait-k", k=3))
    commits = []
    for word in split_words(sentence):
        commits += session.push(word)
    commits += session.finish()
    return "".join(c.separator + c.text for c in commits)


def test_four_threads_give_the_serial_outputs(engine1, wmt_pairs):
    sentences = [source for source, _ in wmt_pairs[:200] if 5 <= len(source.split()) <= 10][:4]
    serial = [_translate(engine1, s) for s in sentences]
    results = run_together(lambda sentence: _translate(engine1, sentence), sentences)
    assert results == serial
