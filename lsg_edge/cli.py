"""The `lsg-edge` command line: click builds options and calls the library.

stdout carries data (committed text, or JSON lines); stderr carries diagnostics. Every
`LsgEdgeError` becomes one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from .errors import InputError, InputWarning, LsgEdgeError
from .events import commit_writer
from .signals import install_sigterm_handler, interrupted_exit_code, terminated
from .text.flags import load_engine, policy_flags, session_policy

__all__ = ["main"]

# Subcommands that live beside their feature and are imported only when used (fast startup).
_LAZY_COMMANDS = {
    "eval": ("lsg_edge.evaluation.cli", "eval_command"),
    "compare": ("lsg_edge.evaluation.compare", "compare_command"),
    "asr": ("lsg_edge.speech.cli", "asr_command"),
    "convert": ("lsg_edge.convert.cli", "convert_group"),
    "info": ("lsg_edge.info", "info_command"),
    "serve": ("lsg_edge.serve.cli", "serve_command"),
    "client": ("lsg_edge.serve.cli", "client_command"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {n for n in _LAZY_COMMANDS if _available(n)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in _LAZY_COMMANDS and _available(name):
            module_name, attribute = _LAZY_COMMANDS[name]
            command = getattr(importlib.import_module(module_name), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        # click answers a closed stdout (EPIPE) with exit code 1 before `main` could see it.
        try:
            return super().invoke(ctx)
        except BrokenPipeError as e:
            raise _ReaderGone() from e


class _ReaderGone(Exception):
    """stdout's reader went away (e.g. `| head`)."""


def _available(name: str) -> bool:
    module_name = _LAZY_COMMANDS[name][0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lsg-edge")
def cli() -> None:
    """On-device simultaneous translation and captioning (LSG)."""


def main() -> None:
    """Console entry point: run the CLI, mapping library errors to one-line messages."""
    install_sigterm_handler()  # SIGTERM takes Ctrl-C's path, then exits 143
    warnings.showwarning = _show_warning
    try:
        cli.main(standalone_mode=False)
    except LsgEdgeError as e:
        click.echo(f"lsg-edge: error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        sys.exit(interrupted_exit_code())
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        # Everything committed was already written and flushed.
        sys.exit(interrupted_exit_code())
    except (BrokenPipeError, _ReaderGone):
        # The reader went away (e.g. `| head`): nothing more can be delivered; exit quietly.
        _silence_stdout()
        sys.exit(0)
    if terminated():  # a command that caught the interruption itself (asr commits what was heard)
        sys.exit(interrupted_exit_code())


_default_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """`InputWarning`s as one line on stderr; anything else as Python shows it."""
    if issubclass(category, InputWarning):
        click.echo(f"lsg-edge: warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


@cli.command()
@click.argument("input_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stdin", "use_stdin", is_flag=True, help="Read the source stream from standard input.")
@click.option("--json", "as_json", is_flag=True, help="Write one JSON object per commit.")
@click.option("--no-split", is_flag=True, help="End sentences only at line breaks, not at . ! ?")
@click.option("--catch-up", is_flag=True,
              help="Words that arrive while a decision runs are read before the next decision, not each "
                   "decided on: a bounded lag when input comes faster than this machine translates (a "
                   "whole file is then translated sentence by sentence).")
@policy_flags
def translate(input_file: Path | None, use_stdin: bool, as_json: bool, no_split: bool, catch_up: bool,
              **flags: Any) -> None:
    """Translate a word stream simultaneously; committed words are written as they are decided.

    Words are read as soon as they are typed or piped (no need to wait for the end of a line);
    a sentence ends at a line break or sentence-final punctuation.
    """
    from .text.source import read_words

    if use_stdin == (input_file is not None):
        raise click.UsageError("give either --stdin or an INPUT_FILE")
    engine = load_engine(**flags)
    session = engine.create_session(
        flags["src"], flags["tgt"], policy=session_policy(engine, **flags), prompt_style=flags["prompt_style"]
    )
    writer = commit_writer(sys.stdout, as_json)
    if use_stdin:
        stream = sys.stdin.buffer
    else:
        try:
            stream = open(input_file, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise InputError(f"cannot read {input_file}: {e.strerror}") from e
    wrote = False
    try:
        for commit in session.translate_stream(read_words(stream, split_sentences=not no_split), catch_up=catch_up):
            writer.write(commit)
            wrote = True
    finally:
        writer.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    if not wrote:  # every sentence read ends with a commit: none means the input had no words
        raise InputError("the input is empty: there are no words to translate")


if __name__ == "__main__":  # pragma: no cover
    main()
