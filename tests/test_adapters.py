"""Packaged adapters merged into their base on first use: built once, rebuilt when either changes."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from lsg_edge.adapters import merged_adapter_gguf, packaged_adapter_dir
from lsg_edge.errors import ModelError
from tests.helpers.tiny_models import AdapterSpec, make_hf_weights, merged_hf_weights, tiny_spec, write_peft_adapter, write_tiny_gguf


def _tensor(path: Path, name: str) -> np.ndarray:
    reader = gguf.GGUFReader(str(path))
    tensor = next(t for t in reader.tensors if t.name == name)
    return gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape([int(d) for d in reversed(tensor.shape)])


def _tiny_base_and_adapter(tmp_path: Path, weight_seed: int, adapter_seed: int):
    """A tiny Gemma 3 GGUF and a rank-4 PEFT adapter for it: (spec, weights, base, adapter, deltas)."""
    spec = tiny_spec("gemma3")
    weights = make_hf_weights(spec, seed=weight_seed)
    base = write_tiny_gguf(spec, weights, tmp_path / "base.gguf")
    adapter = tmp_path / "adapter"
    deltas = write_peft_adapter(spec, AdapterSpec(r=4, seed=adapter_seed), adapter)
    return spec, weights, base, adapter, deltas


def test_merged_once_then_reused_and_rebuilt_for_a_new_adapter(tmp_path: Path) -> None:
    spec, weights, base, adapter, deltas = _tiny_base_and_adapter(tmp_path, 5, 2)
    target = tmp_path / "cache" / "tuned.gguf"

    built = merged_adapter_gguf(base, adapter, target, quant_type="Q8_0")
    expected = merged_hf_weights(weights, deltas)["model.layers.0.self_attn.q_proj.weight"]
    got = _tensor(built, "blk.0.attn_q.weight")
    # F16 merge then Q8_0: within the two roundings of the values.
    assert np.abs(got - expected).max() <= 0.02 * np.abs(expected).max()
    assert sorted(p.name for p in target.parent.iterdir()) == ["tuned.gguf", "tuned.gguf.verified"]

    mtime = target.stat().st_mtime_ns
    assert merged_adapter_gguf(base, adapter, target, quant_type="Q8_0") == target
    assert target.stat().st_mtime_ns == mtime  # reused, not rebuilt

    write_peft_adapter(spec, AdapterSpec(r=4, seed=3), adapter)  # a new adapter version
    merged_adapter_gguf(base, adapter, target, quant_type="Q8_0")
    assert target.stat().st_mtime_ns != mtime


def test_a_damaged_merged_file_is_built_again(tmp_path: Path) -> None:
    spec = tiny_spec("gemma3")
    base = write_tiny_gguf(spec, make_hf_weights(spec), tmp_path / "base.gguf")
    adapter = tmp_path / "adapter"
    write_peft_adapter(spec, AdapterSpec(r=2), adapter)
    target = merged_adapter_gguf(base, adapter, tmp_path / "tuned.gguf", quant_type="Q8_0")
    size = target.stat().st_size
    with target.open("r+b") as f:
        f.truncate(size // 2)
    assert merged_adapter_gguf(base, adapter, target, quant_type="Q8_0").stat().st_size == size


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", ""])
def test_adapter_names_stay_inside_the_package(name: str) -> None:
    with pytest.raises(ModelError, match="packaged adapter"):
        packaged_adapter_dir(name)


def test_a_missing_packaged_adapter_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="incomplete"):
        packaged_adapter_dir("no-such-adapter")


@pytest.mark.slow
def test_the_shipped_translation_adapter_merges_as_the_numpy_reference(default_gguf: Path, tmp_path: Path) -> None:
    """W' = W + (alpha / r)·B·A for the packaged adapter on the real base, checked on two tensors."""
    import json

    from safetensors.numpy import load_file

    from lsg_edge.convert.merge_lora import MergeOptions, merge_lora

    adapter = packaged_adapter_dir("gemma3-270m-translate")
    config = json.loads((adapter / "adapter_config.json").read_text())
    pairs = load_file(str(adapter / "adapter_model.safetensors"))
    out = tmp_path / "merged-f16.gguf"
    with pytest.warns(UserWarning, match="quantized"):
        merge_lora(MergeOptions(default_gguf, adapter, out, progress=False))
    scale = config["lora_alpha"] / config["r"]
    for hf, gg in (("model.layers.0.self_attn.q_proj", "blk.0.attn_q.weight"), ("model.layers.17.mlp.down_proj", "blk.17.ffn_down.weight")):
        a = pairs[f"base_model.model.{hf}.lora_A.weight"].astype(np.float32)
        b = pairs[f"base_model.model.{hf}.lora_B.weight"].astype(np.float32)
        expected = _tensor(default_gguf, gg) + scale * (b @ a)
        got = _tensor(out, gg)
        # F16 storage of the merged weights: relative rounding 2^-11.
        assert np.abs(got - expected).max() <= 1e-3 * np.abs(expected).max() + 1e-4, gg
        assert np.abs(scale * (b @ a)).max() > 1e-3  # the adapter really moves these weights


