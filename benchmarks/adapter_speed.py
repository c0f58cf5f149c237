"""CPU cost of the translation adapter: base vs merged copy vs llama.cpp runtime LoRA, one run.

    python benchmarks/adapter_speed.py --data $DATA --lora translate-lora-f16.gguf --limit 30 [--merged merged-q8_0.gguf]

Each variant translates the same first N sentences of wmt15-deen-dev offline with one thread, and
the figure is CPU time (time.process_time) per sentence, so other jobs on a shared machine slow
the wall clock but not the comparison. Tokens evaluated are printed beside it: a variant that
writes longer outputs costs more for that reason alone. The runtime LoRA GGUF comes from
`lsg-edge convert lora-to-gguf --base <base gguf> --adapter models/adapters/gemma3-270m-translate`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lsg_edge import TranslationEngine
from lsg_edge.manifest import load_manifest
from lsg_edge.policy.options import PolicyOptions
from lsg_edge.text.engine import resolve_gguf
from lsg_edge.text.source import split_words


def cpu_per_sentence(engine: TranslationEngine, sources: list[str], prompt_style: str) -> tuple[float, int]:
    session = engine.create_session("de", "en", policy=PolicyOptions(name="offline"), prompt_style=prompt_style)
    for source in sources[:2]:  # warm-up: first-call costs out of the figure
        for word in split_words(source):
            session.push(word)
        session.finish()
    before = engine.counters["tokens"]
    start = time.process_time()
    for source in sources:
        for word in split_words(source):
            session.push(word)
        session.finish()
    return (time.process_time() - start) / len(sources), engine.counters["tokens"] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--lora", type=Path, required=True, help="the adapter as a llama.cpp LoRA GGUF")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--merged", type=Path, action="append", default=[],
                        help="another merged GGUF to compare (e.g. a Q8_0 merge), repeatable")
    parser.add_argument("--skip-runtime", action="store_true", help="leave the runtime LoRA out")
    args = parser.parse_args()
    sources = (args.data / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8").splitlines()[: args.limit]

    tuned = load_manifest("gemma3-270m-translate")
    base_path = resolve_gguf(load_manifest("gemma3-270m"))
    variants = {
        "base (instruction prompt)": (load_manifest("gemma3-270m"), {}, "instruction"),
        "merged adapter": (tuned, {}, "instruction"),
        "runtime LoRA": (tuned.with_gguf(base_path), {"lora_path": args.lora}, "instruction"),
    }
    if args.skip_runtime:
        del variants["runtime LoRA"]
    for path in args.merged:
        variants[f"merged {path.name}"] = (tuned.with_gguf(path), {}, "instruction")
    print(f"# {len(sources)} sentences, offline, 1 thread, CPU seconds per sentence")
    print(f"{'variant':<28}{'cpu s/sent':>11}{'tokens':>9}{'×base':>7}")
    reference = None
    for name, (manifest, overrides, style) in variants.items():
        with TranslationEngine.load(manifest, n_threads=1, **overrides) as engine:
            per_sentence, tokens = cpu_per_sentence(engine, sources, style)
        if name == "base (instruction prompt)":
            reference = per_sentence
        ratio = f"{per_sentence / reference:.2f}" if reference else "–"
        print(f"{name:<28}{per_sentence:>11.3f}{tokens:>9}{ratio:>7}", flush=True)


if __name__ == "__main__":
    main()
