"""Digests of what the runtime commits, to show that a refactor changed nothing.

Runs `lsg-edge eval` for a few fixed settings and prints, per setting, one sha256 over every
instance's committed text and the source position of each committed word (text: source words read;
speech: audio ms). Wall-clock latencies are left out: they differ run to run. Run it before and
after a change on the same machine and compare the lines; a differing digest names the setting,
and `--keep DIR` leaves the instances.log files to diff.

    python benchmarks/behaviour_digest.py --data DATA            # all settings
    python benchmarks/behaviour_digest.py --data DATA --only text
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TEXT_SETTINGS = {
    "text-lsg-default": ["--policy", "lsg"],
    "text-wait-3": ["--policy", "wait-k", "--k", "3"],
    "text-wait-5": ["--policy", "wait-k", "--k", "5"],
}
SPEECH_SETTINGS = {
    "speech-lsg-default": ["--policy", "lsg"],
    "speech-local-agreement": ["--policy", "local-agreement"],
}


def instances_digest(instances_log: Path) -> tuple[str, int]:
    """sha256 over (index, prediction, delays) of every instance, and the instance count."""
    rows = []
    for line in instances_log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        rows.append([record["index"], record["prediction"], record["delays"]])
    rows.sort(key=lambda row: row[0])
    blob = json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16], len(rows)


def run_setting(name: str, flags: list[str], inputs: list[str], out: Path, threads: int) -> str:
    # Through the interpreter rather than the console script, so PYTHONPATH can point the digests at
    # another checkout (e.g. a `git worktree` of the commit before a change).
    command = [sys.executable, "-c", "from lsg_edge.cli import main; main()", "eval", *inputs, *flags, "--output", str(out), "--threads", str(threads), "--no-progress"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    digest, count = instances_digest(out / "instances.log")
    return f"{name:<26} n={count:<4} {digest}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding wmt15-deen-dev and librispeech-dev")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["text", "speech"], default=None)
    parser.add_argument("--settings", default=None, help="comma-separated setting names (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep each setting's output folder here")
    args = parser.parse_args()

    wmt = args.data / "wmt15-deen-dev"
    text_inputs = ["--source", str(wmt / "de.txt"), "--reference", str(wmt / "en.txt"), "--limit", str(args.limit)]
    speech_inputs = ["--audio-manifest", str(args.data / "librispeech-dev" / "transcripts.tsv"),
                     "--limit", str(args.limit)]
    plan = []
    if args.only in (None, "text"):
        plan += [(name, flags, text_inputs) for name, flags in TEXT_SETTINGS.items()]
    if args.only in (None, "speech"):
        plan += [(name, flags, speech_inputs) for name, flags in SPEECH_SETTINGS.items()]

    if args.settings:
        wanted = set(args.settings.split(","))
        plan = [step for step in plan if step[0] in wanted]
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        for name, flags, inputs in plan:
            print(run_setting(name, flags, inputs, root / name, args.threads), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
