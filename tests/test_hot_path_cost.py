"""What each policy costs in llama.cpp work, pinned on a tiny model and a fixed input.

Decode calls, tokens evaluated and logits rows (each row is a vocabulary-sized matmul) per source
word read are exact counts, not timings: a change that adds work to the hot path fails here. A
change that saves work updates the pins, so that it cannot come back unnoticed. The figures behind
them (seconds per sentence, host share) are in benchmarks/text_speed.py.
"""

from __future__ import annotations

import random

import pytest

from lsg_edge import PolicyOptions, TranslationEngine
from lsg_edge.backends.llama import LlamaModel, LlamaOptions
from lsg_edge.manifest import load_manifest
from tests.helpers.tiny_audio_llm import prefer_words
from tests.helpers.tiny_models import make_hf_weights, tiny_spec, write_tiny_gguf

POLICIES = {
    "lsg": PolicyOptions(name="lsg", delta=0.5, alpha=0.3, low_bound=1, top_bound=3, draft_tokens=6),
    "wait-k": PolicyOptions(name="wait-k", k=2),
    "local-agreement": PolicyOptions(name="local-agreement"),
    "offline": PolicyOptions(name="offline"),
}
# (decode calls, tokens evaluated, logits rows) for the 12 sentences below, full + baseline contexts.
# Before the row cache kept what it had, drafts took remembered rows first and guessed baseline rows
# came in one call: lsg (289, 2770, 339), local-agreement (579, 2315, 919); wait-k, offline as now.
PINS = {
    "lsg": (241, 2667, 308),
    "wait-k": (164, 1483, 219),
    "local-agreement": (537, 2288, 892),
    "offline": (160, 805, 160),
}


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    spec = tiny_spec("llama")
    path = tmp_path_factory.mktemp("tiny") / "tiny-llama-f32.gguf"
    return write_tiny_gguf(spec, prefer_words(make_hf_weights(spec, seed=3)), path)


def work_of(path, policy: PolicyOptions) -> tuple[int, int, int]:
    rng = random.Random(5)
    sentences = [" ".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(4, 10))) for _ in range(12)]
    options = LlamaOptions(model_path=path, n_ctx_tokens=1024, n_threads=1, f32_attention=True)
    with TranslationEngine(LlamaModel(options), load_manifest("generic")) as engine:
        with engine.create_session("de", "en", policy=policy) as session:
            for sentence in sentences:
                for word in sentence.split():
                    session.push(word)
                session.finish()
            c = session.counters
    return (c["full_decode_calls"] + c["baseline_decode_calls"], c["full_tokens"] + c["baseline_tokens"],
            c["full_logits_rows"] + c["baseline_logits_rows"])


@pytest.mark.parametrize("name", list(POLICIES))
def test_llama_work_per_policy_is_pinned(tiny_gguf, name):
    got = work_of(tiny_gguf, POLICIES[name])
    assert got == PINS[name], f"{name}: (decode calls, tokens, rows) = {got}, pinned {PINS[name]}"


def test_lsg_tests_the_baseline_only_where_confidence_fails(tiny_gguf):
    """With α = 0 every drafted token passes on confidence: the baseline is never evaluated."""
    policy = PolicyOptions(name="lsg", delta=0.5, alpha=0.0, low_bound=1, top_bound=3, draft_tokens=6)
    options = LlamaOptions(model_path=tiny_gguf, n_ctx_tokens=1024, n_threads=1, f32_attention=True)
    with TranslationEngine(LlamaModel(options), load_manifest("generic")) as engine:
        with engine.create_session("de", "en", policy=policy) as session:
            for word in "a b c d e f g h".split():
                session.push(word)
            session.finish()
            assert session.counters["full_decode_calls"] > 0
            assert session.counters["baseline_decode_calls"] == 0
            assert engine.pool.stats.created == 1
