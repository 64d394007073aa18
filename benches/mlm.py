"""Masked-LM data pipeline benchmarks. One function per measurement; `main` runs them.

masking: masked tokens per second of bbpe's `Masker.mask_batch` against transformers'
`DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, return_tensors="np")`
on the same batches of real token ids (256 x 512 by default): English documents from
`../shared/corpus/en.jsonl.xz` encoded with bbpe's roberta-base vocabulary,
concatenated and cut into 510-token blocks wrapped in <s> ... </s>. The collator's
tokenizer is a `RobertaTokenizerFast` built offline from the bundled vocabulary
files. Every engine masks every batch once per repeat, in the same process; each
keeps its best repeat. Rows:

- bbpe ROBERTA / HF_BERT: `mask_batch` with each preset (HF_BERT is the collator's
  policy: Bernoulli per non-special token); whole words and SpanBERT spans for
  comparison (defaults otherwise).
- transformers collator: called on a list of the batch's rows (1-D id arrays), as
  a data loader does; it finds the special tokens itself, row by row in Python.
- transformers collator + special_tokens_mask: rows as dicts carrying the mask,
  the input its documentation recommends for speed.
- transformers numpy_mask_tokens: the collator's masking step alone, handed the
  2-D batch and a precomputed special-tokens mask (no collation).

formats: the statistics behind the paper's input-format ablation. The corpus is
encoded with roberta-base into sentence-split shards (`bbpe.shards.write(...,
split_sentences=True)`), then packed in each of the four formats (max_len 512):
blocks, mean tokens per block, and for batches of 256 blocks (the paper's batch
size) and for token-budget batches of 256 x 512 padded tokens: the padding
fraction and the real tokens per batch.

    PYTHONPATH=python python benches/mlm.py
    PYTHONPATH=python python benches/mlm.py --batches 8 --repeats 10 --markdown
"""

import argparse
import datetime
import importlib.util
import inspect
import itertools
import json
import lzma
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from common import CORPUS_DIR, REPO, render, reset_peak_rss, rss_mb

CORPUS = CORPUS_DIR / "en.jsonl.xz"
ROBERTA_DIR = REPO / "python" / "bbpe" / "vocabularies" / "roberta-base"
BLOCK = 510  # ids per block between <s> and </s>


# ---------------------------------------------------------------------------
# Shared helpers


def load_blocks(path: Path, count: int) -> np.ndarray:
    """`count` blocks of <s> + 510 ids + </s> (int64), from the first documents
    of an xz JSONL corpus encoded with bbpe's roberta-base vocabulary."""
    import bbpe

    tokenizer = bbpe.Tokenizer.from_pretrained("roberta-base")
    needed = count * BLOCK
    parts, have = [], 0
    with lzma.open(path, "rt", encoding="utf-8") as lines:
        texts = []
        for line in lines:
            texts.append(json.loads(line)["text"])
            if len(texts) == 1000:
                ids, _ = tokenizer.encode_batch_flat(texts)
                parts.append(ids)
                have += ids.size
                texts = []
                if have >= needed:
                    break
        if texts:  # a corpus of fewer than 1000 documents, or its tail
            parts.append(tokenizer.encode_batch_flat(texts)[0])
    ids = np.concatenate(parts)
    if ids.size < needed:
        raise SystemExit(f"{path} has {ids.size} tokens, fewer than the {needed} needed")
    rows = ids[:needed].astype(np.int64).reshape(count, BLOCK)
    bos = np.full((count, 1), tokenizer.bos_token_id, dtype=np.int64)
    eos = np.full((count, 1), tokenizer.eos_token_id, dtype=np.int64)
    return np.hstack([bos, rows, eos])


