"""LoRA SFT for sentence translation on a GGUF base model — a workstation step (the `train` extra).

    python -m lsg_edge.convert.train_lora --base gemma-3-270m-q4_k_m.gguf \\
        --data parallel-train/ --out my_adapter/ --steps 1200 --max-minutes 80

What it does, and why:
- The base is rebuilt in float from its GGUF (gguf_to_torch): the default model exists nowhere
  else, and training against the weights the device runs keeps the adapter honest.
- Examples are the runtime's own instruction prompt (text.prompt.instruction_prompt), tokenized by
  llama.cpp's tokenizer of the same GGUF, so training and inference see the same token ids.
- Loss on target tokens only, and the output layer (262k rows for Gemma) is applied only at those
  positions: it is most of the cost of a step on a CPU.
- Seeded; a checkpoint (adapter + optimizer + data position) every `checkpoint_every` steps;
  `--resume` continues from it. A wall-clock limit stops cleanly with the adapter saved.
- Writes a PEFT adapter (adapter_model.safetensors + adapter_config.json) and training.json with
  the data, steps, hyper-parameters and dev figures.

Held-out data: for each source language, `heldout_pairs` news pairs are set aside before anything
is sampled (seeded) and written to `<out>/heldout/<src>-en.tsv` for the before/after checks.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import LsgEdgeError, OptionsError
from ..folders import output_folder

__all__ = ["TrainOptions", "Example", "load_direction_pairs", "build_examples", "train_lora", "main"]

# Language code → file stem in the parallel data (`<stem>-eng.<domain>.tsv`).
_FILE_STEMS = {"de": "deu", "fr": "fra", "es": "spa", "zh": "zho"}
_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainOptions:
    base_gguf: Path
    data_dir: Path
    out_dir: Path
    # direction → share of the examples; every direction pairs a language with English.
    mix: tuple[tuple[str, float], ...] = (("de-en", 0.55), ("en-de", 0.15), ("fr-en", 0.10), ("es-en", 0.10), ("zh-en", 0.10))
    # domain → share within a language's pairs (news is what the evaluation sets are).
    domains: tuple[tuple[str, float], ...] = (("news", 0.7), ("tatoeba", 0.15), ("multi30k", 0.15))
    steps: int = 1000
    batch_size: int = 8
    max_tokens: int = 128  # longer examples are skipped (bounds the step cost)
    rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float = 2e-4
    warmup_steps: int = 30
    weight_decay: float = 0.0
    seed: int = 1234
    heldout_pairs: int = 200
    dev_pairs: int = 64  # of the de held-out pairs: dev loss during training
    dev_bleu_pairs: int = 24  # greedy-decoded for the dev BLEU
    eval_every: int = 200
    checkpoint_every: int = 50
    max_minutes: float | None = None
    threads: int = 2
    bf16: bool = False  # autocast matmuls to bfloat16 (fast on CPUs with AMX / AVX512-BF16)
    resume: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise OptionsError("--steps and --batch-size must be positive")
        if not 1 <= self.rank <= 64:
            raise OptionsError("--rank must be between 1 and 64")
        for direction, _ in self.mix:
            src, _, tgt = direction.partition("-")
            if "en" not in (src, tgt) or (src if tgt == "en" else tgt) not in _FILE_STEMS:
                raise OptionsError(f"direction {direction!r}: one side must be en, the other one of {sorted(_FILE_STEMS)}")


@dataclass(frozen=True)
class Example:
    """One training example: prompt tokens (no loss) followed by target tokens (loss)."""

    prompt: tuple[int, ...]
    target: tuple[int, ...]

    @property
    def tokens(self) -> tuple[int, ...]:
        return self.prompt + self.target


@dataclass
class DataSplit:
    # direction → domain → (xx, en) pairs (both directions of a language share its pairs)
    train: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    heldout: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # "xx-en" → (xx, en) news


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows, None)  # header: <src>\ten
        return [(r[0], r[1]) for r in rows if len(r) == 2 and r[0] and r[1]]


def load_direction_pairs(options: TrainOptions) -> DataSplit:
    """Read the parallel data, set the held-out news pairs aside, return both (seeded)."""
    rng = random.Random(options.seed)
    split = DataSplit()
    languages = sorted({d.replace("en", "").strip("-") for d, _ in options.mix})
    by_language: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for lang in languages:
        domains: dict[str, list[tuple[str, str]]] = {}
        for domain, _ in options.domains:
            path = options.data_dir / f"{_FILE_STEMS[lang]}-eng.{domain}.tsv"
            if path.exists():
                pairs = _read_tsv(path)
                rng.shuffle(pairs)
                domains[domain] = pairs
        if "news" not in domains:
            raise OptionsError(f"no news pairs for {lang} in {options.data_dir}")
        held = domains["news"][: options.heldout_pairs]
        domains["news"] = domains["news"][options.heldout_pairs :]
        split.heldout[f"{lang}-en"] = held
        by_language[lang] = domains
    for direction, _ in options.mix:
        src, _, tgt = direction.partition("-")
        split.train[direction] = by_language[src if tgt == "en" else tgt]
    return split


def build_examples(
    split: DataSplit, options: TrainOptions, tokenize, n_examples: int
) -> list[Example]:
    """Sample `n_examples` examples by the direction and domain shares, tokenized (seeded).

    `tokenize(text, add_bos)` is llama.cpp's tokenizer of the base GGUF.
    """
    from ..text.prompt import instruction_prompt

    rng = random.Random(options.seed + 1)
    domain_share = dict(options.domains)
    examples: list[Example] = []
    for direction, share in options.mix:
        src, _, tgt = direction.partition("-")
        head, tail = instruction_prompt(src, tgt)
        wanted = round(n_examples * share)
        # Sample domains by their shares (without replacement inside a domain).
        pools = {d: list(pairs) for d, pairs in split.train[direction].items()}
        for pool in pools.values():
            rng.shuffle(pool)
        weights = [domain_share[d] for d in pools]
        names = list(pools)
        taken = 0
        cursor = {d: 0 for d in names}
        while taken < wanted and any(cursor[d] < len(pools[d]) for d in names):
            domain = rng.choices(names, weights)[0]
            if cursor[domain] >= len(pools[domain]):
                continue
            pair = pools[domain][cursor[domain]]
            cursor[domain] += 1
            # Data pairs are (xx, en); en→xx swaps them.
            source, target = (pair[0], pair[1]) if tgt == "en" else (pair[1], pair[0])
            prompt = tuple(tokenize(head + source + tail, True))
            answer = tuple(tokenize(" " + target + "\n", False))
            if len(prompt) + len(answer) > options.max_tokens:
                continue
            examples.append(Example(prompt, answer))
            taken += 1
    rng.shuffle(examples)
    return examples


def _batches(examples: Sequence[Example], batch_size: int, seed: int) -> list[list[Example]]:
    """Batches of similar length (less padding), in a seeded random order."""
    rng = random.Random(seed)
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].tokens), rng.random()))
    batches = [[examples[i] for i in order[k : k + batch_size]] for k in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _collate(batch: Sequence[Example], pad_id: int):
    import torch

    width = max(len(e.tokens) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    is_target = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, example in enumerate(batch):
        tokens = example.tokens
        ids[row, : len(tokens)] = torch.tensor(tokens)
        attention[row, : len(tokens)] = 1
        is_target[row, len(example.prompt) : len(tokens)] = True
    return ids, attention, is_target


def target_loss(causal_lm, ids, attention, is_target, bf16: bool = False):
    """Mean cross-entropy over target tokens, with the output layer applied only where needed."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        hidden = causal_lm.model(input_ids=ids, attention_mask=attention).last_hidden_state
        # Position t predicts token t + 1: select the positions whose next token is a target token.
        predicts = is_target[:, 1:]
        rows = hidden[:, :-1][predicts]
        logits = causal_lm.lm_head(rows).float()
    return torch.nn.functional.cross_entropy(logits, ids[:, 1:][predicts])


