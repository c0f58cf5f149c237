"""Whisper's alignment heads: the decoder cross-attention heads whose attention follows the audio
position of the token being written (used for word timestamps, and by AlignAtt to decide when a
token has been heard).

OpenAI publishes them with the weights, per model size, as base85-encoded gzipped boolean masks of
shape (decoder layers, heads) in `whisper/__init__.py` (`_ALIGNMENT_HEADS`); CTranslate2's
converter copies the same lists into a model's `config.json` ("alignment_heads"). The two built-in
models' masks are decoded here once, as (layer, head) pairs:
  tiny.en  b"ABzY8J1N>@0{>%R00Bk>$p{7v037`oCl~+#00"
  base     b"ABzY8KQ!870{>%RzyTQH3`Q^yNP!>##QT-<FaQ7m"
A model that names none and is not one of these gets the heads of the upper half of its decoder
layers, openai/whisper's own fallback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ..errors import ModelError

__all__ = ["KNOWN_ALIGNMENT_HEADS", "alignment_heads"]

# (decoder layers, heads per layer, vocabulary size) → (layer, head) pairs.
KNOWN_ALIGNMENT_HEADS: dict[tuple[int, int, int], tuple[tuple[int, int], ...]] = {
    # tiny.en (English-only vocabulary: 51,864 tokens)
    (4, 6, 51864): ((1, 0), (2, 0), (2, 5), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4)),
    # base (multilingual: 51,865 tokens)
    (6, 8, 51865): ((3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6)),
}


def alignment_heads(n_layers: int, n_heads: int, n_vocab: int, source_dir: Path | None = None) -> list[tuple[int, int]]:
    """The (layer, head) pairs of a model, sorted: from its config.json (CTranslate2) or
    generation_config.json (Hugging Face) if one names them, else the
    known table, else every head of the upper half of the decoder layers."""
    heads: Sequence | None = None
    for name in ("config.json", "generation_config.json") if source_dir is not None else ():
        config = Path(source_dir) / name
        if config.exists() and not heads:
            try:
                heads = json.loads(config.read_text(encoding="utf-8")).get("alignment_heads")
            except (ValueError, OSError, AttributeError) as e:
                raise ModelError(f"unreadable Whisper config {config}: {e}") from e
    if not heads:
        heads = KNOWN_ALIGNMENT_HEADS.get((n_layers, n_heads, n_vocab))
    if not heads:
        heads = [(layer, head) for layer in range(n_layers // 2, n_layers) for head in range(n_heads)]
    pairs = sorted({(int(layer), int(head)) for layer, head in heads})
    bad = [p for p in pairs if not (0 <= p[0] < n_layers and 0 <= p[1] < n_heads)]
    if bad:
        raise ModelError(f"alignment heads {bad} outside a decoder of {n_layers} layers × {n_heads} heads")
    return pairs
