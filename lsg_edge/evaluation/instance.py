"""One evaluated sentence (or utterance), independent of modality, in SimulEval's log format.

An `Instance` is what a run leaves behind for scoring: the output words, the reference, and for
each output word when it was written. Text and speech differ only in the unit of `delays` and
`source_length` (`unit`: source words, or milliseconds of audio), so one scorer serves both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..errors import InputError
from ..events import Commit

__all__ = ["Instance", "LATENCY_UNITS", "build_instance", "read_instances", "write_instances"]

# "word": delays and source_length count source words (text input);
# "ms": they are milliseconds of source audio read (speech input).
LATENCY_UNITS = ("word", "ms")
_RECORD_EXCERPT_CHARS = 80  # of a bad record, quoted in its error message


@dataclass(frozen=True)
class Instance:
    """One source/reference pair and the system's timed output.

    `delays[t]`: source read (unit `unit`) when output word t was committed, the non
    computation-aware delay. `elapsed[t]`: computation-aware time of the same word in ms — for
    speech, audio read plus computation time so far (SimulEval's convention); for text, the wall
    time spent since the sentence's first word was pushed (SimulEval leaves it 0 for text input).
    """

    index: int  # 0-based position in the evaluated set
    prediction: str  # output words joined by single spaces
    reference: str  # reference text, line end stripped
    source_length: float  # source words (unit "word") or audio ms (unit "ms")
    delays: tuple[float, ...]  # per output word, unit `unit`
    elapsed: tuple[float, ...]  # per output word, ms
    unit: str = "word"  # one of LATENCY_UNITS
    source: str = ""  # the source text, or the audio path
    extra: dict = field(default_factory=dict, compare=False)  # run details kept in the log

    def __post_init__(self) -> None:
        if self.unit not in LATENCY_UNITS:
            raise ValueError(f"unit must be one of {LATENCY_UNITS}, got {self.unit!r}")
        n_words = len(self.prediction.split())
        if len(self.delays) != n_words or len(self.elapsed) != n_words:
            raise ValueError(
                f"instance {self.index}: {n_words} output words but {len(self.delays)} delays "
                f"and {len(self.elapsed)} elapsed times"
            )

    @property
    def prediction_length(self) -> int:
        """Output words."""
        return len(self.delays)

    def to_json(self) -> dict:
        """SimulEval's `instances.log` record (`Instance.summarize`), plus our unit and extras."""
        record = {
            "index": self.index,
            "prediction": self.prediction,
            "delays": list(self.delays),
            "elapsed": [round(e, 3) for e in self.elapsed],
            "prediction_length": self.prediction_length,
            "reference": self.reference,
            "source": self.source,
            "source_length": self.source_length,
            "latency_unit": self.unit,
        }
        record.update(self.extra)
        return record

    @classmethod
    def from_json(cls, record: dict) -> "Instance":
        known = {"index", "prediction", "delays", "elapsed", "prediction_length", "reference",
                 "source", "source_length", "latency_unit"}
        try:
            return cls(
                index=int(record["index"]),
                prediction=record["prediction"],
                reference=record.get("reference", ""),
                source_length=record["source_length"],
                delays=tuple(record["delays"]),
                elapsed=tuple(record.get("elapsed") or [0.0] * len(record["delays"])),
                unit=record.get("latency_unit", "word"),
                source=record.get("source", ""),
                extra={k: v for k, v in record.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"bad instance record {str(record)[:_RECORD_EXCERPT_CHARS]!r}: {e}") from e


def write_instances(path, instances: Iterable[Instance]) -> None:
    """Write one JSON line per instance (SimulEval's `instances.log`)."""
    with open(path, "w", encoding="utf-8") as f:
        for instance in instances:
            f.write(json.dumps(instance.to_json(), ensure_ascii=False) + "\n")


def read_instances(path) -> list[Instance]:
    """Read an `instances.log` written by `write_instances` (or by SimulEval, unit "word")."""
    instances = []
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise InputError(f"{path}:{line_no}: not a JSON line: {e}") from e
                    instances.append(Instance.from_json(record))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e
    return instances


def build_instance(
    index: int,
    commits: Sequence[Commit],
    reads: Sequence[float],
    elapsed_ms: Sequence[float],
    reference: str,
    source_length: float,
    unit: str,
    source: str = "",
) -> Instance:
    """The instance of one source line or utterance from the commits it produced, as SimulEval
    logs it: each commit's text is split on whitespace and every piece is an output word written
    at `reads[k]` (delay, unit `unit`) and `elapsed_ms[k]` (computation-aware time) of its commit
    k — SimulEval's rule, so a piece that continues the previous commit's last word (a comma
    decided one source element later) is a word of its own."""
    words: list[str] = []
    delays: list[float] = []
    elapsed: list[float] = []
    for commit, read, spent in zip(commits, reads, elapsed_ms, strict=True):
        pieces = commit.text.split()
        words += pieces
        delays += [float(read)] * len(pieces)
        elapsed += [float(spent)] * len(pieces)
    return Instance(index=index, prediction=" ".join(words), reference=reference, source_length=float(source_length),
                    delays=tuple(delays), elapsed=tuple(elapsed), unit=unit, source=source)
