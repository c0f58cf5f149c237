"""Running one click command of `convert/` as a script (`python -m lsg_edge.convert…`).

Each tool's `if __name__ == "__main__"` block runs its command from `cli.py` through this.
"""

from __future__ import annotations

import sys

import click

from ..errors import LsgEdgeError

__all__ = ["run_standalone"]


def run_standalone(command: click.Command, argv: list[str] | None = None) -> None:
    """Run one command as a script, turning LsgEdgeError into one line and its exit code."""
    from ..signals import install_sigterm_handler, interrupted_exit_code

    install_sigterm_handler()  # SIGTERM cleans up as Ctrl-C does, then exits 143
    try:
        command.main(args=argv, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("aborted", err=True)
        sys.exit(interrupted_exit_code())
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except LsgEdgeError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
