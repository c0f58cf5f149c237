"""The KV-cache reuse of the llama.cpp contexts changes the cost, not the output.

Every cache needs a guard: the optimised path (prefix kept across requests, previous draft
re-verified in one batch, logits rows remembered) must commit what the straightforward path (every
request evaluated from an empty cache) commits.

On a tiny F32 model with an F32 KV cache the two paths agree exactly, on 20 sentences. The default
Q4_K_M model is checked more loosely: llama.cpp's quantized CPU kernels round differently for
different batch shapes and cache layouts (measured here: up to ~1 logit apart between a reused and
a fresh evaluation of the same tokens, with the same top token), so identical text is not a
property llama.cpp offers for it — which the test pins, too, so that a change is noticed.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from lsg_edge import PolicyOptions, TranslationEngine
from lsg_edge.policy.drafting import greedy_draft
from lsg_edge.backends.llama import LlamaModel, LlamaOptions
from lsg_edge.manifest import load_manifest
from tests.helpers.tiny_audio_llm import prefer_words
from tests.helpers.tiny_models import make_hf_weights, tiny_spec, write_tiny_gguf

N_SENTENCES = 20


def commits_of(engine, sentences, policy):
    session = engine.create_session("de", "en", policy=policy)
    out = []
    for sentence in sentences:
        for word in sentence.split():
            out += [(c.source_read, c.separator + c.text) for c in session.push(word)]
        out += [(c.source_read, c.separator + c.text) for c in session.finish()]
    return out


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    spec = tiny_spec("llama")
    path = tmp_path_factory.mktemp("tiny") / "tiny-llama-f32.gguf"
    return write_tiny_gguf(spec, prefer_words(make_hf_weights(spec, seed=3)), path)


def tiny_engine(path, reuse_cache: bool) -> TranslationEngine:
    options = LlamaOptions(model_path=path, n_ctx_tokens=2048, f32_attention=True, reuse_cache=reuse_cache)
    return TranslationEngine(LlamaModel(options), load_manifest("generic"))


@pytest.mark.slow  # about a minute per policy on 2 shared cores: the naive path re-evaluates every prefix
@pytest.mark.parametrize("name", ["lsg", "wait-k"])
def test_cached_and_recomputed_paths_commit_the_same_on_20_sentences(tiny_gguf, name):
    rng = random.Random(11)
    letters = "abcdefghijklmnopqrstuvwxyz"
    sentences = [" ".join(rng.choice(letters) for _ in range(rng.randint(4, 12))) for _ in range(N_SENTENCES)]
    policy = PolicyOptions(name=name, k=2, delta=0.5, alpha=0.3, low_bound=1, top_bound=3, draft_tokens=6)
    with tiny_engine(tiny_gguf, reuse_cache=True) as cached, tiny_engine(tiny_gguf, reuse_cache=False) as naive:
        got = commits_of(cached, sentences, policy)
        want = commits_of(naive, sentences, policy)
        assert got == want
        assert sum(bool(text.strip()) for _, text in got) > N_SENTENCES  # it did write, early and late
        # The cache did its job: far fewer tokens evaluated.
        assert cached.counters["tokens"] * 3 < naive.counters["tokens"]


def test_reused_prefix_gives_the_logits_of_a_fresh_evaluation(engine, tmp_path, tiny_gguf):
    """Removing a suffix from the (sliding-window) KV cache and appending new tokens leaves the state
    a fresh evaluation reaches: exactly so in F32, to llama.cpp's rounding in Q4_K_M."""
    with tiny_engine(tiny_gguf, reuse_cache=True) as tiny:
        vocab = tiny.model.vocab
        first, second = vocab.tokenize("a b c d e f", add_bos=True), vocab.tokenize("a b c x y", add_bos=True)
        context, other = tiny.model.new_context(), tiny.model.new_context()
        context.logits_at(first, [len(first) - 1])
        reused = context.logits_at(second, [len(second) - 1])
        fresh = other.logits_at(second, [len(second) - 1])
        np.testing.assert_allclose(reused, fresh, atol=1e-4)

    vocab = engine.model.vocab
    first = vocab.tokenize("German: Die Polizei sucht nach Zeugen.\nEnglish:", add_bos=True)
    second = vocab.tokenize("German: Die Polizei sucht nach dem Fahrer.\nEnglish:", add_bos=True)
    with TranslationEngine.load(model_path=engine.model.path, manifest="gemma3-270m", reuse_cache=False) as naive:
        fresh = naive.model.new_context().logits_at(second, [len(second) - 1])[0]
    context = engine.model.new_context()
    context.logits_at(first, [len(first) - 1])
    reused = context.logits_at(second, [len(second) - 1])[0]
    assert np.argmax(reused) == np.argmax(fresh)
    assert np.abs(reused - fresh).max() < 2.0
    top = np.argsort(fresh)[-5:]
    assert set(np.argsort(reused)[-5:]) == set(top)


def test_speculative_draft_equals_token_by_token_greedy(engine):
    vocab = engine.model.vocab
    prompt = vocab.tokenize("German: Ich habe heute keine Zeit.\nEnglish:", add_bos=True)
    is_stop = lambda token: vocab.is_end_of_generation(token) or b"\n" in vocab.piece(token)  # noqa: E731
    context = engine.model.new_context()
    plain = greedy_draft(context, prompt, 12, is_stop)
    wrong_guess = plain.tokens[:3] + [plain.tokens[3] + 1] + plain.tokens[4:]
    for guess in (plain.tokens, wrong_guess, []):
        again = greedy_draft(context, prompt, 12, is_stop, guess=guess)
        assert again.tokens == plain.tokens and again.ended == plain.ended
