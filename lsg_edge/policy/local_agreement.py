"""LocalAgreement-2: commit what two consecutive hypotheses agree on.

Liu et al., "Low-Latency Sequence-to-Sequence Speech Recognition and Translation by Partial
Hypothesis Selection" (Interspeech 2020), as used by ufal/whisper_streaming (Macháček et al. 2023):
after each new source element, re-translate everything read so far; commit the longest common
prefix of the last two hypotheses beyond what is already committed, in whole words.

Unlike LSG and wait-k, the decision depends on the *previous* decision's hypothesis, so the
strategy keeps per-sentence state; sessions `reset` it when a sentence (or audio window) starts.

How far a hypothesis reaches is the view's choice (`DecisionView.hypothesis`): text looks
`PolicyOptions.draft_tokens` tokens past the committed prefix, which is where agreement matters;
speech re-decodes the whole audio window, as whisper_streaming does.
"""

from __future__ import annotations

import numpy as np

from .drafting import common_prefix_length
from .interface import Decision, DecisionView, Policy, Read, Write
from .words import word_starts

__all__ = ["LocalAgreementPolicy", "agreed_prefix"]

def agreed_prefix(
    previous: list[int],
    previous_starts: np.ndarray,
    previous_ended: bool,
    current: list[int],
    current_starts: np.ndarray,
    current_ended: bool,
) -> int:
    """Tokens of `current` that form whole words both hypotheses agree on.

    `previous`, `current`: token ids past the committed prefix; `*_starts`: bool [n] from
    `word_starts` (token begins a word); `*_ended`: the hypothesis stopped on a stop token.

    Returns the largest c ≤ common-prefix length such that tokens[:c] ends on a word boundary in
    *both* hypotheses: position c begins a word in each, or is the end of a finished hypothesis.
    Requiring it of both keeps "Haus|es" vs "Haus| ist" from agreeing on "Haus".
    """
    n_common = common_prefix_length(previous, current)

    def is_boundary(c: int, starts: np.ndarray, n: int, ended: bool) -> bool:
        return bool(starts[c]) if c < n else ended

    for c in range(n_common, 0, -1):
        if is_boundary(c, previous_starts, len(previous), previous_ended) and is_boundary(
            c, current_starts, len(current), current_ended
        ):
            return c
    return 0


class LocalAgreementPolicy(Policy):
    """LA-2: one hypothesis per source word; commit the whole-word common prefix of the last two."""

    def __init__(self) -> None:
        self._previous: list[int] | None = None  # last hypothesis, past the committed prefix
        self._previous_starts = np.zeros(0, dtype=bool)
        self._previous_ended = False
        self._decided_at = 0  # source words read at the last decision of this sentence

    def reset(self) -> None:
        """Forget the sentence's hypotheses (the next decision starts a new sentence)."""
        self.__init__()

    def decide(self, view: DecisionView) -> Decision:
        if view.n_read == self._decided_at:
            # The session asks again after a commit without new source: agreement needs two
            # hypotheses on different inputs, so this is a READ.
            return Read()
        self._decided_at = view.n_read
        draft = view.hypothesis()
        ended = draft.ended and view.stop_ends_word  # a stop that ends no word is no boundary
        starts = word_starts(view.pieces(draft.tokens))
        n_agreed = 0
        if self._previous is not None:
            n_agreed = agreed_prefix(
                self._previous, self._previous_starts, self._previous_ended,
                draft.tokens, starts, ended,
            )
        # What remains of this hypothesis past the new commit is compared at the next element.
        self._previous = list(draft.tokens[n_agreed:])
        self._previous_starts = word_starts(view.pieces(self._previous))
        self._previous_ended = ended
        return Write(n_agreed, "agreement") if n_agreed else Read()
