"""`lsg-edge serve`: live captions in the browser and over a WebSocket, from one local process.

Thin: click builds the options, `app.create_app` does the work. stderr carries the address, one
line per stream and one-line errors.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import InputError, LsgEdgeError, OptionsError
from ..policy.options import POLICY_NAMES
from .app import ServeOptions, default_max_sessions

__all__ = ["serve_command", "client_command", "require_serve_extra"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def require_serve_extra() -> None:
    """A one-line error naming the extra when starlette or uvicorn is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise LsgEdgeError(f"lsg-edge serve needs {e.name}: pip install 'lsg-edge[serve]'") from e


@click.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback exposes the server to the network.")
@click.option("--port", type=int, default=8765, show_default=True, help="TCP port; 0 picks a free one (printed).")
@click.option("--max-sessions", type=int, default=None,
              help=f"Streams at once; more are refused (default: one per core, {default_max_sessions()} here).")
@click.option("--model", default="base", show_default=True, help="Whisper model (as `lsg-edge asr --model`).")
@click.option("--threads", type=int, default=1, show_default=True,
              help="onnxruntime threads per decode (streams decode in parallel, one per worker thread).")
@click.option("--idle-timeout-s", type=float, default=ServeOptions.idle_timeout_s, show_default=True,
              help="A stream that sends nothing for this long is closed, s.")
@click.option("--translate", is_flag=True,
              help="Also load the translation model: streams may then ask for a target language, or send "
                   "text to translate (\"input\": \"text\").")
@click.option("--translation-model", type=click.Path(dir_okay=False, path_type=Path),
              help="With --translate: a GGUF translation model (default: the embedded one).")
@click.option("--translation-manifest", help="With --translate: a text model manifest (name or .toml).")
def serve_command(host: str, port: int, max_sessions: int | None, model: str, threads: int,
                  idle_timeout_s: float, translate: bool, translation_model: Path | None,
                  translation_manifest: str | None) -> None:
    """Serve live captions (and, with --translate, translation of speech or text): a page at
    http://HOST:PORT/ and the WebSocket protocol at /ws."""
    require_serve_extra()
    import uvicorn

    from ..speech.engine import SpeechEngine
    from ..speech.onnx_runtime import RuntimeOptions
    from .app import create_app
    from .streams import ServeEngines

    if not translate and (translation_model or translation_manifest):
        raise OptionsError("--translation-model and --translation-manifest need --translate")
    options = ServeOptions(max_sessions=default_max_sessions() if max_sessions is None else max_sessions,
                           idle_timeout_s=idle_timeout_s)
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be within 0…65535, got {port}")
    if host not in _LOOPBACK:
        click.echo(f"lsg-edge: warning: listening on {host}: anyone who can reach this machine can use the "
                   "server (no authentication); use the default 127.0.0.1 to keep it local", err=True)
    listener = _listen(host, port)  # before loading models: a busy port fails in a second
    speech = SpeechEngine.load(model, RuntimeOptions(n_threads=threads))
    text = None
    if translate:
        from ..text.flags import load_engine

        # One model; each stream borrows its own pair of contexts, so the pool holds one per stream.
        text = load_engine(translation_model, translation_manifest, None, threads, None, None, None,
                           max_contexts=options.max_sessions)
    engines = ServeEngines(speech, text)
    app = create_app(engines, options)
    logging.basicConfig(stream=sys.stderr, format="lsg-edge serve: %(message)s")
    logging.getLogger("lsg_edge.serve").setLevel(logging.INFO)
    bound_host, bound_port = listener.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"lsg-edge: serving on http://{shown}:{bound_port}/ (WebSocket /ws, at most "
               f"{options.max_sessions} streams, {'captions and translation' if translate else 'captions'}; "
               "Ctrl-C to stop)", err=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    try:
        server.run(sockets=[listener])
    finally:
        engines.close()


def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InputError(f"--host {host!r}: {e.strerror}") from e
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as e:
        listener.close()
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror}") from e
    listener.listen(128)
    listener.set_inheritable(True)
    return listener


@click.command(name="client")
@click.argument("audio", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mic", is_flag=True, help="Stream the microphone (Ctrl-C to stop).")
@click.option("--stdin", "text_stdin", is_flag=True,
              help="Send text from standard input to translate, word by word as it is typed (needs --target; "
                   "--language is the text's language).")
@click.option("--url", default="ws://127.0.0.1:8765/ws", show_default=True, help="The server's WebSocket.")
@click.option("--language", default="en", show_default=True, help="Spoken language code (with --stdin: the text's).")
@click.option("--target", help="Translation target language (if the server translates).")
@click.option("--policy", type=click.Choice(POLICY_NAMES), default="lsg", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Every server message as one JSON line.")
@click.option("--fast", is_flag=True, help="Send a file as fast as the server takes it, not at the speed of speech, "
                                         "and have every segment (with --stdin: every word) decided on (no "
                                         "catching up).")
def client_command(audio: Path | None, mic: bool, text_stdin: bool, url: str, language: str, target: str | None,
                   policy: str, as_json: bool, fast: bool) -> None:
    """Stream AUDIO (any WAV), --mic or text (--stdin) to a running `lsg-edge serve`; print what it commits."""
    from ..client import CaptionClient, ReceivedMessage

    if mic + text_stdin + (audio is not None) != 1:
        raise InputError("give one of an AUDIO file, --mic or --stdin")
    if text_stdin and target is None:
        raise InputError("--stdin sends text to translate: give --target (and --language, the text's language)")
    shown = "source" if target is None else "target"
    line_open = False

    def show(received: ReceivedMessage) -> None:
        nonlocal line_open
        message = received.message
        if as_json:
            click.echo(json.dumps(message, ensure_ascii=False))
        elif message.get("type") == "commit" and message.get("stream", "source") == shown:
            click.echo(("" if not line_open else message.get("separator", " ")) + message["text"],
                       nl=bool(message.get("sentence_end")))
            line_open = not message.get("sentence_end")
        sys.stdout.flush()

    # A file sent --fast is decided on segment by segment, as `lsg-edge asr` decides it (text word by
    # word, as `translate` does); live input lets the server catch up when it falls behind.
    with CaptionClient(url, language=language, target=target, policy=policy, catch_up=not fast,
                       on_message=show, input="text" if text_stdin else "audio") as client:
        try:
            if text_stdin:
                _send_text(client)
            else:
                _send_audio(client, audio, mic, fast)
        except KeyboardInterrupt:
            pass  # stop sending; the server still commits what it was sent
        finally:
            messages = client.stop()  # also after a reading error: what was sent is committed before it is raised
    if line_open:
        click.echo("")
    if text_stdin and not any(m.message.get("type") == "done" and m.message.get("words_read") for m in messages):
        raise InputError("the input is empty: there are no words to translate")


def _send_audio(client: Any, audio: Path | None, mic: bool, fast: bool) -> None:
    from ..speech.audio_io import MicrophoneStream, file_blocks, read_audio

    for block in MicrophoneStream() if mic else file_blocks(read_audio(audio), realtime=not fast):
        client.send(block)


def _send_text(client: Any) -> None:
    """Standard input's words, each sent once it is complete (bytes that are not UTF-8 end the text
    with a one-line error, after what came before them)."""
    from ..text.source import read_words

    for event in read_words(sys.stdin.buffer):
        client.send_text("\n" if event.word is None else event.word + " ")
