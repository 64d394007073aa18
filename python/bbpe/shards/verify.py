"""`check`: whether a shard pair is sound, from its own arrays and from what
the manifest beside it records."""

from __future__ import annotations

import os

import numpy as np

from bbpe.shards.format import (
    Index,
    PathLike,
    ShardFormatError,
    bin_path,
    chunks,
    idx_path,
    prefix_of,
    read_index,
    sum_lengths,
)
from bbpe.shards.manifest import (
    checksum_problems,
    entry_field_problems,
    entry_for,
    entry_name,
    file_sha256,
)


def _first(mask_indices: np.ndarray, start: int) -> int:
    return int(mask_indices[0]) + start


def _check_arrays(index: Index, bin_size: int, bin_file: str) -> list[str]:
    """Lengths, pointers, document indices and the `.bin` size, chunk by chunk."""
    problems = []
    itemsize = index.dtype.itemsize
    lengths, pointers, docs = index.lengths, index.pointers, index.document_indices
    n, name = len(lengths), index.path
    negative = bad_pointers = tokens = 0
    first_negative = first_bad_pointer = -1
    pointer_example = (0, 0)
    offset = 0  # bytes before the current chunk, from the lengths
    for s, e in chunks(n):
        chunk = lengths[s:e].astype(np.int64)
        where = np.flatnonzero(chunk < 0)
        if len(where):
            negative += len(where)
            first_negative = first_negative if first_negative >= 0 else _first(where, s)
        ends = offset + np.cumsum(chunk * itemsize)
        expected = np.concatenate(([offset], ends[:-1]))
        where = np.flatnonzero(pointers[s:e] != expected)
        if len(where):
            bad_pointers += len(where)
            if first_bad_pointer < 0:
                first_bad_pointer = _first(where, s)
                pointer_example = (int(pointers[first_bad_pointer]), int(expected[where[0]]))
        offset = int(ends[-1])
        tokens += int(chunk.sum())
    if negative:
        problems.append(
            f"{name}: {negative} negative sequence lengths (first: sequence {first_negative}, "
            f"length {int(lengths[first_negative])})"
        )
    if bad_pointers:
        got, want = pointer_example
        problems.append(
            f"{name}: {bad_pointers} sequence pointers are not the cumulative byte offsets "
            f"of the lengths (first: sequence {first_bad_pointer} points at byte {got}, "
            f"expected {want})"
        )
    if bin_size != offset:
        kind = "truncated" if bin_size < offset else "too long"
        problems.append(
            f"{bin_file}: {kind}: {bin_size} bytes, but the {n} sequence lengths in {name} "
            f"add up to {tokens} {index.dtype.name} tokens = {offset} bytes"
        )
    if len(docs) == 0:
        problems.append(f"{name}: no document indices (expected [0, ..., {n}])")
        return problems
    if docs[0] != 0:
        problems.append(f"{name}: document indices start at {int(docs[0])}, not 0")
    if docs[-1] != n:
        problems.append(
            f"{name}: document indices end at {int(docs[-1])}, not at the number of sequences ({n})"
        )
    decreasing = 0
    first_decrease = -1
    for s, e in chunks(len(docs) - 1):
        where = np.flatnonzero(np.diff(docs[s : e + 1]) < 0)
        if len(where):
            decreasing += len(where)
            first_decrease = first_decrease if first_decrease >= 0 else _first(where, s)
    if decreasing:
        k = first_decrease
        problems.append(
            f"{name}: document indices decrease at {decreasing} places (first: entry "
            f"{k + 1} is {int(docs[k + 1])} after {int(docs[k])})"
        )
    return problems


def _check_manifest_entry(
    prefix: str, manifest_path: str, entry: dict, index: Index | None, checksums: bool
) -> list[str]:
    where = entry_name(manifest_path, entry)
    problems = entry_field_problems(where, entry)
    for suffix, key in ((".bin", "bin_sha256"), (".idx", "idx_sha256")):
        path = os.fspath(prefix) + suffix
        want = entry.get(key)
        if checksums and isinstance(want, str) and os.path.exists(path):
            problems += checksum_problems(path, file_sha256(path), want, where)
    bin_file = bin_path(prefix)
    if isinstance(entry.get("bin_bytes"), int) and os.path.exists(bin_file):
        size = os.path.getsize(bin_file)
        if size != entry["bin_bytes"]:
            problems.append(f"{bin_file}: {size} bytes, but {where} says {entry['bin_bytes']}")
    if index is not None:
        counts = {
            "sequences": len(index.lengths),
            "documents": max(len(index.document_indices) - 1, 0),
            "tokens": sum_lengths(index.lengths),
        }
        for key, got in counts.items():
            want = entry.get(key)
            if isinstance(want, int) and want != got:
                problems.append(f"{index.path}: {got} {key}, but {where} says {want}")
    return problems


def check(prefix: PathLike, *, checksums: bool = True) -> list[str]:
    """Problems found in the shard `prefix` (an empty list means it is sound).

    Checks the `.idx` header against its size, that the lengths are
    non-negative, that the pointers are the cumulative byte offsets, that the
    `.bin` holds exactly the tokens the lengths add up to, that the document
    indices run from 0 to N without decreasing, and, when `manifest.json`
    beside the shard lists it, its counts and (with `checksums`) the SHA-256 of
    both files. Every message names the file and what is wrong.
    """
    prefix = prefix_of(prefix)
    try:
        manifest_path, entry = entry_for(prefix)
    except ShardFormatError as e:
        return check_against(prefix, None, "", checksums=checksums) + [str(e)]
    return check_against(prefix, entry, manifest_path, checksums=checksums)


def check_against(
    prefix: PathLike, entry: dict | None, where: str, *, checksums: bool = True
) -> list[str]:
    """As :func:`check`, with the record of the shard given: `entry` (a
    manifest's shard entry, or a record of the same fields) read from the file
    `where`; None checks the files alone."""
    prefix = os.fspath(prefix)
    problems: list[str] = []
    index = None
    for path in (idx_path(prefix), bin_path(prefix)):
        if not os.path.exists(path):
            problems.append(f"{path}: missing")
    if not problems:
        try:
            index = read_index(idx_path(prefix))
        except ShardFormatError as e:
            problems.append(str(e))
        if index is not None:
            problems += _check_arrays(index, os.path.getsize(bin_path(prefix)), bin_path(prefix))
    if entry is not None:
        problems += _check_manifest_entry(prefix, where, entry, index, checksums)
    return problems
