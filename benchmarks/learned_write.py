"""A probe, not a product policy: LSG's write test learned from the oracle.

    python benchmarks/learned_write.py collect --data DATA --manifest qwen2.5-1.5b --first 55 --limit 96 \
        --output /tmp/lw/55-150.npz
    python benchmarks/learned_write.py fit /tmp/lw/*.npz --output /tmp/lw/weights.json
    python benchmarks/learned_write.py run --data DATA --manifest qwen2.5-1.5b --weights /tmp/lw/weights.json \
        --bounds 1/6 --threshold 0.5 --threshold 0.7 --first 1 --limit 54 --output /tmp/lw/runs

Why: the oracle (`oracle.py`) writes each word of the model's offline translation as soon as the
model's greedy choice from the source read so far is that word, and on the 1.5B it reaches offline
quality at less lag than wait-3. LSG's two tests (P_cur's confidence, its KL from the wait-1
baseline) each look at one quantity against a hand-set threshold. Here the same quantities, and
the lag the token would be written at, go into a logistic regression trained to predict the
oracle's label: "the greedy draft token is the token of the offline translation".

- `collect` walks the oracle's trajectory with no upper bound (the written text is always a prefix
  of the offline translation) and, after each source word, records for every draft token up to and
  including the first one that differs from the offline translation: its features and that label.
  Rows are teacher-forced on the offline translation, which equals the greedy draft up to the first
  difference, so one batched request per context and source word gives them all.
- `fit` trains the regression (Newton's method, L2) and prints, on sentences held out by
  two-fold cross-validation, how well each score ranks the labels (AUC): P_cur's confidence alone,
  LSG's quantities together, and with the lag.
- `run` translates with LSG whose write test is "predicted probability > threshold" (range
  constraint and whole-word cuts are LSG's own); thresholds share logits rows in one process.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lsg_edge import TranslationEngine
from lsg_edge.evaluation.instance import write_instances
from lsg_edge.evaluation.scoring import latency_scores, quality_scores
from lsg_edge.evaluation.shared_rows import SharedRows, sharing_pool
from lsg_edge.evaluation.text_run import instance_from_commits, read_parallel, translate_line
from lsg_edge.policy import strategies
from lsg_edge.policy.bounds import words_allowed
from lsg_edge.policy.drafting import greedy_draft, word_limit
from lsg_edge.policy.decision import log_softmax
from lsg_edge.policy.options import PolicyOptions
from lsg_edge.policy.words import word_starts
from lsg_edge.text.source import join_words, split_words

sys.path.insert(0, str(Path(__file__).parent))
from oracle import Oracle  # noqa: E402  (a sibling benchmark script)

# Raw quantities recorded per draft token; `design` turns them into the regression's inputs.
RAW = ("log_confidence", "margin", "entropy", "kl", "base_log_prob", "base_agrees", "lag", "starts_word")
# The same draft token seen from an anticipated source: the words read, then the next words the
# model itself expects (`Anticipation`).
FUTURE = ("future_agrees", "future_log_prob", "future_kl")
MAX_LAG = 6  # lags from here on share one indicator


def token_features(cur_row: np.ndarray, base_row: np.ndarray | None, lag: int, starts_word: bool) -> np.ndarray:
    """The raw quantities of one draft position (`RAW`): P_cur's top log-probability, its margin
    over the runner-up, its entropy; KL(P_cur ‖ P_base), log P_base of P_cur's choice and whether
    P_base chooses the same (P_base = P_cur where the baseline prefix is the full one); the lag."""
    logp = log_softmax(cur_row[None, :])[0]
    top2 = np.partition(logp, -2)[-2:]
    best = int(np.argmax(logp))
    p = np.exp(logp)
    entropy = float(-np.dot(p, np.where(p > 0, logp, 0.0)))
    if base_row is None:
        kl, base_lp, agrees = 0.0, float(logp[best]), 1.0
    else:
        logq = log_softmax(base_row[None, :])[0]
        with np.errstate(invalid="ignore"):
            terms = np.where(p > 0, p * (logp - logq), 0.0)
        kl, base_lp, agrees = float(max(terms.sum(), 0.0)), float(logq[best]), float(np.argmax(logq) == best)
    return np.array([float(top2[1]), float(top2[1] - top2[0]), entropy, kl, base_lp, agrees, float(lag),
                     float(starts_word)], dtype=np.float64)


def future_features(cur_row: np.ndarray, future_row: np.ndarray) -> np.ndarray:
    """`FUTURE` of one draft position: whether P_future chooses P_cur's token, its log-probability
    there, and KL(P_cur ‖ P_future)."""
    logp = log_softmax(cur_row[None, :])[0]
    logf = log_softmax(future_row[None, :])[0]
    best = int(np.argmax(logp))
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        kl = float(max(np.where(p > 0, p * (logp - logf), 0.0).sum(), 0.0))
    return np.array([float(np.argmax(logf) == best), float(logf[best]), kl])


class Anticipation:
    """The next source words the model expects: the prompt up to the end of the source read so
    far, continued greedily (inside the source, before the prompt's tail)."""

    def __init__(self, engine: TranslationEngine, prompt, n_words: int) -> None:
        self.vocab = engine.model.vocab
        self.prompt = prompt
        self.n_words = n_words
        self.context = engine.model.new_context()

    def words(self, words_read: list[str]) -> list[str]:
        head = list(self.vocab.tokenize(self.prompt._head + join_words(words_read), add_bos=self.prompt._add_bos))
        stops_word = lambda token: self.vocab.piece(token)[:1].isspace()  # noqa: E731
        has_enough = word_limit(stops_word, self.n_words)
        draft = greedy_draft(self.context, head, 4 * self.n_words + 4, self.prompt.is_stop,
                             should_stop=lambda tokens, row: has_enough(tokens))
        text = b"".join(self.vocab.piece(t) for t in draft.tokens).decode("utf-8", "replace")
        return text.split()[: self.n_words]


def design(raw: np.ndarray, columns: str = "all") -> np.ndarray:
    """Regression inputs from raw quantities [n, len(RAW)]: a constant, then per `columns`
    ("confidence", "lsg": LSG's quantities, "all": with lag indicators and their product with the
    confidence; "future", "all+future": confidence or "all" with the anticipated source's view,
    which needs raw rows of `RAW` + `FUTURE`)."""
    raw = np.atleast_2d(raw)
    c, margin, entropy, kl, base_lp, agrees, lag, starts = raw[:, : len(RAW)].T
    parts = [np.ones(len(raw)), c]
    if columns in ("lsg", "all", "all+future"):
        parts += [margin, entropy, np.log1p(kl), np.maximum(base_lp, -20.0), agrees, starts]
    if columns in ("all", "all+future"):
        lags = np.clip(lag, 1, MAX_LAG)
        for value in range(2, MAX_LAG + 1):
            indicator = (lags == value).astype(float)
            parts += [indicator, indicator * c]
    if columns in ("future", "all+future"):
        future_agrees, future_lp, future_kl = raw[:, len(RAW) :].T
        parts += [future_agrees, np.maximum(future_lp, -20.0), np.log1p(future_kl)]
    return np.stack(parts, axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """Weights of an L2-regularised logistic regression (the constant unpenalised), by Newton's method."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (ties count half)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts):
        ranks[order[start : start + count]] = start + (count + 1) / 2
    n_pos = label.sum()
    n_neg = len(label) - n_pos
    return float((ranks[label == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ---- collect ----------------------------------------------------------------------------------


def collect(args: argparse.Namespace) -> None:
    pairs = read_parallel(args.source, args.reference)[args.first - 1 : args.first - 1 + args.limit]
    rows: list[np.ndarray] = []
    labels: list[int] = []
    sentence_ids: list[int] = []
    started = time.process_time()
    with TranslationEngine.load(args.manifest, n_threads=args.threads) as engine:
        oracle = Oracle(engine, args.src, args.tgt)
        base_context = engine.model.new_context()
        anticipation = Anticipation(engine, oracle.prompt, args.anticipate) if args.anticipate else None
        future_context = engine.model.new_context() if anticipation else None
        for n, pair in enumerate(pairs):
            words = split_words(pair.source)
            target = oracle.offline(words)
            written: list[int] = []
            n_written = 0
            for j in range(1, len(words)):
                allowed = words_allowed(j, n_written, 1)
                rest = target[len(written):]
                if allowed == 0 or not rest:
                    continue
                starts = word_starts(oracle._pieces(rest), not written)
                bounds = list(np.flatnonzero(starts)) + [len(rest)]
                if bounds[0] != 0:
                    break
                n_words = min(allowed, len(bounds) - 1)
                end = bounds[n_words]
                prefix = oracle._prefix(words[:j]) + written
                first = len(prefix) - 1
                cur = oracle.context.logits_at(prefix + rest[: end + 1], range(first, first + end + 1))
                guesses = cur.argmax(axis=1)
                differs = np.flatnonzero(guesses[:end] != np.asarray(rest[:end]))
                n_tested = int(differs[0]) + 1 if differs.size else end
                base_prefix = oracle._prefix(words[: min(n_written + 1, j)]) + written
                base = None
                if base_prefix != prefix:
                    base_first = len(base_prefix) - 1
                    base = base_context.logits_at(base_prefix + rest[:n_tested],
                                                  range(base_first, base_first + n_tested))
                future = None
                if anticipation is not None:
                    future_prefix = oracle._prefix(words[:j] + anticipation.words(words[:j])) + written
                    future_first = len(future_prefix) - 1
                    future = future_context.logits_at(future_prefix + rest[:n_tested],
                                                      range(future_first, future_first + n_tested))
                word_index = np.cumsum(starts[: end + 1]) - 1  # 0-based word of each token
                for k in range(n_tested):
                    lag = j - n_written - int(word_index[k])
                    features = token_features(cur[k], None if base is None else base[k], lag, bool(starts[k]))
                    if future is not None:
                        features = np.concatenate([features, future_features(cur[k], future[k])])
                    rows.append(features)
                    labels.append(int(guesses[k] == rest[k]))
                    sentence_ids.append(args.first - 1 + n)
                # Write the whole words that match (and end where the model ends them), as the oracle does.
                n_match = 0
                for w in range(n_words):
                    lo, hi = bounds[w], bounds[w + 1]
                    following = int(guesses[hi])
                    if not np.array_equal(guesses[lo:hi], rest[lo:hi]):
                        break
                    if not (oracle.prompt.is_stop(following) or oracle._starts_word(following)):
                        break
                    n_match = w + 1
                written += rest[: bounds[n_match]]
                n_written += n_match
            np.savez(args.output, raw=np.array(rows), label=np.array(labels), sentence=np.array(sentence_ids),
                     anticipate=args.anticipate)
            print(f"\r{n + 1}/{len(pairs)} sentences, {len(labels)} tokens", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    y = np.array(labels)
    print(f"{len(pairs)} sentences, {len(y)} tokens ({y.mean():.1%} match the offline translation), "
          f"{(time.process_time() - started) / max(len(pairs), 1):.1f} CPU s a sentence")


# ---- fit --------------------------------------------------------------------------------------


def fit(args: argparse.Namespace) -> None:
    parts = [np.load(path) for path in args.files]
    widths = {p["raw"].shape[1] for p in parts}
    if len(widths) > 1:  # some files hold the anticipated view, some not: fit on what all hold
        parts = [{**p, "raw": p["raw"][:, : len(RAW)]} for p in parts]
    raw = np.concatenate([p["raw"] for p in parts])
    label = np.concatenate([p["label"] for p in parts]).astype(float)
    sentence = np.concatenate([p["sentence"] for p in parts])
    fold = sentence % 2
    print(f"{len(label)} tokens of {len(np.unique(sentence))} sentences, {label.mean():.1%} labelled 1")
    input_sets = ("confidence", "lsg", "all") + (("future", "all+future") if raw.shape[1] > len(RAW) else ())
    scores = {}
    for columns in input_sets:
        x = design(raw, columns)
        held_out = np.empty(len(label))
        for f in (0, 1):
            w = fit_logistic(x[fold != f], label[fold != f], args.l2)
            held_out[fold == f] = x[fold == f] @ w
        scores[columns] = held_out
    # The AUC's difference from confidence alone, with a bootstrap over sentences (tokens of one
    # sentence are not independent draws).
    rng = np.random.default_rng(0)
    ids, members = np.unique(sentence, return_inverse=True)
    by_sentence = [np.flatnonzero(members == i) for i in range(len(ids))]
    resamples = [np.concatenate([by_sentence[i] for i in rng.integers(0, len(ids), len(ids))])
                 for _ in range(args.resamples)]
    for columns, held_out in scores.items():
        line = f"{columns:>10}: held-out AUC {auc(held_out, label):.4f}"
        if columns != "confidence":
            gains = np.array([auc(held_out[r], label[r]) - auc(scores["confidence"][r], label[r]) for r in resamples])
            low, high = np.percentile(gains, [2.5, 97.5])
            line += (f"; against confidence alone {auc(held_out, label) - auc(scores['confidence'], label):+.4f} "
                     f"(95 % over sentences {low:+.4f} … {high:+.4f})")
        print(line)
    lag = np.clip(raw[:, RAW.index("lag")], 1, MAX_LAG)
    for value in range(1, MAX_LAG + 1):
        at = lag == value
        if at.any():
            print(f"lag {value}{'+' if value == MAX_LAG else ''}: {at.sum()} tokens, {label[at].mean():.1%} match")
    weights = fit_logistic(design(raw, args.columns), label, args.l2)
    fitted = {"columns": args.columns, "weights": weights.tolist()}
    if "future" in args.columns:
        fitted["anticipate"] = args.anticipate
    args.output.write_text(json.dumps(fitted, indent=1))
    print(f"weights ({args.columns}) → {args.output}")


# ---- run --------------------------------------------------------------------------------------


@dataclass
class LearnedTest:
    """The fitted regression and the probability a token must exceed to pass."""

    columns: str
    weights: np.ndarray
    threshold: float
    counts: Counter = field(default_factory=Counter)

    def passes(self, raw: np.ndarray) -> bool:
        score = float(design(raw, self.columns)[0] @ self.weights)
        passed = score > math.log(self.threshold / (1 - self.threshold))
        self.counts["passed" if passed else "failed"] += 1
        return passed


class FutureView:
    """P_future for a session's draft: the source read so far plus the words the model expects
    next, then the committed target and the draft. Reaches into the session (a probe's licence)
    for the words read and the committed tokens. Anticipated words are kept per source prefix, so
    the variants of one run, which read the same prefixes, continue each prefix once."""

    def __init__(self, engine: TranslationEngine, anticipation: Anticipation, context) -> None:
        self.engine = engine
        self.anticipation = anticipation
        self.context = context
        self._anticipated: dict[tuple[str, ...], list[str]] = {}

    def clear(self) -> None:
        self._anticipated.clear()

    def row(self, view, tokens: list[int], k: int) -> np.ndarray:
        session = view._session
        words = list(session._sentence.words)
        key = tuple(words)
        if key not in self._anticipated:
            self._anticipated[key] = self.anticipation.words(words)
        prefix = session._prompt.prefix_tokens(join_words(words + self._anticipated[key])) + list(session._sentence.target)
        return self.context.logits_at(prefix + tokens[:k], [len(prefix) - 1 + k])[0]


class LearnedRun(strategies.LeadingRun):
    """LSG's leading run with the learned test in place of the confidence and KL tests."""

    def __init__(self, policy: "LearnedLsgPolicy", *args) -> None:
        super().__init__(*args)
        self.policy = policy

    def _passes(self, tokens: list[int], k: int, row: np.ndarray) -> bool:
        view = self._view
        base = view.baseline_logits(tokens, [k])
        word_index = int(sum(self._starts[1 : k + 1]))
        lag = view.n_read - view.n_committed_words - word_index
        raw = token_features(row, None if base is None else base[0], lag, bool(self._starts[k]))
        if self.policy.future is not None:
            raw = np.concatenate([raw, future_features(row, self.policy.future.row(view, tokens, k))])
        return self.policy.test.passes(raw)


class LearnedLsgPolicy(strategies.LsgPolicy):
    def __init__(self, options: PolicyOptions, test: LearnedTest, future: FutureView | None = None) -> None:
        super().__init__(options)
        self.test = test
        self.future = future

    def _leading_run(self, view, allowed: int, required: int) -> LearnedRun:
        return LearnedRun(self, view, self.options, allowed, required)


def run(args: argparse.Namespace) -> None:
    pairs = read_parallel(args.source, args.reference)[args.first - 1 : args.first - 1 + args.limit]
    fitted = json.loads(args.weights.read_text())
    low, top = (int(x) for x in args.bounds.split("/"))
    shared = SharedRows()
    with TranslationEngine.load(args.manifest, n_threads=args.threads, max_contexts=len(args.threshold)) as engine:
        engine.pool = sharing_pool(engine, shared, len(args.threshold))
        options = engine.policy_options(args.src, args.tgt, low_bound=low, top_bound=top)
        future = None
        if "future" in fitted["columns"]:
            anticipation = Anticipation(engine, engine.prompt(args.src, args.tgt), fitted["anticipate"])
            future = FutureView(engine, anticipation, shared.wrap(engine.model.new_context()))
        variants = {}
        for threshold in args.threshold:
            test = LearnedTest(fitted["columns"], np.array(fitted["weights"]), threshold)
            session = engine.create_session(args.src, args.tgt, policy=options)
            session._policy = LearnedLsgPolicy(options, test, future)  # the probe's strategy in place of the named one
            variants[f"lsg-learned-L{low}-U{top}-p-{threshold:g}"] = (session, test, [], [0.0])
        for n, pair in enumerate(pairs):
            words = split_words(pair.source)
            shared.clear()
            if future is not None:
                future.clear()
            for label, (session, test, instances, cpu) in variants.items():
                started = time.process_time()
                commits, reads = translate_line(session, words)
                cpu[0] += time.process_time() - started
                instances.append(instance_from_commits(args.first - 1 + n, words, pair.reference, commits, reads))
                folder = args.output / label
                folder.mkdir(parents=True, exist_ok=True)
                write_instances(folder / "instances.log", instances)
            print(f"\r{n + 1}/{len(pairs)} sentences", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        for label, (session, test, instances, cpu) in variants.items():
            bleu = quality_scores(instances, ("BLEU",))["BLEU"]
            lag = latency_scores(instances, computation_aware=False)["AL"]
            print(f"{label}: {len(instances)} sentences, BLEU {bleu:.2f} @ AL {lag:.2f}, tests {dict(test.counts)}, "
                  f"{cpu[0] / len(instances):.1f} CPU s a sentence")
            session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("collect", "run"):
        sub = commands.add_parser(name)
        sub.add_argument("--data", type=Path, required=True, help="the shared evaluation data folder")
        sub.add_argument("--manifest", default="gemma3-270m-translate")
        sub.add_argument("--src", default="de")
        sub.add_argument("--tgt", default="en")
        sub.add_argument("--source", type=Path, help="source file (default: wmt15-deen-dev/<src>.txt)")
        sub.add_argument("--reference", type=Path, help="reference file (default: wmt15-deen-dev/<tgt>.txt)")
        sub.add_argument("--first", type=int, default=1, help="first sentence, 1-based")
        sub.add_argument("--limit", type=int, default=50)
        sub.add_argument("--threads", type=int, default=1)
        sub.add_argument("--output", type=Path, required=True)
    commands.choices["collect"].add_argument(
        "--anticipate", type=int, default=0, metavar="N",
        help="also record each token's view from the source plus the N words the model expects next")
    run_parser = commands.choices["run"]
    run_parser.add_argument("--weights", type=Path, required=True, help="what `fit` wrote")
    run_parser.add_argument("--bounds", default="1/6", help="L/U of the range constraint")
    run_parser.add_argument("--threshold", type=float, action="append", help="probability to pass (repeatable)")
    fit_parser = commands.add_parser("fit")
    fit_parser.add_argument("files", type=Path, nargs="+", help="what `collect` wrote")
    fit_parser.add_argument("--columns", default="all", choices=("confidence", "lsg", "all", "future", "all+future"))
    fit_parser.add_argument("--l2", type=float, default=1.0)
    fit_parser.add_argument("--resamples", type=int, default=300, help="bootstrap resamples of the AUC differences")
    fit_parser.add_argument("--anticipate", type=int, default=3, metavar="N",
                            help="the N the rows were collected with (for the future input sets)")
    fit_parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "fit":
        fit(args)
        return
    args.source = args.source or args.data / "wmt15-deen-dev" / f"{args.src}.txt"
    args.reference = args.reference or args.data / "wmt15-deen-dev" / f"{args.tgt}.txt"
    if args.command == "collect":
        collect(args)
    else:
        args.threshold = args.threshold or [0.5]
        run(args)


if __name__ == "__main__":
    main()
