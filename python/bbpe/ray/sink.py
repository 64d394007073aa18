"""`ShardSink`, the Ray `Datasink` that publishes each encoded block as one
shard pair `data_<key>.bin/.idx` and then its receipt `data_<key>.receipt.json`.

Each file is written as `<name>.partial`, flushed and renamed when whole
(`bbpe._publish`), and the receipt last: a receipt whose checksums match its
files marks a finished block. A write task killed midway leaves at most
partial files (the retry writes the same names again) or shard files without
a receipt (written again by the next run), never a receipt for half a block."""

from __future__ import annotations

import hashlib
import json
import os

from ray.data import Datasink
from ray.data.block import BlockAccessor

from bbpe._publish import remove_quietly, write_durably

PREFIX = "data"
RECEIPT_SUFFIX = ".receipt.json"


def shard_prefix(key: str) -> str:
    return f"{PREFIX}_{key}"


def receipt_path(out_dir: str, key: str) -> str:
    return os.path.join(out_dir, shard_prefix(key) + RECEIPT_SUFFIX)


class ShardSink(Datasink):
    """Writes `bbpe.ray.encoding.ENCODED` rows into `out_dir`. `run` (tokenizer,
    settings, dtype) and each block's input (by key) go into the receipts, so
    that a later run can tell whether a receipt is one of its own."""

    def __init__(self, out_dir: str, run: dict, inputs: dict[str, dict]):
        self.out_dir = out_dir
        self.run = run
        self.inputs = inputs
        self.receipts: list[dict] = []

    def write(self, blocks, ctx) -> list[dict]:
        receipts = []
        for block in blocks:
            for row in BlockAccessor.for_block(block).to_arrow().to_pylist():
                receipts.append(self.write_block(row))
        return receipts

    def write_block(self, row: dict) -> dict:
        key = row["key"]
        # The old receipt goes first: no receipt ever describes other files.
        remove_quietly(receipt_path(self.out_dir, key))
        receipt = {"key": key, "input": self.inputs[key], "prefix": None}
        receipt |= {f: row[f] for f in ("documents", "sequences", "tokens", "input_documents")}
        receipt |= {"bin_bytes": 0, "bin_sha256": None, "idx_sha256": None}
        if row["bin"] is not None:
            prefix = shard_prefix(key)
            for suffix in ("bin", "idx"):
                data = row[suffix]
                self.write_file(os.path.join(self.out_dir, f"{prefix}.{suffix}"), data)
                receipt[f"{suffix}_sha256"] = hashlib.sha256(data).hexdigest()
            receipt |= {"prefix": prefix, "bin_bytes": len(row["bin"])}
        receipt |= {"text_bytes": row["text_bytes"], "run": self.run}
        write_durably(receipt_path(self.out_dir, key), json.dumps(receipt, indent=2))
        return receipt

    def write_file(self, path: str, data: bytes) -> None:
        """Every shard file goes through here: `<path>.partial`, flushed, renamed."""
        write_durably(path, data)

    def on_write_complete(self, write_result) -> None:
        # Called on the driver, on this object.
        self.receipts = [r for returned in write_result.write_returns for r in returned]
