"""`lsg-edge asr`: live captions from a microphone or an audio file, committed word by word.

Thin: click builds the options, the library does the work. stdout carries the committed text (or
JSON lines with --json); stderr carries progress and one-line errors.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Iterable

import click
import numpy as np

from ..device import DEVICES
from ..cascade import check_language_pair
from ..errors import InputError, OptionsError
from ..subtitles import open_subtitles
from ..policy.decision import KL_DIRECTIONS
from ..policy.options import POLICY_NAMES, SPEECH_POLICY_DEFAULTS, PolicyOptions
from .engine import ENCODER_WINDOWS, EncoderOptions
from .live import StreamOutputs, run_stream
from .models import PRECISIONS
from .no_speech import NoSpeechOptions
from .onnx_runtime import RuntimeOptions
from .session import AsrSessionOptions
from .vad import VadOptions

__all__ = ["asr_command"]


_POLICY = SPEECH_POLICY_DEFAULTS
_SESSION = AsrSessionOptions()


@click.command(name="asr")
@click.argument("audio", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mic", is_flag=True, help="Caption the microphone live (Ctrl-C to stop).")
@click.option("--mic-device", help="Input device name or index for --mic (default: the system's).")
@click.option("--realtime", is_flag=True, help="Pace file input at real speed, as if live.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per commit on stdout.")
@click.option("--model", default="base", show_default=True,
              help="Built-in model (base, tiny.en) or a directory (ONNX, CTranslate2 or safetensors).")
@click.option("--task", type=click.Choice(["transcribe", "translate"]), default=_SESSION.task, show_default=True,
              help="translate: Whisper's any-language → English.")
@click.option("--language", help="Spoken language code, e.g. fr (default: en).")
@click.option("--policy", type=click.Choice(POLICY_NAMES), default=_POLICY.name, show_default=True)
@click.option("--segment-ms", type=int, default=_SESSION.segment_ms, show_default=True,
              help="Source element, ms of audio.")
@click.option("--k", type=int, default=_POLICY.k, show_default=True, help="wait-k lag in source words.")
@click.option("--delta", type=float, default=_POLICY.delta, show_default=True, help="LSG KL threshold δ (nats).")
@click.option("--alpha", type=float, default=_POLICY.alpha, show_default=True, help="LSG confidence threshold α.")
@click.option("--low-bound", type=int, default=_POLICY.low_bound, show_default=True, help="LSG range constraint L.")
@click.option("--top-bound", type=int, default=_POLICY.top_bound, show_default=True, help="LSG range constraint U.")
@click.option("--words-per-segment", type=int, default=_POLICY.words_per_element, show_default=True,
              help="Source words one segment counts as in the lag bounds.")
@click.option("--kl-direction", type=click.Choice(KL_DIRECTIONS), default=_POLICY.kl_direction, show_default=True)
@click.option("--draft-tokens", type=int, default=_POLICY.draft_tokens, show_default=True,
              help="Tokens drafted per decision.")
@click.option("--frames", type=int, default=_POLICY.frames, show_default=True,
              help="AlignAtt's f: a token waits while its attention points into the last F encoder frames "
                   "(20 ms each) of the audio heard.")
@click.option("--beam", type=int, default=_SESSION.beam_size, show_default=True,
              help="Beams of the decode that commits the rest of a window at its end (1: greedy).")
@click.option("--encoder-window", type=click.Choice(ENCODER_WINDOWS), default=EncoderOptions.window,
              show_default=True,
              help="30s: pad every encoder input to 30 s; tight: encode the audio so far (+ padding).")
@click.option("--encoder-pad-ms", type=int, default=EncoderOptions.pad_ms, show_default=True,
              help="With --encoder-window tight: padding after the audio, ms (more: closer to offline, slower).")
@click.option("--device", default="auto", show_default=True,
              help=f"Where the model runs: {', '.join(DEVICES)} (an error if the installed runtime lacks it).")
@click.option("--compute-device", hidden=True, help="Old spelling of --device.")
@click.option("--carry-tokens", type=int, default=_SESSION.carry_tokens, show_default=True,
              help="Committed tokens carried into the next window's prompt (Whisper's previous-text conditioning).")
@click.option("--edge-words", type=int, default=_SESSION.edge_words, show_default=True,
              help="Words at the end of the audio heard so far held back until more audio follows them.")
@click.option("--no-speech-threshold", type=float, default=NoSpeechOptions.threshold, show_default=True,
              help="Drop a window Whisper judges not to be speech (a tone, a beep): P(no speech) above this and "
                   "a mean token log-probability below -1. 1 turns the test off.")
@click.option("--min-silence-ms", type=int, default=VadOptions.min_silence_ms, show_default=True,
              help="A pause this long ends a window (everything in it is committed).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="int8: quantized weights, ~1.5x faster on CPU (converted once into the cache).")
@click.option("--threads", type=int, default=0, help="onnxruntime threads (default: cores, up to 4).")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path),
              help="Audio-LLM manifest (TOML): ONNX audio encoder + GGUF LLM instead of Whisper.")
@click.option("--translate-to", metavar="LANG",
              help="Translate the captions into LANG (de, en, es, fr, zh) in the same process, word by word as "
                   "they are committed; plain output and subtitles then show the translation.")
@click.option("--translation-model", type=click.Path(dir_okay=False, path_type=Path),
              help="With --translate-to: a GGUF translation model (default: the embedded one).")
@click.option("--translation-manifest", help="With --translate-to: a text model manifest (name or .toml).")
@click.option("--srt", "srt_path", type=click.Path(path_type=Path),
              help="Also write subtitles (SubRip) here, cue by cue as they are committed.")
@click.option("--vtt", "vtt_path", type=click.Path(path_type=Path),
              help="Also write subtitles (WebVTT) here, cue by cue as they are committed.")
@click.option("--drafts", is_flag=True,
              help="With --json: also a 'draft' event whenever the tentative text beyond the commits changes.")
def asr_command(audio: Path | None, mic: bool, mic_device: str | None, realtime: bool, as_json: bool, model: str,
                task: str, language: str | None, policy: str, segment_ms: int, k: int, delta: float, alpha: float,
                low_bound: int, top_bound: int, words_per_segment: int, kl_direction: str, draft_tokens: int,
                frames: int, beam: int, encoder_window: str, encoder_pad_ms: int, device: str, compute_device: str | None,
                carry_tokens: int, edge_words: int, no_speech_threshold: float, min_silence_ms: int, precision: str,
                threads: int, manifest: Path | None,
                translate_to: str | None, translation_model: Path | None, translation_manifest: str | None,
                srt_path: Path | None, vtt_path: Path | None, drafts: bool) -> None:
    """Stream speech recognition (or translation) with LSG, from AUDIO or --mic.

    Captions by default; --task translate is Whisper's own any-language → English; --translate-to
    LANG translates the captions with the text model, in any supported direction."""
    from .audio_io import AudioFileStream, MicrophoneStream
    from .engine import SpeechEngine

    if mic == (audio is not None):
        raise InputError("give either an AUDIO file or --mic")
    _check_translation_flags(translate_to, task, language, translation_model, translation_manifest, drafts, as_json)
    device, mic_device = _devices(device, compute_device, mic_device)
    options = AsrSessionOptions(
        language=language,
        task=task,
        policy=PolicyOptions(name=policy, k=k, delta=delta, alpha=alpha, low_bound=low_bound, top_bound=top_bound,
                             words_per_element=words_per_segment, kl_direction=kl_direction,
                             draft_tokens=draft_tokens, frames=frames),
        segment_ms=segment_ms,
        beam_size=beam,
        carry_tokens=carry_tokens,
        edge_words=edge_words,
        vad=VadOptions(min_silence_ms=min_silence_ms),
        no_speech=NoSpeechOptions(threshold=no_speech_threshold),
    )
    blocks: Iterable[np.ndarray]
    if mic:
        blocks = MicrophoneStream(int(mic_device) if mic_device and mic_device.isdigit() else mic_device)
    else:
        # Opened and checked before the model loads (a bad file fails fast), read as it is consumed.
        blocks = AudioFileStream(audio, realtime=realtime)
    # Subtitle files are opened (created) before the models load: an unwritable path fails fast.
    subtitles = [open_subtitles(path, kind, f"--{kind}") for kind, path in (("srt", srt_path), ("vtt", vtt_path))
                 if path is not None]
    outputs = StreamOutputs(sys.stdout, as_json=as_json, drafts=drafts, live_line=not as_json and sys.stdout.isatty(),
                            shown="target" if translate_to else "source", subtitles=subtitles)
    try:
        if manifest is not None:
            # An audio-LLM (lsg_edge/audio_llm) implements the same engine protocol; its manifest
            # supplies the policy settings not given as flags.
            from ..audio_llm.cli import load_for_asr

            engine, options = load_for_asr(manifest, options, threads, device=device)
        else:
            engine = SpeechEngine.load(model, RuntimeOptions(n_threads=threads, device=device),
                                       EncoderOptions(window=encoder_window, pad_ms=encoder_pad_ms),
                                       precision=precision)
        if translate_to:
            from ..cascade import SpeechTranslator
            from ..text.flags import load_engine

            text_engine = load_engine(translation_model, translation_manifest, None, threads or None,
                                      None if device == "auto" else device, None, None)
            with SpeechTranslator(engine, text_engine) as translator, \
                    translator.create_session(language, translate_to, options) as session:
                _listening(mic)
                run_stream(session, blocks, outputs)
        else:
            with engine, engine.create_session(options) as session:
                _listening(mic)
                run_stream(session, blocks, outputs)
    finally:
        outputs.close()


def _listening(mic: bool) -> None:
    if mic:
        click.echo("lsg-edge: listening (Ctrl-C to stop)", err=True)


def _check_translation_flags(translate_to: str | None, task: str, language: str | None,
                             translation_model: Path | None, translation_manifest: str | None, drafts: bool,
                             as_json: bool) -> None:
    """One-line errors for flag combinations that cannot work, before any model loads."""
    if drafts and not as_json:
        raise OptionsError("--drafts adds events to --json output: give --json too")
    if translate_to is None:
        if translation_model is not None or translation_manifest is not None:
            raise OptionsError("--translation-model and --translation-manifest need --translate-to")
        return
    if task != "transcribe":
        raise OptionsError("--translate-to translates the captions: leave --task at transcribe "
                           "(--task translate is Whisper's own translation into English)")
    check_language_pair(language, translate_to)


def _devices(device: str, compute_device: str | None, mic_device: str | None) -> tuple[str, str | None]:
    """(compute device, microphone) from the flags, accepting the old spellings with a warning:
    --compute-device for --device, and --device NAME (not a compute device) for --mic-device."""
    if compute_device is not None:
        warnings.warn("--compute-device is now --device; the old spelling goes in the next release",
                      DeprecationWarning, stacklevel=2)
        device = compute_device
    if device not in DEVICES:
        if mic_device is not None:
            raise InputError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
        warnings.warn(f"--device {device!r} names a microphone: use --mic-device (--device is where the model "
                      "runs); the old meaning goes in the next release", DeprecationWarning, stacklevel=2)
        return "auto", device
    return device, mic_device