def test_runtime_lora_once_then_reused_and_its_scores_equal_the_exact_merge(tmp_path: Path) -> None:
    from lsg_edge.adapters import runtime_adapter_gguf
    from lsg_edge.backends.llama import LlamaModel, LlamaOptions

    spec, weights, base, adapter, deltas = _tiny_base_and_adapter(tmp_path, 7, 4)
    target = tmp_path / "cache" / "tuned-lora.gguf"

    built = runtime_adapter_gguf(base, adapter, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["tuned-lora.gguf", "tuned-lora.gguf.verified"]
    mtime = built.stat().st_mtime_ns
    assert runtime_adapter_gguf(base, adapter, target) == target and target.stat().st_mtime_ns == mtime

    # The base with the runtime adapter scores as the float merge W + (α/r)·B·A does.
    exact = write_tiny_gguf(spec, merged_hf_weights(weights, deltas), tmp_path / "exact.gguf")
    tokens = [1, 5, 9, 3, 7]
    rows = {}
    for name, options in (("runtime", LlamaOptions(model_path=base, lora_path=built, n_threads=1, device="cpu")),
                          ("exact", LlamaOptions(model_path=exact, n_threads=1, device="cpu")),
                          ("base", LlamaOptions(model_path=base, n_threads=1, device="cpu"))):
        with LlamaModel(options) as model:
            rows[name] = model.new_context().logits_at(tokens, range(len(tokens)))
    assert np.abs(rows["runtime"] - rows["exact"]).max() <= 1e-2 * np.abs(rows["exact"]).max()
    assert np.abs(rows["base"] - rows["exact"]).max() > 10 * np.abs(rows["runtime"] - rows["exact"]).max()


@pytest.mark.parametrize("files", [{}, {"merged_file": "m.gguf", "lora_file": "l.gguf"}])
def test_an_adapter_is_built_one_way(files: dict) -> None:
    from lsg_edge.manifest import ModelManifest

    with pytest.raises(ModelError, match="exactly one of merged_file and lora_file"):
        ModelManifest(name="x", adapter="gemma3-270m-translate", **files)


@pytest.mark.slow
@pytest.mark.model
def test_the_translation_tuned_model_translates(default_gguf: Path, wmt_pairs) -> None:
    """The tuned manifest end to end: its adapter built into the cache on first use, then LSG with
    the manifest's settings on real sentences (the model every user of the manifest gets)."""
    from lsg_edge import TranslationEngine

    with TranslationEngine.load("gemma3-270m-translate", n_threads=2) as engine:
        session = engine.create_session("de", "en")
        outputs = []
        for source, _ in wmt_pairs[:3]:
            commits = [c for word in source.split() for c in session.push(word)] + session.finish()
            outputs.append(" ".join(c.text for c in commits if c.text))
    assert engine.manifest.merged_type == "Q8_0"
    assert all(outputs), outputs
    assert "Tokyo" in outputs[0] and ("India" in outputs[0] or "Indian" in outputs[0]), outputs[0]
