"""`manifest.json`, the record a writer leaves beside its shards: per-shard
counts and SHA-256 sums, and the settings that made them. Read here; written
by the Rust pipeline (rust/shards/writer.rs)."""

from __future__ import annotations

import hashlib
import json
import os

from bbpe.shards.format import COPY_BUFFER, PathLike, ShardFormatError

#: What the Rust writer names the manifest beside the shards.
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "megatron-mmididx-v1"


def read_manifest(directory: PathLike) -> dict | None:
    """`directory/manifest.json` parsed, or None when there is none.

    Raises ShardFormatError (naming the file) when it is not a JSON object.
    """
    path = os.path.join(os.fspath(directory), MANIFEST_NAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ShardFormatError(f"{path}: cannot be read as JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise ShardFormatError(f"{path}: expected a JSON object")
    return manifest


def shard_entries(manifest: dict, directory: str) -> list[tuple[str, dict]]:
    """(absolute-ish prefix, entry) for each well-formed shard entry."""
    shards = manifest.get("shards")
    out = []
    if isinstance(shards, list):
        for entry in shards:
            if isinstance(entry, dict) and isinstance(entry.get("prefix"), str):
                out.append((os.path.join(directory, entry["prefix"]), entry))
    return out


def entry_for(prefix: str) -> tuple[str, dict | None]:
    """(manifest path, this prefix's entry) from the manifest beside `prefix`."""
    directory = os.path.dirname(prefix) or "."
    manifest = read_manifest(directory)
    manifest_path = os.path.join(directory, MANIFEST_NAME)
    if manifest is None:
        return manifest_path, None
    target = os.path.normpath(os.path.abspath(prefix))
    for shard_prefix, entry in shard_entries(manifest, directory):
        if os.path.normpath(os.path.abspath(shard_prefix)) == target:
            return manifest_path, entry
    return manifest_path, None


def file_sha256(path: PathLike) -> str:
    """SHA-256 of a file, read in 16 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(COPY_BUFFER):
            digest.update(block)
    return digest.hexdigest()


def entry_name(manifest_path: str, entry: dict) -> str:
    return f"{manifest_path} (shard {entry.get('prefix')!r})"


def checksum_problems(path: str, got: str, want: str, where: str) -> list[str]:
    if got == want.lower():
        return []
    return [f"{path}: SHA-256 {got} does not match {want} in {where}"]


#: What every manifest records for each shard; a missing field would silently
#: skip its check. (`input_documents` is bbpe's own, checked where present.)
ENTRY_FIELDS = {
    "documents": int,
    "sequences": int,
    "tokens": int,
    "bin_bytes": int,
    "bin_sha256": str,
    "idx_sha256": str,
}


def entry_field_problems(where: str, entry: dict) -> list[str]:
    problems = []
    for key, kind in ENTRY_FIELDS.items():
        value = entry.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"{where}: {key} is {value!r}, not {kind.__name__}")
        elif kind is int and value < 0:
            problems.append(f"{where}: {key} is negative ({value})")
    return problems


def compose_run(
    header: dict, pieces: list[tuple[list[dict], int]], inputs: list, extra: dict | None = None
) -> dict:
    """One run's manifest, in the single-machine writer's schema, from the
    consecutive pieces it was written in (a rank's part, a Ray block), in
    corpus order: each piece's shard entries, whose ``input_documents`` count
    from the piece's start, and the input documents it read (empty ones
    included). `header` gives the tokenizer, settings and dtype; `extra`
    fields follow the inputs. Each entry's ``input_documents`` then counts
    from the corpus's start, as one writer's would, and the totals are summed."""
    shards: list[dict] = []
    read = 0
    for entries, piece_documents in pieces:
        shards += [
            entry | {"input_documents": read + entry["input_documents"]} for entry in entries
        ]
        read += piece_documents
    documents = sum(entry["documents"] for entry in shards)
    return {
        "tokenizer": header["tokenizer"],
        "settings": header["settings"],
        "inputs": inputs,
        **(extra or {}),
        "format": MANIFEST_FORMAT,
        "dtype": header["dtype"],
        "documents": documents,
        "sequences": sum(entry["sequences"] for entry in shards),
        "tokens": sum(entry["tokens"] for entry in shards),
        "empty_documents": read - documents,
        "shards": shards,
        "complete": True,
    }