def _greedy(causal_lm, prompt: Sequence[int], stop_ids: Sequence[int], bf16: bool, max_new: int = 64) -> list[int]:
    import torch

    ids = torch.tensor([list(prompt)])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = causal_lm.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new, do_sample=False,
            eos_token_id=list(stop_ids), pad_token_id=0,
        )
    tokens = out[0, len(prompt):].tolist()
    stops = set(stop_ids)
    return [t for t in tokens if t not in stops]


def _dev_figures(causal_lm, dev: list[Example], bleu_pairs: list[tuple[list[int], str]], detokenize, stop_ids, bf16: bool) -> dict:
    import torch

    causal_lm.eval()
    with torch.no_grad():
        losses = []
        for k in range(0, len(dev), 8):
            ids, attention, is_target = _collate(dev[k : k + 8], 0)
            n = int(is_target[:, 1:].sum())
            losses.append((float(target_loss(causal_lm, ids, attention, is_target, bf16)) * n, n))
    figures = {"dev_loss": sum(l for l, _ in losses) / sum(n for _, n in losses)}
    if bleu_pairs:
        try:
            import sacrebleu
        except ImportError:  # pragma: no cover - sacrebleu comes with the train extra
            sacrebleu = None
        hyps = [detokenize(_greedy(causal_lm, prompt, stop_ids, bf16)).strip() for prompt, _ in bleu_pairs]
        if sacrebleu is not None:
            figures["dev_bleu"] = round(sacrebleu.corpus_bleu(hyps, [[ref for _, ref in bleu_pairs]]).score, 2)
        figures["dev_sample"] = hyps[0]
    causal_lm.train()
    return figures


