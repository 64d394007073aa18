"""What a run's blocks are, and which of them an earlier run finished.

A block is one input file, or a byte range of one (its key from the file's
real path and the range), or one block of a `ray.data.Dataset` (its key from
its position; the dataset's order is kept). Its input record (path, size and
range, or position, rows and a digest of the texts) goes into its receipt, so
a rerun re-encodes a block whose input changed.

Files of one document per line (JSONL, or the `lines` format) that are not
compressed are cut into ranges of about `block_bytes`, each ending at a line
end, so that one large file is shared out too; the ranges' documents, in
order, are the file's. Other files are one block each: a compressed stream
cannot be entered in the middle, and paragraphs may span any cut."""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import ray

from bbpe import shards
from bbpe.ray.sink import receipt_path
from bbpe.shards.verify import check_against


@dataclass(frozen=True)
class Block:
    key: str
    #: What the manifest lists as this block's input.
    input: dict
    #: A file block's path, or a dataset block's texts (a table of `key` and `text`).
    path: str | None = None
    texts: Any = None
    #: A file block's byte range (start, end); the whole file when None.
    byte_range: tuple[int, int] | None = None


#: What the core reads as compressed, by suffix: such files are not cut.
COMPRESSED_SUFFIXES = (".gz", ".xz", ".zst", ".zstd")
#: How far to read at a time when looking for the line end after a cut.
SCAN_BYTES = 1 << 16


def file_blocks(inputs, document_format: str, block_bytes: int) -> list[Block]:
    """The blocks of the files that `bbpe encode` would read for `inputs`, in
    its order: a file, or ranges of it of about `block_bytes` (see above)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if any(os.fspath(p) == "-" for p in inputs):
        raise ValueError("standard input (-) cannot be shared out between workers: name files")
    if block_bytes < 1:
        raise ValueError(f"block size must be positive, not {block_bytes}")
    blocks = []
    for path in shards.input_files(inputs):
        real = os.path.realpath(path)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(real))
        key = f"{name}-{hashlib.sha256(real.encode()).hexdigest()[:12]}"
        size = os.path.getsize(path)
        record = {"path": path, "bytes": size}
        # Workers read by absolute path: their working directory is not the driver's.
        absolute = os.path.abspath(path)
        cuts = line_cuts(path, block_bytes) if _one_document_per_line(path, document_format) else []
        if not cuts:
            blocks.append(Block(key, record, path=absolute))
            continue
        bounds = [0, *cuts, size]
        for start, end in zip(bounds, bounds[1:], strict=False):
            ranged = record | {"start": start, "end": end}
            blocks.append(Block(f"{key}-{start:012d}", ranged, absolute, byte_range=(start, end)))
    return blocks


def _one_document_per_line(path: str, document_format: str) -> bool:
    """Whether `path` is read as one document per line, uncompressed (the
    core's rule for "auto": JSONL by a `.jsonl` or `.json` name)."""
    if path.endswith(COMPRESSED_SUFFIXES):
        return False
    if document_format == "auto":
        return path.endswith((".jsonl", ".json"))
    return document_format in ("jsonl", "lines")


def line_cuts(path: str, block_bytes: int) -> list[int]:
    """Offsets that cut `path` into ranges of at least `block_bytes`, each
    just after a line end (none for a file of one range)."""
    cuts = []
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        target = block_bytes
        while target < size:
            f.seek(target - 1)
            position = target - 1
            while True:
                chunk = f.read(SCAN_BYTES)
                newline = chunk.find(b"\n")
                if newline >= 0 or not chunk:
                    break
                position += len(chunk)
            if newline < 0:  # the last line has no end: it stays in the last range
                break
            cut = position + newline + 1
            if cut >= size:
                break
            cuts.append(cut)
            target = cut + block_bytes
    return cuts


def dataset_blocks(dataset, column: str) -> list[Block]:
    """One block per block of `dataset` (run with its order kept), its texts
    the string column `column`."""
    schema = dataset.schema()
    if schema is None:  # no rows, no blocks
        return []
    names = schema.names
    if column not in names:
        raise ValueError(f"the dataset has no column {column!r} (its columns: {names})")
    refs = dataset.select_columns([column]).to_arrow_refs()
    keyed = [
        _keyed_texts.options(num_returns=2).remote(ref, f"block{i:06d}", column)
        for i, ref in enumerate(refs)
    ]
    blocks = []
    for i, (texts, described) in enumerate(keyed):
        record = {"dataset_block": i} | ray.get(described)
        blocks.append(Block(f"block{i:06d}", record, texts=texts))
    return blocks


@ray.remote
def _keyed_texts(table: pa.Table, key: str, column: str) -> tuple[pa.Table, dict]:
    """A block's texts as the encoder takes them, and its rows and digest."""
    texts = table.column(column)
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        raise ValueError(f"column {column!r} holds {texts.type}, not strings (block {key})")
    if texts.null_count:
        row = next(i for i, t in enumerate(texts.to_pylist()) if t is None)
        raise ValueError(f"column {column!r}, block {key}, row {row}: no text (null)")
    digest = hashlib.sha256()
    for text in texts.to_pylist():
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    keyed = pa.table({"key": pa.array([key] * len(texts), pa.string()), "text": texts})
    return keyed, {"rows": len(texts), "sha256": digest.hexdigest()}


def finished_blocks(out_dir: str, blocks: list[Block], run: dict) -> dict[str, dict]:
    """The receipts in `out_dir` that hold for this run: same block, input,
    tokenizer and settings, and shard files that match their counts and
    checksums (checked on several threads: hashing releases the GIL)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = pool.map(lambda block: _receipt_if_whole(out_dir, block, run), blocks)
        return {block.key: receipt for block, receipt in zip(blocks, found, strict=True) if receipt}


def _receipt_if_whole(out_dir: str, block: Block, run: dict) -> dict | None:
    path = receipt_path(out_dir, block.key)
    try:
        with open(path, encoding="utf-8") as f:
            receipt = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(receipt, dict):
        return None
    if (receipt.get("key"), receipt.get("input"), receipt.get("run")) != (
        block.key,
        block.input,
        run,
    ):
        return None
    if receipt.get("prefix") is None:
        return receipt if receipt.get("documents") == 0 else None
    problems = check_against(os.path.join(out_dir, receipt["prefix"]), receipt, path)
    return None if problems else receipt
