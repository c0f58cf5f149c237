"""Where a policy's llama_decode calls go: per context (full prefix, wait-1 baseline) and per kind.

A call either evaluates a batch (after a new source word the committed target behind it is
evaluated again, with the previous draft as a guess) or adds one drafted token. The first kind is
bounded below by the source words that reach a decision, the second by the target tokens no
earlier draft guessed; the baseline's calls are what an exact implementation could still merge.
Counts are exact and do not depend on the machine's load.

    python benchmarks/call_split.py --data DATA --limit 20 [--manifest NAME] [--policy lsg|wait-k|offline]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from lsg_edge import TranslationEngine
from lsg_edge.backends.llama import LlamaContext
from lsg_edge.text.source import split_words


def count_calls(calls: Counter) -> None:
    """Wrap the llama.cpp context's suffix evaluation so that every call is counted in `calls`
    under (context role, kind); a context's role is set by the caller as `_role`."""
    inner = LlamaContext._evaluate

    def counted(self, tokens, want):
        n_new = len(tokens) - len(self._tokens)  # what this call evaluates
        calls[(getattr(self, "_role", "?"), "one drafted token" if n_new == 1 else "batch")] += 1
        return inner(self, tokens, want)

    LlamaContext._evaluate = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--manifest", default=None)
    parser.add_argument("--policy", default="lsg", choices=["lsg", "wait-k", "offline"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    calls: Counter = Counter()
    count_calls(calls)
    sources = (args.data / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8").splitlines()[: args.limit]
    overrides = {"n_threads": args.threads, **({"manifest": args.manifest} if args.manifest else {})}
    n_words = 0
    with TranslationEngine.load(**overrides) as engine:
        policy = engine.policy_options("de", "en", name=args.policy)
        for line in sources:
            # A fresh session per sentence: every sentence starts from the same empty contexts.
            with engine.create_session("de", "en", policy=policy) as session:
                session._full._role, session._baseline._role = "full prefix", "baseline"
                words = split_words(line)
                n_words += len(words)
                for word in words:
                    session.push(word)
                session.finish()
    n = len(sources)
    print(f"{n} sentences, {n_words / n:.1f} source words a sentence; llama_decode calls a sentence:")
    print("| context | kind | calls |")
    print("|---|---|---|")
    for (role, kind), count in sorted(calls.items()):
        print(f"| {role} | {kind} | {count / n:.2f} |")
    print(f"| all | | {sum(calls.values()) / n:.2f} |")


if __name__ == "__main__":
    main()
