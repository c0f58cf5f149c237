"""Whole-word commits: where a token draft may be cut so that only complete words are written."""

from __future__ import annotations

import numpy as np

__all__ = ["word_starts", "cut_at_words"]


def word_starts(pieces: list[str], at_target_start: bool = False) -> np.ndarray:
    """bool [n]: whether each token text in `pieces` begins a new word.

    A token begins a word when its text begins with whitespace, as SentencePiece and byte-level BPE
    vocabularies mark it — and the very first token of a target does whatever its text
    (`at_target_start`: chat models often start the answer without a space).
    """
    starts = np.array([bool(p) and p[0].isspace() for p in pieces], dtype=bool)
    if starts.size and at_target_start:
        starts[0] = True
    return starts


def cut_at_words(
    starts: np.ndarray,
    n_accepted: int,
    max_words: int,
    min_words: int = 0,
    final_is_boundary: bool = False,
) -> tuple[int, int]:
    """Choose how many draft tokens to commit so that only whole words leave.

    `starts`: bool [n] from `word_starts`. `n_accepted`: tokens the write test accepted.
    `max_words` / `min_words`: the range constraint's bounds on words to commit now.
    `final_is_boundary`: the draft's last token ends a word (the draft reached the stop token).

    Returns (n_tokens, n_words). Normally the longest whole-word cut within the accepted tokens that
    holds at most `max_words` words; if that is fewer than `min_words`, the shortest cut reaching
    `min_words` regardless of the test (a forced write), or the longest cut the draft offers.
    """
    starts = np.asarray(starts, dtype=bool)
    n = starts.size
    # cuts[c] = True where tokens[:c] ends on a word boundary (c = 1..n). A draft that continues a
    # word (its first token is no word start) has its first boundary where the next word starts.
    cuts = np.zeros(n + 1, dtype=bool)
    cuts[1:n] = starts[1:]
    cuts[n] = final_is_boundary and n > 0
    words_before = np.concatenate([[0], np.cumsum(starts)])  # words in tokens[:c]
    candidates = np.flatnonzero(cuts)

    normal = candidates[(candidates <= n_accepted) & (words_before[candidates] <= max_words)]
    cut = int(normal[-1]) if normal.size else 0
    if words_before[cut] < min_words:
        forced = candidates[words_before[candidates] >= min(min_words, max_words)]
        cut = int(forced[0]) if forced.size else (int(candidates[-1]) if candidates.size else 0)
    return cut, int(words_before[cut])
