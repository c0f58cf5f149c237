"""One TranslationEngine shared by several threads gives each session its serial output."""

from __future__ import annotations

import threading

import pytest

from lsg_edge import PolicyOptions, TranslationEngine
from lsg_edge.text.source import split_words
from tests.helpers.markers import MODEL, loads


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
    results: list[str | BaseException | None] = [None] * 4
    start = threading.Barrier(4)

    def work(k: int) -> None:
        start.wait()
        try:
            results[k] = _translate(engine1, sentences[k])
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            results[k] = e

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert results == serial
