"""Run a text translation policy over a parallel corpus and record SimulEval instances.

Source words are pushed as fast as the session takes them (SimulEval's non real-time simulation),
so each commit's `elapsed_ms` is the computation spent on the sentence so far.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError
from ..policy.options import PolicyOptions
from ..events import Commit
from ..text.source import join_words, split_words
from .instance import Instance, build_instance

__all__ = ["Pair", "TextRun", "read_parallel", "instance_from_commits", "translate_line", "run_text"]


@dataclass(frozen=True)
class Pair:
    """One source sentence and its reference translation."""

    source: str
    reference: str


@dataclass(frozen=True)
class TextRun:
    """What one policy setting produced on a corpus, and what it cost."""

    policy: PolicyOptions
    instances: tuple[Instance, ...]
    wall_s: float  # wall time over all sentences, s
    llama_tokens: int  # tokens evaluated by llama_decode, both contexts
    llama_decode_calls: int  # llama_decode calls, both contexts

    @property
    def seconds_per_sentence(self) -> float:
        return self.wall_s / max(len(self.instances), 1)


def _read_lines(path: Path, flag: str) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{flag} {path}: cannot read: {e.strerror}") from e
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first line
    except UnicodeDecodeError as e:
        line = e.object.count(b"\n", 0, e.start) + 1  # e.object: the bytes after any byte-order mark
        raise InputError(f"{flag} {path}: line {line} is not UTF-8 (byte 0x{e.object[e.start]:02x})") from e
    # Only line breaks split (not str.splitlines's form feeds or U+2028): the files stay aligned.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def read_parallel(source_path: Path, reference_path: Path, limit: int | None = None) -> list[Pair]:
    """Aligned (source, reference) lines, the first `limit` of them; InputError if the files are
    empty, of different lengths, or have an empty source line."""
    sources = _read_lines(Path(source_path), "--source")
    references = _read_lines(Path(reference_path), "--reference")
    if not sources:
        raise InputError(f"--source {source_path} is empty")
    if len(sources) != len(references):
        raise InputError(
            f"--source {source_path} has {len(sources)} lines but --reference {reference_path} "
            f"has {len(references)}: the files must be aligned, one sentence per line"
        )
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit must be at least 1, got {limit}")
        sources, references = sources[:limit], references[:limit]
    for line_no, source in enumerate(sources, 1):
        if not split_words(source):
            raise InputError(f"--source {source_path}:{line_no} is empty: every line must hold a sentence")
    return [Pair(s.strip(), r.strip()) for s, r in zip(sources, references)]


def instance_from_commits(
    index: int,
    source_words: Sequence[str],
    reference: str,
    commits: Iterable[Commit],
    reads: Sequence[int],
) -> Instance:
    """The instance of one source line (see `instance.build_instance`).

    `reads[k]`: source words pushed when commit k was returned (the line's words up to the one
    whose push returned it; all of them for the commits of `finish`), so that `simuleval` driving
    the same session (`lsg_edge.simuleval_agents`) logs these very instances; a cut line (bounded
    windows) needs no offsets. The elapsed time is the wall time since the line's first word: a
    later part of a cut line adds the earlier parts' times.
    """
    commits = list(commits)
    elapsed: list[float] = []
    offset_ms = 0.0
    for c in commits:
        elapsed.append(offset_ms + c.elapsed_ms)
        if c.sentence_end:
            offset_ms += c.elapsed_ms
    return build_instance(index, commits, reads, elapsed, reference, len(source_words), "word",
                          join_words(list(source_words)))


def run_text(
    engine,
    pairs: Sequence[Pair],
    policy: PolicyOptions,
    src: str,
    tgt: str,
    prompt_style: str | None = None,
    progress: bool = True,
    label: str | None = None,
    first_index: int = 0,
) -> TextRun:
    """Translate every pair's source simultaneously with `policy` on `engine` (a TranslationEngine).

    Instances are numbered from `first_index` (a chunk of a larger corpus keeps its positions).
    """
    with engine.create_session(src, tgt, policy=policy, prompt_style=prompt_style) as session:
        instances, wall_s = _translate_pairs(session, pairs, policy, progress, label, first_index)
        counters = session.counters
    return TextRun(
        policy=policy,
        instances=tuple(instances),
        wall_s=wall_s,
        llama_tokens=counters["full_tokens"] + counters["baseline_tokens"],
        llama_decode_calls=counters["full_decode_calls"] + counters["baseline_decode_calls"],
    )


def translate_line(session, words: Sequence[str]) -> tuple[list[Commit], list[int]]:
    """Push one line's `words` through `session` (a TranslationSession) and finish the sentence:
    its commits, and per commit the source words read when it came (`instance_from_commits`)."""
    commits: list[Commit] = []
    reads: list[int] = []
    for n_read, word in enumerate(words, 1):
        pushed = session.push(word)
        commits += pushed
        reads += [n_read] * len(pushed)
    finished = session.finish()
    commits += finished
    reads += [len(words)] * len(finished)
    return commits, reads


def _translate_pairs(session, pairs, policy: PolicyOptions, progress: bool, label: str | None,
                     first_index: int) -> tuple[list, float]:
    from tqdm import tqdm

    instances = []
    wall_s = 0.0
    bar = tqdm(pairs, desc=label or policy.name, unit="sent", file=sys.stderr, disable=not progress, leave=False)
    for index, pair in enumerate(bar):
        words = split_words(pair.source)
        started = time.perf_counter()
        commits, reads = translate_line(session, words)
        wall_s += time.perf_counter() - started
        instances.append(instance_from_commits(first_index + index, words, pair.reference, commits, reads))
    bar.close()
    return instances, wall_s
