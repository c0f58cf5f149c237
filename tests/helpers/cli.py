"""Running `lsg-edge` as a user does (a subprocess) and reading its one-line errors."""

from __future__ import annotations

import subprocess
import sys

CLI = [sys.executable, "-m", "lsg_edge.cli"]


def run_cli(args, stdin: bytes = b"", timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + [str(a) for a in args], input=stdin, capture_output=True, timeout=timeout, **kwargs)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The only non-blank stderr line (asserted: exactly one, and no traceback)."""
    err = result.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
