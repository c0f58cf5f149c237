"""Options of the read/write policies, shared by text and speech."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import OptionsError
from .decision import KL_DIRECTIONS

__all__ = ["PolicyOptions", "POLICY_NAMES", "SPEECH_POLICY_DEFAULTS", "POLICY_FLAGS", "policy_fields", "policy_from_flags"]

POLICY_NAMES = ("lsg", "wait-k", "offline", "local-agreement", "alignatt")


@dataclass(frozen=True)
class PolicyOptions:
    """Which policy decides READ/WRITE, and its parameters (units in comments).

    A *source element* is what one READ brings: a word of text, a segment of audio. The lag bounds
    (k, L, U) count source words; an element counts as `words_per_element` words.
    """

    name: str = "lsg"  # one of POLICY_NAMES
    k: int = 3  # wait-k lag, source words
    delta: float = 9.0  # LSG KL threshold δ, nats
    alpha: float = 0.6  # LSG confidence threshold α on max P_cur, probability
    low_bound: int = 1  # LSG range constraint L, source words
    top_bound: int = 4  # LSG range constraint U, source words
    kl_direction: str = "paper"  # "paper" = KL(P_cur‖P_base); "code" = KL(P_base‖P_cur)
    draft_tokens: int = 10  # tokens drafted per decision, tokens
    words_per_element: int = 1  # source words one source element counts as
    # AlignAtt's f: a token waits while its attention points into the last `frames` encoder frames
    # of the audio heard (20 ms each for Whisper).
    frames: int = 25

    def __post_init__(self) -> None:
        if self.name not in POLICY_NAMES:
            raise OptionsError(f"--policy must be one of {', '.join(POLICY_NAMES)}, got {self.name!r}")
        if self.kl_direction not in KL_DIRECTIONS:
            raise OptionsError(f"--kl-direction must be one of {', '.join(KL_DIRECTIONS)}, got {self.kl_direction!r}")
        for flag, value in (("--low-bound", self.low_bound), ("--draft-tokens", self.draft_tokens),
                            ("--k", self.k), ("--words-per-segment", self.words_per_element)):
            if value < 1:
                raise OptionsError(f"{flag} must be at least 1, got {value}")
        if self.frames < 0:
            raise OptionsError(f"--frames must be at least 0, got {self.frames}")
        if self.top_bound < 0 or (self.name == "lsg" and self.top_bound < 1):
            # U = 0 forces every word the moment L allows it: LSG would never decide anything.
            raise OptionsError(f"--top-bound must be at least 1 for LSG, got {self.top_bound} (U = 0 forces every "
                               f"word as soon as L allows it: that is --policy wait-k --k {self.low_bound})")
        if not 0.0 <= self.alpha <= 1.0:
            raise OptionsError(f"--alpha must be a probability in [0, 1], got {self.alpha}")
        if self.delta < 0.0:
            raise OptionsError(f"--delta must be non-negative, got {self.delta}")


# Speech's defaults differ from text's where audio differs: a 640 ms segment holds ~1.7 spoken
# words, so it counts as 2 (with 1 the lower bound alone lets the lag grow without limit on
# ordinary speech); δ = 7 is the paper's speech setting; α = 0.7 with the session's edge hold-back
# of 2 words (`speech.session.AsrSessionOptions.edge_words`): Whisper's confident guesses at
# half-heard words are held back there, and a lower α then costs little accuracy (α 0.6: −80 ms
# AL, +0.1 WER on librispeech-dev; BENCHMARKS.md, "Speech"). Text defaults are the dataclass's,
# refined per language pair by the model manifests.
SPEECH_POLICY_DEFAULTS = PolicyOptions(delta=7.0, alpha=0.7, words_per_element=2)


# The one table from command-line flags (click / argparse parameter names) to PolicyOptions fields,
# shared by every CLI, the SimulEval agents and `lsg-edge eval`.
POLICY_FLAGS = {
    "policy": "name",
    "k": "k",
    "delta": "delta",
    "alpha": "alpha",
    "low_bound": "low_bound",
    "top_bound": "top_bound",
    "kl_direction": "kl_direction",
    "draft_tokens": "draft_tokens",
    "words_per_segment": "words_per_element",
    "frames": "frames",
}


def policy_fields(**flags: Any) -> dict[str, Any]:
    """The PolicyOptions fields set by the policy flags among `flags` that were given (not None);
    other keys are ignored."""
    return {field: flags[flag] for flag, field in POLICY_FLAGS.items() if flags.get(flag) is not None}


def policy_from_flags(base: PolicyOptions, **flags: Any) -> PolicyOptions:
    """`base` with every policy flag that was given in its place."""
    return replace(base, **policy_fields(**flags))
