"""merge-lora and lora-to-gguf: numbers proven against the independent NumPy reference.

For each architecture: a tiny random base (F32), a random PEFT adapter; the merged GGUF run by
llama.cpp must give the reference's base+LoRA logits (computed in the Hugging Face layout), and the
runtime adapter GGUF on the unmerged base must give the merged model's logits.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import gguf
import numpy as np
import pytest
from tests.helpers.tiny_models import (
    ARCHITECTURES,
    F32_LOGITS_ATOL,
    TOKENS,
    AdapterSpec,
    gguf_name,
    llama_logits,
    make_hf_weights,
    max_abs_diff,
    merged_hf_weights,
    reference_logits,
    tiny_spec,
    to_gguf_tensor,
    write_peft_adapter,
    write_tiny_gguf,
)

from lsg_edge.convert.lora_to_gguf import LoraGgufOptions, lora_to_gguf
from lsg_edge.convert.merge_lora import PROVENANCE_PREFIX, ConversionWarning, MergeOptions, merge_lora

# The adapter must move the logits by far more than the tolerance, or the parity proves nothing.
MIN_LORA_EFFECT = 100 * F32_LOGITS_ATOL


def _merge(base: Path, adapter: Path, out: Path, **overrides) -> Path:
    merge_lora(MergeOptions(base, adapter, out, progress=False, **overrides))
    return out


def _setup(arch: str, tmp_path: Path, adapter_spec: AdapterSpec = AdapterSpec(), dtype=gguf.GGMLQuantizationType.F32):
    spec = tiny_spec(arch)
    weights = make_hf_weights(spec)
    base = write_tiny_gguf(spec, weights, tmp_path / "base.gguf", dtype)
    deltas = write_peft_adapter(spec, adapter_spec, tmp_path / "lora")
    return spec, weights, base, deltas


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_merged_and_runtime_adapter_logits_match_reference(arch: str, tmp_path: Path) -> None:
    spec, weights, base, deltas = _setup(arch, tmp_path)
    merged = _merge(base, tmp_path / "lora", tmp_path / "merged.gguf")
    adapter = tmp_path / "lora.gguf"
    lora_to_gguf(LoraGgufOptions(base, tmp_path / "lora", adapter, progress=False))

    want = reference_logits(spec, merged_hf_weights(weights, deltas), TOKENS)
    merged_logits = llama_logits(merged)
    runtime_logits = llama_logits(base, lora_path=adapter)
    assert max_abs_diff(reference_logits(spec, weights, TOKENS), want) > MIN_LORA_EFFECT
    assert max_abs_diff(merged_logits, want) <= F32_LOGITS_ATOL
    assert max_abs_diff(runtime_logits, merged_logits) <= F32_LOGITS_ATOL


def test_rslora_and_per_module_patterns(tmp_path: Path) -> None:
    """rsLoRA (alpha/√r), rank_pattern and alpha_pattern, merged and at run time (llama: permuted Q/K)."""
    adapter_spec = AdapterSpec(
        r=8, lora_alpha=8.0, use_rslora=True, rank_pattern={"k_proj": 4}, alpha_pattern={"down_proj": 24.0}
    )
    spec, weights, base, deltas = _setup("llama", tmp_path, adapter_spec)
    merged = _merge(base, tmp_path / "lora", tmp_path / "merged.gguf")
    adapter = tmp_path / "lora.gguf"
    lora_to_gguf(LoraGgufOptions(base, tmp_path / "lora", adapter, progress=False))

    want = reference_logits(spec, merged_hf_weights(weights, deltas), TOKENS)
    assert max_abs_diff(llama_logits(merged), want) <= F32_LOGITS_ATOL
    assert max_abs_diff(llama_logits(base, lora_path=adapter), want) <= F32_LOGITS_ATOL


def test_lora_scale_option_scales_the_delta(tmp_path: Path) -> None:
    spec, weights, base, deltas = _setup("qwen2", tmp_path)
    merged = _merge(base, tmp_path / "lora", tmp_path / "merged.gguf", lora_scale=0.5)
    halved = {name: (a, b, 0.5 * scale) for name, (a, b, scale) in deltas.items()}
    want = reference_logits(spec, merged_hf_weights(weights, halved), TOKENS)
    assert max_abs_diff(llama_logits(merged), want) <= F32_LOGITS_ATOL


def test_fan_in_fan_out_gives_the_same_merge(tmp_path: Path) -> None:
    """A and B keep their shapes under fan_in_fan_out; GGUF holds [out, in] either way."""
    _setup("llama", tmp_path)
    write_peft_adapter(tiny_spec("llama"), AdapterSpec(fan_in_fan_out=True), tmp_path / "lora_fifo")
    plain = gguf.GGUFReader(_merge(tmp_path / "base.gguf", tmp_path / "lora", tmp_path / "a.gguf"))
    fifo = gguf.GGUFReader(_merge(tmp_path / "base.gguf", tmp_path / "lora_fifo", tmp_path / "b.gguf"))
    for t1, t2 in zip(plain.tensors, fifo.tensors):
        assert t1.name == t2.name and np.array_equal(t1.data, t2.data)


def _expected_merged_tensor(spec, weights, deltas, hf_name: str, stored_base: np.ndarray) -> np.ndarray:
    """float32 W_stored + delta, with the delta taken to the GGUF layout by the test's own converter."""
    a, b, scale = deltas[hf_name]
    delta = to_gguf_tensor(spec, hf_name, (scale * (b.astype(np.float64) @ a.astype(np.float64))).astype(np.float32))
    return stored_base.astype(np.float32) + delta


