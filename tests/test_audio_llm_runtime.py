"""Audio-LLM runtime numerics without PyTorch: a tiny random audio-LLM — an ONNX encoder
built with `onnx`, a tiny GGUF LLM — against an independent NumPy reference; prefix caches against
fresh evaluation; LSG over it end to end; the errors a mismatched model pair gives.

Tolerances (max |llama.cpp − reference| over all logits, float32 weights, F32 KV cache):
F32_LOGITS_ATOL = 1e-3 as for token input (measured ≤ 5e-6); encoder ONNX vs NumPy ENCODER_ATOL =
1e-4 (measured ≤ 6e-7); cached vs fresh contexts CACHE_ATOL = 1e-4 (measured ≤ 3e-6: the KV cache
is filled in other batch splits).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tests.helpers.tiny_audio_llm import TEMPLATE, reference_encoder, write_tiny_audio_llm
from tests.helpers.tiny_models import F32_LOGITS_ATOL, make_hf_weights, max_abs_diff, reference_logits, tiny_spec, write_tiny_gguf

from lsg_edge.audio_llm import AudioLlmEngine, load_audio_llm_manifest
from lsg_edge.audio_llm.prompt import AUDIO_SLOT_TOKEN
from lsg_edge.policy.drafting import greedy_draft
from lsg_edge.backends.llama import EmbeddingBlock, LlamaModel, LlamaOptions
from lsg_edge.errors import InputError, ModelError
from lsg_edge.speech.features import LogMel
from lsg_edge.policy.options import PolicyOptions
from lsg_edge.policy.strategies import make_policy
from lsg_edge.speech.window import WindowDecoder

ENCODER_ATOL = 1e-4
CACHE_ATOL = 1e-4
SEGMENT_SAMPLES = 16_000 * 640 // 1000


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise plus a tone: loud enough for the VAD, different in every segment."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16_000 * seconds)) / 16_000
    return (0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _reference_with_audio(spec, weights: dict, head: list[int], audio_rows: np.ndarray, tail: list[int]) -> np.ndarray:
    """Reference logits of head + audio rows + tail: the rows become extra rows of the embedding
    table, addressed by virtual token ids past the vocabulary (the output head keeps the real table)."""
    table = weights["model.embed_tokens.weight"]
    extended = dict(weights)
    extended.setdefault("lm_head.weight", table)
    extended["model.embed_tokens.weight"] = np.concatenate([table, audio_rows.astype(np.float32)])
    virtual = list(range(spec.n_vocab, spec.n_vocab + len(audio_rows)))
    return reference_logits(spec, extended, head + virtual + tail)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_embedding_input_matches_the_reference(arch: str, tmp_path: Path) -> None:
    spec = tiny_spec(arch)
    weights = make_hf_weights(spec)
    path = write_tiny_gguf(spec, weights, tmp_path / "llm.gguf")
    rows = (0.5 * np.random.default_rng(1).standard_normal((9, spec.d_model))).astype(np.float32)
    head, tail = [1, 17, 250], [33, 101, 7, 290]
    want = _reference_with_audio(spec, weights, head, rows, tail)
    # Batches of 4: token and embedding runs are split across several llama_decode calls.
    options = LlamaOptions(model_path=path, n_ctx_tokens=64, n_batch_tokens=4, n_threads=1, f32_attention=True)
    with LlamaModel(options) as model:
        sequence = head + EmbeddingBlock(rows).rows() + tail
        got = model.new_context().logits_at(sequence, range(len(sequence)))
    assert np.std(want) > 0.5, "logits too flat to prove anything"
    assert max_abs_diff(got, want) <= F32_LOGITS_ATOL, f"{arch}: {max_abs_diff(got, want):.2e}"


@pytest.mark.parametrize("n_frames", [0, 400])  # any length; a fixed 4 s window with zero padding
def test_engine_encoder_and_llm_match_the_reference(n_frames: int, tmp_path: Path) -> None:
    manifest, llm, enc, spec = write_tiny_audio_llm(tmp_path, n_frames=n_frames)
    audio = _audio(1.3)
    with AudioLlmEngine.load(manifest, n_threads=1, f32_attention=True) as engine:
        block = engine.encode(audio)
        padded = np.concatenate([audio, np.zeros(max(0, n_frames * 160 - audio.size), np.float32)])
        want_rows = reference_encoder(enc, LogMel(16)(padded), n_valid_frames=audio.size // 160)
        assert block.vectors.shape == want_rows.shape == (130 // 4, spec.d_model)
        assert max_abs_diff(block.vectors, want_rows) <= ENCODER_ATOL
        prompt = engine.prompt("fr", "transcribe")
        slot = prompt.index(AUDIO_SLOT_TOKEN)
        text = [40, 41, 300, 5]
        context = engine.acquire_context(prompt)
        context.set_audio(block)
        sequence = prompt + text
        got = context.logits_at(sequence, range(len(sequence)))
    full = _reference_with_audio(spec, llm, prompt[:slot], want_rows, prompt[slot + 1 :] + text)
    # Caller positions count the slot once: position p ≥ slot is row p + n_rows − 1 of the full sequence.
    shift = len(want_rows) - 1
    want = full[[p + shift if p >= slot else p for p in range(len(sequence))]]
    assert max_abs_diff(got, want) <= F32_LOGITS_ATOL, f"{max_abs_diff(got, want):.2e}"


def test_cached_contexts_equal_fresh_ones(tmp_path: Path) -> None:
    manifest, *_ = write_tiny_audio_llm(tmp_path)
    audio = _audio(3.0)
    with AudioLlmEngine.load(manifest, n_threads=1, f32_attention=True) as cached, \
            AudioLlmEngine.load(manifest, n_threads=1, f32_attention=True, reuse_cache=False) as fresh:
        prompt = cached.prompt(None, "transcribe")
        blocks = {n: cached.encode(audio[: n * SEGMENT_SAMPLES]) for n in (1, 2, 4)}
        context, reference = cached.acquire_context(prompt), fresh.acquire_context(prompt)
        tokens = prompt + [40, 41, 42, 43]
        # Growing audio, a wait-1 prefix, text-only changes, the same audio as a new object.
        requests = [(4, tokens), (4, tokens + [50]), (1, tokens), (2, tokens + [50, 51]),
                    (4, tokens + [50, 52]), (4, tokens[:-1])]
        evaluated = []
        for n, sequence in requests:
            positions = range(len(prompt) - 1, len(sequence))
            context.set_audio(blocks[n])
            reference.set_audio(fresh.encode(audio[: n * SEGMENT_SAMPLES]))  # equal values, other objects
            before = context._context.n_tokens_evaluated
            got = context.logits_at(sequence, positions)
            evaluated.append(context._context.n_tokens_evaluated - before)
            assert max_abs_diff(got, reference.logits_at(sequence, positions)) <= CACHE_ATOL
    n_head = prompt.index(AUDIO_SLOT_TOKEN)
    # Only the new token is evaluated when the audio is unchanged; a different audio prefix
    # re-evaluates from the audio on (never the head); returning to the 4-segment audio from
    # another block is a recompute too.
    assert evaluated[1] == 1
    assert evaluated[2] == len(blocks[1]) + len(tokens) - n_head - 1
    assert evaluated[4] == len(blocks[4]) + len(tokens) + 2 - n_head - 1
    assert evaluated[5] == 0  # a prefix of what the cache holds: served from remembered rows or cache


def test_lsg_over_an_audio_llm_keeps_the_range_constraint_and_finishes(tmp_path: Path) -> None:
    # llama: the tiny qwen2 (tied embeddings) only repeats its last prompt token, whatever it hears.
    manifest, *_ = write_tiny_audio_llm(tmp_path, arch="llama")
    audio = _audio(4.0, seed=3)
    n_segments = audio.size // SEGMENT_SAMPLES
    with AudioLlmEngine.load(manifest, n_threads=1, f32_attention=True) as engine, \
            AudioLlmEngine.load(manifest, n_threads=1, f32_attention=True, reuse_cache=False) as fresh:
        prompt = engine.prompt("fr", "translate")
        # δ = 0, α = 0: every position passes, so LSG writes all the lower bound allows.
        options = PolicyOptions(delta=0.0, alpha=0.0, low_bound=2, top_bound=2, words_per_element=1)
        decoder, policy = WindowDecoder(engine, prompt, options, SEGMENT_SAMPLES), make_policy(options)
        streamed: list[int] = []
        for j in range(1, n_segments + 1):
            streamed += [t for written in decoder.step(policy, audio, j) for t in written.tokens]
            # Range constraint: word i not before L + i − 1 segments are read; with every position
            # passing, exactly that many (the tiny model drafts words enough).
            assert decoder.n_words == max(0, j - options.low_bound + 1)
        assert streamed, "nothing was written while the audio streamed"
        tail = decoder.finish(audio).tokens
        assert decoder.committed == streamed + tail
        # The end decodes the rest at full context: the same greedy tokens as a fresh context
        # (the loop guards may only cut them short).
        context = fresh.acquire_context(prompt)
        context.set_audio(fresh.encode(audio))
        want = greedy_draft(context, prompt + streamed, len(tail) + 1, fresh.vocab.is_end_of_generation).tokens
        assert tail == want[: len(tail)]
        # Nothing passes (δ, α out of reach): only the upper bound forces words, never more.
        options = PolicyOptions(delta=1e9, alpha=1.0, low_bound=1, top_bound=2, words_per_element=1)
        decoder, policy = WindowDecoder(engine, prompt, options, SEGMENT_SAMPLES), make_policy(options)
        for j in range(1, n_segments + 1):
            decoder.step(policy, audio, j)
            assert decoder.n_words == max(0, j - options.low_bound - options.top_bound + 1)


def test_sessions_give_their_contexts_back(tmp_path: Path) -> None:
    manifest, *_ = write_tiny_audio_llm(tmp_path, arch="llama")
    audio = _audio(1.5, seed=4)
    with AudioLlmEngine.load(manifest, n_threads=1) as engine:
        for _ in range(50):
            with engine.create_session() as session:
                session.push(audio)
                session.finish()
        engine.transcribe(audio)
        # One LSG session holds two contexts (full prefix, wait-1 baseline); closed ones serve the next.
        assert engine.n_contexts == 2
        open_sessions = [engine.create_session() for _ in range(3)]
        assert engine.n_contexts == 6
        for session in open_sessions:
            session.close()
        assert engine.n_contexts == 6


def _asr(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from lsg_edge.cli import main; main()", "asr", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_asr_cli_runs_an_audio_llm_manifest(tmp_path: Path) -> None:
    manifest, *_ = write_tiny_audio_llm(tmp_path / "model", arch="llama")
    wav = tmp_path / "speech.wav"
    sf.write(wav, _audio(3.0), 16_000)
    result = _asr(str(wav), "--manifest", str(manifest), "--json", "--threads", "1",
                  "--task", "translate", "--language", "fr", "--alpha", "0.0", "--delta", "0.0")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) >= 2, "words should be committed while the audio streams"
    assert events[-1]["sentence_end"] and not events[0]["sentence_end"]
    assert [e["source_read"] for e in events] == sorted(e["source_read"] for e in events)
    broken = tmp_path / "broken.toml"
    broken.write_text(manifest.read_text().replace("{audio}", ""))
    result = _asr(str(wav), "--manifest", str(broken))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "audio slot {audio}" in result.stderr and "Traceback" not in result.stderr


# --- errors ------------------------------------------------------------------------------------


def test_encoder_width_must_equal_the_llm_width(tmp_path: Path) -> None:
    manifest, *_ = write_tiny_audio_llm(tmp_path, encoder_width=48)
    with pytest.raises(ModelError, match=r"width 48, but the LLM .* has width 64"):
        AudioLlmEngine.load(manifest, n_threads=1)


def test_manifest_errors_are_one_line_model_errors(tmp_path: Path) -> None:
    for template, match in ((TEMPLATE.replace("{audio}", ""), r"audio slot \{audio\} exactly once \(found 0\)"),
                            (TEMPLATE + "{audio}", r"exactly once \(found 2\)")):
        manifest, *_ = write_tiny_audio_llm(tmp_path / str(len(template)), template=template)
        with pytest.raises(ModelError, match=match):
            load_audio_llm_manifest(manifest)
    manifest, *_ = write_tiny_audio_llm(tmp_path / "rate", rate=24_000)
    with pytest.raises(ModelError, match="sample_rate_hz is 24000, but the audio front end produces 16000 Hz"):
        load_audio_llm_manifest(manifest)
    text = manifest.read_text().replace("24000", "16000")
    for old, new, match in (('kind = "audio-llm"', "", "kind must be 'audio-llm'"),
                            ("alpha = 0.5", "gamma = 0.5", r"unknown \[policy.default\] keys \['gamma'\]"),
                            ('gguf = "llm.gguf"', 'gguf = "missing.gguf"', "model file not found"),
                            ("n_mels = 16", "n_mels = 80", "takes 16 mel bins; the manifest says n_mels = 80"),
                            ("stop = []", 'stop = ["a b"]', "stop 'a b' is 2 tokens")):
        (manifest.parent / "manifest.toml").write_text(text.replace(old, new))
        with pytest.raises(ModelError, match=match):
            AudioLlmEngine.load(manifest.parent / "manifest.toml", n_threads=1)
    with pytest.raises(ModelError, match="manifest not found"):
        load_audio_llm_manifest(tmp_path / "nothing.toml")


def test_audio_input_errors(tmp_path: Path) -> None:
    manifest, *_ = write_tiny_audio_llm(tmp_path, n_frames=200)
    with AudioLlmEngine.load(manifest, n_threads=1) as engine:
        with pytest.raises(InputError, match="audio at 8000 Hz for an encoder of 16000 Hz"):
            engine.encode(_audio(1.0), sample_rate_hz=8000)
        with pytest.raises(InputError, match=r"3.0 s of audio exceed the encoder's window of 2.0 s"):
            engine.encode(_audio(3.0))


def test_the_example_manifest_is_a_complete_template() -> None:
    from importlib import resources

    path = Path(str(resources.files("lsg_edge.models") / "qwen2-audio.toml"))
    manifest = load_audio_llm_manifest(path)
    assert manifest.encoder.n_mels == 128 and manifest.encoder.n_frames == 3000
    assert {"transcribe", "translate"} <= set(manifest.prompt.instructions)
    assert "<|audio_bos|>{audio}<|audio_eos|>" in manifest.prompt.template
    assert manifest.policy_options().alpha == 0.5
    with pytest.raises(ModelError, match="audio encoder not found"):
        AudioLlmEngine.load(manifest)
