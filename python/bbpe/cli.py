"""The `bbpe` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator

from bbpe.corpus import CorpusError, Document, read_documents, sample_path
from bbpe.tokenizer import Tokenizer

BATCH_BYTES = 8 << 20


class Progress:
    """A one-line progress report on stderr, redrawn at most every 0.2 s, shown
    only on a terminal (or when forced) so that logs and pipes stay clean."""

    def __init__(self, total_bytes: int | None, enabled: bool):
        self.total = total_bytes
        self.enabled = enabled
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def update(self, done_bytes: int, tokens: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self.last_draw < 0.2):
            return
        self.last_draw = now
        elapsed = max(now - self.start, 1e-9)
        rate = done_bytes / elapsed
        token_rate = tokens / elapsed / 1e6
        line = f"{done_bytes / 1e6:9.1f} MB  {rate / 1e6:7.1f} MB/s  {token_rate:6.2f} M tokens/s"
        if self.total:
            fraction = min(done_bytes / self.total, 1.0)
            bar = "#" * int(fraction * 24)
            eta = (self.total - done_bytes) / rate if rate else 0.0
            line = f"[{bar:<24}] {fraction:6.1%} {line}  ETA {eta:5.0f} s"
        sys.stderr.write("\r" + line + ("\n" if final else ""))
        sys.stderr.flush()


def _batches(documents: Iterable[Document]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for doc in documents:
        batch.append(doc.text)
        size += len(doc.text)
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _documents(paths: list[str], fmt: str, text_field: str) -> Iterator[Document]:
    for path in paths:
        yield from read_documents(path, fmt, text_field)


def cmd_encode(args: argparse.Namespace) -> int:
    paths = list(args.inputs)
    if args.sample:
        paths.append(str(sample_path()))
    if not paths:
        raise CorpusError("no input: name corpus files, or pass --sample for the bundled one")
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
    tokenizer = Tokenizer.from_pretrained(args.tokenizer)
    total = sum(os.path.getsize(p) for p in paths)
    compressed = any(p.endswith((".gz", ".xz")) for p in paths)
    progress = Progress(None if compressed else total, args.progress or sys.stderr.isatty())

    documents = tokens = text_bytes = 0
    encode_seconds = 0.0
    started = time.perf_counter()
    for batch in _batches(_documents(paths, args.format, args.text_field)):
        begin = time.perf_counter()
        ids, _ = tokenizer.encode_batch_flat(batch, threads=args.threads)
        encode_seconds += time.perf_counter() - begin
        documents += len(batch)
        tokens += len(ids)
        text_bytes += sum(len(t.encode("utf-8", "surrogatepass")) for t in batch)
        progress.update(text_bytes, tokens)
    progress.update(text_bytes, tokens, final=True)
    wall = time.perf_counter() - started
    summary = {
        "tokenizer": args.tokenizer,
        "inputs": paths,
        "documents": documents,
        "text_bytes": text_bytes,
        "tokens": tokens,
        "bytes_per_token": round(text_bytes / tokens, 3) if tokens else None,
        "encode_seconds": round(encode_seconds, 3),
        "encode_mb_per_s": round(text_bytes / 1e6 / encode_seconds, 1) if encode_seconds else None,
        "wall_seconds": round(wall, 3),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{documents:,} documents, {text_bytes / 1e6:,.2f} MB of text -> {tokens:,} tokens "
            f"({summary['bytes_per_token']} bytes/token) with {args.tokenizer}\n"
            f"encoding: {encode_seconds:.3f} s, {summary['encode_mb_per_s']} MB/s, "
            f"{tokens / encode_seconds / 1e6 if encode_seconds else 0:.2f} M tokens/s "
            f"(wall time with reading: {wall:.3f} s)"
        )
    return 0


def cmd_tokenize(args: argparse.Namespace) -> int:
    tokenizer = Tokenizer.from_pretrained(args.tokenizer)
    text = args.text if args.text is not None else sys.stdin.read()
    ids = tokenizer.encode(text, add_special_tokens=args.special)
    if args.json:
        print(json.dumps({"ids": ids, "tokens": [tokenizer.id_to_token(i) for i in ids]}))
    else:
        for i in ids:
            print(f"{i}\t{tokenizer.id_to_token(i)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bbpe", description="Byte-level BPE tokenizer tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    encode = sub.add_parser(
        "encode",
        help="encode corpus files and report token counts and speed",
        description="Encode documents from JSONL or text files (optionally .gz/.xz).",
    )
    encode.add_argument("inputs", nargs="*", help="corpus files")
    encode.add_argument("--sample", action="store_true", help="also encode the bundled sample")
    encode.add_argument(
        "--tokenizer", default="roberta-base", help="gpt2, roberta-base or a directory"
    )
    encode.add_argument(
        "--format",
        default="auto",
        choices=["auto", "jsonl", "lines", "paragraphs"],
        help="auto: .jsonl is JSONL, anything else has documents separated by blank lines",
    )
    encode.add_argument("--text-field", default="text", help="JSONL field holding the text")
    encode.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    encode.add_argument(
        "--progress", action="store_true", help="show progress even when not a terminal"
    )
    encode.add_argument("--json", action="store_true", help="print the summary as JSON")
    encode.set_defaults(run=cmd_encode)

    tokenize = sub.add_parser("tokenize", help="show the tokens of a text")
    tokenize.add_argument("text", nargs="?", help="text (default: standard input)")
    tokenize.add_argument("--tokenizer", default="roberta-base")
    tokenize.add_argument(
        "--special", action="store_true", help="add the template's special tokens"
    )
    tokenize.add_argument("--json", action="store_true")
    tokenize.set_defaults(run=cmd_tokenize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CorpusError, FileNotFoundError, ValueError) as e:
        print(f"bbpe {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bbpe {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
