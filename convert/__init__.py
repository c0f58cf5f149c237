"""Conversion tools, installed as `lsg_edge.convert`: PEFT LoRA adapters, GGUF models and Whisper
checkpoints into the files the device runs, without PyTorch.

- `merge_lora`: base GGUF + PEFT adapter folder → merged GGUF (W' = W + scale·B·A).
- `lora_to_gguf`: PEFT adapter folder → llama.cpp runtime LoRA adapter GGUF.
- `quantize`: GGUF → quantized GGUF through llama.cpp's own quantizer.
- `whisper_weights`, `whisper_onnx`: Whisper (CTranslate2 or safetensors) → ONNX encoder and
  KV-cached decoder, and their int8 quantization; the runtime calls them on a model's first use.

The command line is `lsg-edge convert …` (click group `cli.convert_group`), or
`python -m lsg_edge.convert <command> …`. Usage: convert/README.md.

The functions live in their modules, named like them:
`from lsg_edge.convert.merge_lora import merge_lora, MergeOptions`.
"""

from importlib import import_module

# Resolved on first use, so that `python -m lsg_edge.convert.<module>` does not import its own
# module twice (runpy warns) and importing the package stays cheap.
_EXPORTS = {
    "MergeOptions": "merge_lora",
    "MergeResult": "merge_lora",
    "ConversionWarning": "merge_lora",
    "LoraGgufOptions": "lora_to_gguf",
    "QuantizeOptions": "quantize",
    "QUANT_TYPES": "quantize",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
