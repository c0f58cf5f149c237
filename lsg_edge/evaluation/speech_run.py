"""Speech input for the same harness: an audio manifest in, `Instance`s in ms out.

Delays are milliseconds of audio read when each word was committed; `elapsed` is SimulEval's
computation-aware time, audio read plus the wall time spent since the utterance's first sample was
pushed (audio is pushed as fast as the session takes it). Scoring is `scoring.py`'s, unchanged:
WER via `quality_scores(instances, ("WER",))`, latency via `latency_scores`.
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import InputError
from ..events import Commit
from ..folders import output_folder
from .instance import Instance, build_instance

__all__ = ["AudioItem", "read_audio_manifest", "instance_from_speech_commits", "run_speech", "evaluate_speech"]

_MANIFEST_COLUMNS = ("case_id", "audio_path", "duration_s", "transcript")


@dataclass(frozen=True)
class AudioItem:
    """One utterance of an audio manifest."""

    case_id: str
    audio_path: Path  # absolute
    duration_s: float  # as listed in the manifest, s
    transcript: str  # the reference


def read_audio_manifest(path: Path, limit: int | None = None) -> list[AudioItem]:
    """Rows of a TSV with a header holding case_id, audio_path (relative to the TSV), duration_s
    and transcript (the layout of a LibriSpeech-style transcripts.tsv); InputError if unusable."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except OSError as e:
        raise InputError(f"--audio-manifest {path}: cannot read: {e.strerror}") from e
    if not rows:
        raise InputError(f"--audio-manifest {path} has no rows")
    missing = [c for c in _MANIFEST_COLUMNS if c not in rows[0]]
    if missing:
        raise InputError(f"--audio-manifest {path} lacks column(s) {', '.join(missing)}")
    items = []
    for line_no, row in enumerate(rows[:limit] if limit else rows, 2):
        try:
            duration_s = float(row["duration_s"])
        except ValueError as e:
            raise InputError(f"{path}:{line_no}: duration_s {row['duration_s']!r} is not a number") from e
        audio_path = (path.parent / row["audio_path"]).resolve()
        # Every file is checked before a model loads: a missing row 40 must not fail after row 39.
        if not audio_path.is_file():
            raise InputError(f"{path}:{line_no}: audio file not found: {audio_path}")
        items.append(AudioItem(row["case_id"], audio_path, duration_s, row["transcript"].strip()))
    return items


def instance_from_speech_commits(
    index: int,
    commits: Iterable[Commit],
    duration_ms: float,
    reference: str,
    started_at_s: float,
    source: str = "",
    n_final: int = 0,
) -> Instance:
    """The ms instance of one utterance (see `instance.build_instance`); `started_at_s` is
    time.monotonic() at its first pushed sample.

    The last `n_final` commits are those `finish` returned, when all the audio had been read: they
    are logged at `duration_ms`, as SimulEval logs what is written after the last segment, not at
    their `source_read`, which counts only the whole VAD frames heard. The computation-aware time
    is the audio read plus the computation time so far (SimulEval's convention).
    """
    commits = list(commits)
    reads = [float(duration_ms) if k >= len(commits) - n_final else float(c.source_read)
             for k, c in enumerate(commits)]
    elapsed = [read + (c.wall_time_s - started_at_s) * 1000.0 for read, c in zip(reads, commits)]
    return build_instance(index, commits, reads, elapsed, reference, duration_ms, "ms", source)


def run_speech(new_session: Any, items: Sequence[AudioItem], progress: bool = True) -> tuple[list[Instance], float]:
    """Stream each item through a fresh session from `new_session()` (an `AsrSession` factory; each
    is closed after its item).

    Returns the instances and the total wall time (s). The source length is the decoded audio's
    length (SimulEval: samples / rate), not the manifest's rounded duration.
    """
    from tqdm import tqdm

    from ..speech.audio_io import file_blocks, read_audio
    from ..speech.features import SAMPLE_RATE_HZ

    instances, wall_s = [], 0.0
    for index, item in enumerate(tqdm(items, desc="speech", unit="utt", file=sys.stderr, disable=not progress)):
        audio = read_audio(item.audio_path)
        with new_session() as session:
            started_at, started = time.monotonic(), time.perf_counter()
            commits = []
            for block in file_blocks(audio):
                commits += session.push(block)
            final = session.finish()
            commits += final
            wall_s += time.perf_counter() - started
        instances.append(instance_from_speech_commits(
            index, commits, 1000.0 * audio.size / SAMPLE_RATE_HZ, item.transcript, started_at, str(item.audio_path),
            n_final=len(final)))
    return instances, wall_s


def evaluate_speech(
    audio_manifest: Path, output: Path, speech_model: str, limit: int | None, progress: bool, beam: int = 1,
    **flags: Any
) -> list[dict[str, Any]]:
    """`lsg-edge eval --audio-manifest`: stream every utterance with the speech policy named by the
    shared flags (the policy flags of `policy.options.POLICY_FLAGS`, --threads, --device; others keep
    the speech defaults; `beam`: beams of the end-of-window decode) and write instances.log and
    scores.json."""
    from dataclasses import asdict

    from ..policy.options import SPEECH_POLICY_DEFAULTS, policy_from_flags
    from ..speech.engine import SpeechEngine
    from ..speech.onnx_runtime import RuntimeOptions
    from ..speech.session import AsrSessionOptions
    from .instance import write_instances
    from .report import format_table, write_scores
    from .scoring import latency_scores, quality_scores

    items = read_audio_manifest(audio_manifest, limit)
    policy = policy_from_flags(SPEECH_POLICY_DEFAULTS, **flags)
    # English recognition (the manifests here are LibriSpeech); --src/--tgt are the text pair's.
    options = AsrSessionOptions(policy=policy, beam_size=beam)
    # --threads is onnxruntime's here (default: the cores, up to 4), as `lsg-edge asr --threads`.
    runtime = RuntimeOptions(n_threads=flags.get("threads") or 0, device=flags.get("device") or "auto")
    engine = SpeechEngine.load(speech_model, runtime)
    cpu_started = time.process_time()
    instances, wall_s = run_speech(lambda: engine.create_session(options), items, progress)
    cpu_s = time.process_time() - cpu_started  # this process's CPU time: unlike wall time, not inflated by other load
    setting = policy.name + (f" f={policy.frames}" if policy.name == "alignatt" else "") + (
        f" beam={beam}" if beam > 1 else "")
    row: dict[str, Any] = {"policy": policy.name, "setting": setting, "n_sentences": len(instances)}
    row.update(quality_scores(instances, ("WER",)))
    row.update(latency_scores(instances))
    row["s_per_sentence"] = wall_s / max(len(instances), 1)
    audio_s = sum(i.source_length for i in instances) / 1000.0
    row["real_time_factor"] = wall_s / audio_s if audio_s else float("nan")
    row["cpu_real_time_factor"] = cpu_s / audio_s if audio_s else float("nan")
    output = output_folder(output)
    write_instances(output / "instances.log", instances)
    write_scores(output / "scores.json", [row], {"model": speech_model, "policy": asdict(policy), "beam": beam,
                                                 "units": {"AL/LAAL/DAL": "ms of audio", "*_CA": "ms"}})
    (output / "scores.txt").write_text(format_table([row]) + "\n", encoding="utf-8")
    return [row]
