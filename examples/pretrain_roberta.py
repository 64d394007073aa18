"""Pretrain a RoBERTa masked language model from raw JSONL, with bbpe doing
everything before the model: a vocabulary (trained, or a bundled one),
Megatron shards, and masked batches in any of the paper's four input formats,
dynamic or static masking. The model is transformers' RobertaForMaskedLM,
built from a config and trained with torch (on the GPU when there is one).

    python examples/pretrain_roberta.py corpus/*.jsonl.zst --tokenizer roberta-base \\
        --steps 10000 --batch-size 32 --max-len 512
    python examples/pretrain_roberta.py --sample --tiny --steps 100   # a toy run, a minute on a CPU

Every step prints the MLM loss and the tokens per second (real tokens, not
padding). `--eval` names held-out corpus files whose MLM loss is measured at
the end (and every `--eval-every` steps), with masks fixed by the seed.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Iterator

TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
}
BASE = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from bbpe.packing import FORMATS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", help="JSONL or text corpus files (gz, xz, zstd)")
    parser.add_argument("--sample", action="store_true", help="also train on the bundled sample")
    parser.add_argument("--tokenizer", help="a bundled or saved vocabulary; default: train one")
    parser.add_argument("--vocab-size", type=int, default=8000, help="when training one")
    parser.add_argument("--format", choices=FORMATS, default="full-sentences")
    parser.add_argument("--masking", choices=("dynamic", "static"), default="dynamic")
    parser.add_argument("--copies", type=int, default=10, help="static masking's masks per block")
    parser.add_argument(
        "--max-len", type=int, default=128, help="tokens per block, specials included"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=10, help="steps of linear warm-up")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, 64-wide model")
    parser.add_argument("--eval", nargs="*", default=[], help="held-out corpus files")
    parser.add_argument(
        "--eval-format",
        choices=FORMATS,
        default="full-sentences",
        help="the held-out blocks' format: one for every run, so that runs compare",
    )
    parser.add_argument("--eval-every", type=int, default=0, help="steps between evaluations")
    parser.add_argument("--eval-batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    parser.add_argument("--torch-threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument(
        "--workdir", help="where the vocabulary and shards go (default: a temp dir)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    return parser.parse_args(argv)


def corpus_inputs(args: argparse.Namespace) -> list[str]:
    from bbpe.sample import sample_path

    inputs = list(args.inputs) + ([str(sample_path())] if args.sample else [])
    if not inputs:
        raise SystemExit("no corpus: name files, or pass --sample")
    return inputs


def masked_dataset(
    shard_dir: str, tokenizer, args: argparse.Namespace, *, format: str, static: bool
):
    """The paper's data: blocks of `format`, masked dynamically (a new mask
    every epoch) or statically (`copies` fixed masks per block)."""
    from bbpe import data, masking

    masker = masking.Masker.from_tokenizer(tokenizer, seed=args.seed)
    if static:
        masker = masking.StaticMasker(masker, copies=args.copies)
    return data.MaskedLMDataset(
        shard_dir,
        tokenizer,
        format=format,
        max_len=args.max_len,
        seed=args.seed,
        masker=masker,
    )


def batches(dataset, batch_size: int, torch, device) -> Iterator[dict]:
    """Batches of `dataset` as tensors on `device`, epoch after epoch."""
    from bbpe import data

    sampler = data.FixedBatches.for_dataset(dataset, batch_size)
    stream = data.MaskedLMIterable(dataset, sampler)
    epoch = 0
    while True:
        stream.set_epoch(epoch)
        for batch in stream:
            yield {
                key: torch.from_numpy(batch[key]).to(device)
                for key in ("input_ids", "attention_mask", "labels")
            }
        epoch += 1


def build_model(tokenizer, args: argparse.Namespace):
    from transformers import RobertaConfig, RobertaForMaskedLM

    sizes = TINY if args.tiny else BASE
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size,
        # RoBERTa numbers positions from pad_id + 1.
        max_position_embeddings=args.max_len + tokenizer.pad_token_id + 1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        type_vocab_size=1,
        **sizes,
    )
    return RobertaForMaskedLM(config)


def evaluate(model, dataset, args: argparse.Namespace, torch, device) -> float:
    """Mean MLM loss over the first `--eval-batches` batches of epoch 0 (fixed masks)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        stream = batches(dataset, args.batch_size, torch, device)
        for _ in range(min(args.eval_batches, max(len(dataset) // args.batch_size, 1))):
            batch = next(stream)
            n = int((batch["labels"] != -100).sum())
            total += float(model(**batch).loss) * n
            count += n
    model.train()
    return total / max(count, 1)


def main(argv: list[str] | None = None) -> dict:
    """Runs the pretraining; returns {"losses": [...], "eval_losses": [...],
    "tokens": real tokens trained on, "tokens_per_second": ...} for tests and
    the ablation bench."""
    args = parse_args(argv)
    import torch

    import bbpe
    from bbpe import shards

    torch.manual_seed(args.seed)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    workdir = args.workdir or tempfile.mkdtemp(prefix="bbpe-pretrain-")
    inputs = corpus_inputs(args)
    if args.tokenizer:
        tokenizer = bbpe.Tokenizer.from_pretrained(args.tokenizer)
    else:
        tokenizer = bbpe.train(inputs, vocab_size=args.vocab_size, min_frequency=2)
        tokenizer.save(os.path.join(workdir, "vocab"))
    shard_dir = os.path.join(workdir, "shards")
    shards.write(inputs, shard_dir, tokenizer, split_sentences=True, overwrite=True)
    dataset = masked_dataset(
        shard_dir, tokenizer, args, format=args.format, static=args.masking == "static"
    )
    held_out = None
    if args.eval:
        eval_dir = os.path.join(workdir, "eval-shards")
        shards.write(args.eval, eval_dir, tokenizer, split_sentences=True, overwrite=True)
        held_out = masked_dataset(eval_dir, tokenizer, args, format=args.eval_format, static=False)

    model = build_model(tokenizer, args).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(args.warmup, 1))
    )
    losses, eval_losses = [], []
    tokens, started = 0, time.perf_counter()
    stream = batches(dataset, args.batch_size, torch, device)
    for step in range(1, args.steps + 1):
        batch = next(stream)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += int(batch["attention_mask"].sum())
        rate = tokens / (time.perf_counter() - started)
        if not args.quiet:
            print(f"step {step:5d}  loss {losses[-1]:.4f}  {rate:,.0f} tokens/s", flush=True)
        if held_out is not None and args.eval_every and step % args.eval_every == 0:
            eval_losses.append(evaluate(model, held_out, args, torch, device))
            if not args.quiet:
                print(f"step {step:5d}  held-out loss {eval_losses[-1]:.4f}", flush=True)
    if held_out is not None and (not eval_losses or args.steps % max(args.eval_every, 1)):
        eval_losses.append(evaluate(model, held_out, args, torch, device))
    rate = tokens / (time.perf_counter() - started)
    summary = {
        "losses": losses,
        "eval_losses": eval_losses,
        "tokens": tokens,
        "tokens_per_second": rate,
    }
    first, last = losses[: min(10, len(losses))], losses[-min(10, len(losses)) :]
    print(
        f"{args.format}, {args.masking} masking, {args.steps} steps on {device}: loss "
        f"{sum(first) / len(first):.3f} -> {sum(last) / len(last):.3f} (perplexity "
        f"{math.exp(sum(last) / len(last)):.1f}), {rate:,.0f} tokens/s"
        + (f", held-out loss {eval_losses[-1]:.3f}" if eval_losses else "")
    )
    return summary


if __name__ == "__main__":
    main()
