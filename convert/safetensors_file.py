"""A minimal reader of the safetensors format, NumPy only.

The device side must not need PyTorch, and `safetensors.numpy` cannot return bfloat16 (NumPy has
no such dtype) — yet most adapters trained in bf16 are saved that way. The format is small enough
to read directly: an 8-byte little-endian header length, a JSON header mapping each tensor name to
`{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the end of the header),
then the raw little-endian bytes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..errors import ModelError

__all__ = ["read_safetensors"]

_HEADER_LENGTH_BYTES = 8
# A header bigger than this is not an adapter's; refusing early avoids reading a huge blob as JSON.
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_NUMPY_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_BF16 = "BF16"


def _bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the upper half of a float32: shift the 16 bits into place."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file; floating-point tensors come back as float32.

    Integer and bool tensors keep their dtype. Raises ModelError naming the file when it is not a
    well-formed safetensors file.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror}") from e
    if len(blob) < _HEADER_LENGTH_BYTES:
        raise ModelError(f"not a safetensors file (too short): {path}")
    (n_header,) = struct.unpack("<Q", blob[:_HEADER_LENGTH_BYTES])
    if n_header > min(_MAX_HEADER_BYTES, len(blob) - _HEADER_LENGTH_BYTES):
        raise ModelError(f"not a safetensors file (header length {n_header}): {path}")
    try:
        header = json.loads(blob[_HEADER_LENGTH_BYTES : _HEADER_LENGTH_BYTES + n_header])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"not a safetensors file (bad JSON header): {path}") from e
    data_start = _HEADER_LENGTH_BYTES + n_header
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _decode(path, name, info, blob, data_start)
    return tensors


def _decode(path: Path, name: str, info: dict, blob: bytes, data_start: int) -> np.ndarray:
    dtype_name = info.get("dtype")
    shape = tuple(int(n) for n in info.get("shape", ()))
    begin, end = (int(x) for x in info.get("data_offsets", (0, -1)))
    if not 0 <= begin <= end or data_start + end > len(blob):
        raise ModelError(f"{path}: tensor {name!r} lies outside the file (truncated download?)")
    n_elements = int(np.prod(shape, dtype=np.int64))
    raw = memoryview(blob)[data_start + begin : data_start + end]
    if dtype_name == _BF16:
        if len(raw) != 2 * n_elements:
            raise ModelError(f"{path}: tensor {name!r} has {len(raw)} bytes for shape {shape}")
        return _bf16_to_float32(np.frombuffer(raw, dtype="<u2")).reshape(shape)
    dtype = _NUMPY_DTYPES.get(dtype_name)
    if dtype is None:
        raise ModelError(f"{path}: tensor {name!r} has unsupported dtype {dtype_name!r}")
    if len(raw) != dtype.itemsize * n_elements:
        raise ModelError(f"{path}: tensor {name!r} has {len(raw)} bytes for shape {shape}")
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return array.astype(np.float32) if dtype.kind == "f" else array.copy()
