"""LSG's range constraint, counted in source words read and target words committed.

Target word i (1-based) may not be written before min(L+i-1, J) source words are read, and must be
written once min(L+i-1+U, J) are read (Guo et al. 2025, §3.3). With j words read and n committed,
that bounds how many *more* words the policy may, and must, commit now. Once the source has ended
every remaining word must be written, which the caller does by decoding to the end.
"""

from __future__ import annotations

__all__ = ["words_allowed", "words_required"]


def words_allowed(n_read: int, n_committed: int, low_bound: int) -> int:
    """Most target words that may still be committed with `n_read` source words read.

    Word i needs L+i-1 ≤ j, so at most j-L+1 words in total may be out; never negative.
    """
    return max(0, n_read - low_bound + 1 - n_committed)


def words_required(n_read: int, n_committed: int, low_bound: int, top_bound: int) -> int:
    """Fewest target words that must be committed now with `n_read` source words read.

    Word i is due once L+i-1+U ≤ j, so at least j-L-U+1 words in total must be out.
    """
    return max(0, n_read - low_bound - top_bound + 1 - n_committed)