def hf_roberta_tokenizer():
    """transformers' fast RoBERTa tokenizer from the bundled files, offline.
    transformers 5 takes the files as `vocab=`/`merges=`; it still accepts 4's
    `vocab_file=`/`merges_file=` but ignores them (a five-token vocabulary)."""
    from transformers import RobertaTokenizerFast

    vocab, merges = str(ROBERTA_DIR / "vocab.json"), str(ROBERTA_DIR / "merges.txt")
    if "vocab" in inspect.signature(RobertaTokenizerFast.__init__).parameters:
        tokenizer = RobertaTokenizerFast(vocab=vocab, merges=merges)
    else:
        tokenizer = RobertaTokenizerFast(vocab_file=vocab, merges_file=merges)
    assert len(tokenizer) == 50265 and tokenizer.mask_token_id == 50264, len(tokenizer)
    return tokenizer


def best_seconds(engines: dict, batches: list[np.ndarray], repeats: int) -> dict:
    """Best time over `repeats` of each engine masking all batches, the engines
    taking turns within a repeat; and the masked tokens of its last repeat."""
    best = dict.fromkeys(engines, float("inf"))
    masked = {}
    for _ in range(repeats):
        for name, run in engines.items():
            start = time.perf_counter()
            labels = [run(b, batch) for b, batch in enumerate(batches)]
            best[name] = min(best[name], time.perf_counter() - start)
            masked[name] = sum(int((lab != -100).sum()) for lab in labels)
    return {name: (best[name], masked[name]) for name in engines}


# ---------------------------------------------------------------------------
# Measurements


def measure_masking(blocks: np.ndarray, batch_size: int, repeats: int, markdown: bool) -> None:
    """Masked tokens per second: bbpe's Masker against transformers' collator."""
    import bbpe
    from bbpe.masking import HF_BERT, ROBERTA, Masker, MaskingConfig

    torch_before = "torch" in sys.modules  # bbpe must not have imported it
    import transformers
    from transformers import DataCollatorForLanguageModeling

    hf = hf_roberta_tokenizer()
    collator = DataCollatorForLanguageModeling(
        tokenizer=hf, mlm_probability=0.15, return_tensors="np"
    )
    tokenizer = bbpe.Tokenizer.from_pretrained("roberta-base")
    maskers = {
        name: Masker.from_tokenizer(tokenizer, config=config)
        for name, config in [
            ("ROBERTA", ROBERTA),
            ("HF_BERT", HF_BERT),
            ("whole words", MaskingConfig(unit="word")),
            ("SpanBERT spans", MaskingConfig(unit="span")),
        ]
    }

    batches = [blocks[i : i + batch_size] for i in range(0, len(blocks), batch_size)]
    rows_of = [list(batch) for batch in batches]
    special_masks = [np.isin(batch, hf.all_special_ids).astype(np.int64) for batch in batches]
    dicts_of = [
        [{"input_ids": ids, "special_tokens_mask": m} for ids, m in zip(batch, mask, strict=True)]
        for batch, mask in zip(batches, special_masks, strict=True)
    ]

    def indices(b):
        return range(b * batch_size, (b + 1) * batch_size)

    def masking_with(masker):
        return lambda b, batch: masker.mask_batch(batch, 0, indices(b))[1]

    engines = {f"bbpe Masker.mask_batch, {name}": masking_with(m) for name, m in maskers.items()}

    def collate_rows(b, batch):
        return collator(rows_of[b])["labels"]

    def collate_dicts(b, batch):
        return collator(dicts_of[b])["labels"]

    def mask_tokens_only(b, batch):
        return collator.numpy_mask_tokens(batch.copy(), special_tokens_mask=special_masks[b])[1]

    baseline = "transformers collator (id rows)"
    engines[baseline] = collate_rows
    engines["transformers collator (+ special_tokens_mask)"] = collate_dicts
    engines["transformers numpy_mask_tokens (2-D, mask given)"] = mask_tokens_only
    results = best_seconds(engines, batches, repeats)

    base_rate = results[baseline][1] / results[baseline][0]
    rows = []
    for name, (seconds, masked) in results.items():
        rate = masked / seconds
        rows.append(
            [
                name,
                f"{seconds / len(batches) * 1e3:.2f}",
                f"{masked / len(batches):.0f}",
                f"{rate / 1e6:.2f}",
                f"{rate / base_rate:.1f}x",
            ]
        )
    headers = ["masking", "ms / batch", "masked / batch", "M masked tokens/s", "vs collator"]
    print(
        f"\nmasking: {len(batches)} batches of {batch_size} x {blocks.shape[1]} ids, "
        f"best of {repeats}"
    )
    print(render(headers, rows, markdown))
    torch_installed = importlib.util.find_spec("torch") is not None
    print(
        f"transformers {transformers.__version__}; torch installed: {torch_installed}, "
        f"imported by bbpe: {torch_before}, after importing transformers: "
        f"{'torch' in sys.modules}"
    )


