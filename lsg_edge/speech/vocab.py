"""Whisper's vocabulary: token id → bytes, special tokens by name, and which ids may be generated.

Read from CTranslate2's `vocabulary.txt` (one byte-level BPE token per line) or a Hugging Face
`tokenizer.json`. Only decoding is needed: the decoder is prompted with special tokens alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelError, OptionsError

__all__ = ["WhisperVocabulary", "TokenFilter"]

# openai/whisper: a checkpoint is multilingual when its vocabulary has at least this many tokens.
_MULTILINGUAL_N_VOCAB = 51865


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet: printable stand-in character → raw byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


class WhisperVocabulary:
    """Token strings of one checkpoint (see module docstring)."""

    def __init__(self, tokens: list[str], n_vocab: int) -> None:
        self.n_vocab = n_vocab
        self._tokens = tokens + [""] * max(0, n_vocab - len(tokens))
        self._ids = {t: i for i, t in enumerate(self._tokens) if t.startswith("<|")}
        self.eot = self._special("<|endoftext|>")
        self.sot = self._special("<|startoftranscript|>")
        self.no_timestamps = self._special("<|notimestamps|>")
        # Whisper's "there is no speech" token (`no_speech`); older vocabularies call it <|nocaptions|>.
        self.no_speech: int | None = self._ids.get("<|nospeech|>", self._ids.get("<|nocaptions|>"))
        self.multilingual = n_vocab >= _MULTILINGUAL_N_VOCAB
        decoder = _byte_decoder()
        self._pieces = [
            b"" if t.startswith("<|") else bytes(decoder.get(c, ord("?")) for c in t) for t in self._tokens
        ]

    @classmethod
    def load(cls, model_dir: Path, n_vocab: int) -> "WhisperVocabulary":
        model_dir = Path(model_dir)
        text_file, json_file = model_dir / "vocabulary.txt", model_dir / "tokenizer.json"
        try:
            if text_file.exists():
                return cls(text_file.read_text(encoding="utf-8").split("\n")[:n_vocab], n_vocab)
            if json_file.exists():
                data = json.loads(json_file.read_text(encoding="utf-8"))
                by_id = {i: t for t, i in data["model"]["vocab"].items()}
                by_id.update({t["id"]: t["content"] for t in data.get("added_tokens", [])})
                return cls([by_id.get(i, "") for i in range(n_vocab)], n_vocab)
        except (OSError, ValueError, KeyError) as e:
            raise ModelError(f"unreadable Whisper vocabulary in {model_dir}: {e}") from e
        raise ModelError(f"no vocabulary.txt or tokenizer.json in {model_dir}")

    def _special(self, name: str) -> int:
        if name not in self._ids:
            raise ModelError(f"the vocabulary lacks the special token {name} (not a Whisper vocabulary?)")
        return self._ids[name]

    def prompt(self, language: str | None, task: str, previous: Sequence[int] = ()) -> list[int]:
        """The decoder prompt: [<|startofprev|> previous…] <|startoftranscript|> [<|lang|> <|task|>]
        <|notimestamps|>. `previous`: text tokens said before (Whisper's conditioning on previous text)."""
        head = [self._special("<|startofprev|>"), *previous] if previous else []
        return head + self._task_prompt(language, task)

    def _task_prompt(self, language: str | None, task: str) -> list[int]:
        if task not in ("transcribe", "translate"):
            raise OptionsError(f"--task must be transcribe or translate, got {task!r}")
        if not self.multilingual:
            if task == "translate" or (language not in (None, "en")):
                raise OptionsError("this model is English-only: use a multilingual model (--model base)")
            return [self.sot, self.no_timestamps]
        language = language or "en"
        if f"<|{language}|>" not in self._ids:
            raise OptionsError(f"--language {language!r} is not a Whisper language code")
        return [self.sot, self._ids[f"<|{language}|>"], self._special(f"<|{task}|>"), self.no_timestamps]

    def piece(self, token: int) -> bytes:
        """Raw bytes of a text token (b"" for special tokens)."""
        return self._pieces[token]

    def text(self, tokens: list[int]) -> str:
        return b"".join(self._pieces[t] for t in tokens).decode("utf-8", errors="replace")

    def is_end_of_generation(self, token: int) -> bool:
        return token == self.eot


@dataclass(frozen=True, eq=False)
class TokenFilter:
    """Which tokens the decoder may produce: text tokens and <|endoftext|>, minus the checkpoint's
    suppressed ids; at the first output position also its `suppress_ids_begin` (a bare space, an
    immediate end) — the same rules as faster-whisper's greedy search without timestamps.
    """

    banned: np.ndarray  # bool [n_vocab]
    banned_first: np.ndarray  # bool [n_vocab], at the first output position

    @classmethod
    def for_model(cls, vocab: WhisperVocabulary, model_dir: Path) -> "TokenFilter":
        suppress, suppress_begin = _suppressed_ids(Path(model_dir), vocab)
        banned = np.zeros(vocab.n_vocab, dtype=bool)
        banned[vocab.eot + 1 :] = True  # special and timestamp tokens
        banned[[i for i in suppress if 0 <= i < vocab.n_vocab]] = True
        banned_first = banned.copy()
        banned_first[[i for i in suppress_begin if 0 <= i < vocab.n_vocab]] = True
        return cls(banned, banned_first)

    def apply(self, logits: np.ndarray, positions: list[int], first_output_position: int) -> np.ndarray:
        """Set banned logits to −inf; row k belongs to `positions[k]` (modifies and returns `logits`)."""
        for k, p in enumerate(positions):
            logits[k, self.banned_first if p == first_output_position else self.banned] = -np.inf
        return logits


def _suppressed_ids(model_dir: Path, vocab: WhisperVocabulary) -> tuple[list[int], list[int]]:
    for name, keys in (("config.json", ("suppress_ids", "suppress_ids_begin")),
                       ("generation_config.json", ("suppress_tokens", "begin_suppress_tokens"))):
        path = model_dir / name
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except ValueError as e:
                raise ModelError(f"unreadable {path}: {e}") from e
            if keys[0] in data:
                return list(data[keys[0]]), list(data.get(keys[1], []))
    return [], [vocab.eot]
