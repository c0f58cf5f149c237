"""Digests of what the runtime commits on tiny F32 models, to show that a hot-path change changed no
decision: every policy, text (a tiny GGUF LLM) and speech (a tiny audio-LLM: ONNX encoder + GGUF).

F32 weights and an F32 KV cache make llama.cpp's logits nearly independent of how requests are cut
into batches, so a digest differs only when a decision does. Run it on two trees and compare:

    PYTHONPATH=/path/to/before python benchmarks/tiny_digest.py
    PYTHONPATH=/path/to/after  python benchmarks/tiny_digest.py
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers builds the tiny models

from tests.helpers.tiny_audio_llm import prefer_words, write_tiny_audio_llm  # noqa: E402
from tests.helpers.tiny_models import make_hf_weights, tiny_spec, write_tiny_gguf  # noqa: E402

TEXT_POLICIES = {
    "lsg": dict(name="lsg", delta=0.5, alpha=0.3, low_bound=1, top_bound=3, draft_tokens=6),
    "lsg-kl-only": dict(name="lsg", delta=0.2, alpha=1.0, low_bound=1, top_bound=4, draft_tokens=8),
    "wait-k": dict(name="wait-k", k=2),
    "local-agreement": dict(name="local-agreement"),
    "offline": dict(name="offline"),
}
SPEECH_POLICIES = {
    "lsg": dict(name="lsg", alpha=0.0, delta=0.0),
    "lsg-strict": dict(name="lsg", alpha=0.5, delta=2.0),
    "local-agreement": dict(name="local-agreement"),
}


def digest(rows: list) -> str:
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()[:16]


def text_digests(folder: Path) -> dict[str, str]:
    from lsg_edge import PolicyOptions, TranslationEngine
    from lsg_edge.backends.llama import LlamaModel, LlamaOptions
    from lsg_edge.manifest import load_manifest

    spec = tiny_spec("llama")
    path = write_tiny_gguf(spec, prefer_words(make_hf_weights(spec, seed=3)), folder / "tiny.gguf")
    rng = random.Random(11)
    sentences = [" ".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 12)))
                 for _ in range(30)]
    out = {}
    options = LlamaOptions(model_path=path, n_ctx_tokens=2048, f32_attention=True, n_threads=1)
    engine = TranslationEngine(LlamaModel(options), load_manifest("generic"))
    for name, settings in TEXT_POLICIES.items():
        session = engine.create_session("de", "en", policy=PolicyOptions(**settings))
        rows = []
        for sentence in sentences:
            for word in sentence.split():
                rows += [(c.source_read, c.separator + c.text) for c in session.push(word)]
            rows += [(c.source_read, c.separator + c.text) for c in session.finish()]
        session.close()
        out[f"text-{name}"] = f"{digest(rows)}  ({sum(bool(t.strip()) for _, t in rows)} non-empty commits)"
    engine.close()
    return out


def speech_digests(folder: Path) -> dict[str, str]:
    from lsg_edge.audio_llm.engine import AudioLlmEngine
    from lsg_edge.policy.options import PolicyOptions
    from lsg_edge.speech.session import AsrSessionOptions

    manifest, *_ = write_tiny_audio_llm(folder / "audio", arch="llama")
    rng = np.random.default_rng(4)
    clips = []
    for seconds in (1.5, 3.0, 4.5):  # a tone and noise: loud enough for the VAD, different in every segment
        t = np.arange(int(16_000 * seconds)) / 16_000
        clips.append((0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32))
    out = {}
    with AudioLlmEngine.load(manifest, n_threads=1) as engine:
        for name, settings in SPEECH_POLICIES.items():
            rows = []
            for clip in clips:
                policy = PolicyOptions(words_per_element=2, **settings)
                with engine.create_session(AsrSessionOptions(policy=policy)) as session:
                    for start in range(0, clip.size, 1600):
                        rows += [(c.source_read, c.separator + c.text) for c in session.push(clip[start:start + 1600])]
                    rows += [(c.source_read, c.separator + c.text) for c in session.finish()]
            out[f"speech-{name}"] = f"{digest(rows)}  ({sum(bool(t.strip()) for _, t in rows)} non-empty commits)"
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = {**text_digests(Path(tmp)), **speech_digests(Path(tmp))}
    for name, value in results.items():
        print(f"{name:<24} {value}")


if __name__ == "__main__":
    main()
