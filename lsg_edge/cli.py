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
from typing import Any, Callable

import click

from .errors import InputError, InputWarning, LsgEdgeError, ModelError, OptionsError
from .events import commit_writer
from .manifest import PROMPT_STYLES
from .signals import install_sigterm_handler, interrupted_exit_code, terminated

__all__ = ["main"]

# Subcommands that live beside their feature and are imported only when used (fast startup).
_LAZY_COMMANDS = {
    "eval": ("lsg_edge.evaluation.cli", "eval_command"),
    "asr": ("lsg_edge.speech.cli", "asr_command"),
    "convert": ("lsg_edge.convert.cli", "convert_group"),
    "info": ("lsg_edge.info", "info_command"),
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


def policy_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The model and policy flags shared by `translate` and `eval`."""
    decorators = [
        click.option("--src", default="de", show_default=True, help="Source language code."),
        click.option("--tgt", default="en", show_default=True, help="Target language code."),
        click.option("--model", "model_path", type=click.Path(path_type=Path),
                     help="A GGUF model file (default: the embedded Gemma 3 270M)."),
        click.option("--manifest", help="Model manifest: a built-in name or a .toml path."),
        click.option("--prompt-style", type=click.Choice(list(PROMPT_STYLES)),
                     help="Prompt style (default: the manifest's)."),
        click.option("--lora", "lora_path", type=click.Path(path_type=Path),
                     help="A llama.cpp LoRA adapter GGUF applied at run time."),
        click.option("--policy", type=click.Choice(["lsg", "wait-k", "offline", "local-agreement"]),
                     help="Read/write policy (default: the manifest's)."),
        click.option("--k", type=int, help="wait-k lag in source words."),
        click.option("--delta", type=float, help="LSG KL threshold δ (nats)."),
        click.option("--alpha", type=float, help="LSG confidence threshold α."),
        click.option("--low-bound", type=int, help="LSG range constraint L (source words)."),
        click.option("--top-bound", type=int, help="LSG range constraint U (source words)."),
        click.option("--kl-direction", type=click.Choice(["paper", "code"]),
                     help="paper: KL(P_cur‖P_base); code: KL(P_base‖P_cur) as ictnlp/LSG."),
        click.option("--draft-tokens", type=int, help="Tokens drafted per decision."),
        click.option("--threads", type=int, help="CPU threads for llama.cpp (default: the cores, up to 4)."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "metal"]),
                     help="Where the LLM runs (default: the manifest's, normally auto); auto = the GPU if "
                          "this llama.cpp build offloads, else the CPU. "
                          "A device the build lacks is an error, never a silent CPU fallback."),
        click.option("--n-gpu-layers", type=int,
                     help="Layers offloaded to the GPU (-1: all; default: all on cuda/metal, 0 on cpu)."),
        click.option("--n-ctx", type=int, help="Context length per llama.cpp context (tokens)."),
        click.option("--extra-bufts", type=click.Choice(["auto", "on", "off"]),
                     help="llama.cpp's AMX / repacked CPU buffers (default: $LSG_EDGE_EXTRA_BUFTS, else "
                          "auto: on unless a one-time probe finds that AMX crashes on this machine)."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


_MIN_N_CTX = 64  # LlamaOptions' floor for n_ctx_tokens


def load_engine(model_path, manifest, lora_path, threads, device, n_gpu_layers, n_ctx, extra_bufts=None, **_: Any):
    """A TranslationEngine from the shared CLI flags."""
    from .manifest import DEFAULT_TEXT_MANIFEST, GENERIC_TEXT_MANIFEST
    from .text.engine import TranslationEngine

    # Checked here so that the messages name the flags, not the library's fields.
    if threads is not None and threads < 1:
        raise OptionsError(f"--threads must be at least 1, got {threads}")
    if n_ctx is not None and n_ctx < _MIN_N_CTX:
        raise OptionsError(f"--n-ctx must be at least {_MIN_N_CTX} tokens, got {n_ctx}")
    for flag, path in (("--model", model_path), ("--lora", lora_path)):
        if path is not None and path.is_dir():
            raise ModelError(f"{flag} {path} is a folder; give a GGUF file")
    if manifest is None:
        manifest = GENERIC_TEXT_MANIFEST if model_path else DEFAULT_TEXT_MANIFEST
    overrides: dict[str, Any] = {}
    if device is not None:
        overrides["device"] = device
    if threads is not None:
        overrides["n_threads"] = threads
    if n_gpu_layers is not None:
        overrides["n_gpu_layers"] = n_gpu_layers
    if n_ctx is not None:
        overrides["n_ctx_tokens"] = n_ctx
    if lora_path is not None:
        overrides["lora_path"] = lora_path
    if extra_bufts is not None:
        overrides["extra_bufts"] = extra_bufts
    return TranslationEngine.load(manifest, model_path=model_path, **overrides)


def session_policy(engine, src, tgt, policy, k, delta, alpha, low_bound, top_bound, kl_direction, draft_tokens, **_: Any):
    """PolicyOptions from the manifest's defaults and the CLI flags that were given."""
    return engine.policy_options(
        src, tgt, name=policy, k=k, delta=delta, alpha=alpha, low_bound=low_bound,
        top_bound=top_bound, kl_direction=kl_direction, draft_tokens=draft_tokens,
    )


@cli.command()
@click.argument("input_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stdin", "use_stdin", is_flag=True, help="Read the source stream from standard input.")
@click.option("--json", "as_json", is_flag=True, help="Write one JSON object per commit.")
@click.option("--no-split", is_flag=True, help="End sentences only at line breaks, not at . ! ?")
@policy_options
def translate(input_file: Path | None, use_stdin: bool, as_json: bool, no_split: bool, **flags: Any) -> None:
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
    try:
        for commit in session.translate_stream(read_words(stream, split_sentences=not no_split)):
            writer.write(commit)
    finally:
        writer.close()
        if stream is not sys.stdin.buffer:
            stream.close()


if __name__ == "__main__":  # pragma: no cover
    main()
