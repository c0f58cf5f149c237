"""A probe, not a product policy: would LSG's forced words be better chosen from an anticipated source?

    python benchmarks/forced_anticipation.py --data DATA --manifest qwen2.5-1.5b --first 56 --limit 8 \
        --output /tmp/forced-56.json

When LSG's upper bound U makes a word due that neither test passed, LSG writes the model's greedy
word from the source read so far; on the 1.5B about 40 % of those words are not in the model's own
offline translation. Here, at each such forced write, the model first continues the *source* by
three words of its own (`learned_write.Anticipation`) and drafts the due word from that anticipated
source, after the same committed target. Per forced write it records both words and whether the
offline translation holds each (bag of words, lower-cased, punctuation dropped). Only the forced
word is written: the run is LSG's own, so the counts compare the two choices at the same moments.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from lsg_edge import TranslationEngine
from lsg_edge.evaluation.text_run import read_parallel, translate_line
from lsg_edge.policy import strategies
from lsg_edge.policy.drafting import greedy_draft, word_limit
from lsg_edge.policy.words import word_starts
from lsg_edge.text.source import join_words, split_words

sys.path.insert(0, str(Path(__file__).parent))
from learned_write import Anticipation  # noqa: E402  (a sibling benchmark script)


def _normal(word: str) -> str:
    return re.sub(r"[^\w]", "", word.lower())


class ForcedWords:
    """Wraps LsgPolicy.decide: at each write the range constraint forced, the forced word and the
    word drafted from the anticipated source."""

    def __init__(self, engine: TranslationEngine, prompt, n_anticipated: int) -> None:
        self.records: list[dict] = []
        self._prompt = prompt
        self._vocab = engine.model.vocab
        self._anticipation = Anticipation(engine, prompt, n_anticipated)
        self._context = engine.model.new_context()
        self._last_run: strategies.LeadingRun | None = None
        original_decide, original_run = strategies.LsgPolicy.decide, strategies.LsgPolicy._leading_run
        probe = self

        def leading_run(policy, view, allowed, required):
            probe._last_run = original_run(policy, view, allowed, required)
            return probe._last_run

        def decide(policy, view):
            probe._last_run = None
            decision = original_decide(policy, view)
            run = probe._last_run
            if isinstance(decision, strategies.Write) and run is not None and decision.n_tokens > run.n_accepted:
                probe._record(view, decision.n_tokens, run.n_accepted)
            return decision

        strategies.LsgPolicy._leading_run = leading_run
        strategies.LsgPolicy.decide = decide

    def _starts_word(self, token: int) -> bool:
        return self._vocab.piece(token)[:1].isspace()

    def _record(self, view, n_written: int, n_accepted: int) -> None:
        tokens = view.last_draft.tokens[:n_written]
        starts = word_starts(view.pieces(tokens), view.at_target_start)
        first = max(i for i in range(min(n_accepted, len(tokens) - 1) + 1) if i == 0 or starts[i])
        end = next((i for i in range(first + 1, len(tokens)) if starts[i]), len(tokens))
        sentence = view._session._sentence  # a probe's licence: the words read and the committed target
        words = list(sentence.words)
        anticipated = self._anticipation.words(words)
        prefix = self._prompt.prefix_tokens(join_words(words + anticipated)) + list(sentence.target) + tokens[:first]
        one_word = word_limit(self._starts_word, 1)
        draft = greedy_draft(self._context, prefix, 8, self._prompt.is_stop, should_stop=lambda t, _row: one_word(t))
        drafted = draft.tokens[: next((i for i in range(1, len(draft.tokens)) if self._starts_word(draft.tokens[i])),
                                      len(draft.tokens))]
        self.records.append({
            "n_read": len(words),
            "forced": "".join(view.pieces(tokens[first:end])).strip(),
            "anticipated": b"".join(self._vocab.piece(t) for t in drafted).decode("utf-8", "replace").strip(),
            "future_source": anticipated,
        })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder")
    parser.add_argument("--manifest", default="qwen2.5-1.5b")
    parser.add_argument("--first", type=int, default=1, help="first sentence of wmt15-deen-dev, 1-based")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--bounds", default="1/4", help="L/U")
    parser.add_argument("--delta", type=float, default=5.0)
    parser.add_argument("--alpha", type=float, default=0.6)
    parser.add_argument("--anticipate", type=int, default=3, help="source words the model continues")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, required=True, help="JSON of every sentence's forced writes")
    args = parser.parse_args()
    folder = args.data / "wmt15-deen-dev"
    pairs = read_parallel(folder / "de.txt", folder / "en.txt")[args.first - 1 : args.first - 1 + args.limit]
    low, top = (int(x) for x in args.bounds.split("/"))
    rows, totals = [], Counter()
    with TranslationEngine.load(args.manifest, n_threads=args.threads, max_contexts=2) as engine:
        probe = ForcedWords(engine, engine.prompt("de", "en"), args.anticipate)
        base = engine.policy_options("de", "en")
        offline = engine.create_session("de", "en", policy=replace(base, name="offline"))
        lsg = engine.create_session("de", "en", policy=replace(base, name="lsg", low_bound=low, top_bound=top,
                                                              delta=args.delta, alpha=args.alpha))
        for n, pair in enumerate(pairs):
            words = split_words(pair.source)
            reference_text = " ".join(c.text for c in translate_line(offline, words)[0])
            probe.records.clear()
            output = " ".join(c.text for c in translate_line(lsg, words)[0])
            bag = Counter(_normal(w) for w in reference_text.split())
            for record in probe.records:
                record["forced_in_offline"] = bag[_normal(record["forced"])] > 0
                record["anticipated_in_offline"] = bag[_normal(record["anticipated"])] > 0
                differ = record["forced"] != record["anticipated"]
                totals.update({"forced writes": 1, "forced in offline": record["forced_in_offline"],
                               "anticipated in offline": record["anticipated_in_offline"], "differ": differ,
                               "differ: forced in offline": differ and record["forced_in_offline"],
                               "differ: anticipated in offline": differ and record["anticipated_in_offline"]})
            rows.append({"sentence": args.first + n, "offline": reference_text, "lsg": output,
                         "forced_writes": list(probe.records)})
            args.output.write_text(json.dumps(rows, ensure_ascii=False, indent=1))
            print(f"\r{n + 1}/{len(pairs)} sentences", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    counts = ", ".join(f"{name} {value}" for name, value in totals.items())
    print(f"sentences {args.first}–{args.first + len(pairs) - 1}: {counts}")


if __name__ == "__main__":
    main()
