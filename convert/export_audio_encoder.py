"""Export the audio encoder of a Hugging Face Qwen2-Audio checkpoint (audio tower + projector) to
ONNX, for lsg_edge.audio_llm — a workstation step; the device never needs PyTorch.

    pip install "lsg-edge[export]"          # torch, transformers
    lsg-edge convert export-audio-encoder Qwen2-Audio-7B-Instruct/ audio_encoder.onnx

Stages: check the checkpoint (architecture, safetensors) → read only the `audio_tower.*` and
`multi_modal_projector.*` tensors (~2.6 GB in float32, not the 7B LLM) → trace the wrapper below
into a temporary file → parity check: onnxruntime against the PyTorch module on random log-mels
with random valid lengths → rename into place. Provenance goes into the graph's metadata.

The graph follows the contract of lsg_edge/audio_llm/encoder.py: `mel` float32 [1, n_mels, 3000]
and `mel_frames` int64 [1] in; `embeddings` float32 [1, 750, d_llm] and `n_embeddings` int64 [1]
out. Padding frames are masked in the encoder's self-attention exactly as
Qwen2AudioForConditionalGeneration does, and `n_embeddings` = its `_get_feat_extract_output_lengths`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, OptionsError

__all__ = ["ExportOptions", "export_audio_encoder", "load_audio_modules", "export_modules", "parity_check"]

_ARCHITECTURE = "Qwen2AudioForConditionalGeneration"
_TOWER_PREFIXES = ("audio_tower.", "model.audio_tower.")  # the second: checkpoints saved by newer transformers
_PROJECTOR_PREFIXES = ("multi_modal_projector.", "model.multi_modal_projector.")
PROVENANCE_PREFIX = "lsg_edge."


@dataclass(frozen=True)
class ExportOptions:
    """How to export and check."""

    opset: int = 17  # ONNX opset
    n_parity_trials: int = 3  # random log-mels compared with the PyTorch module
    # Bound on max |onnx − torch| / max(1, max |torch|) over the valid rows, float32 both ways.
    max_relative_error: float = 1e-3
    seed: int = 0  # of the parity inputs

    def __post_init__(self) -> None:
        if self.n_parity_trials < 1:
            raise OptionsError(f"n_parity_trials must be at least 1, got {self.n_parity_trials}")


def _torch():
    try:
        import torch
        import transformers  # noqa: F401 - checked here so the message names both
    except ImportError as e:
        raise ModelError('exporting an audio encoder needs PyTorch and transformers: pip install "lsg-edge[export]"') from e
    return torch


def _wrapper(torch, tower, projector):
    """The module that is traced: (mel, mel_frames) → (embeddings, n_embeddings)."""

    class EncoderForExport(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tower = tower
            self.projector = projector

        def forward(self, mel, mel_frames):
            frames = mel_frames.to(torch.int64)
            conv_lengths = (frames - 1) // 2 + 1  # after the stride-2 convolution
            n_embeddings = (conv_lengths - 2) // 2 + 1  # after the stride-2 average pooling
            n_positions = mel.shape[-1] // 2
            positions = torch.arange(n_positions, device=mel.device)
            padding = positions[None, :] >= conv_lengths[:, None]  # [1, n_positions]
            # Additive mask over keys, as Qwen2AudioForConditionalGeneration builds it (finfo.min
            # instead of −inf: the same softmax, no inf arithmetic in the graph).
            mask = torch.zeros(1, 1, n_positions, n_positions, dtype=mel.dtype, device=mel.device)
            mask = mask.masked_fill(padding[:, None, None, :], torch.finfo(mel.dtype).min)
            hidden = self.tower(mel, attention_mask=mask).last_hidden_state
            return self.projector(hidden), n_embeddings

    return EncoderForExport().eval()


def load_audio_modules(model_dir: Path):
    """(tower, projector, config) of a Qwen2-Audio checkpoint, reading only their tensors."""
    torch = _torch()
    from safetensors import safe_open
    from transformers import AutoConfig
    from transformers.models.qwen2_audio import modeling_qwen2_audio as qa

    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ModelError(f"no config.json in {model_dir} (a Hugging Face checkpoint folder?)")
    architectures = json.loads(config_path.read_text()).get("architectures", [])
    if _ARCHITECTURE not in architectures:
        raise ModelError(f"{model_dir} is {architectures}, not {_ARCHITECTURE}")
    shards = sorted(model_dir.glob("*.safetensors"))
    if not shards:
        raise ModelError(f"no *.safetensors in {model_dir}")
    config = AutoConfig.from_pretrained(model_dir)
    config.audio_config._attn_implementation = "eager"  # plain ops: traces into portable ONNX
    tower, projector = qa.Qwen2AudioEncoder(config.audio_config), qa.Qwen2AudioMultiModalProjector(config)
    tower_state, projector_state = {}, {}
    for shard in shards:
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():
                for prefixes, state in ((_TOWER_PREFIXES, tower_state), (_PROJECTOR_PREFIXES, projector_state)):
                    prefix = next((p for p in prefixes if name.startswith(p)), None)
                    if prefix is not None:
                        state[name[len(prefix):]] = f.get_tensor(name).to(torch.float32)
    for module, state, what in ((tower, tower_state, "audio_tower"), (projector, projector_state, "projector")):
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(f"{model_dir}: {what} tensors do not match the config (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    return tower.float().eval(), projector.float().eval(), config


def export_modules(tower, projector, out_path: Path, options: ExportOptions = ExportOptions(),
                   provenance: dict[str, str] | None = None) -> float:
    """Trace tower + projector into `out_path` (via a temporary file, renamed after the parity
    check passes). Returns the measured parity error (see ExportOptions.max_relative_error)."""
    torch = _torch()
    import onnx

    module = _wrapper(torch, tower, projector)
    n_mels = tower.config.num_mel_bins
    n_frames = tower.config.max_source_positions * tower.conv1.stride[0] * tower.conv2.stride[0]
    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    example = (torch.zeros(1, n_mels, n_frames), torch.tensor([n_frames], dtype=torch.int64))
    try:
        with torch.no_grad():
            torch.onnx.export(module, example, str(partial), input_names=["mel", "mel_frames"],
                              output_names=["embeddings", "n_embeddings"], opset_version=options.opset,
                              dynamo=False)
        model = onnx.load(str(partial))
        for key, value in {"source": "Qwen2-Audio audio_tower + multi_modal_projector", "n_mels": str(n_mels),
                           "n_frames": str(n_frames), **(provenance or {})}.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = PROVENANCE_PREFIX + key, value
        onnx.save(model, str(partial))
        error = parity_check(module, partial, n_mels, n_frames, options)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return error


def parity_check(module, onnx_path: Path, n_mels: int, n_frames: int, options: ExportOptions = ExportOptions()) -> float:
    """Run the graph (onnxruntime) and `module` (PyTorch) on random log-mels with random valid
    lengths; raise ModelError when the valid rows differ by more than the bound."""
    torch = _torch()
    from ..onnx_session import RuntimeOptions, open_session

    session = open_session(Path(onnx_path), RuntimeOptions(device="cpu"), "exported audio encoder")
    rng = np.random.default_rng(options.seed)
    worst = 0.0
    for _ in range(options.n_parity_trials):
        mel = rng.uniform(-1.0, 1.5, size=(1, n_mels, n_frames)).astype(np.float32)  # Whisper log-mel range
        frames = np.array([rng.integers(n_frames // 10, n_frames + 1)], dtype=np.int64)
        with torch.no_grad():
            want, want_n = (t.numpy() for t in module(torch.from_numpy(mel), torch.from_numpy(frames)))
        got, got_n = session.run(["embeddings", "n_embeddings"], {"mel": mel, "mel_frames": frames})
        n = int(want_n.reshape(-1)[0])
        if int(np.asarray(got_n).reshape(-1)[0]) != n:
            raise ModelError(f"parity check: the graph keeps {int(got_n.reshape(-1)[0])} rows, PyTorch {n}")
        scale = max(1.0, float(np.abs(want[0, :n]).max()))
        worst = max(worst, float(np.abs(got[0, :n] - want[0, :n]).max()) / scale)
    if worst > options.max_relative_error:
        raise ModelError(f"parity check failed: max relative error {worst:.2e} > {options.max_relative_error:.0e}")
    return worst


def export_audio_encoder(model_dir: Path, out_path: Path, options: ExportOptions = ExportOptions()) -> float:
    """Checkpoint folder → checked ONNX encoder at `out_path`; returns the parity error."""
    tower, projector, config = load_audio_modules(model_dir)
    provenance = {"checkpoint": str(Path(model_dir).resolve()), "llm_width": str(config.text_config.hidden_size)}
    return export_modules(tower, projector, out_path, options, provenance)


if __name__ == "__main__":  # `python -m lsg_edge.convert.export_audio_encoder`, the script form of the command
    from .cli import export_audio_encoder_command
    from .standalone import run_standalone

    run_standalone(export_audio_encoder_command)
