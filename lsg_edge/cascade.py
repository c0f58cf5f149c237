"""Speech translation in one process: captions of the spoken language, translated as they commit.

    with SpeechTranslator.load() as translator:                  # Whisper + the translation LLM, once
        with translator.create_session("en", "de") as session:
            for block in blocks:                                # float32 mono 16 kHz, any block size
                for commit in session.push(block):              # Commit.stream: "source" or "target"
                    if commit.stream == "target":
                        print(commit.separator + commit.text, end="", flush=True)
            for commit in session.finish():
                ...

A `SpeechTranslationSession` owns an `AsrSession` (captions) and a `TranslationSession` (text
LSG). Every source word is pushed into the translation the moment the captions commit it, so the
translation never waits for more than the captioner's own policy; a sentence of the translation
ends where the audio window ends (a pause) or after a word with sentence-final punctuation.
Both streams come out as `Commit`s in the order they were made; target commits carry the audio
time of the source word whose arrival made them writable (`audio_ms`), and count the audio heard
when they were committed as their `source_read`, so both streams share one time axis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import OptionsError
from .events import Commit, Tentative
from .text.source import ends_sentence, split_words

if TYPE_CHECKING:
    from .policy.options import PolicyOptions
    from .speech.asr_engine import AsrEngine
    from .speech.session import AsrSession, AsrSessionOptions
    from .text.engine import TranslationEngine
    from .text.session import TranslationSession

__all__ = ["CascadeOptions", "SpeechTranslationSession", "SpeechTranslator", "check_language_pair"]


def check_language_pair(src: str | None, tgt: str) -> None:
    """Raise an `OptionsError` naming the flag unless speech in `src` (None: English) can be
    translated into `tgt` by the text model's prompts. Cheap: call it before loading models."""
    from .text.prompt import language_names

    names = language_names()
    src = src or "en"
    choices = ", ".join(sorted(names))
    if tgt not in names:
        raise OptionsError(f"--translate-to {tgt!r} is not a supported target language (choose from {choices})")
    if src not in names:
        raise OptionsError(f"--language {src!r} cannot be translated: the translation model reads {choices}")
    if src == tgt:
        raise OptionsError(f"--translate-to {tgt!r} is the spoken language (--language): captions need no translation")


@dataclass(frozen=True)
class CascadeOptions:
    """How the captions feed the translation."""

    # Also end a translated sentence after a source word with sentence-final punctuation (not only
    # at the end of an audio window): shorter sentences keep the translation prompt short and let
    # its policy start afresh, as for text input.
    split_sentences: bool = True
    # Read the words of one caption commit together and decide once, after the last: they arrive
    # at the same audio time, so a decision between them could commit nothing earlier, and each
    # costs a draft. False: decide after every word, as for typed text.
    batch_words: bool = True


