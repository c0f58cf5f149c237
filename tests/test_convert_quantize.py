"""quantize: llama.cpp's quantizer through llama-cpp-python, on a merged tiny model.

Tolerance: random-weight models are a hard case for quantization (no outlier structure, every
weight matters), so the bound is on the normalized RMS error of the logits,
rms(logits_q − logits_f16) / std(logits_f16), per type. Measured on these models (llama, qwen2,
gemma3): Q8_0 0.022–0.026, Q6_K 0.054–0.069, Q5_K_M 0.089–0.110, Q4_K_M 0.17–0.20,
Q4_0 0.20–0.26; the bounds leave about 1.5–2× headroom.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from tests.helpers.tiny_models import (
    AdapterSpec,
    llama_logits,
    make_hf_weights,
    max_abs_diff,
    tiny_spec,
    write_peft_adapter,
    write_tiny_gguf,
)

from lsg_edge.convert.merge_lora import MergeOptions, merge_lora
from lsg_edge.convert.quantize import QuantizeOptions, quantize
from lsg_edge.errors import ModelError, OptionsError

# type → (max normalized RMS logits error vs F16, GGML type of the attention Q weights, llama_ftype)
EXPECTED = {
    "Q8_0": (0.05, gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "Q6_K": (0.10, gguf.GGMLQuantizationType.Q6_K, gguf.LlamaFileType.MOSTLY_Q6_K),
    "Q5_K_M": (0.18, gguf.GGMLQuantizationType.Q5_K, gguf.LlamaFileType.MOSTLY_Q5_K_M),
    "Q4_K_M": (0.32, gguf.GGMLQuantizationType.Q4_K, gguf.LlamaFileType.MOSTLY_Q4_K_M),
    "Q4_0": (0.40, gguf.GGMLQuantizationType.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
}


@pytest.fixture(scope="module")
def merged_f16(tmp_path_factory) -> Path:
    """A wide (256-column) llama merged with an adapter, then converted to F16 by the quantizer."""
    folder = tmp_path_factory.mktemp("quantize")
    spec = tiny_spec("llama", wide=True)
    base = write_tiny_gguf(spec, make_hf_weights(spec), folder / "base-f32.gguf")
    write_peft_adapter(spec, AdapterSpec(), folder / "lora")
    merged = folder / "merged-f32.gguf"
    merge_lora(MergeOptions(base, folder / "lora", merged, progress=False))
    f16 = folder / "merged-f16.gguf"
    quantize(QuantizeOptions(merged, f16, "F16", progress=False))
    # F16 itself stays within F16 rounding of the F32 merge.
    assert max_abs_diff(llama_logits(f16), llama_logits(merged)) <= 1e-2
    return f16


def _normalized_rms(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.sqrt(np.mean((got.astype(np.float64) - want) ** 2)) / np.std(want))


@pytest.mark.parametrize("type_name", list(EXPECTED))
def test_quantized_logits_stay_close_to_f16(type_name: str, merged_f16: Path, tmp_path: Path) -> None:
    bound, q_type, file_type = EXPECTED[type_name]
    options = QuantizeOptions(merged_f16, tmp_path / f"q-{type_name}.gguf", type_name, n_threads=2, progress=False)
    out = quantize(options)
    reader = gguf.GGUFReader(out)
    assert reader.get_field("general.file_type").contents() == file_type
    assert next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight").tensor_type == q_type
    # Provenance from the merge survives quantization (llama.cpp copies the metadata).
    assert reader.get_field("lsg_edge.merge_lora.adapter").contents() == "lora"
    assert out.stat().st_size < merged_f16.stat().st_size
    assert _normalized_rms(llama_logits(out), llama_logits(merged_f16)) <= bound


def test_thread_count_does_not_change_the_result(merged_f16: Path, tmp_path: Path) -> None:
    one = quantize(QuantizeOptions(merged_f16, tmp_path / "t1.gguf", "q4_k_m", n_threads=1, progress=False))
    two = quantize(QuantizeOptions(merged_f16, tmp_path / "t2.gguf", "Q4_K_M", n_threads=2, progress=False))
    assert one.read_bytes() == two.read_bytes()


def test_bad_options_and_inputs_are_refused(merged_f16: Path, tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="--type"):
        QuantizeOptions(merged_f16, tmp_path / "x.gguf", "Q9_9")
    with pytest.raises(OptionsError, match="--threads"):
        QuantizeOptions(merged_f16, tmp_path / "x.gguf", "Q8_0", n_threads=-1)
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF"):
        quantize(QuantizeOptions(not_gguf, tmp_path / "x.gguf", "Q8_0", progress=False))
    assert list(tmp_path.iterdir()) == [not_gguf]


def test_requantizing_needs_the_flag_and_leaves_nothing_behind(merged_f16: Path, tmp_path: Path) -> None:
    q8 = quantize(QuantizeOptions(merged_f16, tmp_path / "q8.gguf", "Q8_0", progress=False))
    with pytest.raises(ModelError, match=r"already quantized \(Q8_0\).*--allow-requantize"):
        quantize(QuantizeOptions(q8, tmp_path / "q4.gguf", "Q4_0", progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q8.gguf"]
    out = quantize(QuantizeOptions(q8, tmp_path / "q4.gguf", "Q4_0", allow_requantize=True, progress=False))
    assert np.isfinite(llama_logits(out)).all()
