"""The LoRA trainer (a workstation step): GGUF → float weights, and a short training run.

Runs only where torch, transformers and peft are installed (the `train` extra).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lsg_edge.convert.gguf_to_torch import gemma3_state_from_gguf, load_gemma3_from_gguf
from lsg_edge.convert.train_lora import TrainOptions, train_lora
from lsg_edge.errors import OptionsError
from tests.helpers.tiny_models import make_hf_weights, reference_logits, tiny_spec, write_tiny_gguf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def torch():
    """The `train` extra, imported when these tests run rather than when the suite is collected
    (selecting other tests never loads PyTorch); the tests are skipped without it."""
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory) -> tuple[object, dict[str, np.ndarray], Path]:
    spec = tiny_spec("gemma3")
    weights = make_hf_weights(spec, seed=3)
    path = write_tiny_gguf(spec, weights, tmp_path_factory.mktemp("gguf") / "tiny-gemma3.gguf")
    return spec, weights, path


def test_gguf_weights_come_back_in_hugging_face_layout(tiny_gemma) -> None:
    import gguf

    spec, weights, path = tiny_gemma
    state = gemma3_state_from_gguf(gguf.GGUFReader(str(path)))
    assert set(state) == set(weights)
    for name, value in weights.items():
        # Norm weights went through the +1 of llama.cpp's Gemma converter and back.
        np.testing.assert_allclose(state[name], value, atol=1e-6, err_msg=name)


def test_rebuilt_torch_model_matches_the_numpy_reference(tiny_gemma, torch) -> None:
    spec, weights, path = tiny_gemma
    model = load_gemma3_from_gguf(path)
    tokens = [1, 300, 301, 310, 299, 280, 250, 305]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokens])).logits[0].numpy()
    expected = reference_logits(spec, weights, tokens)
    assert np.abs(logits - expected).max() <= 1e-3 * max(1.0, np.abs(expected).max())


def _write_pairs(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    words = ["a", "b", "c", "d", "e", "f"]
    for stem, n in (("deu", 300), ("fra", 120)):
        lines = [f"{stem[:2]}\ten"]
        for _ in range(n):
            sentence = rng.choice(words, size=rng.integers(2, 5))
            # The "translation" repeats the source: learnable, so the loss must fall.
            lines.append(" ".join(sentence) + "\t" + " ".join(sentence))
        (folder / f"{stem}-eng.news.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_training_lowers_the_loss_and_writes_a_peft_adapter(tiny_gemma, tmp_path: Path) -> None:
    _, _, base = tiny_gemma
    data = tmp_path / "pairs"
    _write_pairs(data)
    options = TrainOptions(
        base, data, tmp_path / "adapter", mix=(("de-en", 0.7), ("fr-en", 0.3)), steps=40, batch_size=8,
        heldout_pairs=40, dev_pairs=16, dev_bleu_pairs=4, eval_every=1000, checkpoint_every=20,
        learning_rate=3e-3, warmup_steps=2, threads=1, rank=4, lora_alpha=8,
    )
    out = train_lora(options)
    report = json.loads((out / "training.json").read_text())
    start, end = report["history"][0], report["history"][-1]
    assert end["step"] == 40 and report["stopped_by"] == "steps"
    assert end["dev_loss"] < 0.7 * start["dev_loss"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4 and set(config["target_modules"]) >= {"q_proj", "down_proj"}
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    held = (out / "heldout" / "de-en.tsv").read_text().splitlines()
    assert len(held) == 41  # header + the held-out pairs, never trained on


def test_resume_continues_from_the_checkpoint(tiny_gemma, tmp_path: Path) -> None:
    _, _, base = tiny_gemma
    data = tmp_path / "pairs"
    _write_pairs(data)
    common = dict(
        mix=(("de-en", 1.0),), batch_size=4, heldout_pairs=20, dev_pairs=8, dev_bleu_pairs=0,
        eval_every=1000, checkpoint_every=5, threads=1, rank=2, lora_alpha=4,
    )
    train_lora(TrainOptions(base, data, tmp_path / "a", steps=5, **common))
    out = train_lora(TrainOptions(base, data, tmp_path / "a", steps=10, resume=True, **common))
    report = json.loads((out / "training.json").read_text())
    assert report["steps_done"] == 10
    assert [h["step"] for h in report["history"]] == [0, 5, 10]


def test_directions_must_pair_a_language_with_english(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="one side must be en"):
        TrainOptions(tmp_path, tmp_path, tmp_path, mix=(("de-fr", 1.0),))