class SpeechTranslationSession:
    """One audio stream captioned and translated (see the module docstring). `close()` (or `with`)
    gives the speech decoder's contexts back."""

    def __init__(self, asr: "AsrSession", text: "TranslationSession", options: CascadeOptions = CascadeOptions()) -> None:
        self.asr = asr
        self.text = text
        self.options = options
        self._audio_ms = 0  # audio time of the source word last pushed into the translation, ms
        self._sentence_open = False  # the translation's open sentence has words

    def push(self, samples) -> list[Commit]:
        """Feed float32 mono 16 kHz samples; return the commits of both streams, in order."""
        return self._relay(self.asr.push(samples))

    def finish(self) -> list[Commit]:
        """End of input: commit what is left of the captions, then of the translation."""
        commits = self._relay(self.asr.finish())
        return commits + self._end_sentence()

    def close(self) -> None:
        """Give the speech contexts back and drop the open sentence; the engines stay loaded."""
        self.asr.close()
        self.text.close()

    def __enter__(self) -> "SpeechTranslationSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tentative(self) -> str:
        """The translation's current draft beyond its committed words ("" when none): a preview
        that the next word may change; never part of the commits."""
        return self.text.tentative

    @property
    def source_tentative(self) -> str:
        """The captions' current draft beyond their committed words ("" when none)."""
        return self.asr.tentative

    def drafts(self) -> list[Tentative]:
        """Both streams' current drafts as events (empty drafts included: a draft that vanished
        is news to a display)."""
        return [
            Tentative(self.asr.tentative, "source", self.asr.window_index),
            Tentative(self.text.tentative, "target", self.text.sentence_index),
        ]

    def _relay(self, captions: list[Commit]) -> list[Commit]:
        out: list[Commit] = []
        for caption in captions:
            out.append(caption)
            words = split_words(caption.text)
            self._audio_ms = caption.audio_ms if caption.audio_ms is not None else caption.source_read
            for k, word in enumerate(words):
                # A caption without leading whitespace continues the last word ("ring" + "leader,").
                read = self.text.source_words if k == 0 and not caption.separator else []
                join = self._sentence_open and bool(read)
                self._sentence_open = True
                last = k == len(words) - 1
                whole = read[-1] + word if join else word
                ends = (self.options.split_sentences and ends_sentence(whole)) or (last and caption.sentence_end)
                # The words of one caption arrive together: the policy decides after the last (and
                # not at all before a sentence end, where the rest is decoded at full context).
                decide = not ends and (last or not self.options.batch_words)
                out += [self._target(c) for c in self.text.push(word, decide=decide, join=join)]
                if ends:
                    out += self._end_sentence()
            if caption.sentence_end:
                out += self._end_sentence()
        return out

    def _end_sentence(self) -> list[Commit]:
        if not self._sentence_open:
            return []
        self._sentence_open = False
        return [self._target(c) for c in self.text.finish()]

    def _target(self, commit: Commit) -> Commit:
        return replace(commit, stream="target", source_read=self.asr.heard_ms, audio_ms=self._audio_ms)


class SpeechTranslator:
    """A speech engine and a translation engine, loaded once; each `create_session` is one stream.

    Sessions share the engines as their own sessions do: the translation engine's lock serialises
    its sessions' calls, and every speech session has its own decoder contexts.
    """

    def __init__(self, speech: "AsrEngine", text: "TranslationEngine") -> None:
        self.speech = speech
        self.text = text

    @classmethod
    def load(
        cls,
        speech_model: str | Path | None = "base",
        text_manifest: Any = None,
        text_model_path: str | Path | None = None,
        runtime_options: Any = None,
        encoder_options: Any = None,
        precision: str = "fp32",
        **llama_overrides: Any,
    ) -> "SpeechTranslator":
        """Whisper (`speech_model`: a built-in name or a directory, as `SpeechEngine.load`) and a
        translation model (`text_manifest` / `text_model_path`, as `TranslationEngine.load`;
        `llama_overrides` are `LlamaOptions` fields)."""
        from .runtimes import import_onnxruntime

        import_onnxruntime()  # before llama.cpp: the other order crashes CUDA builds
        from .manifest import DEFAULT_TEXT_MANIFEST
        from .speech.engine import EncoderOptions, SpeechEngine
        from .speech.onnx_runtime import RuntimeOptions
        from .text.engine import TranslationEngine

        speech = SpeechEngine.load(speech_model, runtime_options or RuntimeOptions(),
                                   encoder_options or EncoderOptions(), precision=precision)
        text = TranslationEngine.load(text_manifest or DEFAULT_TEXT_MANIFEST, model_path=text_model_path,
                                      **llama_overrides)
        return cls(speech, text)

    def create_session(
        self,
        src: str | None,
        tgt: str,
        asr_options: "AsrSessionOptions | None" = None,
        policy: "PolicyOptions | None" = None,
        options: CascadeOptions = CascadeOptions(),
    ) -> SpeechTranslationSession:
        """A stream of speech in `src` (None: English) translated into `tgt`. `asr_options`: the
        captions' settings (their language and task are set here); `policy`: the translation's
        (default: the text model's manifest for the pair)."""
        from .speech.session import AsrSessionOptions

        check_language_pair(src, tgt)
        asr_options = replace(asr_options or AsrSessionOptions(), language=src, task="transcribe")
        text = self.text.create_session(src or "en", tgt, policy=policy)
        return SpeechTranslationSession(self.speech.create_session(asr_options), text, options)

    def close(self) -> None:
        self.text.close()
        self.speech.close()

    def __enter__(self) -> "SpeechTranslator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
