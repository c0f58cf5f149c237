"""SimulEval 1.1.4 agents: the field's own harness drives lsg-edge's text and speech sessions.

    simuleval --agent-class lsg_edge.simuleval_agents.LsgTextAgent \\
        --source de.txt --target en.txt --output out/ --policy lsg --threads 2
    simuleval --agent-class lsg_edge.simuleval_agents.LsgSpeechAgent \\
        --source wavs.txt --target refs.txt --output out/ --source-segment-size 640

Only SimulEval imports this module (it needs the `[eval]` extra); `import lsg_edge` never does.

How SimulEval 1.1.4 drives an agent (`SentenceLevelEvaluator.__call__`): each step it sends one
source segment — one word for text, `--source-segment-size` ms of audio for speech — and asks the
agent for exactly one action; a `WriteAction` may hold several words, and each is logged with the
delay of that step (text: words sent; speech: ms of audio sent). So the agents push the segment
into a session and write everything it commits in one action, at the step that made it commit:
the delays are those `lsg-edge eval` logs for the same settings. Speech: `lsg-edge eval` logs a
commit at the 20 ms VAD frame that made it, SimulEval at the end of the segment holding that frame,
so the two agree exactly with `--source-segment-size 20` and differ by under one segment otherwise.
A speech step with the last segment is the evaluator's last call for that utterance: the agent
finishes the session there and always writes (`finished=True`, possibly empty), which is also what
makes SimulEval reset it for the next one.

Bad arguments (a parameter out of its domain, a missing model) end the run with one line on stderr
and a non-zero exit, as the `lsg-edge` command line does.
"""

from __future__ import annotations


import sys
from argparse import ArgumentParser, Namespace
from pathlib import Path
from typing import Any, NoReturn, Sequence

import numpy as np
from simuleval.agents import ReadAction, SpeechToTextAgent, TextToTextAgent, WriteAction
from simuleval.agents.actions import Action

from lsg_edge.device import DEVICES
from lsg_edge.errors import LsgEdgeError
from lsg_edge.manifest import PROMPT_STYLES
from lsg_edge.policy.decision import KL_DIRECTIONS
from lsg_edge.policy.options import POLICY_NAMES
from lsg_edge.text.flags import DEFAULT_SRC, DEFAULT_TGT

__all__ = ["LsgTextAgent", "LsgSpeechAgent"]


