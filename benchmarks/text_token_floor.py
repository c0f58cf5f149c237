"""How many of the tokens a policy evaluates any exact evaluator would have to evaluate too.

For each request a context receives (a token sequence and the positions whose logits are wanted),
the tokens up to the last wanted position that do not extend what the context held after its
previous request must go through the model: a causal LM cannot reuse KV computed under a different
prefix. Summed per sentence and compared with what the KV-reusing backend evaluated. With a
source-then-target prompt each new source word forces the committed target through again, which
is why wait-k and LSG cost a multiple of offline translation (BENCHMARKS.md).

    python benchmarks/text_token_floor.py --data DATA --limit 30
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lsg_edge import PolicyOptions, TranslationEngine
from lsg_edge.backends import llama
from lsg_edge.backends.base import common_prefix_length
from lsg_edge.text.source import split_words

SETTINGS = {
    "offline": {"name": "offline"},
    "wait-5": {"name": "wait-k", "k": 5},
    "lsg": {"name": "lsg", "delta": 9.0, "alpha": 0.6, "low_bound": 1, "top_bound": 4},
}


class FloorCounter:
    """Wraps LlamaContext.logits_at and counts, per context, the tokens exactness forces."""

    def __init__(self) -> None:
        self.held: dict[int, list[int]] = {}
        self.forced: dict[int, int] = {}
        self._logits_at = llama.LlamaContext.logits_at

    def install(self) -> None:
        counter = self

        def logits_at(context, tokens, positions):
            tokens, positions = list(tokens), list(positions)
            if positions:
                end = max(positions) + 1
                held = counter.held.get(id(context), [])
                shared = common_prefix_length(held, tokens[:end])
                counter.forced[id(context)] = counter.forced.get(id(context), 0) + end - shared
                if shared < end:  # the backend evaluates the whole request, so it then holds all of it
                    counter.held[id(context)] = tokens
            return counter._logits_at(context, tokens, positions)

        llama.LlamaContext.logits_at = logits_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder (holds wmt15-deen-dev)")
    parser.add_argument("--limit", type=int, default=30, help="first N sentences of newstest2015")
    args = parser.parse_args()
    sources = (args.data / "wmt15-deen-dev" / "de.txt").read_text(encoding="utf-8").splitlines()[: args.limit]
    counter = FloorCounter()
    counter.install()
    print(f"{args.limit} sentences, default model; tokens per sentence (full context + wait-1 baseline)")
    print(f"{'setting':<10} {'forced':>14} {'evaluated':>14}")
    with TranslationEngine.load() as engine:
        for name, policy in SETTINGS.items():
            counter.held.clear()
            counter.forced.clear()
            before = engine.counters
            session = engine.create_session("de", "en", policy=PolicyOptions(**policy))
            for source in sources:
                for word in split_words(source):
                    session.push(word)
                session.finish()
            after = engine.counters
            forced = sum(counter.forced.values()) / args.limit
            evaluated = sum(after[k] - before[k] for k in after if k.endswith("tokens")) / args.limit
            print(f"{name:<10} {forced:>14.1f} {evaluated:>14.1f}")


if __name__ == "__main__":
    main()
