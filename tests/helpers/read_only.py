"""Running a command with one folder on a read-only file system, as an unprivileged user would meet it.

Tests run as root in CI containers, and root writes into a folder whatever its permission bits, so
a `chmod` cannot make a folder unwritable here. A private mount namespace can: the command runs
with a read-only tmpfs mounted over the folder, and nothing outside the namespace sees it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["can_mount_read_only", "run_with_read_only", "run_with_read_only_view"]

_UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def can_mount_read_only() -> bool:
    """Whether this machine lets an unprivileged process mount a read-only tmpfs in its own namespace."""
    if shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        probe = subprocess.run([*_UNSHARE, "sh", "-c", f"mount -t tmpfs -o ro tmpfs {folder}"],
                               capture_output=True, timeout=30)
    return probe.returncode == 0


def run_with_read_only(folder: Path, command: list[str], timeout_s: float = 300,
                       **kwargs) -> subprocess.CompletedProcess:
    """`command` run with an empty read-only file system over `folder` (which must exist)."""
    script = 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"'
    return subprocess.run([*_UNSHARE, "sh", "-c", script, str(folder), *map(str, command)],
                          capture_output=True, timeout=timeout_s, **kwargs)


def run_with_read_only_view(source: Path, view: Path, command: list[str], timeout_s: float = 300,
                            **kwargs) -> subprocess.CompletedProcess:
    """`command` run with `source`'s contents visible, read-only, at `view` (which must exist)."""
    script = 'mount --bind "$0" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
    return subprocess.run([*_UNSHARE, "sh", "-c", script, str(source), str(view), *map(str, command)],
                          capture_output=True, timeout=timeout_s, **kwargs)
