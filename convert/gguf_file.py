"""Reading a base GGUF and writing a new one safely.

Writes stream one tensor at a time (gguf-py's writer in its explicit header → KV → tensor-info →
data order), so that merging a 7B model does not hold a second copy of it in memory, and they go to
a temporary file beside the output that is renamed only once complete: a failed or interrupted
run never leaves a half-written GGUF under the output name.
"""

from __future__ import annotations

import contextlib
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import gguf
import numpy as np

from ..errors import ModelError

__all__ = [
    "BaseModel", "open_base_model", "check_output_path", "atomic_output", "copy_metadata", "add_tensor_info", "progress_bar",
]

_GGUF_MAGIC = b"GGUF"
# Fields the reader invents from the file header; the writer produces them itself.
_HEADER_FIELD_PREFIX = "GGUF."
# Keys gguf.GGUFWriter writes on its own.
_WRITER_OWNED_KEYS = frozenset({gguf.Keys.General.ARCHITECTURE})
_ALIGNMENT_KEY = gguf.Keys.General.ALIGNMENT


@dataclass
class BaseModel:
    """A GGUF opened for reading (memory-mapped: tensor data is read on demand)."""

    path: Path
    reader: gguf.GGUFReader
    architecture: str  # general.architecture, e.g. "llama"
    tensors: dict[str, Any] = field(default_factory=dict)  # name → gguf.ReaderTensor, in file order

    def _int(self, key: str, default: int | None = None) -> int:
        reader_field = self.reader.get_field(key.format(arch=self.architecture))
        if reader_field is None:
            if default is not None:
                return default
            raise ModelError(f"{self.path}: metadata key {key.format(arch=self.architecture)!r} is missing")
        value = reader_field.contents()
        # head_count_kv may be a per-layer array; the merge needs one value.
        if isinstance(value, list):
            if len(set(value)) != 1:
                raise ModelError(f"{self.path}: {key.format(arch=self.architecture)} varies per layer: {value}")
            value = value[0]
        return int(value)

    @property
    def n_blocks(self) -> int:
        return self._int(gguf.Keys.LLM.BLOCK_COUNT)

    @property
    def n_heads(self) -> int:
        return self._int(gguf.Keys.Attention.HEAD_COUNT)

    @property
    def n_kv_heads(self) -> int:
        return self._int(gguf.Keys.Attention.HEAD_COUNT_KV, default=self.n_heads)

    def matrix_shape(self, name: str) -> tuple[int, ...]:
        """Shape in NumPy order (rows first): a GGUF linear weight is [out_features, in_features]."""
        return tuple(int(n) for n in reversed(self.tensors[name].shape.tolist()))

    def string(self, key: str) -> str | None:
        reader_field = self.reader.get_field(key)
        return None if reader_field is None else str(reader_field.contents())


def open_base_model(path: Path) -> BaseModel:
    """Open a GGUF model file; ModelError with the path if it is missing, not GGUF, or an adapter."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    with open(path, "rb") as f:
        if f.read(4) != _GGUF_MAGIC:
            raise ModelError(f"not a GGUF file: {path}")
    try:
        reader = gguf.GGUFReader(path, "r")
    except (ValueError, OSError) as e:
        raise ModelError(f"cannot read GGUF {path} (truncated?): {e}") from e
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch_field is None:
        raise ModelError(f"{path} has no general.architecture key")
    model = BaseModel(path, reader, str(arch_field.contents()))
    if model.string(gguf.Keys.General.TYPE) == gguf.GGUFType.ADAPTER:
        raise ModelError(f"{path} is a LoRA adapter GGUF, not a base model")
    model.tensors = {t.name: t for t in reader.tensors}
    return model


def check_output_path(out_path: Path) -> Path:
    """`out_path` if a file can be written there; else a one-line ModelError. Converters call it
    before reading their input, which takes seconds to minutes for a large model."""
    out_path = Path(out_path)
    if out_path.is_dir():
        raise ModelError(f"output path is a folder: {out_path}")
    if not out_path.parent.is_dir():
        raise ModelError(f"output folder does not exist: {out_path.parent}")
    if not os.access(out_path.parent, os.W_OK):
        raise ModelError(f"output folder is not writable: {out_path.parent}")
    return out_path


@contextmanager
def atomic_output(out_path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `out_path`; rename it to `out_path` only if the block succeeds."""
    out_path = check_output_path(out_path)
    # Same folder, so that the final rename is atomic (same file system).
    temporary = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    try:
        yield temporary
        try:
            os.replace(temporary, out_path)
        except OSError as e:
            raise ModelError(f"cannot write {out_path}: {e.strerror}") from e
    finally:
        # The cleanup must never replace the error that brought us here (e.g. EROFS on a
        # read-only file system, where even unlinking a missing file fails).
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def copy_metadata(writer: gguf.GGUFWriter, base: BaseModel, skip: frozenset[str] = frozenset()) -> None:
    """Copy every key-value pair of `base` into `writer`, keeping each value's GGUF type."""
    for key, reader_field in base.reader.fields.items():
        if key.startswith(_HEADER_FIELD_PREFIX) or key in _WRITER_OWNED_KEYS or key in skip:
            continue
        value_type = reader_field.types[0]
        sub_type = reader_field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        if value_type == gguf.GGUFValueType.ARRAY and len(reader_field.types) > 2:
            raise ModelError(f"{base.path}: nested array key {key!r} cannot be copied")
        writer.add_key_value(key, reader_field.contents(), value_type, sub_type)
        if key == _ALIGNMENT_KEY:
            writer.data_alignment = int(reader_field.contents())


def add_tensor_info(writer: gguf.GGUFWriter, name: str, data: np.ndarray, qtype: gguf.GGMLQuantizationType) -> None:
    """Declare a tensor whose bytes `data` will be written later with `writer.write_tensor_data`.

    `data` is either a float/int array in element shape, or a uint8 array of quantized blocks in the
    byte shape gguf-py uses for quantized types (the writer converts it back to elements).
    """
    writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, raw_dtype=qtype)


def progress_bar(total_bytes: int, description: str, enabled: bool):
    """A tqdm bar on stderr, counting bytes (stdout carries data only)."""
    from tqdm import tqdm

    return tqdm(
        total=total_bytes,
        desc=description,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        # A bar redrawn with carriage returns is noise in a log file, and whatever is printed
        # next would land on its line: only on a terminal.
        disable=not (enabled and sys.stderr.isatty()),
        leave=False,
    )
