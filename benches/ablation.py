"""The RoBERTa paper's two data ablations at small scale: static against dynamic
masking (its table 1) and the four input formats (its table 2), each run with
the same model, steps, batch size, learning rate and seed, and scored by the
MLM loss on held-out documents (the same documents and masks for every run).

    PYTHONPATH=python python benches/ablation.py --train-docs 100 --eval-docs 100 --steps 400

Training text is the first --train-docs documents of the corpus, held-out text
the next --eval-docs. Static and dynamic masking differ only from the second
epoch on (epoch 0's masks are the same), and static masks repeat only after
--copies epochs: the training text must be small enough for the steps to pass
over it many times (the paper: 10 copies in 40 epochs). Every run trains a
fresh tiny RoBERTa through examples/pretrain_roberta.py, so this measures the
data pipeline's choices, not the model. Small runs are noisy: compare within
one table, and repeat with other seeds (--seeds) before reading much into a
small difference.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import lzma
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "en.jsonl.xz"
RUNS = [
    ("masking", "full-sentences", "static"),
    ("masking", "full-sentences", "dynamic"),
    ("formats", "segment-pair", "dynamic"),
    ("formats", "sentence-pair", "dynamic"),
    ("formats", "full-sentences", "dynamic"),
    ("formats", "doc-sentences", "dynamic"),
]


def load_example():
    spec = importlib.util.spec_from_file_location(
        "pretrain_roberta", ROOT / "examples" / "pretrain_roberta.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_corpus(corpus: Path, train_docs: int, eval_docs: int, out: Path) -> tuple[Path, Path]:
    """The first documents as training text, the next ones held out."""
    train, held_out = out / "train.jsonl", out / "eval.jsonl"
    with (
        lzma.open(corpus, "rt", encoding="utf-8") as lines,
        open(train, "w", encoding="utf-8") as t,
        open(held_out, "w", encoding="utf-8") as e,
    ):
        for i, line in enumerate(lines):
            if i >= train_docs + eval_docs:
                break
            text = json.loads(line)["text"]
            (t if i < train_docs else e).write(json.dumps({"text": text}) + "\n")
    return train, held_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="xz JSONL with a 'text' field")
    parser.add_argument("--train-docs", type=int, default=100)
    parser.add_argument("--eval-docs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--seeds", default="0", help="comma-separated; each run once per seed")
    parser.add_argument(
        "--copies", type=int, default=4, help="static masks per block (the paper: 10 in 40 epochs)"
    )
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()
    example = load_example()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[tuple[str, str], list[float]] = {}
    tokens: dict[tuple[str, str], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train, held_out = split_corpus(args.corpus, args.train_docs, args.eval_docs, Path(tmp))
        import bbpe

        vocab = Path(tmp) / "vocab"
        bbpe.train([str(train)], vocab_size=args.vocab_size, min_frequency=2).save(vocab)
        for _, format, masking in RUNS:
            if (format, masking) in results:
                continue
            for seed in seeds:
                started = time.perf_counter()
                run = example.main(
                    [str(train), "--tokenizer", str(vocab), "--tiny", "--quiet"]
                    + ["--format", format, "--masking", masking, "--seed", str(seed)]
                    + ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
                    + ["--max-len", str(args.max_len), "--eval", str(held_out)]
                    + ["--eval-batches", "50", "--workdir", str(Path(tmp) / "run")]
                    + ["--torch-threads", str(args.torch_threads), "--device", "cpu"]
                    + ["--copies", str(args.copies)]
                )
                results.setdefault((format, masking), []).append(run["eval_losses"][-1])
                tokens[(format, masking)] = run["tokens"]
                print(
                    f"{format} {masking} seed {seed}: held-out loss {run['eval_losses'][-1]:.4f}"
                    f" ({time.perf_counter() - started:.0f} s)",
                    file=sys.stderr,
                )
    print(
        f"\n{args.train_docs} training and {args.eval_docs} held-out documents of "
        f"{args.corpus.name}; tiny RoBERTa, {args.steps} steps of {args.batch_size} blocks of "
        f"at most {args.max_len} tokens; seeds {args.seeds}\n"
    )
    for table in ("masking", "formats"):
        print(f"Ablation: {table}\n")
        print("| input format | masking | held-out MLM loss | tokens trained on (seed 0) |")
        print("| --- | --- | ---: | ---: |")
        for name, format, masking in RUNS:
            if name == table:
                losses = results[(format, masking)]
                spread = f" ± {statistics.stdev(losses):.3f}" if len(losses) > 1 else ""
                mean, seen = statistics.mean(losses), tokens[(format, masking)]
                print(f"| {format} | {masking} | {mean:.3f}{spread} | {seen:,} |")
        print()


if __name__ == "__main__":
    main()
