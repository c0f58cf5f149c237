"""AlignAtt: write a token while the decoder's cross-attention says it was heard.

Papi, Turchi, Negri, "AlignAtt: Using Attention-based Audio-Translation Alignments as a Guide for
Simultaneous Speech Translation" (Interspeech 2023), the policy SimulStreaming runs over Whisper.
For each drafted token, the cross-attention of the model's alignment heads points at the audio
frame the token was read from. A token whose most attended frame lies within the last `f` frames
of the audio heard so far is about audio that may still continue: it and everything after it wait.
The leading run of tokens that point far enough back is written, cut to whole words.

Raw attention is a poor pointer: some heads park most of their weight on a few "sink" frames
whatever the token. As openai/whisper does for word timestamps (and SimulStreaming for AlignAtt),
each head's attention to each frame is standardised over all the decoder rows of the window
(prompt, committed text and draft), median-filtered along the frames, and then averaged over the
heads; the most attended frame is the argmax of that over all encoded frames — one in the padding
after the audio is not heard either (SimulStreaming looks only at the real audio).

The view supplies the attention (`draft_attention`, speech views of Whisper only) and how many
encoder frames of real audio it has heard (`n_heard_frames`; 20 ms each for Whisper).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import OptionsError
from .options import PolicyOptions
from .interface import Decision, DecisionView, Policy, Read, Write
from .words import cut_at_words, word_starts

__all__ = ["AlignAttPolicy", "AttentionView", "most_attended_frames", "heard_run"]

# AlignAtt has no range constraint: how many words a draft may show is bounded by the draft budget.
_UNBOUNDED_WORDS = 1 << 20
# Frames of the median filter applied to the standardised attention (openai/whisper's timing width).
MEDIAN_FILTER_FRAMES = 7
_STD_FLOOR = 1e-6  # a frame no row attends differently from the others stays near zero


class AttentionView(DecisionView, Protocol):
    """A decision view that also exposes the decoder's alignment attention."""

    n_heard_frames: int  # encoder frames of real audio read so far (the rest is padding)

    def draft_attention(self, tokens: list[int]) -> np.ndarray:
        """The alignment heads' cross-attention of every decoder row of the window up to the one
        that predicted the last of the draft `tokens`: float32 [n_rows, n_heads, n_frames] over all
        encoded frames; the last len(tokens) rows predicted the draft tokens, the rows before them
        the prompt and the committed text."""
        ...


def _median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over a centred window of `width` along the last axis (edges reflected)."""
    if width <= 1 or x.shape[-1] < width:
        return x
    pad = width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1), axis=-1)


def most_attended_frames(attention: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """int [len(rows)]: per judged row, the most attended frame (module docstring).

    `attention`: float [n_rows, n_heads, n_frames_encoded], each row a distribution over frames;
    standardised over all its rows. `rows`: the rows to judge (default: all)."""
    attention = np.asarray(attention, dtype=np.float64)
    if attention.ndim != 3:
        raise ValueError(f"attention must be [rows, heads, frames], got shape {attention.shape}")
    rows = np.arange(attention.shape[0]) if rows is None else np.asarray(rows)
    mean = attention.mean(axis=0)
    std = attention.std(axis=0)
    z = (attention[rows] - mean) / (std + _STD_FLOOR)
    score = _median_filter(z, MEDIAN_FILTER_FRAMES).mean(axis=1)  # [len(rows), frames]
    return np.argmax(score, axis=-1)


def heard_run(frames: np.ndarray, n_heard_frames: int, f: int) -> int:
    """Leading tokens whose most attended frame lies before the last `f` heard frames, i.e. at a
    frame < n_heard_frames − f (a frame in the padding, ≥ n_heard_frames, fails as well)."""
    ok = np.asarray(frames) < n_heard_frames - f
    return int(ok.size if ok.all() else np.argmin(ok))


class _Guard:
    """Tests each token as it is drafted, so drafting stops at the first one that fails: nothing
    after it can be written now, and every further token costs a decoder pass."""

    def __init__(self, view: AttentionView, f: int) -> None:
        self._view = view
        self._f = f
        self.n_accepted = 0
        self.failed = False

    def stop(self, tokens: list[int], row: np.ndarray) -> bool:
        attention = self._view.draft_attention(tokens)
        n_heard = self._view.n_heard_frames
        frame = most_attended_frames(attention, [attention.shape[0] - 1])
        if heard_run(frame, n_heard, self._f) == 1:
            self.n_accepted += 1
            return False
        self.failed = True
        return True


class AlignAttPolicy(Policy):
    """See module docstring; `options.frames` is f."""

    def __init__(self, options: PolicyOptions) -> None:
        self.frames = options.frames

    def decide(self, view: DecisionView) -> Decision:
        if not hasattr(view, "draft_attention"):
            raise OptionsError("--policy alignatt needs the cross-attention of a Whisper model (speech only)")
        guard = _Guard(view, self.frames)
        draft = view.draft(max_words=_UNBOUNDED_WORDS, should_stop=guard.stop)
        if not draft.tokens or guard.n_accepted == 0:
            return Read()
        starts = word_starts(view.pieces(draft.tokens), view.at_target_start)
        cut, _ = cut_at_words(starts, guard.n_accepted, max_words=_UNBOUNDED_WORDS)
        return Write(cut, "alignatt") if cut > 0 else Read()
