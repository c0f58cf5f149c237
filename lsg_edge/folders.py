"""Folders lsg-edge writes into (the cache, `eval --output`, converter outputs), checked up front.

A folder that cannot be created or written should fail in one line before a model is read or a
run starts, not as an OSError traceback at the first write minutes later. Callers turn the reason
into their own message, naming the flag or environment variable the user can change.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from .errors import OptionsError

__all__ = ["folder_problem", "output_folder"]


def folder_problem(folder: Path) -> str | None:
    """Create `folder` (and its parents) if needed and check that a file can be written in it.

    Returns None when it can, else the reason in a few words ("a file, not a folder: PATH",
    "Read-only file system", "Permission denied", …). The check writes and removes a hidden empty
    file: `os.access` says yes to root on a folder without write permission and no to nobody
    else consistently, but only a real write answers for every file system.
    """
    folder = Path(folder)
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        return f"a file, not a folder: {blocker}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".lsg-edge-write-check-"):
            pass
    except OSError as e:
        return e.strerror or errno.errorcode.get(e.errno or 0, str(e))
    return None


def _file_in_the_way(folder: Path) -> Path | None:
    """The first path of `folder` and its ancestors that exists and is not a folder, if any."""
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            return None if path.is_dir() else path
    return None


def output_folder(folder: Path, flag: str = "--output") -> Path:
    """`folder` created if needed, or a one-line OptionsError naming `flag` if it cannot be written."""
    problem = folder_problem(folder)
    if problem is not None:
        raise OptionsError(f"{flag} {folder}: cannot write there ({problem})")
    return Path(folder)
