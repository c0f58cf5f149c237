"""Sessions own the contexts they borrow: outputs never depend on other sessions, the pool is
bounded, and closing gives contexts back. A tiny F32 model keeps these checks fast and exact."""

from __future__ import annotations

import random

import pytest

from lsg_edge import PolicyOptions, TranslationEngine
from lsg_edge.backends.llama import LlamaModel, LlamaOptions
from lsg_edge.errors import EngineBusy
from lsg_edge.manifest import load_manifest
from tests.helpers.tiny_audio_llm import prefer_words
from tests.helpers.threads import run_together
from tests.helpers.tiny_models import make_hf_weights, tiny_spec, write_tiny_gguf

LSG = PolicyOptions(name="lsg", delta=0.5, alpha=0.3, low_bound=1, top_bound=3, draft_tokens=6)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    spec = tiny_spec("llama")
    path = tmp_path_factory.mktemp("tiny") / "tiny-llama-f32.gguf"
    return write_tiny_gguf(spec, prefer_words(make_hf_weights(spec, seed=3)), path)


def tiny_engine(path, max_contexts: int = 4) -> TranslationEngine:
    options = LlamaOptions(model_path=path, n_ctx_tokens=1024, n_threads=1)
    return TranslationEngine(LlamaModel(options), load_manifest("generic"), max_contexts=max_contexts)


def sentences(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(4, 10))) for _ in range(n)]


def translate(engine: TranslationEngine, texts: list[str], policy: PolicyOptions = LSG) -> list[str]:
    with engine.create_session("de", "en", policy=policy) as session:
        out = []
        for text in texts:
            commits = [c for word in text.split() for c in session.push(word)] + session.finish()
            out.append("".join(f"{c.source_read}:{c.separator}{c.text}|" for c in commits))
        return out


def test_four_threads_give_the_serial_outputs_twenty_times(tiny_gguf):
    """Default (F16) KV cache, the configuration users run: batch splits matter there, so a
    session that saw another's cache state would show it."""
    with tiny_engine(tiny_gguf) as engine:
        work = [sentences(seed, 3) for seed in range(4)]
        serial = [translate(engine, texts) for texts in work]
        assert len(set(map(tuple, serial))) == 4
        for _ in range(20):
            results = run_together(lambda texts: translate(engine, texts), work, timeout_s=300)
            assert results == serial


def test_an_earlier_session_does_not_change_a_later_one(tiny_gguf):
    texts = sentences(7, 2)
    with tiny_engine(tiny_gguf, max_contexts=1) as engine:
        fresh = translate(engine, texts)
        translate(engine, sentences(8, 3))  # leaves other prefixes in the pooled contexts
        assert translate(engine, texts) == fresh


def test_the_pool_is_bounded_and_closing_gives_contexts_back(tiny_gguf):
    with tiny_engine(tiny_gguf, max_contexts=2) as engine:
        first = engine.create_session("de", "en", policy=LSG)
        for word in "a b c d e".split():
            first.push(word)  # full prefix and baseline: one pair of contexts
        assert engine.pool.stats.in_use == 1
        assert first.counters["full_decode_calls"] > 0 and first.counters["baseline_decode_calls"] > 0
        second = engine.create_session("de", "en", policy=PolicyOptions(name="wait-k", k=2))
        assert engine.pool.stats.in_use == 2
        with pytest.raises(EngineBusy, match="all 2"):
            engine.create_session("de", "en")
        first.close()
        first.close()  # idempotent
        assert engine.pool.stats.in_use == 1 and engine.pool.stats.idle == 1
        third = engine.create_session("de", "en")
        assert engine.pool.stats.created == 2
        with pytest.raises(Exception, match="closed"):
            first.push("f")
        second.close()
        third.close()
        assert engine.pool.stats.in_use == 0


def test_a_dropped_session_gives_its_contexts_back(tiny_gguf):
    with tiny_engine(tiny_gguf, max_contexts=1) as engine:
        for _ in range(5):
            translate_without_close = engine.create_session("de", "en", policy=LSG)
            for word in "a b c".split():
                translate_without_close.push(word)
            del translate_without_close
        assert engine.pool.stats.in_use == 0