def _fail(error: LsgEdgeError) -> NoReturn:
    """One line on stderr and the exit code the `lsg-edge` CLI uses: SimulEval calls `from_args`
    outside any handler of ours, so an exception here would end in a traceback."""
    print(f"lsg-edge agent: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)


def _words(commits: Sequence[Any]) -> str:
    """The words of one step's commits, single-spaced: SimulEval splits a write on whitespace and
    logs each piece as a word, as `lsg-edge eval` does with each commit."""
    return " ".join(word for c in commits for word in c.text.split())


class _LsgAgent:
    """What both agents share: construction errors as one line, and no device moves after loading."""

    @classmethod
    def from_args(cls, args: Namespace):
        try:
            return cls(args)
        except LsgEdgeError as e:
            _fail(e)

    def to(self, device: str, *args: Any, **kwargs: Any) -> None:
        """The device was chosen when the engine loaded (`--device`); nothing moves afterwards."""


class LsgTextAgent(_LsgAgent, TextToTextAgent):
    """Source words in, target words out: a `TranslationSession` of lsg-edge's text engine.

    Options are `lsg-edge translate`/`eval`'s (model, manifest, policy and its parameters, device,
    threads); unset ones take the manifest's defaults, as on the command line.
    """

    def __init__(self, args: Namespace) -> None:
        from lsg_edge.text.flags import load_engine, session_policy

        flags = _text_flags(args)
        self.engine = load_engine(**flags)
        self.session = self.engine.create_session(
            flags["src"], flags["tgt"], policy=session_policy(self.engine, **flags),
            prompt_style=flags["prompt_style"],
        )
        self._n_pushed = 0  # source segments of the current sentence pushed into the session
        self._finished = False
        super().__init__(args)

    @staticmethod
    def add_args(parser: ArgumentParser) -> None:
        group = parser.add_argument_group("lsg-edge text agent")
        group.add_argument("--src", default=DEFAULT_SRC, help=f"Source language code (default: {DEFAULT_SRC}).")
        group.add_argument("--tgt", default=DEFAULT_TGT, help=f"Target language code (default: {DEFAULT_TGT}).")
        group.add_argument("--model", dest="model_path", help="A GGUF model file (default: the embedded Gemma 3 270M).")
        group.add_argument("--manifest", help="Model manifest: a built-in name or a .toml path.")
        group.add_argument("--prompt-style", choices=PROMPT_STYLES,
                           help="Prompt style (default: the manifest's).")
        group.add_argument("--lora", dest="lora_path", help="A llama.cpp LoRA adapter GGUF applied at run time.")
        group.add_argument("--policy", choices=POLICY_NAMES,
                           help="Read/write policy (default: the manifest's).")
        group.add_argument("--k", type=int, help="wait-k lag in source words.")
        group.add_argument("--delta", type=float, help="LSG KL threshold δ (nats).")
        group.add_argument("--alpha", type=float, help="LSG confidence threshold α.")
        group.add_argument("--low-bound", type=int, help="LSG range constraint L (source words).")
        group.add_argument("--top-bound", type=int, help="LSG range constraint U (source words).")
        group.add_argument("--kl-direction", choices=KL_DIRECTIONS,
                           help="paper: KL(P_cur‖P_base); code: KL(P_base‖P_cur) as ictnlp/LSG.")
        group.add_argument("--draft-tokens", type=int, help="Tokens drafted per decision.")
        group.add_argument("--threads", type=int, help="CPU threads for llama.cpp.")
        # Replaces SimulEval's own --device (its parser resolves conflicts), with lsg-edge's meaning.
        group.add_argument("--device", choices=DEVICES,
                           help="Where the LLM runs (default: the manifest's, normally auto).")
        group.add_argument("--n-gpu-layers", type=int, help="Layers offloaded to the GPU (-1: all).")
        group.add_argument("--n-ctx", type=int, help="Context length per llama.cpp context (tokens).")

    def reset(self) -> None:
        super().reset()
        self.session.reset()
        self._n_pushed = 0
        self._finished = False

    def policy(self) -> Action:
        from lsg_edge.text.source import split_words

        commits = []
        for segment in self.states.source[self._n_pushed:]:
            # SimulEval splits lines on whitespace; lsg-edge's words also cut CJK runs into
            # characters, so a segment may be several words, all read at this step.
            for word in split_words(segment):
                commits += self.session.push(word)
        self._n_pushed = len(self.states.source)
        if self.states.source_finished and not self._finished:
            commits += self.session.finish()
            self._finished = True
        text = _words(commits)
        if self._finished:
            return WriteAction(text, finished=True)
        return WriteAction(text, finished=False) if text else ReadAction()


def _text_flags(args: Namespace) -> dict[str, Any]:
    from lsg_edge.policy.options import POLICY_FLAGS

    keys = ("src", "tgt", "model_path", "manifest", "prompt_style", "lora_path", *POLICY_FLAGS, "threads", "device",
            "n_gpu_layers", "n_ctx")
    flags = {key: getattr(args, key, None) for key in keys}
    for key in ("model_path", "lora_path"):  # the CLI's click.Path gives Paths
        if flags[key] is not None:
            flags[key] = Path(flags[key])
    return flags


class LsgSpeechAgent(_LsgAgent, SpeechToTextAgent):
    """Audio segments in, words out: an `AsrSession` over lsg-edge's Whisper engine.

    Options are `lsg-edge asr`'s; unset ones take the defaults `lsg-edge eval --audio-manifest` uses.
    """

    def __init__(self, args: Namespace) -> None:
        from lsg_edge.speech.engine import EncoderOptions, SpeechEngine
        from lsg_edge.speech.onnx_runtime import RuntimeOptions
        from lsg_edge.policy.options import POLICY_FLAGS, SPEECH_POLICY_DEFAULTS, policy_from_flags
        from lsg_edge.speech.session import AsrSessionOptions
        from lsg_edge.speech.vad import VadOptions

        policy = policy_from_flags(SPEECH_POLICY_DEFAULTS, **{flag: getattr(args, flag, None) for flag in POLICY_FLAGS})
        options = AsrSessionOptions(language=args.language, task=args.task, policy=policy,
                                 vad=VadOptions(**_given(args, ("min_silence_ms",))),
                                 **_given(args, ("segment_ms", "beam:beam_size")))
        runtime = RuntimeOptions(**_given(args, ("threads:n_threads", "device")))
        encoder = EncoderOptions(**_given(args, ("encoder_window:window", "encoder_pad_ms:pad_ms")))
        self.engine = SpeechEngine.load(args.model, runtime, encoder, precision=args.precision)
        # A fresh session per utterance, as `lsg-edge eval` streams each: AsrSession.reset keeps
        # the VAD's noise-floor history, which would carry one utterance's level into the next.
        self._new_session = lambda: self.engine.create_session(options)
        super().__init__(args)  # calls reset, which opens the first session

    @staticmethod
    def add_args(parser: ArgumentParser) -> None:
        from lsg_edge.speech.engine import ENCODER_WINDOWS, EncoderOptions
        from lsg_edge.speech.models import PRECISIONS
        from lsg_edge.speech.session import AsrSessionOptions
        from lsg_edge.speech.vad import VadOptions
        from lsg_edge.policy.options import POLICY_NAMES, SPEECH_POLICY_DEFAULTS

        # The defaults named in the help are the ones the agent builds its options from.
        policy, session, encoder = SPEECH_POLICY_DEFAULTS, AsrSessionOptions(), EncoderOptions()
        group = parser.add_argument_group("lsg-edge speech agent (defaults: lsg-edge asr's)")
        group.add_argument("--model", default="base",
                           help="Built-in Whisper (base, tiny.en) or a model directory (default: base).")
        group.add_argument("--task", choices=["transcribe", "translate"], default="transcribe",
                           help="translate: Whisper's any-language → English.")
        group.add_argument("--language", help="Spoken language code, e.g. fr (default: en).")
        group.add_argument("--policy", choices=POLICY_NAMES, help=f"Read/write policy (default: {policy.name}).")
        group.add_argument("--k", type=int, help=f"wait-k lag in source words (default: {policy.k}).")
        group.add_argument("--segment-ms", type=int,
                           help=f"The policy's source element, ms of audio (default: {session.segment_ms}).")
        group.add_argument("--delta", type=float, help=f"LSG KL threshold δ (nats; default: {policy.delta}).")
        group.add_argument("--alpha", type=float, help=f"LSG confidence threshold α (default: {policy.alpha}).")
        group.add_argument("--low-bound", type=int, help=f"LSG range constraint L (default: {policy.low_bound}).")
        group.add_argument("--top-bound", type=int, help=f"LSG range constraint U (default: {policy.top_bound}).")
        group.add_argument("--words-per-segment", type=int,
                           help="Source words one segment counts as in the range constraint "
                                f"(default: {policy.words_per_element}).")
        group.add_argument("--kl-direction", choices=KL_DIRECTIONS, help=f"Default: {policy.kl_direction}.")
        group.add_argument("--draft-tokens", type=int,
                           help=f"Tokens drafted per decision (default: {policy.draft_tokens}).")
        group.add_argument("--frames", type=int,
                           help="AlignAtt's f: encoder frames (20 ms) at the end of the audio a token's "
                                f"attention must not point into (default: {policy.frames}).")
        group.add_argument("--beam", type=int,
                           help=f"Beams of the end-of-window decode (default: {session.beam_size}, greedy).")
        group.add_argument("--encoder-window", choices=ENCODER_WINDOWS, help=f"Default: {encoder.window}.")
        group.add_argument("--encoder-pad-ms", type=int,
                           help=f"Padding after the audio with a tight window, ms (default: {encoder.pad_ms}).")
        group.add_argument("--min-silence-ms", type=int,
                           help=f"A pause this long ends a window, ms (default: {VadOptions.min_silence_ms}).")
        group.add_argument("--precision", choices=PRECISIONS, default="fp32", help="Default: fp32.")
        group.add_argument("--threads", type=int, help="onnxruntime threads (default: cores, up to 4).")
        # Replaces SimulEval's own --device (its parser resolves conflicts), with lsg-edge's meaning.
        group.add_argument("--device", "--compute-device", dest="device", choices=DEVICES,
                           help="Where onnxruntime runs Whisper (default: auto).")

    def reset(self) -> None:
        super().reset()
        if getattr(self, "session", None) is not None:
            self.session.close()
        self.session = self._new_session()
        self._n_pushed = 0  # samples of the current utterance pushed into the session
        self._resampler = None  # a streaming resampler, for audio not at 16 kHz

    def policy(self) -> Action:
        commits = []
        new = self.states.source[self._n_pushed:]
        self._n_pushed = len(self.states.source)
        if new:
            commits += self.session.push(self._mono_16k(new, self.states.source_sample_rate))
        if self.states.source_finished:
            # The evaluator asks nothing more of this utterance after its last segment.
            commits += self.session.finish()
            return WriteAction(_words(commits), finished=True)
        text = _words(commits)
        return WriteAction(text, finished=False) if text else ReadAction()

    def _mono_16k(self, samples: list, rate: int) -> np.ndarray:
        from lsg_edge.speech.features import SAMPLE_RATE_HZ

        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim == 2:  # SimulEval passes what soundfile read: frames × channels
            audio = audio.mean(axis=1)
        if rate and rate != SAMPLE_RATE_HZ:
            if self._resampler is None:
                import soxr

                # Streaming: filter state carries across segments (no clicks at segment edges).
                self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE_HZ, 1, dtype="float32")
            audio = self._resampler.resample_chunk(audio, last=self.states.source_finished)
        return audio


def _given(args: Namespace, names: Sequence[str]) -> dict[str, Any]:
    """Options dataclass fields from the arguments that were given ("arg:field" renames), so that
    unset ones keep the dataclass defaults."""
    fields = {}
    for name in names:
        arg, _, field = name.partition(":")
        value = getattr(args, arg, None)
        if value is not None:
            fields[field or arg] = value
    return fields
