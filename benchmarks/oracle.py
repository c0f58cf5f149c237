"""The oracle policy: how early a model could write its own offline translation.

    python benchmarks/oracle.py --data DATA --manifest gemma3-270m-translate --limit 100 \
        --bounds 1/4 3/4 1/0 --output /tmp/oracle-270m

Not a product policy — it reads the future. Per sentence, the target is the model's offline greedy
translation (the whole source read). After each source word j the oracle writes the target's next
words as long as the model, given the first j source words and the words already written, would
produce each of them greedily (every token is the argmax, and the token after it ends the word or
the sentence), at most as many as the range constraint [L, U] allows. Where U forces a word that the
model would not yet produce, the oracle writes what the model does produce from the j words (as any
policy would have to), and the target becomes the offline greedy continuation of what is written.
At the end of the source the rest of the target is written. `U = 0` means no upper bound: the
output is then exactly the offline translation, at the least lag this model allows it.

Its BLEU–AL points bound what any read/write policy can reach with this model and this decoding.
Each setting writes a SimulEval `instances.log` under --output and one table row (BLEU, AL, LAAL)
on the sentences given; the offline row is the target itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsg_edge import TranslationEngine
from lsg_edge.evaluation.instance import Instance, write_instances
from lsg_edge.evaluation.scoring import latency_scores, quality_scores
from lsg_edge.evaluation.text_run import read_parallel
from lsg_edge.policy.bounds import words_allowed, words_required
from lsg_edge.policy.drafting import greedy_draft, word_limit
from lsg_edge.policy.words import word_starts
from lsg_edge.text.source import join_words

# A sentence's target is capped as the session caps it: tokens per source token, plus a margin.
_TARGET_PER_SOURCE_TOKEN = 2.0
_TARGET_MARGIN_TOKENS = 8


@dataclass(frozen=True)
class Bounds:
    """The range constraint: word i not before L+i-1 source words, surely by L+i-1+U (U = 0: never forced)."""

    low: int
    top: int

    @property
    def label(self) -> str:
        return f"oracle [{self.low},{self.top or '∞'}]"


class Oracle:
    """Offline targets and oracle schedules for one model, prompt and language pair."""

    def __init__(self, engine: TranslationEngine, src: str, tgt: str) -> None:
        self.vocab = engine.model.vocab
        self.prompt = engine.prompt(src, tgt)
        # Its own context: the oracle decodes teacher-forced prefixes outside any session.
        self.context = engine.model.new_context()
        self.n_decisions = 0

    def _prefix(self, words: list[str]) -> list[int]:
        return self.prompt.prefix_tokens(join_words(words))

    def _pieces(self, tokens: list[int]) -> list[str]:
        return [self.vocab.piece(t).decode("utf-8", "replace") for t in tokens]

    def _starts_word(self, token: int) -> bool:
        return self.vocab.piece(token)[:1].isspace()

    def _cap(self, words: list[str]) -> int:
        n_source = len(self._prefix(words)) - len(self._prefix([]))
        return int(_TARGET_PER_SOURCE_TOKEN * max(n_source, 1)) + _TARGET_MARGIN_TOKENS

    def offline(self, words: list[str], committed: list[int] = ()) -> list[int]:
        """The greedy continuation of `committed` with the whole source read (stop token excluded)."""
        prefix = self._prefix(words) + list(committed)
        budget = self._cap(words) - len(committed)
        if budget <= 0:
            return list(committed)
        return list(committed) + greedy_draft(self.context, prefix, budget, self.prompt.is_stop).tokens

    def _matching_words(self, words_read: list[str], committed: list[int], rest: list[int], at_start: bool,
                        max_words: int) -> int:
        """How many leading words of `rest` the model would write greedily after `words_read` and
        `committed`: every token the argmax and the next one a word start or the stop token."""
        starts = word_starts(self._pieces(rest), at_start)
        bounds = list(np.flatnonzero(starts)) + [len(rest)]
        if not rest or bounds[0] != 0:
            return 0
        n_words = min(max_words, len(bounds) - 1)
        end = bounds[n_words]
        window = rest[: end + 1]  # the words, and the first token after them
        prefix = self._prefix(words_read) + committed
        first = len(prefix) - 1
        logits = self.context.logits_at(prefix + window, range(first, first + end + 1))
        guesses = logits.argmax(axis=1)  # guesses[k] is the model's choice at rest[k]
        for w in range(n_words):
            lo, hi = bounds[w], bounds[w + 1]
            if not np.array_equal(guesses[lo:hi], rest[lo:hi]):
                return w
            following = int(guesses[hi])
            if not (self.prompt.is_stop(following) or self._starts_word(following)):
                return w
        return n_words

    def _forced(self, words_read: list[str], committed: list[int], n_words: int, at_start: bool) -> list[int]:
        """The first `n_words` words the model writes after `words_read` and `committed` (whole words)."""
        has_enough = word_limit(self._starts_word, n_words)
        draft = greedy_draft(self.context, self._prefix(words_read) + committed, self._cap(words_read),
                             self.prompt.is_stop, should_stop=lambda tokens, row: has_enough(tokens))
        starts = word_starts(self._pieces(draft.tokens), at_start)
        later = np.flatnonzero(starts)[n_words:]
        return draft.tokens[: int(later[0])] if later.size else draft.tokens

    def schedule(self, words: list[str], target: list[int], bounds: Bounds) -> tuple[list[int], list[int]]:
        """(the tokens written, the source words read when each token was written)."""
        written: list[int] = []
        read_at: list[int] = []
        n_words_written = 0
        n_source = len(words)
        for j in range(1, n_source):
            allowed = words_allowed(j, n_words_written, bounds.low)
            # Both bounds count words still to write; `due` is the total that must be out after j.
            due = n_words_written + (words_required(j, n_words_written, bounds.low, bounds.top) if bounds.top else 0)
            if allowed == 0:
                continue
            self.n_decisions += 1
            rest = target[len(written):]
            n_match = self._matching_words(words[:j], written, rest, not written, allowed)
            if n_match:
                starts = np.flatnonzero(word_starts(self._pieces(rest), not written))
                end = int(starts[n_match]) if n_match < starts.size else len(rest)
                written += rest[:end]
                read_at += [j] * end
                n_words_written += n_match
            if n_words_written < due:
                tokens = self._forced(words[:j], written, due - n_words_written, not written)
                if tokens:
                    written += tokens
                    read_at += [j] * len(tokens)
                    n_words_written += int(word_starts(self._pieces(tokens), len(written) == len(tokens)).sum())
                    target = self.offline(words, written)
        rest = target[len(written):]
        return written + rest, read_at + [n_source] * len(rest)


def instance(index: int, vocab, tokens: list[int], read_at: list[int], source: str, reference: str) -> Instance:
    """An `Instance` whose word t carries the source read when the token that began it was written."""
    delays: list[float] = []
    n_words = 0
    for end in range(1, len(tokens) + 1):
        if end < len(tokens) and read_at[end] == read_at[end - 1]:
            continue  # the same write goes on
        text = b"".join(vocab.piece(t) for t in tokens[:end]).decode("utf-8", "replace")
        words = len(text.split())
        delays += [float(read_at[end - 1])] * (words - n_words)
        n_words = words
    text = b"".join(vocab.piece(t) for t in tokens).decode("utf-8", "replace")
    prediction = " ".join(text.split())
    return Instance(index=index, prediction=prediction, reference=reference, source_length=len(source.split()),
                    delays=tuple(delays[: len(prediction.split())]), elapsed=tuple(0.0 for _ in prediction.split()),
                    source=source)


def _parse_bounds(text: str) -> Bounds:
    low, top = text.split("/")
    return Bounds(int(low), int(top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder")
    parser.add_argument("--manifest", default="gemma3-270m-translate")
    parser.add_argument("--source", type=Path, help="source file (default: wmt15-deen-dev/de.txt)")
    parser.add_argument("--reference", type=Path, help="reference file (default: wmt15-deen-dev/en.txt)")
    parser.add_argument("--src", default="de")
    parser.add_argument("--tgt", default="en")
    parser.add_argument("--first", type=int, default=1, help="first sentence, 1-based")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--bounds", nargs="+", type=_parse_bounds, default=[Bounds(1, 4), Bounds(3, 4), Bounds(1, 0)],
                        help="L/U pairs (U = 0: no upper bound)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    source = args.source or args.data / "wmt15-deen-dev" / f"{args.src}.txt"
    reference = args.reference or args.data / "wmt15-deen-dev" / f"{args.tgt}.txt"
    pairs = read_parallel(source, reference)[args.first - 1 : args.first - 1 + args.limit]
    runs: dict[str, list[Instance]] = {"offline": []}
    runs.update({b.label: [] for b in args.bounds})
    started = time.process_time()
    with TranslationEngine.load(args.manifest, n_threads=args.threads) as engine:
        oracle = Oracle(engine, args.src, args.tgt)
        for n, pair in enumerate(pairs):
            words = pair.source.split()
            target = oracle.offline(words)
            index = args.first - 1 + n
            runs["offline"].append(instance(index, oracle.vocab, target, [len(words)] * len(target), pair.source,
                                            pair.reference))
            for bounds in args.bounds:
                tokens, read_at = oracle.schedule(words, target, bounds)
                runs[bounds.label].append(instance(index, oracle.vocab, tokens, read_at, pair.source, pair.reference))
            # Rewritten after every sentence: a run stopped early still scores what it did.
            for label, instances in runs.items():
                folder = args.output / _slug(label)
                folder.mkdir(parents=True, exist_ok=True)
                write_instances(folder / "instances.log", instances)
            print(f"\r{n + 1}/{len(pairs)} sentences", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    cpu_s = time.process_time() - started
    print(f"{args.manifest}, {args.src}→{args.tgt}, sentences {args.first}–{args.first - 1 + len(pairs)}; "
          f"{cpu_s / max(len(pairs), 1):.2f} CPU s per sentence for all rows")
    report(runs)


def _slug(label: str) -> str:
    return label.replace(" ", "-").replace("[", "").replace("]", "").replace(",", "-")


def report(runs: dict[str, list[Instance]]) -> None:
    print("| setting | n | BLEU | AL | LAAL |")
    print("|---|---|---|---|---|")
    for label, instances in runs.items():
        bleu = quality_scores(instances, ("BLEU",))["BLEU"]
        lag = latency_scores(instances, computation_aware=False) if label != "offline" else {}
        al = f"{lag['AL']:.2f}" if lag else "–"
        laal = f"{lag['LAAL']:.2f}" if lag else "–"
        print(f"| {label} | {len(instances)} | {bleu:.2f} | {al} | {laal} |")

if __name__ == "__main__":
    main()
