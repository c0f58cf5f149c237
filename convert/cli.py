"""`lsg-edge convert …`: thin click commands over the conversion tools — merge_lora, lora_to_gguf,
quantize, train_lora, whisper_onnx and export_audio_encoder.

stdout carries the output path (data); warnings, progress and errors go to stderr. The group is
registered by lsg_edge/cli.py; `python -m lsg_edge.convert` and `python -m lsg_edge.convert.<module>` run
the same commands through `standalone.run_standalone`. This module imports the tools (lazily, inside
each command); no tool imports it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

from .standalone import run_standalone

__all__ = [
    "convert_group", "merge_lora_command", "lora_to_gguf_command", "quantize_command", "train_lora_command",
    "whisper_onnx_command", "export_audio_encoder_command", "run_standalone",
]

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_OUTPUT_FILE = click.Path(dir_okay=False, path_type=Path)


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show the library's ConversionWarnings as 'warning: …' lines on stderr, as they happen."""
    from .merge_lora import ConversionWarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        click.echo(f"warning: {message}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ConversionWarning)
        warnings.showwarning = show
        yield


@click.group(name="convert")
def convert_group() -> None:
    """Turn adapters and models into the files the device runs: GGUF for text, ONNX for speech."""


@convert_group.command(name="merge-lora")
@click.option("--base", "base_path", type=_EXISTING_FILE, required=True, help="Base model GGUF (F16/BF16/F32).")
@click.option("--adapter", "adapter_path", type=_EXISTING_DIR, required=True, help="PEFT adapter folder.")
@click.option("--out", "out_path", type=_OUTPUT_FILE, required=True, help="Merged GGUF to write.")
@click.option("--lora-scale", type=float, default=1.0, show_default=True, help="Multiplier of the adapter's delta.")
@click.option("--verify", is_flag=True, help="Before writing, check the merge against base + runtime adapter.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def merge_lora_command(
    base_path: Path, adapter_path: Path, out_path: Path, lora_scale: float, verify: bool, progress: bool
) -> None:
    """Merge a PEFT LoRA adapter into a base GGUF: W' = W + scale·B·A."""
    from .merge_lora import MergeOptions, merge_lora

    options = MergeOptions(base_path, adapter_path, out_path, lora_scale=lora_scale, progress=progress, verify=verify)
    with _one_line_warnings():
        result = merge_lora(options)
    click.echo(f"merged {result.n_merged_tensors} tensors", err=True)
    if result.verification is not None:
        v = result.verification
        click.echo(
            f"verified on {v.n_tokens} tokens: normalized RMS of logits vs runtime adapter {v.normalized_rms:.2e} "
            f"(max |Δ| {v.max_abs_diff:.2e}; the adapter itself moves them by {v.adapter_effect:.2e})",
            err=True,
        )
    click.echo(str(result.out_path))


@convert_group.command(name="lora-to-gguf")
@click.option("--base", "base_path", type=_EXISTING_FILE, required=True, help="Base model GGUF the adapter belongs to.")
@click.option("--adapter", "adapter_path", type=_EXISTING_DIR, required=True, help="PEFT adapter folder.")
@click.option("--out", "out_path", type=_OUTPUT_FILE, required=True, help="llama.cpp LoRA adapter GGUF to write.")
@click.option("--outtype", type=click.Choice(["f32", "f16"]), default="f32", show_default=True, help="Tensor type.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def lora_to_gguf_command(base_path: Path, adapter_path: Path, out_path: Path, outtype: str, progress: bool) -> None:
    """Write a PEFT LoRA adapter as a llama.cpp runtime adapter GGUF (use with --lora)."""
    from .lora_to_gguf import LoraGgufOptions, lora_to_gguf

    n = lora_to_gguf(LoraGgufOptions(base_path, adapter_path, out_path, out_type=outtype, progress=progress))
    click.echo(f"wrote {n} adapted tensors", err=True)
    click.echo(str(out_path))


@convert_group.command(name="quantize")
@click.argument("in_path", type=_EXISTING_FILE)
@click.argument("out_path", type=_OUTPUT_FILE)
@click.option("--type", "type_name", default="Q4_K_M", show_default=True,
              help="Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_0, Q5_1, Q4_K_M, Q4_K_S, Q4_0, Q4_1, Q3_K_L, Q3_K_M, "
              "Q3_K_S, Q2_K, F16, BF16.")
@click.option("--threads", "n_threads", type=int, default=0, show_default=True, help="Threads; 0 = all cores.")
@click.option("--allow-requantize", is_flag=True, help="Accept an already quantized input (adds error).")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def quantize_command(
    in_path: Path, out_path: Path, type_name: str, n_threads: int, allow_requantize: bool, progress: bool
) -> None:
    """Quantize a GGUF with llama.cpp's quantizer."""
    from .quantize import QuantizeOptions, quantize

    options = QuantizeOptions(in_path, out_path, type_name, n_threads, allow_requantize, progress)
    click.echo(str(quantize(options)))



@convert_group.command(
    name="train-lora", context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.pass_context
def train_lora_command(ctx: click.Context) -> None:
    """LoRA-SFT a GGUF base for translation (workstation; needs the train extra). --help for options."""
    from .train_lora import main as train_main

    train_main(list(ctx.args))


@convert_group.command(name="whisper-onnx")
@click.argument("source")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True,
              help="int8: MatMul/Gemm weights quantized (~1.5x faster on CPU).")
def whisper_onnx_command(source: str, out_dir: Path, precision: str) -> None:
    """Convert Whisper to the ONNX graphs `lsg-edge asr --model OUT_DIR` loads (no PyTorch needed).

    SOURCE: a CTranslate2 or Hugging Face safetensors Whisper folder, or a built-in model
    (base, tiny.en).
    """
    import shutil
    import tempfile

    from ..errors import OptionsError
    from ..folders import output_folder
    from ..speech.models import BUILTIN_MODELS, assemble_ct2
    from ..speech.whisper_graphs import SIDE_FILES
    from .whisper_onnx import convert_whisper, quantize_int8

    if source in BUILTIN_MODELS:
        source_dir = assemble_ct2(source)
    elif Path(source).is_dir():
        source_dir = Path(source)
    else:
        raise OptionsError(f"SOURCE {source!r} is neither a folder nor a built-in model ({', '.join(BUILTIN_MODELS)})")
    output_folder(out_dir, "OUT_DIR")  # before reading the weights
    click.echo(f"converting {source_dir} to ONNX ({precision}) …", err=True)
    if precision == "fp32":
        convert_whisper(source_dir, out_dir)
    else:
        with tempfile.TemporaryDirectory(prefix=".whisper-fp32-", dir=out_dir) as work:
            convert_whisper(source_dir, Path(work))
            quantize_int8(Path(work), out_dir)
            for file_name in SIDE_FILES:
                if (Path(work) / file_name).exists():
                    shutil.copyfile(Path(work) / file_name, out_dir / file_name)
    click.echo(str(out_dir))


@convert_group.command(name="export-audio-encoder")
@click.argument("model_dir", type=_EXISTING_DIR)
@click.argument("out_path", type=_OUTPUT_FILE)
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset of the graph.")
def export_audio_encoder_command(model_dir: Path, out_path: Path, opset: int) -> None:
    """Export MODEL_DIR's Qwen2-Audio encoder (tower + projector) to OUT_PATH, checked against PyTorch.

    A workstation step for the audio-LLM: needs PyTorch and transformers (pip install "lsg-edge[export]").
    """
    from .export_audio_encoder import ExportOptions, export_audio_encoder
    from .gguf_file import check_output_path

    options = ExportOptions(opset=opset)
    check_output_path(out_path)  # before reading gigabytes of checkpoint
    click.echo(f"exporting the audio encoder of {model_dir} …", err=True)
    error = export_audio_encoder(model_dir, out_path, options)
    click.echo(f"parity: max relative error {error:.1e}", err=True)
    click.echo(str(out_path))
