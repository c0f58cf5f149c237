"""Translation prompts: token prefixes that put a (partial) source sentence before the target.

Three styles. Base models (the default Gemma 3 270M has no chat template) get a few-shot prompt
built from `models/few_shot.toml`:

    German: <example>\nEnglish: <example>\n ... German: <source>\nEnglish:

Models LoRA-tuned for translation by lsg-edge get a one-line instruction (`instruction_prompt`).
Instruct models get their own chat template (the GGUF's `tokenizer.chat_template`, rendered with
Jinja) around a one-line instruction, and their reply starts with the target language's label. In
every style the target follows the prefix directly, so a context's token list is always
`prefix_tokens(source) + committed target tokens`.
"""

from __future__ import annotations

import functools
import sys
from importlib import resources
from typing import Any

from ..backends.base import Vocabulary
from ..errors import ModelError, OptionsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TranslationPrompt", "language_names", "instruction_prompt"]


@functools.cache
def _few_shot() -> dict[str, Any]:
    text = (resources.files("lsg_edge.models") / "few_shot.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def language_names() -> dict[str, str]:
    """Language code → English name, for the languages that have few-shot examples."""
    return dict(_few_shot()["languages"])


def instruction_prompt(src: str, tgt: str) -> tuple[str, str]:
    """Head and tail of the one-line instruction prompt that translation-tuned models learn.

    The source sentence goes between them and the target follows the tail after a space:
    `Translate German to English.\nGerman: <source>\nEnglish: <target>\n`. The LoRA trainer
    (lsg_edge.convert.train_lora) builds its examples from this same function, so the prompt a
    tuned model sees at run time is the one it was trained on.
    """
    names = language_names()
    src_name, tgt_name = names[src], names[tgt]
    return f"Translate {src_name} to {tgt_name}.\n{src_name}: ", f"\n{tgt_name}:"


class TranslationPrompt:
    """Builds the token prefix for a source text, for one model, style and language pair."""

    def __init__(
        self,
        vocab: Vocabulary,
        src: str,
        tgt: str,
        style: str = "few-shot",
        chat_template: str | None = None,
        bos_text: str = "",
    ) -> None:
        names = language_names()
        for flag, code in (("--src", src), ("--tgt", tgt)):
            if code not in names:
                raise OptionsError(f"{flag} {code!r} is not supported (choose from {', '.join(sorted(names))})")
        if src == tgt:
            raise OptionsError(f"--src and --tgt are both {src!r}")
        self.vocab = vocab
        self.src, self.tgt = src, tgt
        self.style = style
        src_name, tgt_name = names[src], names[tgt]
        if style == "few-shot":
            examples = "".join(f"{src_name}: {ex[src]}\n{tgt_name}: {ex[tgt]}\n" for ex in _few_shot()["examples"])
            self._head = f"{examples}{src_name}: "
            self._tail = f"\n{tgt_name}:"
            self._add_bos = True
        elif style == "instruction":
            self._head, self._tail = instruction_prompt(src, tgt)
            self._add_bos = True
        elif style == "chat":
            if not chat_template:
                raise ModelError("prompt style 'chat' needs a model with a chat template (tokenizer.chat_template)")
            instruction = (f"Translate the following {src_name} text into {tgt_name}. Reply with the translation "
                           f"only.\n\n{src_name}: ")
            marker = "\x00SOURCE\x00"
            rendered = _render_chat(chat_template, instruction + marker, bos_text)
            if marker not in rendered:
                raise ModelError("the model's chat template drops the user message; use --prompt-style few-shot")
            self._head, reply_start = rendered.split(marker)
            # The reply opens with the target language's label, as in the other two styles. Left
            # to open it themselves, instruct models now and then answer a sentence (more often a
            # partial one) with a lead-in such as "Sure, here's the English translation:" and a
            # line break, which ends the sentence: its whole translation would be lost.
            self._tail = f"{reply_start}{tgt_name}:"
            self._add_bos = False  # chat templates write the BOS token themselves
        else:
            raise OptionsError(f"unknown prompt style {style!r}")

    def prefix_tokens(self, source_text: str) -> list[int]:
        """Tokens of everything before the target, with `source_text` as the source sentence."""
        return list(self._tokenize_prefix(source_text))

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one prompt per session; the cache dies with it
    def _tokenize_prefix(self, source_text: str) -> tuple[int, ...]:
        # Each decision asks for the same few prefixes (full, wait-1, the cut check) several times.
        return tuple(self.vocab.tokenize(self._head + source_text + self._tail, add_bos=self._add_bos))

    def is_stop(self, token: int) -> bool:
        """The target sentence ends: end of generation, or a line break (one sentence per line)."""
        return self.vocab.is_end_of_generation(token) or b"\n" in self.vocab.piece(token)

    def echo_texts(self) -> list[tuple[str, str | None]]:
        """Prompt text a translation must not repeat, as (text, permit): `text` may appear in the
        output only when the source holds `permit` (None: never). The few-shot examples' target
        side is the right answer when the source is that example; their source side, the
        instruction and template lines never are."""
        if self.style == "few-shot":
            examples = _few_shot()["examples"]
            return [(ex[self.src], None) for ex in examples] + [(ex[self.tgt], ex[self.src]) for ex in examples]
        return [(line, None) for line in self._head.splitlines() if line.strip()]


def _render_chat(template: str, user_message: str, bos_text: str) -> str:
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ModelError("jinja2 is needed for chat templates: pip install jinja2") from e

    def raise_exception(message: str) -> None:
        raise ModelError(f"chat template error: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template).render(
            messages=[{"role": "user", "content": user_message}],
            add_generation_prompt=True,
            bos_token=bos_text,
            eos_token="",
        )
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001 - any Jinja failure is a bad template in the model file
        raise ModelError(f"could not render the model's chat template: {e}") from e