@pytest.mark.parametrize("dtype", [gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.BF16])
def test_half_precision_base_is_merged_in_its_own_type(dtype, tmp_path: Path) -> None:
    spec, weights, base, deltas = _setup("llama", tmp_path, dtype=dtype)
    merged = gguf.GGUFReader(_merge(base, tmp_path / "lora", tmp_path / "merged.gguf"))
    base_tensors = {t.name: t for t in gguf.GGUFReader(base).tensors}
    for hf_name in deltas:
        tensor = next(t for t in merged.tensors if t.name == gguf_name(spec, hf_name))
        assert tensor.tensor_type == dtype
        stored = gguf.quants.dequantize(base_tensors[tensor.name].data, dtype)
        want = gguf.quants.dequantize(
            gguf.quants.quantize(_expected_merged_tensor(spec, weights, deltas, hf_name, stored), dtype), dtype
        )
        # One unit in the last place: the delta is summed in float32 here and there, in other orders.
        ulp = 2.0 ** -10 if dtype == gguf.GGMLQuantizationType.F16 else 2.0 ** -7
        np.testing.assert_allclose(gguf.quants.dequantize(tensor.data, dtype), want, rtol=ulp, atol=1e-7)


def test_quantized_base_is_dequantized_to_f16_with_a_warning(tmp_path: Path) -> None:
    spec, weights, base, deltas = _setup("llama", tmp_path, dtype=gguf.GGMLQuantizationType.Q8_0)
    with pytest.warns(ConversionWarning, match="Q8_0"):
        merged_path = _merge(base, tmp_path / "lora", tmp_path / "merged.gguf")
    merged = gguf.GGUFReader(merged_path)
    assert merged.get_field("general.file_type").contents() == gguf.LlamaFileType.MOSTLY_F16
    base_tensors = {t.name: t for t in gguf.GGUFReader(base).tensors}
    for tensor in merged.tensors:
        assert tensor.tensor_type in (gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32)
    for hf_name in deltas:
        tensor = next(t for t in merged.tensors if t.name == gguf_name(spec, hf_name))
        stored = gguf.quants.dequantize(base_tensors[tensor.name].data, gguf.GGMLQuantizationType.Q8_0)
        want = _expected_merged_tensor(spec, weights, deltas, hf_name, stored).astype(np.float16)
        np.testing.assert_allclose(tensor.data.astype(np.float32), want.astype(np.float32), rtol=2.0**-10, atol=1e-7)
    assert np.isfinite(llama_logits(merged_path)).all()


def test_metadata_is_copied_and_provenance_recorded(tmp_path: Path) -> None:
    _setup("gemma3", tmp_path)
    merged = gguf.GGUFReader(_merge(tmp_path / "base.gguf", tmp_path / "lora", tmp_path / "merged.gguf"))
    base = gguf.GGUFReader(tmp_path / "base.gguf")
    for key, field in base.fields.items():
        if not key.startswith("GGUF."):
            assert merged.get_field(key).contents() == field.contents(), key
    assert [t.name for t in merged.tensors] == [t.name for t in base.tensors]

    def value(key: str):
        return merged.get_field(PROVENANCE_PREFIX + key).contents()

    adapter_bytes = (tmp_path / "lora" / "adapter_model.safetensors").read_bytes()
    assert value("base") == "base.gguf"
    assert value("adapter") == "lora"
    assert value("adapter_sha256") == hashlib.sha256(adapter_bytes).hexdigest()
    assert value("scale") == pytest.approx(16.0 / 8)
    assert value("n_merged_tensors") == 2 * 7


def test_multimodal_wrapper_prefixes_map_to_the_text_model(tmp_path: Path) -> None:
    """Gemma3ForConditionalGeneration adapters name modules model.language_model.layers… (or
    language_model.model.layers… in older transformers); the GGUF holds the text model."""
    from safetensors.numpy import load_file, save_file

    _setup("gemma3", tmp_path)
    plain = _merge(tmp_path / "base.gguf", tmp_path / "lora", tmp_path / "plain.gguf")
    tensors = load_file(str(tmp_path / "lora" / "adapter_model.safetensors"))
    for prefix in ("model.language_model.", "language_model.model."):
        folder = tmp_path / prefix.replace(".", "_")
        folder.mkdir()
        (folder / "adapter_config.json").write_text((tmp_path / "lora" / "adapter_config.json").read_text())
        renamed = {k.replace("base_model.model.model.", "base_model.model." + prefix): v for k, v in tensors.items()}
        save_file(renamed, str(folder / "adapter_model.safetensors"))
        wrapped = _merge(tmp_path / "base.gguf", folder, tmp_path / f"{folder.name}.gguf")
        for t1, t2 in zip(gguf.GGUFReader(plain).tensors, gguf.GGUFReader(wrapped).tensors):
            assert np.array_equal(t1.data, t2.data)


def test_verify_passes_a_good_merge_and_catches_a_wrong_one(tmp_path: Path) -> None:
    from lsg_edge.convert.verify import VerifyOptions, verify_merge
    from lsg_edge.errors import ModelError

    _setup("llama", tmp_path, dtype=gguf.GGMLQuantizationType.F16)
    base, lora = tmp_path / "base.gguf", tmp_path / "lora"
    result = merge_lora(MergeOptions(base, lora, tmp_path / "merged.gguf", progress=False, verify=True))
    check = result.verification
    assert check is not None and check.n_tokens > 10
    # F16 rounding of the merged weights only: tiny next to what the adapter does.
    assert check.normalized_rms < 0.005 and check.adapter_effect > 0.5

    half = _merge(base, lora, tmp_path / "half.gguf", lora_scale=0.5)
    with pytest.raises(ModelError, match="disagrees with base \\+ runtime adapter"):
        verify_merge(VerifyOptions(base, lora, half))
    assert verify_merge(VerifyOptions(base, lora, half, lora_scale=0.5)).normalized_rms < 0.005
