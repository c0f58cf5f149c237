"""Options of the read/write policies."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionsError
from .decision import KL_DIRECTIONS

__all__ = ["PolicyOptions", "POLICY_NAMES"]

POLICY_NAMES = ("lsg", "wait-k", "offline", "local-agreement")


@dataclass(frozen=True)
class PolicyOptions:
    """Which policy decides READ/WRITE, and its parameters (units in comments)."""

    name: str = "lsg"  # one of POLICY_NAMES
    k: int = 3  # wait-k lag, source words
    delta: float = 9.0  # LSG KL threshold δ, nats
    alpha: float = 0.6  # LSG confidence threshold α on max P_cur, probability
    low_bound: int = 1  # LSG range constraint L, source words
    top_bound: int = 4  # LSG range constraint U, source words
    kl_direction: str = "paper"  # "paper" = KL(P_cur‖P_base); "code" = KL(P_base‖P_cur)
    draft_tokens: int = 10  # tokens drafted per decision, tokens

    def __post_init__(self) -> None:
        if self.name not in POLICY_NAMES:
            raise OptionsError(f"--policy must be one of {', '.join(POLICY_NAMES)}, got {self.name!r}")
        if self.kl_direction not in KL_DIRECTIONS:
            raise OptionsError(
                f"--kl-direction must be one of {', '.join(KL_DIRECTIONS)}, got {self.kl_direction!r}"
            )
        for flag, value in (("--k", self.k), ("--low-bound", self.low_bound), ("--draft-tokens", self.draft_tokens)):
            if value < 1:
                raise OptionsError(f"{flag} must be at least 1, got {value}")
        if self.top_bound < 0:
            raise OptionsError(f"--top-bound must be at least 0, got {self.top_bound}")
        if not 0.0 <= self.alpha <= 1.0:
            raise OptionsError(f"--alpha must be a probability in [0, 1], got {self.alpha}")
        if self.delta < 0.0:
            raise OptionsError(f"--delta must be non-negative, got {self.delta}")
