"""Packaged LoRA adapters, built into what llama.cpp loads on first use.

A translation-tuned model ships as a small PEFT adapter inside the package (`models/adapters/`),
not as a second 240 MB GGUF. On first use it becomes either
- a llama.cpp runtime LoRA (`convert.lora_to_gguf`, float16) applied to the unchanged base — the
  adapter's update stays exact; or
- a merged model: merged into the base with the torch-free `convert.merge_lora` and quantized
  again with llama.cpp's quantizer (`convert.quantize`) — no adapter at run time, but the second
  quantization rounds away much of a small update to a 4-bit base.
The result is cached beside the base. A stamp records the adapter's digest and the base's
fingerprint, so a new adapter (a package upgrade) or a replaced base builds it again, and a
damaged file is never used.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings
from importlib import resources
from pathlib import Path
from typing import Callable

from .assets import cache_folder, file_fingerprint
from .errors import ModelError

__all__ = ["packaged_adapter_dir", "merged_adapter_gguf", "runtime_adapter_gguf"]

_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def packaged_adapter_dir(name: str) -> Path:
    """The folder of a packaged adapter (`models/adapters/<name>/`); ModelError if it is missing."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ModelError(f"[weights] adapter must be the name of a packaged adapter, got {name!r}")
    folder = Path(str(resources.files("lsg_edge.models") / "adapters" / name))
    missing = [f for f in _ADAPTER_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelError(f"the packaged adapter {name!r} is incomplete (missing {', '.join(missing)}); reinstall lsg-edge")
    return folder


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in _ADAPTER_FILES:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def _stamp(base: Path, adapter: Path) -> str:
    return f"adapter {_digest(adapter)}\nbase {base.name} {file_fingerprint(base)}\n"


def _is_built(target: Path, expected: str) -> bool:
    stamp = target.with_name(target.name + ".verified")
    return target.exists() and stamp.exists() and stamp.read_text() == expected + file_fingerprint(target) + "\n"


def _mark_built(target: Path, expected: str) -> None:
    target.with_name(target.name + ".verified").write_text(expected + file_fingerprint(target) + "\n")


def _build_once(base: Path, adapter: Path, target: Path, what: str, build: Callable[[Path], Path]) -> Path:
    """`target`, built by `build(work_dir) -> file` unless a stamp shows it was built from this very
    adapter and base and is intact."""
    expected = _stamp(base, adapter)
    if _is_built(target, expected):
        return target
    cache_folder(target.parent)
    print(f"lsg-edge: building {target.name} {what} (first use)", file=sys.stderr)
    # Unique temporary names: two first runs at once must not write into each other's files.
    with tempfile.TemporaryDirectory(prefix=".adapter-", dir=target.parent) as work:
        try:
            built = build(Path(work))
        except OSError as e:
            raise ModelError(f"could not build {target} from its adapter: {e}") from e
        os.replace(built, target)
    _mark_built(target, expected)
    return target


def runtime_adapter_gguf(base: Path, adapter: Path, target: Path) -> Path:
    """`target`: the PEFT `adapter` as a float16 llama.cpp LoRA GGUF for `base`, built once."""
    from .convert.lora_to_gguf import LoraGgufOptions, lora_to_gguf

    def build(work: Path) -> Path:
        lora_to_gguf(LoraGgufOptions(base, adapter, work / "lora.gguf", out_type="f16", progress=False))
        return work / "lora.gguf"

    return _build_once(base, adapter, target, "from the packaged adapter (a few seconds)", build)


def merged_adapter_gguf(base: Path, adapter: Path, target: Path, quant_type: str = "Q4_K_M") -> Path:
    """`target`: `base` with the PEFT `adapter` merged in and quantized to `quant_type`, built once.

    The merge dequantizes a quantized base (the adapter was trained against those very weights, so
    nothing is lost that the base did not already lose) and the quantizer brings it back to a
    quantized size; a type finer than the base's keeps more of the adapter's small update.
    """
    from .convert.merge_lora import ConversionWarning, MergeOptions, merge_lora
    from .convert.quantize import QuantizeOptions, quantize

    def build(work: Path) -> Path:
        with warnings.catch_warnings():
            # The dequantized-base warning is expected here: the adapter was trained on it.
            warnings.simplefilter("ignore", ConversionWarning)
            merge_lora(MergeOptions(base, adapter, work / "merged-f16.gguf", progress=False))
        quantize(QuantizeOptions(work / "merged-f16.gguf", work / "merged.gguf", quant_type, progress=False))
        return work / "merged.gguf"

    return _build_once(base, adapter, target, "from its base and packaged adapter (about two minutes)", build)