class _Tokenizer:
    """llama.cpp's tokenizer of the base GGUF (vocabulary only: no weights, no decode)."""

    def __init__(self, gguf_path: Path) -> None:
        import llama_cpp

        self._llama = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
        self.pad_id = 0

    def tokenize(self, text: str, add_bos: bool) -> list[int]:
        return self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._llama.detokenize(list(tokens)).decode("utf-8", errors="replace")

    def stop_ids(self) -> list[int]:
        """Tokens that end a target sentence at run time: end of generation, or any line break."""
        n_vocab = self._llama.n_vocab()
        return [t for t in range(n_vocab) if t == self._llama.token_eos() or b"\n" in self._llama.detokenize([t])]


def train_lora(options: TrainOptions) -> Path:
    """Run the training; returns the adapter folder. See the module docstring."""
    try:
        import torch
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict, get_peft_model_state_dict
    except ImportError as e:
        raise LsgEdgeError(f"training needs the train extra: pip install 'lsg-edge[train]' ({e})") from e
    from tqdm import tqdm

    from .gguf_to_torch import load_gemma3_from_gguf

    torch.manual_seed(options.seed)
    random.seed(options.seed)
    torch.set_num_threads(options.threads)
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    tokenizer = _Tokenizer(options.base_gguf)
    split = load_direction_pairs(options)
    held_dir = out / "heldout"
    held_dir.mkdir(exist_ok=True)
    for name, pairs in split.heldout.items():
        src = name.split("-")[0]
        with (held_dir / f"{name}.tsv").open("w", encoding="utf-8") as f:
            f.write(f"{src}\ten\n")
            f.writelines(f"{a}\t{b}\n" for a, b in pairs)

    examples = build_examples(split, options, tokenizer.tokenize, options.steps * options.batch_size)
    batches = _batches(examples, options.batch_size, options.seed)
    from ..text.prompt import instruction_prompt

    head, tail = instruction_prompt("de", "en")
    de_held = split.heldout["de-en"]
    dev = [
        Example(tuple(tokenizer.tokenize(head + s + tail, True)), tuple(tokenizer.tokenize(" " + t + "\n", False)))
        for s, t in de_held[: options.dev_pairs]
    ]
    bleu_pairs = [(tokenizer.tokenize(head + s + tail, True), t) for s, t in de_held[: options.dev_bleu_pairs]]

    causal_lm = load_gemma3_from_gguf(options.base_gguf)
    config = LoraConfig(
        r=options.rank,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=list(_TARGET_MODULES),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(causal_lm, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate, weight_decay=options.weight_decay)

    def lr_at(step: int) -> float:
        if step < options.warmup_steps:
            return (step + 1) / options.warmup_steps
        progress = (step - options.warmup_steps) / max(1, options.steps - options.warmup_steps)
        if options.max_minutes is not None:
            # Under a wall-clock limit the schedule follows whichever runs out first, steps or
            # time, so a run cut short by the limit still ends on a decayed learning rate.
            progress = max(progress, (time.monotonic() - started) / (options.max_minutes * 60))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    history: list[dict] = []
    step = 0
    checkpoint = out / "checkpoint"
    if options.resume and (checkpoint / "state.pt").exists():
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        step, history = state["step"], state["history"]
        print(f"resumed at step {step}", file=sys.stderr)

    def save_checkpoint() -> None:
        checkpoint.mkdir(exist_ok=True)
        state = {
            "adapter": get_peft_model_state_dict(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "step": step,
            "history": history,
        }
        torch.save(state, checkpoint / "state.pt.partial")
        (checkpoint / "state.pt.partial").replace(checkpoint / "state.pt")

    stop_ids = tokenizer.stop_ids() if bleu_pairs else []

    def evaluate(label: str) -> None:
        figures = _dev_figures(causal_lm, dev, bleu_pairs, tokenizer.detokenize, stop_ids, options.bf16)
        figures.update(step=step, minutes=round((time.monotonic() - started) / 60, 2), at=label)
        history.append(figures)
        tqdm.write(json.dumps(figures, ensure_ascii=False), file=sys.stderr)

    if step == 0:
        evaluate("start")
    model.train()
    stopped_by = "steps"
    progress = tqdm(total=options.steps, initial=step, desc="train-lora", file=sys.stderr, mininterval=5)
    running = None
    while step < options.steps:
        if options.max_minutes is not None and time.monotonic() - started > options.max_minutes * 60:
            stopped_by = "time limit"
            break
        ids, attention, is_target = _collate(batches[step % len(batches)], tokenizer.pad_id)
        loss = target_loss(causal_lm, ids, attention, is_target, options.bf16)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        running = float(loss) if running is None else 0.95 * running + 0.05 * float(loss)
        progress.update(1)
        progress.set_postfix(loss=f"{running:.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
        if step % options.eval_every == 0 and step < options.steps:
            evaluate("periodic")
        if step % options.checkpoint_every == 0:
            save_checkpoint()
    progress.close()
    evaluate("end")
    save_checkpoint()
    model.save_pretrained(str(out), safe_serialization=True)
    report = {
        "base_gguf": options.base_gguf.name,
        "prompt": {"style": "instruction", "example": head + "<source>" + tail + " <target>\\n"},
        "stopped_by": stopped_by,
        "steps_done": step,
        "examples_seen": step * options.batch_size,
        "examples_built": len(examples),
        "train_minutes": round((time.monotonic() - started) / 60, 2),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "data": {
            "directions": dict(options.mix),
            "domains": dict(options.domains),
            "heldout_news_pairs_per_language": options.heldout_pairs,
            "note": "newstest2015 is not in the training data; held-out pairs are set aside before sampling",
        },
        "trainable_parameters": sum(p.numel() for p in trainable),
        "history": history,
    }
    (out / "training.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def _parse(argv: list[str] | None) -> TrainOptions:
    parser = argparse.ArgumentParser(prog="lsg-edge convert train-lora", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="base model GGUF (Gemma 3)")
    parser.add_argument("--data", type=Path, required=True, help="folder of <xxx>-eng.<domain>.tsv pairs")
    parser.add_argument("--out", type=Path, required=True, help="adapter folder to write")
    defaults = TrainOptions(Path(), Path(), Path())
    for name in ("steps", "batch_size", "max_tokens", "rank", "lora_alpha", "warmup_steps", "seed",
                 "heldout_pairs", "eval_every", "checkpoint_every", "threads", "dev_bleu_pairs"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this long")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 matmuls (CPUs with AMX/AVX512-BF16)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    args = vars(parser.parse_args(argv))
    base, data, out = args.pop("base"), args.pop("data"), args.pop("out")
    return TrainOptions(base, data, out, **args)


def main(argv: list[str] | None = None) -> None:
    try:
        options = _parse(argv)
        for path in (options.base_gguf, options.data_dir):
            if not path.exists():
                raise OptionsError(f"{path} does not exist")
        output_folder(options.out_dir, "--out")  # before minutes of loading and training
        print(train_lora(options))
    except LsgEdgeError as e:
        print(f"lsg-edge: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("lsg-edge: interrupted (the last checkpoint is kept; --resume continues)", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
