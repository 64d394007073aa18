"""What a run's blocks are, and which of them an earlier run finished.

A block is one input file (its key from the file's real path) or one block
of a `ray.data.Dataset` (its key from its position; the dataset's order is
kept). Its input record (path and size, or position, rows and a digest of the
texts) goes into its receipt, so a rerun re-encodes a block whose input
changed."""

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


def file_blocks(inputs) -> list[Block]:
    """One block per file that `bbpe encode` would read for `inputs`, in its order."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if any(os.fspath(p) == "-" for p in inputs):
        raise ValueError("standard input (-) cannot be shared out between workers: name files")
    blocks = []
    for path in shards.input_files(inputs):
        real = os.path.realpath(path)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(real))
        key = f"{name}-{hashlib.sha256(real.encode()).hexdigest()[:12]}"
        record = {"path": path, "bytes": os.path.getsize(path)}
        # Workers read by absolute path: their working directory is not the driver's.
        blocks.append(Block(key, record, path=os.path.abspath(path)))
    return blocks


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