def measure_formats(corpus: Path, max_len: int, batch_size: int, markdown: bool) -> None:
    import tempfile

    from bbpe import Tokenizer, data, packing, shards

    roberta = Tokenizer.from_pretrained("roberta-base")
    specials = packing.SpecialIds.from_tokenizer(roberta)
    with tempfile.TemporaryDirectory(prefix="bbpe-mlm-formats-") as tmp:
        start = time.perf_counter()
        written = shards.write(corpus, tmp, roberta, split_sentences=True)
        print(
            f"formats: {written['documents']:,} documents, {written['sequences']:,} sentences, "
            f"{written['tokens']:,} tokens, encoded in {time.perf_counter() - start:.1f} s"
        )
        sentences = packing.ShardDocuments(tmp)
        budget = batch_size * max_len
        rows = []
        for name in packing.FORMATS:
            start = time.perf_counter()
            blocks = packing.pack(sentences, name, specials, max_len=max_len)
            lengths = blocks.lengths()
            seconds = time.perf_counter() - start
            fixed = data.FixedBatches(len(lengths), batch_size, shuffle=True)
            budgeted = data.TokenBudgetBatches(lengths, budget)
            stats = [_batch_stats(lengths, sampler) for sampler in (fixed, budgeted)]
            rows.append(
                [name, f"{len(blocks):,}", f"{lengths.mean():.1f}", f"{seconds:.2f}"]
                + [f"{padding:.1%}" for padding, _, _ in stats]
                + [f"{tokens:,.0f} ({per_batch:.0f} blocks)" for _, tokens, per_batch in stats]
            )
    print(
        render(
            [
                "format",
                "blocks",
                "tokens/block",
                "pack s",
                "padding, 256-block batches",
                f"padding, {budget:,}-token budget",
                "tokens/batch, 256-block batches",
                "tokens/batch, budget",
            ],
            rows,
            markdown,
        )
    )


