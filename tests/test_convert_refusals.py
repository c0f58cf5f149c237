"""Adapters that do not fit the base are refused in one line, and nothing is left at the output path.

Also: the temporary-file-then-rename discipline, the safetensors reader, and the click commands
(`lsg-edge convert …` and `python -m lsg_edge.convert …`).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gguf
import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file
from tests.helpers.tiny_models import (
    AdapterSpec,
    llama_logits,
    make_hf_weights,
    max_abs_diff,
    tiny_spec,
    write_peft_adapter,
    write_tiny_gguf,
)

from lsg_edge.convert.cli import convert_group
from lsg_edge.convert.gguf_file import atomic_output
from lsg_edge.convert.lora_to_gguf import LoraGgufOptions, lora_to_gguf
from lsg_edge.convert.merge_lora import MergeOptions, merge_lora
from lsg_edge.convert.safetensors_file import read_safetensors
from lsg_edge.errors import ModelError, OptionsError


@pytest.fixture
def base(tmp_path: Path) -> Path:
    spec = tiny_spec("qwen2")
    return write_tiny_gguf(spec, make_hf_weights(spec), tmp_path / "base.gguf")


def _assert_refused(base: Path, adapter: Path, match: str) -> None:
    """Both conversions refuse with `match` in a one-line message and leave no file behind."""
    folder = base.parent
    before = set(folder.iterdir())
    for convert in (
        lambda: merge_lora(MergeOptions(base, adapter, folder / "merged.gguf", progress=False)),
        lambda: lora_to_gguf(LoraGgufOptions(base, adapter, folder / "lora.gguf", progress=False)),
    ):
        with pytest.raises(ModelError, match=match) as caught:
            convert()
        assert "\n" not in str(caught.value)
    assert set(folder.iterdir()) == before


def test_adapter_for_a_wider_model_is_refused(base: Path, tmp_path: Path) -> None:
    write_peft_adapter(replace(tiny_spec("qwen2"), d_model=96), AdapterSpec(), tmp_path / "lora")
    message = r"is \d+×\d+ but blk\.0\.\w+\.weight in base\.gguf is \d+×\d+ .* \(and 13 more mismatched modules\)"
    _assert_refused(base, tmp_path / "lora", message)


def test_adapter_for_a_deeper_model_is_refused(base: Path, tmp_path: Path) -> None:
    write_peft_adapter(replace(tiny_spec("qwen2"), n_layers=3), AdapterSpec(), tmp_path / "lora")
    message = r"targets blk\.2\.\w+\.weight, which base\.gguf does not have \(and 6 more"
    _assert_refused(base, tmp_path / "lora", message)


def _adapter_with_extra_module(folder: Path, module: str, n_out: int) -> Path:
    """A valid q_proj adapter plus rank-8 LoRA tensors for `module` (a PEFT module path)."""
    write_peft_adapter(tiny_spec("qwen2"), AdapterSpec(targets=("q_proj",)), folder)
    tensors = read_safetensors(folder / "adapter_model.safetensors")
    tensors[f"base_model.model.{module}.lora_A.weight"] = np.zeros((8, 64), np.float32)
    tensors[f"base_model.model.{module}.lora_B.weight"] = np.zeros((n_out, 8), np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def test_unknown_module_is_refused(base: Path, tmp_path: Path) -> None:
    folder = _adapter_with_extra_module(tmp_path / "lora", "model.layers.0.self_attn.rotary_gate", 64)
    _assert_refused(base, folder, "rotary_gate' has no counterpart")


def test_lm_head_on_tied_embeddings_is_refused(base: Path, tmp_path: Path) -> None:
    folder = _adapter_with_extra_module(tmp_path / "lora", "lm_head", 320)
    _assert_refused(base, folder, "tied embeddings")


@pytest.mark.parametrize(
    ("config_change", "extra_tensor", "match"),
    [
        ({"use_dora": True}, None, "DoRA"),
        ({"peft_type": "IA3"}, None, "IA3"),
        ({"r": 0}, None, "r must be a positive number"),
        ({"r": 4}, None, r"config gives rank 4"),
        ({}, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias", "trained biases"),
        ({}, "base_model.model.model.embed_tokens.lora_embedding_A", "token embeddings"),
    ],
)
def test_unsupported_adapters_are_refused(base: Path, tmp_path: Path, config_change, extra_tensor, match) -> None:
    folder = tmp_path / "lora"
    write_peft_adapter(tiny_spec("qwen2"), AdapterSpec(targets=("q_proj",)), folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, **config_change}))
    if extra_tensor:
        tensors = read_safetensors(folder / "adapter_model.safetensors")
        tensors[extra_tensor] = np.zeros((8, 64), np.float32)
        save_file(tensors, str(folder / "adapter_model.safetensors"))
    _assert_refused(base, folder, match)


def test_unsupported_architecture_and_adapter_as_base_are_refused(tmp_path: Path) -> None:
    write_peft_adapter(tiny_spec("llama"), AdapterSpec(), tmp_path / "lora")
    writer = gguf.GGUFWriter(tmp_path / "base.gguf", "gpt2")
    writer.add_block_count(2)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    _assert_refused(tmp_path / "base.gguf", tmp_path / "lora", "architecture 'gpt2' is not supported")

    spec = tiny_spec("llama")
    real_base = write_tiny_gguf(spec, make_hf_weights(spec), tmp_path / "llama.gguf")
    lora_to_gguf(LoraGgufOptions(real_base, tmp_path / "lora", tmp_path / "adapter.gguf", progress=False))
    _assert_refused(tmp_path / "adapter.gguf", tmp_path / "lora", "is a LoRA adapter GGUF, not a base model")


def test_missing_files_and_bad_options(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="adapter folder not found"):
        merge_lora(MergeOptions(base, tmp_path / "nowhere", tmp_path / "m.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no adapter_config.json"):
        merge_lora(MergeOptions(base, tmp_path / "empty", tmp_path / "m.gguf"))
    with pytest.raises(OptionsError, match="--out must differ"):
        MergeOptions(base, tmp_path / "empty", base)
    with pytest.raises(OptionsError, match="--outtype"):
        LoraGgufOptions(base, tmp_path / "empty", tmp_path / "a.gguf", out_type="q8_0")


def test_failed_write_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "model.gguf"
    out.write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as temporary:
            temporary.write_bytes(b"half a mode")
            raise RuntimeError("disk full")
    assert out.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [out]
    with atomic_output(out) as temporary:
        temporary.write_bytes(b"new")
    assert out.read_bytes() == b"new" and list(tmp_path.iterdir()) == [out]


def test_safetensors_reader_decodes_bf16_and_f16(tmp_path: Path) -> None:
    values = np.array([[1.0, -2.5], [0.15625, 3.0e-3]], np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()  # exact for these values but the last
    f16 = values.astype("<f2").tobytes()
    header = {
        "a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
        "b": {"dtype": "F16", "shape": [2, 2], "data_offsets": [8, 16]},
        "__metadata__": {"format": "pt"},
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bf16 + f16)
    tensors = read_safetensors(path)
    assert set(tensors) == {"a", "b"} and tensors["a"].dtype == np.float32
    np.testing.assert_allclose(tensors["a"], values, rtol=2**-7)
    np.testing.assert_array_equal(tensors["b"], values.astype(np.float16).astype(np.float32))
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ModelError, match="outside the file"):
        read_safetensors(path)


def test_cli_pipeline_merge_quantize_and_runtime_adapter(tmp_path: Path) -> None:
    """The user's three commands, on a wide Gemma 3 so that Q4_K_M applies."""
    spec = tiny_spec("gemma3", wide=True)
    base = write_tiny_gguf(spec, make_hf_weights(spec), tmp_path / "base-f32.gguf")
    write_peft_adapter(spec, AdapterSpec(), tmp_path / "my_lora")
    runner = CliRunner()
    merged, q4, adapter = tmp_path / "merged-f32.gguf", tmp_path / "merged-q4_k_m.gguf", tmp_path / "lora.gguf"
    commands = [
        ["merge-lora", "--base", base, "--adapter", tmp_path / "my_lora", "--out", merged, "--verify", "--no-progress"],
        ["quantize", merged, q4, "--type", "Q4_K_M", "--threads", "2", "--no-progress"],
        ["lora-to-gguf", "--base", base, "--adapter", tmp_path / "my_lora", "--out", adapter, "--no-progress"],
    ]
    for args in commands:
        result = runner.invoke(convert_group, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == str(args[args.index("--out") + 1] if "--out" in args else q4)
        assert ("verified on" in result.stderr) == ("--verify" in args)
    merged_logits = llama_logits(merged)
    assert max_abs_diff(llama_logits(base, lora_path=adapter), merged_logits) <= 1e-3
    q4_logits = llama_logits(q4)
    assert np.sqrt(np.mean((q4_logits - merged_logits) ** 2)) / np.std(merged_logits) <= 0.32


def test_module_entry_point_reports_errors_in_one_line(base: Path, tmp_path: Path) -> None:
    write_peft_adapter(replace(tiny_spec("qwen2"), d_model=96), AdapterSpec(), tmp_path / "lora")
    args = ["--base", base, "--adapter", tmp_path / "lora", "--out", tmp_path / "m.gguf", "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-m", "lsg_edge.convert.merge_lora", *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == ModelError.exit_code
    assert done.stderr.startswith("error: adapter module") and done.stderr.count("\n") == 1
    assert done.stdout == "" and not (tmp_path / "m.gguf").exists()
