"""The audio-LLM prompt as tokens: text before the audio slot, the slot, text after it.

A prompt is a token list holding `AUDIO_SLOT_TOKEN` once, where the audio embeddings go. The
policies treat it like any prompt (they only append committed and drafted tokens after it); the
engine's contexts replace the slot by the current audio's embedding rows.
"""

from __future__ import annotations

from ..backends.base import Vocabulary
from ..errors import ModelError, OptionsError
from .manifest import AUDIO_SLOT, INSTRUCTION_SLOT, PromptSpec

__all__ = ["AUDIO_SLOT_TOKEN", "build_prompt", "stop_tokens", "language_name"]

# Stands for the audio in a prompt's token list. Tokenizers never produce negative ids, so it can
# neither be confused with a token nor reach llama.cpp unreplaced.
AUDIO_SLOT_TOKEN = -1

# Names the instructions use for {language} and {target}; other codes are used as they are.
_LANGUAGE_NAMES = {
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "ru": "Russian", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ar": "Arabic",
}


def language_name(code: str | None) -> str:
    """English name of a language code ("fr" → "French"); None = English."""
    code = code or "en"
    return _LANGUAGE_NAMES.get(code.lower(), code)


def build_prompt(spec: PromptSpec, vocab: Vocabulary, language: str | None, task: str) -> list[int]:
    """Token ids of the prompt for `task`, with AUDIO_SLOT_TOKEN where the audio goes."""
    if INSTRUCTION_SLOT in spec.template or spec.instructions:
        if task not in spec.instructions:
            raise OptionsError(f"--task {task!r} has no instruction in this manifest (has: {sorted(spec.instructions)})")
    instruction = spec.instructions.get(task, "")
    # str.replace, not str.format: chat templates may contain other braces.
    instruction = instruction.replace("{language}", language_name(language))
    instruction = instruction.replace("{target}", language_name(spec.target_language))
    text = spec.template.replace(INSTRUCTION_SLOT, instruction)
    before, after = text.split(AUDIO_SLOT)
    head = vocab.tokenize(before, add_bos=spec.add_bos)
    tail = vocab.tokenize(after, add_bos=False) if after else []
    return head + [AUDIO_SLOT_TOKEN] + tail


def stop_tokens(spec: PromptSpec, vocab: Vocabulary) -> frozenset[int]:
    """Ids of the manifest's stop texts; each must be exactly one token of this GGUF."""
    ids = set()
    for text in spec.stop:
        tokens = vocab.tokenize(text, add_bos=False)
        if len(tokens) != 1:
            raise ModelError(f"[prompt] stop {text!r} is {len(tokens)} tokens in this GGUF, not one "
                             "(wrong GGUF for this manifest?)")
        ids.add(tokens[0])
    return frozenset(ids)
