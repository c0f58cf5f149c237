"""Parameter sweeps: a grid of policy settings, one score row per setting.

A grid is written as one spec per policy, `POLICY[:KEY=V1,V2,...[;KEY=...]]`, the product over
keys. Keys are PolicyOptions fields or the short names k, L, U, delta, alpha; `L/U=1/4,3/4` zips
two keys, as the paper's [L,U] settings are pairs, not a product. Examples::

    wait-k:k=1,3,5,7
    lsg:L/U=1/4,3/4,5/6,7/6;delta=9.0;alpha=0.6
    offline
    local-agreement

Settings run *sentence-major*: every setting translates the next chunk of sentences before any
goes further, so a sweep stopped early still scores every setting on the same sentences.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import OptionsError
from ..policy.options import POLICY_NAMES, PolicyOptions
from .instance import Instance
from .scoring import LatencyOptions, latency_scores, quality_scores

__all__ = ["Setting", "parse_sweep", "SettingResult", "score_row", "run_sweep"]

_ALIASES = {"L": "low_bound", "U": "top_bound", "δ": "delta", "α": "alpha"}
_SHORT = {v: k for k, v in _ALIASES.items() if k.isascii()}
_FIELD_TYPES = {name: f.type for name, f in PolicyOptions.__dataclass_fields__.items()}


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: a policy name and the options it overrides."""

    name: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        params = " ".join(f"{_SHORT.get(k, k)}={v:g}" if isinstance(v, float) else f"{_SHORT.get(k, k)}={v}"
                          for k, v in self.overrides)
        return f"{self.name} {params}".strip()

    @classmethod
    def from_options(cls, options: PolicyOptions) -> "Setting":
        """The setting of one policy as configured, labelled by the parameters it uses."""
        used = {"wait-k": ("k",), "lsg": ("low_bound", "top_bound", "delta", "alpha")}.get(options.name, ())
        return cls(options.name, tuple((key, getattr(options, key)) for key in used))

    def policy_options(self, base: PolicyOptions) -> PolicyOptions:
        from dataclasses import replace

        return replace(base, name=self.name, **dict(self.overrides))


def _convert(key: str, text: str) -> Any:
    field_type = _FIELD_TYPES[key]
    try:
        if field_type in ("int", int):
            return int(text)
        if field_type in ("float", float):
            return float(text)
        return text
    except ValueError as e:
        raise OptionsError(f"--sweep: {key}={text!r} is not a {field_type}") from e


def _key(name: str, spec: str) -> str:
    key = _ALIASES.get(name.strip(), name.strip().replace("-", "_"))
    if key not in _FIELD_TYPES or key == "name":
        raise OptionsError(f"--sweep {spec!r}: unknown key {name!r}")
    return key


def parse_sweep(spec: str) -> list[Setting]:
    """The settings of one grid spec (see module docstring)."""
    name, _, grid = spec.strip().partition(":")
    name = name.strip()
    if name not in POLICY_NAMES:
        raise OptionsError(f"--sweep {spec!r}: policy must be one of {', '.join(POLICY_NAMES)}")
    axes: list[list[tuple[tuple[str, Any], ...]]] = []
    for part in filter(None, (p.strip() for p in grid.split(";"))):
        names, sep, values = part.partition("=")
        if not sep or not values.strip():
            raise OptionsError(f"--sweep {spec!r}: expected KEY=V1,V2,... in {part!r}")
        keys = [_key(n, spec) for n in names.split("/")]
        axis = []
        for value in values.split(","):
            parts = value.strip().split("/")
            if len(parts) != len(keys):
                raise OptionsError(f"--sweep {spec!r}: {value!r} does not give {names}")
            axis.append(tuple((k, _convert(k, v)) for k, v in zip(keys, parts)))
        axes.append(axis)
    settings = [Setting(name, tuple(itertools.chain(*combo))) for combo in itertools.product(*axes)]
    return settings or [Setting(name)]


@dataclass
class SettingResult:
    """A setting's accumulated output: instances and cost so far."""

    setting: Setting
    policy: PolicyOptions
    instances: list[Instance] = field(default_factory=list)
    wall_s: float = 0.0
    llama_tokens: int = 0


def score_row(
    result: SettingResult,
    offline: SettingResult | None = None,
    latency: LatencyOptions = LatencyOptions(),
) -> dict[str, Any]:
    """One table row: quality, latency (plain and computation-aware) and cost of a setting.

    `compute_ratio` is wall time / the offline run's wall time on the same sentences, and
    `token_ratio` the same for llama.cpp tokens evaluated (load-independent).
    """
    n = len(result.instances)
    row: dict[str, Any] = {"policy": result.setting.name, "setting": result.setting.label,
                           "params": dict(result.setting.overrides), "n_sentences": n}
    row.update(quality_scores(result.instances))
    row.update(latency_scores(result.instances, latency))
    row["s_per_sentence"] = result.wall_s / max(n, 1)
    row["llama_tokens_per_sentence"] = result.llama_tokens / max(n, 1)
    if offline is not None and offline.wall_s > 0 and len(offline.instances) == n:
        row["compute_ratio"] = result.wall_s / offline.wall_s
        row["token_ratio"] = result.llama_tokens / max(offline.llama_tokens, 1)
    return row


def run_sweep(
    run_chunk: Callable[[PolicyOptions, int, int], tuple[list[Instance], float, int]],
    settings: Sequence[Setting],
    base: PolicyOptions,
    n_sentences: int,
    chunk_size: int,
    on_chunk: Callable[[list[SettingResult]], None] | None = None,
) -> list[SettingResult]:
    """Run every setting over sentences [0, n_sentences), `chunk_size` at a time, sentence-major.

    `run_chunk(policy, start, stop)` translates sentences [start, stop) and returns their instances,
    the wall time (s) and the llama tokens evaluated. `on_chunk(results)` is called after every
    chunk with all settings scored on the same sentences (write partial results there).
    """
    if chunk_size < 1:
        raise OptionsError(f"chunk size must be at least 1, got {chunk_size}")
    results = [SettingResult(s, s.policy_options(base)) for s in settings]
    for start in range(0, n_sentences, chunk_size):
        stop = min(start + chunk_size, n_sentences)
        for result in results:
            instances, wall_s, tokens = run_chunk(result.policy, start, stop)
            result.instances += instances
            result.wall_s += wall_s
            result.llama_tokens += tokens
        if on_chunk is not None:
            on_chunk(results)
    return results