def measure_pipeline(
    corpus: Path, max_len: int, batch_size: int, count: int, repeats: int, markdown: bool
) -> None:
    """End to end: `MaskedLMIterable` over sentence-split shards with
    `TokenBudgetBatches` (read blocks, pack, mask, collate), one format at a time,
    against transformers' collator masking and padding the same blocks,
    handed over ready-made (so its row reading is not timed). Rates count real
    tokens (padding excluded). Memory: the process's RSS before a format (the
    shards' mapped pages it touched, transformers, earlier formats' leftovers) and
    how far its peak rose above that while bbpe delivered the batches. The
    digest is SHA-256 of every array of every batch, so two builds can be shown
    to deliver the same batches."""
    import hashlib
    import tempfile

    import transformers
    from transformers import DataCollatorForLanguageModeling

    from bbpe import Tokenizer, data, packing, shards

    roberta = Tokenizer.from_pretrained("roberta-base")
    collator = DataCollatorForLanguageModeling(
        tokenizer=hf_roberta_tokenizer(), mlm_probability=0.15, return_tensors="np"
    )
    budget = batch_size * max_len
    rows = []
    with tempfile.TemporaryDirectory(prefix="bbpe-mlm-pipeline-") as tmp:
        shards.write(corpus, tmp, roberta, split_sentences=True)
        for name in packing.FORMATS:
            dataset = data.MaskedLMDataset(tmp, roberta, format=name, max_len=max_len)
            sampler = data.TokenBudgetBatches.for_dataset(dataset, budget)
            taken = min(count, len(sampler))
            held = rss_mb("VmRSS")
            reset_peak_rss()
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                stream = data.MaskedLMIterable(dataset, sampler)
                tokens = sum(
                    int(b["attention_mask"].sum()) for b in itertools.islice(stream, taken)
                )
                best = min(best, time.perf_counter() - start)
            growth = rss_mb("VmHWM") - held
            digest = hashlib.sha256()
            for batch in itertools.islice(data.MaskedLMIterable(dataset, sampler), taken):
                for key in sorted(batch):
                    digest.update(key.encode() + np.ascontiguousarray(batch[key]).tobytes())
            ready = [
                [dataset.blocks[i].input_ids for i in indices]
                for indices in itertools.islice(sampler, taken)
            ]
            hf_best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                for rows_of_batch in ready:
                    collator(rows_of_batch)
                hf_best = min(hf_best, time.perf_counter() - start)
            rate, hf_rate = tokens / best, tokens / hf_best
            rows.append(
                [
                    name,
                    f"{taken}",
                    f"{tokens / taken:,.0f}",
                    f"{rate / 1e6:.2f}",
                    f"{hf_rate / 1e6:.2f}",
                    f"{rate / hf_rate:.2f}x",
                    f"{held:,.0f} + {growth:,.0f}",
                    digest.hexdigest()[:16],
                ]
            )
    headers = [
        "format",
        "batches",
        "tokens/batch",
        "bbpe Mtok/s (end to end)",
        "collator Mtok/s (ready blocks)",
        "bbpe / collator",
        "RSS MB: held + peak growth",
        "batches' SHA-256",
    ]
    print(
        f"\npipeline: the first {count} batches of {budget:,}-token budgets per format, "
        f"max_len {max_len}, seed 0, epoch 0, best of {repeats}; transformers "
        f"{transformers.__version__}"
    )
    print(render(headers, rows, markdown))


def _batch_stats(lengths: np.ndarray, sampler) -> tuple[float, float, float]:
    """Padding fraction, mean real tokens per batch and mean blocks per batch."""
    real = padded = count = 0
    batches = list(sampler)
    for batch in batches:
        batch_lengths = lengths[batch]
        real += int(batch_lengths.sum())
        padded += int(batch_lengths.max()) * len(batch)
        count += len(batch)
    return 1 - real / padded, real / len(batches), count / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="xz JSONL with a 'text' field")
    parser.add_argument("--batches", type=int, default=4, help="batches per repeat")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--skip",
        choices=["masking", "formats", "pipeline"],
        action="append",
        default=[],
        help="leave out",
    )
    parser.add_argument(
        "--pipeline-batches", type=int, default=40, help="batches per format, end to end"
    )
    args = parser.parse_args()

    print("command: PYTHONPATH=python python " + shlex.join(["benches/mlm.py", *sys.argv[1:]]))
    if "masking" not in args.skip:
        blocks = load_blocks(args.corpus, args.batches * args.batch_size)
        print(
            f"blocks: {len(blocks)} x {blocks.shape[1]} ids from {args.corpus.name}; "
            f"{os.cpu_count()} cores"
        )
        measure_masking(blocks, args.batch_size, args.repeats, args.markdown)
    if "formats" not in args.skip:
        measure_formats(args.corpus, BLOCK + 2, args.batch_size, args.markdown)
    if "pipeline" not in args.skip:
        measure_pipeline(
            args.corpus,
            BLOCK + 2,
            args.batch_size,
            args.pipeline_batches,
            args.repeats,
            args.markdown,
        )
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"python {platform.python_version()}, numpy {np.__version__}"
    )


if __name__ == "__main__":
    main()
