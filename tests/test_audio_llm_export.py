"""convert/export_audio_encoder.py on a tiny random Qwen2-Audio. Needs PyTorch and
transformers (`pip install "lsg-edge[export]"`): a workstation step, so this is the one test that
is skipped where they are not installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lsg_edge.audio_llm.encoder import AudioEncoder
from lsg_edge.audio_llm.manifest import EncoderSpec
from lsg_edge.convert.export_audio_encoder import export_audio_encoder
from lsg_edge.errors import ModelError

pytestmark = pytest.mark.slow  # needs the workstation's `export` extra

N_MELS = 16
N_POSITIONS = 50  # encoder positions: 100 mel frames (1 s) in, 25 embeddings out


@pytest.fixture(scope="module", autouse=True)
def torch():
    """The `export` extra, imported when these tests run rather than when the suite is collected
    (selecting other tests never loads PyTorch); the tests are skipped without it."""
    pytest.importorskip("transformers")
    return pytest.importorskip("torch")


def _tiny_checkpoint(folder: Path) -> Path:
    import torch
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    torch.manual_seed(0)
    config = Qwen2AudioConfig(
        audio_config={"num_mel_bins": N_MELS, "encoder_layers": 2, "encoder_attention_heads": 2,
                      "encoder_ffn_dim": 64, "d_model": 32, "max_source_positions": N_POSITIONS},
        text_config={"model_type": "qwen2", "vocab_size": 128, "hidden_size": 48, "intermediate_size": 96,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1},
        audio_token_index=100,
    )
    Qwen2AudioForConditionalGeneration(config).eval().save_pretrained(folder, safe_serialization=True)
    return folder


def test_export_matches_pytorch_and_runs_in_the_runtime(tmp_path: Path, torch) -> None:
    from transformers import Qwen2AudioForConditionalGeneration

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "encoder.onnx"
    error = export_audio_encoder(checkpoint, out)
    assert out.is_file() and error <= 1e-3
    # The runtime's view of the graph, against the PyTorch model's own audio path.
    encoder = AudioEncoder(EncoderSpec(onnx_path=out, n_mels=N_MELS, n_frames=2 * N_POSITIONS))
    assert encoder.n_embd == 48
    audio = (0.1 * np.random.default_rng(0).standard_normal(16_000 * 6 // 10)).astype(np.float32)
    got = encoder(audio).vectors
    model = Qwen2AudioForConditionalGeneration.from_pretrained(checkpoint).float().eval()
    padded = np.concatenate([audio, np.zeros(2 * N_POSITIONS * 160 - audio.size, np.float32)])
    mel = torch.from_numpy(encoder.log_mel(padded)[None, :, : 2 * N_POSITIONS])
    frames = audio.size // 160
    conv = (frames - 1) // 2 + 1
    mask = torch.zeros(1, 1, N_POSITIONS, N_POSITIONS)
    mask[..., conv:] = torch.finfo(torch.float32).min
    # transformers ≥ 5 nests the towers under `.model`; 4.x keeps them on the top-level module.
    parts = model if hasattr(model, "audio_tower") else model.model
    with torch.no_grad():
        hidden = parts.audio_tower(mel, attention_mask=mask).last_hidden_state
        want = parts.multi_modal_projector(hidden)[0, : (conv - 2) // 2 + 1].numpy()
    assert got.shape == want.shape == (15, 48)
    assert np.max(np.abs(got - want)) <= 1e-3 * max(1.0, np.abs(want).max())


def test_export_refuses_other_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"architectures": ["Qwen2ForCausalLM"]}')
    with pytest.raises(ModelError, match="not Qwen2AudioForConditionalGeneration"):
        export_audio_encoder(tmp_path, tmp_path / "x.onnx")
