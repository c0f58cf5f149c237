"""Options of the read/write policies."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionsError
from .decision import KL_DIRECTIONS

__all__ = ["PolicyOptions", "POLICY_NAMES", "check_lsg_parameters"]

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
        check_lsg_parameters(self.delta, self.alpha, self.low_bound, self.top_bound, self.kl_direction, self.draft_tokens)
        if self.k < 1:
            raise OptionsError(f"--k must be at least 1, got {self.k}")


def check_lsg_parameters(
    delta: float, alpha: float, low_bound: int, top_bound: int, kl_direction: str, draft_tokens: int
) -> None:
    """Raise OptionsError, naming the flag, for LSG parameters outside their domain (shared by the
    text and speech policy options)."""
    if kl_direction not in KL_DIRECTIONS:
        raise OptionsError(f"--kl-direction must be one of {', '.join(KL_DIRECTIONS)}, got {kl_direction!r}")
    for flag, value in (("--low-bound", low_bound), ("--draft-tokens", draft_tokens)):
        if value < 1:
            raise OptionsError(f"{flag} must be at least 1, got {value}")
    if top_bound < 0:
        raise OptionsError(f"--top-bound must be at least 0, got {top_bound}")
    if not 0.0 <= alpha <= 1.0:
        raise OptionsError(f"--alpha must be a probability in [0, 1], got {alpha}")
    if delta < 0.0:
        raise OptionsError(f"--delta must be non-negative, got {delta}")
