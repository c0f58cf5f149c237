"""`lsg-edge asr`: live captions from a microphone or an audio file, committed word by word.

Thin: click builds the options, the library does the work. stdout carries the committed text (or
JSON lines with --json); stderr carries progress and one-line errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable

import click
import numpy as np

from ..device import DEVICES
from ..errors import InputError
from .engine import ENCODER_WINDOWS, EncoderOptions
from .models import PRECISIONS
from .onnx_runtime import RuntimeOptions
from .policies import SPEECH_POLICIES, SpeechPolicyOptions
from .session import AsrSession, Commit, SessionOptions
from .vad import VadOptions

__all__ = ["asr_command"]


@click.command(name="asr")
@click.argument("audio", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mic", is_flag=True, help="Caption the microphone live (Ctrl-C to stop).")
@click.option("--device", help="Input device name or index for --mic (default: the system's).")
@click.option("--realtime", is_flag=True, help="Pace file input at real speed, as if live.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per commit on stdout.")
@click.option("--model", default="base", show_default=True,
              help="Built-in model (base, tiny.en) or a directory (ONNX, CTranslate2 or safetensors).")
@click.option("--task", type=click.Choice(["transcribe", "translate"]), default="transcribe", show_default=True,
              help="translate: Whisper's any-language → English.")
@click.option("--language", help="Spoken language code, e.g. fr (default: en).")
@click.option("--policy", type=click.Choice(SPEECH_POLICIES), default="lsg", show_default=True)
@click.option("--segment-ms", type=int, default=640, show_default=True, help="Source element, ms of audio.")
@click.option("--delta", type=float, default=7.0, show_default=True, help="LSG KL threshold δ (nats).")
@click.option("--alpha", type=float, default=0.8, show_default=True, help="LSG confidence threshold α.")
@click.option("--low-bound", type=int, default=1, show_default=True, help="LSG range constraint L.")
@click.option("--top-bound", type=int, default=4, show_default=True, help="LSG range constraint U.")
@click.option("--words-per-segment", type=int, default=2, show_default=True,
              help="Source words one segment counts as in the range constraint.")
@click.option("--kl-direction", type=click.Choice(["paper", "code"]), default="paper", show_default=True)
@click.option("--draft-tokens", type=int, default=10, show_default=True, help="Tokens drafted per decision.")
@click.option("--encoder-window", type=click.Choice(ENCODER_WINDOWS), default="tight", show_default=True,
              help="30s: pad every encoder input to 30 s; tight: encode the audio so far (+ padding).")
@click.option("--encoder-pad-ms", type=int, default=EncoderOptions.pad_ms, show_default=True,
              help="With --encoder-window tight: padding after the audio, ms (more: closer to offline, slower).")
@click.option("--compute-device", type=click.Choice(list(DEVICES)), default="auto", show_default=True,
              help="Where onnxruntime runs Whisper (an error if the installed onnxruntime lacks it).")
@click.option("--min-silence-ms", type=int, default=VadOptions.min_silence_ms, show_default=True,
              help="A pause this long ends a window (everything in it is committed).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="int8: quantized weights, ~1.5x faster on CPU (converted once into the cache).")
@click.option("--threads", type=int, default=0, help="onnxruntime threads (default: cores, up to 4).")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path),
              help="Audio-LLM manifest (TOML): ONNX audio encoder + GGUF LLM instead of Whisper.")
def asr_command(audio: Path | None, mic: bool, device: str | None, realtime: bool, as_json: bool, model: str,
                task: str, language: str | None, policy: str, segment_ms: int, delta: float, alpha: float,
                low_bound: int, top_bound: int, words_per_segment: int, kl_direction: str, draft_tokens: int,
                encoder_window: str, encoder_pad_ms: int, compute_device: str, min_silence_ms: int, precision: str,
                threads: int, manifest: Path | None) -> None:
    """Stream speech recognition (or X→English translation) with LSG, from AUDIO or --mic."""
    from .audio_io import MicrophoneStream, file_blocks, read_audio
    from .engine import SpeechEngine

    if mic == (audio is not None):
        raise InputError("give either an AUDIO file or --mic")
    options = SessionOptions(
        language=language,
        task=task,
        policy=SpeechPolicyOptions(name=policy, segment_ms=segment_ms, delta=delta, alpha=alpha,
                                   low_bound=low_bound, top_bound=top_bound, words_per_segment=words_per_segment,
                                   kl_direction=kl_direction, draft_tokens=draft_tokens),
        vad=VadOptions(min_silence_ms=min_silence_ms),
    )
    blocks: Iterable[np.ndarray]
    if mic:
        blocks = MicrophoneStream(device if device is None or not device.isdigit() else int(device))
    else:
        samples = read_audio(audio)  # read before loading the model: a bad file fails fast
        blocks = file_blocks(samples, realtime=realtime)
    if manifest is not None:
        # An audio-LLM (lsg_edge/audio_llm) stands in for Whisper behind the same
        # engine surface; its manifest supplies the policy settings not given as flags.
        from ..audio_llm.cli import load_for_asr

        engine, options = load_for_asr(manifest, options, threads)
    else:
        engine = SpeechEngine.load(model, RuntimeOptions(n_threads=threads, device=compute_device),
                                   EncoderOptions(window=encoder_window, pad_ms=encoder_pad_ms), precision=precision)
    session = AsrSession(engine, options)
    if mic:
        click.echo("lsg-edge: listening (Ctrl-C to stop)", err=True)
    writer = _Writer(as_json)
    try:
        for block in blocks:
            writer.write(session.push(block))
    except KeyboardInterrupt:
        pass  # stop reading; what was heard is still committed below
    writer.write(session.finish())
    writer.close()


class _Writer:
    """Committed words to stdout as they come: plain text, or JSON lines."""

    def __init__(self, as_json: bool) -> None:
        self._json = as_json
        self._open_line = False

    def write(self, commits: list[Commit]) -> None:
        for commit in commits:
            if self._json:
                event = {"text": commit.text.strip(), "n_words": commit.n_words, "audio_ms": commit.audio_ms,
                         "wall_time": round(commit.wall_time_s, 3), "end_of_window": commit.end_of_window}
                sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            else:
                sys.stdout.write(commit.text.lstrip() if not self._open_line else commit.text)
                self._open_line = True
                if commit.end_of_window:
                    sys.stdout.write("\n")
                    self._open_line = False
            sys.stdout.flush()

    def close(self) -> None:
        if self._open_line:
            sys.stdout.write("\n")
        sys.stdout.flush()
