"""Blocks → shard bytes, in Ray actors that load the tokenizer once. Every
shard pair is made by the single-machine pipeline (`bbpe.shards.write`, one
thread, one shard) in a private temporary directory, so its bytes are by
construction the ones `bbpe encode` writes for the same documents: reader,
sentence cuts, end-of-document token, empty documents, dtype."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

import pyarrow as pa

from bbpe import shards
from bbpe.tokenizer import Tokenizer

#: No size limit: a block is always one shard pair.
ONE_SHARD = 1 << 62
#: Copying a block's byte range, a piece at a time.
COPY_BYTES = 1 << 24

#: What the encoder hands the sink for each block; `bin` and `idx` are null
#: when the block held only empty documents (no shard, as on one machine).
ENCODED = pa.schema(
    [
        ("key", pa.string()),
        ("documents", pa.int64()),
        ("sequences", pa.int64()),
        ("tokens", pa.int64()),
        ("input_documents", pa.int64()),
        ("text_bytes", pa.int64()),
        ("bin", pa.large_binary()),
        ("idx", pa.large_binary()),
    ]
)


@dataclass(frozen=True)
class Settings:
    """How documents are read and laid out, as `bbpe.shards.write` takes them."""

    format: str = "auto"
    text_field: str = "text"
    on_bad_input: str = "stop"
    append_eos: bool = False
    split_sentences: bool = False

    def write(self, inputs, directory: str, tokenizer) -> dict:
        return shards.write(
            inputs,
            directory,
            tokenizer,
            shard_size=ONE_SHARD,
            threads=1,
            format=self.format,
            text_field=self.text_field,
            on_bad_input=self.on_bad_input,
            append_eos=self.append_eos,
            split_sentences=self.split_sentences,
        )


#: Texts of a dataset go to the pipeline as JSON lines of this field.
TEXTS_AS_JSONL = {"format": "jsonl", "text_field": "text", "on_bad_input": "stop"}


def run_header(tokenizer, settings: Settings) -> dict:
    """What every block of a run shares, as the single-machine manifest
    records it (tokenizer name, size and fingerprint; settings; dtype): the
    pipeline run on no input. It also refuses bad settings (an end-of-document
    token the vocabulary lacks) before any work is handed out."""
    with tempfile.TemporaryDirectory(prefix="bbpe-ray-") as directory:
        settings.write([], directory, tokenizer)
        manifest = shards.read_manifest(directory)
    settings_record = dict(manifest["settings"], shard_bytes=None)  # one shard per block
    return {
        "tokenizer": manifest["tokenizer"],
        "settings": settings_record,
        "dtype": manifest["dtype"],
    }


class BlockEncoder:
    """The stateful callable of `map_batches`: a batch of blocks (rows of
    `key` and `path`, or of `key` and `text`, a block's texts in a run of
    rows) → one row of `ENCODED` per block."""

    def __init__(self, tokenizer, settings: Settings, run: dict):
        self.tokenizer = (
            Tokenizer.from_pretrained(tokenizer)
            if isinstance(tokenizer, (str, os.PathLike))
            else tokenizer
        )
        self.settings = settings
        self.run = run

    def __call__(self, batch: pa.Table) -> pa.Table:
        keys = batch.column("key").to_pylist()
        if "path" in batch.column_names:
            paths = batch.column("path").to_pylist()
            ranges = batch.column("range").to_pylist()
            rows = [
                self.encode_file(key, path, self.settings)
                if byte_range is None
                else self.encode_range(key, path, byte_range)
                for key, path, byte_range in zip(keys, paths, ranges, strict=True)
            ]
        else:
            texts = batch.column("text")
            rows = [
                self.encode_texts(key, texts.slice(start, end - start))
                for key, start, end in _runs(keys)
            ]
        return pa.Table.from_pylist(rows, schema=ENCODED)

    def encode_texts(self, key: str, texts: pa.ChunkedArray) -> dict:
        with tempfile.TemporaryDirectory(prefix="bbpe-ray-") as directory:
            path = os.path.join(directory, "texts.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                # Strings without nulls: `blocks.dataset_blocks` checked them.
                for text in texts.to_pylist():
                    f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
            settings = Settings(
                **TEXTS_AS_JSONL,
                append_eos=self.settings.append_eos,
                split_sentences=self.settings.split_sentences,
            )
            return self.encode_file(key, path, settings)

    def encode_range(self, key: str, path: str, byte_range: list[int]) -> dict:
        """A range of a file, copied under the file's own name (which decides
        how it is read) and encoded as a file; errors name the file and range."""
        start, end = byte_range
        with tempfile.TemporaryDirectory(prefix="bbpe-ray-") as directory:
            piece = os.path.join(directory, os.path.basename(path))
            with open(path, "rb") as source, open(piece, "wb") as out:
                source.seek(start)
                remaining = end - start
                while remaining:
                    data = source.read(min(remaining, COPY_BYTES))
                    if not data:
                        raise ValueError(f"{path}: ends before byte {end}: it changed while read")
                    out.write(data)
                    remaining -= len(data)
            try:
                return self.encode_file(key, piece, self.settings)
            except ValueError as e:
                where = f"{path} (the block of bytes {start}-{end}; lines counted from there)"
                raise ValueError(str(e).replace(piece, where)) from None

    def encode_file(self, key: str, path: str, settings: Settings) -> dict:
        with tempfile.TemporaryDirectory(prefix="bbpe-ray-") as directory:
            out = os.path.join(directory, "shards")
            summary = settings.write([path], out, self.tokenizer)
            manifest = shards.read_manifest(out)
            self._check_same_vocabulary(manifest, key)
            row = {
                "key": key,
                "input_documents": manifest["documents"] + manifest["empty_documents"],
                "text_bytes": summary["text_bytes"],
                "bin": None,
                "idx": None,
            }
            row |= {field: manifest[field] for field in ("documents", "sequences", "tokens")}
            if manifest["shards"]:
                (entry,) = manifest["shards"]  # no size limit: one shard
                prefix = os.path.join(out, entry["prefix"])
                for suffix in ("bin", "idx"):
                    with open(f"{prefix}.{suffix}", "rb") as f:
                        row[suffix] = f.read()
            return row

    def _check_same_vocabulary(self, manifest: dict, key: str) -> None:
        """A worker whose tokenizer differs from the driver's (other vocabulary
        files on its machine) would write shards of other ids."""
        for field in ("vocab_size", "vocab_sha256"):
            if manifest["tokenizer"][field] != self.run["tokenizer"][field]:
                raise ValueError(
                    f"block {key}: this worker's tokenizer has {field} "
                    f"{manifest['tokenizer'][field]}, the driver's {self.run['tokenizer'][field]}"
                )


def _runs(keys: list[str]):
    """(key, start, end) of each run of equal keys, in order."""
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            yield keys[start], start, i
            start = i
