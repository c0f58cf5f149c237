"""Beam search over Whisper's decoder, for the decodes that commit everything left (the end of a
window, and offline decoding).

openai/whisper's beam decoder, without temperature fallback: each step every live beam proposes
its `n_beams + 1` most likely next tokens; going down the candidates by summed log-probability,
the first `n_beams` that do not end the transcript live on, and the ending ones met before them
are set aside as finished; the search stops when `n_beams` hypotheses have finished (patience 1)
or the token budget is spent. The winner has the highest sum
of log-probabilities divided by its length (Whisper's ranking without a length penalty).

The beams run as one batch through the decoder graph (batch = beams), their self-attention caches
reordered after each step; the prompt is decoded once.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..policy.decision import log_softmax
from ..policy.drafting import Draft
from .onnx_runtime import EncodedAudio, WhisperRuntime
from .vocab import TokenFilter

__all__ = ["beam_search"]


def beam_search(
    runtime: WhisperRuntime,
    token_filter: TokenFilter,
    audio: EncodedAudio,
    prefix: Sequence[int],
    first_output_position: int,
    n_beams: int,
    max_new_tokens: int,
    is_stop: Callable[[int], bool],
) -> Draft:
    """The best continuation of `prefix` (prompt + committed tokens) over `audio`, at most
    `max_new_tokens` tokens; `ended` when it finished on a stop token."""
    prefix = list(prefix)
    if max_new_tokens <= 0:
        return Draft()
    k, v = runtime.empty_cache()
    step = runtime.decode_step(prefix, k, v, audio)
    k, v = step.self_k, step.self_v
    rows = token_filter.apply(step.logits[-1:].copy(), [len(prefix) - 1], first_output_position)
    sequences: list[list[int]] = [[]]  # generated tokens of each live beam
    scores = np.zeros(1)  # summed log-probabilities of each live beam
    finished: list[tuple[float, list[int], bool]] = []  # (normalised score, tokens, ended)
    cross_k, cross_v = audio.cross_k, audio.cross_v
    for n_generated in range(max_new_tokens):
        logp = log_softmax(rows).astype(np.float64)  # [live beams, vocab]
        candidates: list[tuple[float, int, int]] = []  # (score, parent beam, token)
        for beam in range(len(sequences)):
            best = np.argpartition(-logp[beam], n_beams)[: n_beams + 1]
            candidates += [(scores[beam] + logp[beam, t], beam, int(t)) for t in best]
        candidates.sort(key=lambda c: -c[0])
        parents, tokens, new_scores = [], [], []
        for score, beam, token in candidates:
            if is_stop(token):
                # Only endings that rank above the last surviving beam count (as openai/whisper).
                if len(finished) < n_beams:
                    finished.append((score / max(1, len(sequences[beam])), sequences[beam], True))
            else:
                parents.append(beam)
                tokens.append(token)
                new_scores.append(score)
                if len(parents) == n_beams:
                    break
        if len(finished) >= n_beams or not parents or n_generated + 1 == max_new_tokens:
            live = [(s / (len(sequences[b]) + 1), sequences[b] + [t], False)
                    for s, b, t in zip(new_scores, parents, tokens)]
            break
        sequences = [sequences[b] + [t] for b, t in zip(parents, tokens)]
        scores = np.array(new_scores)
        index = np.array(parents)
        k, v = k[:, index], v[:, index]
        if cross_k.shape[1] != len(parents):
            cross_k = np.repeat(audio.cross_k, len(parents), axis=1)
            cross_v = np.repeat(audio.cross_v, len(parents), axis=1)
        logits, k, v = runtime.decode_batch(np.array(tokens, np.int64)[:, None], k, v, cross_k, cross_v)
        position = len(prefix) + len(sequences[0]) - 1
        rows = token_filter.apply(logits[:, -1].copy(), [position] * len(parents), first_output_position)
    else:  # pragma: no cover - the loop always breaks on its last step
        live = []
    pool = finished if finished else live
    _, best_tokens, ended = max(pool, key=lambda f: f[0])
    return Draft(list(best_tokens), ended)
