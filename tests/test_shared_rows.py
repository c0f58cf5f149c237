"""A tuning sweep's settings share logits rows: less llama.cpp work, the same rows."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lsg_edge import PolicyOptions, TranslationEngine
from lsg_edge.backends.llama import LlamaModel, LlamaOptions
from lsg_edge.evaluation.shared_rows import SharedRows, sharing_pool
from lsg_edge.manifest import load_manifest
from tests.helpers.tiny_audio_llm import prefer_words
from tests.helpers.tiny_models import make_hf_weights, tiny_spec, write_tiny_gguf

GRID = [PolicyOptions(name="lsg", delta=0.5, alpha=alpha, low_bound=low, top_bound=3, draft_tokens=6)
        for low in (1, 2) for alpha in (0.3, 0.6)] + [PolicyOptions(name="wait-k", k=2)]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    spec = tiny_spec("llama")
    path = tmp_path_factory.mktemp("tiny") / "tiny-llama-f32.gguf"
    return write_tiny_gguf(spec, prefer_words(make_hf_weights(spec, seed=3)), path)


def _sweep(path, shared: SharedRows | None) -> tuple[list[list[str]], int]:
    """Every setting of GRID over the same sentences, sentence by sentence; (texts, decode calls)."""
    rng = random.Random(7)
    sentences = [" ".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(4, 10))) for _ in range(6)]
    options = LlamaOptions(model_path=path, n_ctx_tokens=1024, n_threads=1, f32_attention=True)
    with TranslationEngine(LlamaModel(options), load_manifest("generic"), max_contexts=len(GRID)) as engine:
        if shared is not None:
            engine.pool = sharing_pool(engine, shared, len(GRID))
        sessions = [engine.create_session("de", "en", policy=policy) for policy in GRID]
        texts: list[list[str]] = [[] for _ in GRID]
        for sentence in sentences:
            if shared is not None:
                shared.clear()
            for k, session in enumerate(sessions):
                commits = [c for word in sentence.split() for c in session.push(word)] + session.finish()
                texts[k].append(" ".join(c.text for c in commits))
        calls = int(engine.counters["decode_calls"])
    return texts, calls


def test_shared_rows_cut_the_work_of_a_grid_and_commit_the_same_text(tiny_gguf) -> None:
    plain_texts, plain_calls = _sweep(tiny_gguf, None)
    shared = SharedRows()
    shared_texts, shared_calls = _sweep(tiny_gguf, shared)
    assert shared_texts == plain_texts  # F32 tiny model: the same text whoever computed a row
    assert shared.n_shared > 0
    assert shared_calls < 0.8 * plain_calls, (shared_calls, plain_calls)


def test_a_shared_row_is_the_row_the_context_computes(tiny_gguf) -> None:
    options = LlamaOptions(model_path=tiny_gguf, n_ctx_tokens=256, n_threads=1, f32_attention=True)
    model = LlamaModel(options)
    shared = SharedRows(max_rows=8)
    first, second, own = shared.wrap(model.new_context()), shared.wrap(model.new_context()), model.new_context()
    tokens = [1, 5, 9, 13, 17, 21]
    rows = first.logits_at(tokens, [2, 3, 4])
    assert second.has_rows(tokens, [2, 3]) and not second.has_rows(tokens, [5])
    calls = second.n_decode_calls
    again = second.logits_at(tokens, [3, 4])
    assert second.n_decode_calls == calls  # nothing computed: both rows were there
    np.testing.assert_allclose(again, rows[1:], rtol=0, atol=0)
    np.testing.assert_allclose(own.logits_at(tokens, [3, 4]), again, atol=1e-4)
    # A store over its bound starts over rather than grow.
    second.logits_at(tokens[:5] + [30, 31, 32, 33, 34, 35], list(range(4, 11)))
    assert len(shared._rows) <= 8
