"""`info`: counts, length statistics and problems of a shard or of a whole
directory of shards, and what an unfinished run still lacks."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import numpy as np

from bbpe.shards.format import (
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
    ENTRY_FIELDS,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    entry_field_problems,
    entry_for,
    entry_name,
    read_manifest,
    shard_entries,
)
from bbpe.shards.ranks import PART_PATTERN
from bbpe.shards.verify import check


def _bucket_bounds(k: int) -> tuple[int, int]:
    return (0, 1) if k == 0 else (1 << (k - 1), 1 << k)


def _length_stats(lengths: np.ndarray) -> dict[str, Any]:
    """min / mean / max and a power-of-two histogram of the lengths, in chunks."""
    counts = np.zeros(0, dtype=np.int64)
    low, high, total, n = None, None, 0, 0
    for s, e in chunks(len(lengths)):
        chunk = lengths[s:e]
        chunk = chunk[chunk >= 0]  # negative lengths are reported by check()
        if not len(chunk):
            continue
        # frexp's exponent is the bit length: 0 -> 0, 1 -> 1, 2..3 -> 2, 4..7 -> 3,
        # i.e. exactly the bucket [2**(k-1), 2**k), without log2's rounding.
        buckets = np.bincount(np.frexp(chunk.astype(np.float64))[1])
        if len(buckets) > len(counts):
            counts = np.pad(counts, (0, len(buckets) - len(counts)))
        counts[: len(buckets)] += buckets
        cmin, cmax = int(chunk.min()), int(chunk.max())
        low = cmin if low is None else min(low, cmin)
        high = cmax if high is None else max(high, cmax)
        total += int(chunk.sum(dtype=np.int64))
        n += len(chunk)
    return {
        "min_length": low,
        "mean_length": total / n if n else None,
        "max_length": high,
        "histogram": [(*_bucket_bounds(k), int(c)) for k, c in enumerate(counts)],
    }


def _merge_histograms(histograms: list[list[tuple[int, int, int]]]) -> list[tuple[int, int, int]]:
    counts: list[int] = []
    for histogram in histograms:
        for k, (_, _, c) in enumerate(histogram):
            if k == len(counts):
                counts.append(0)
            counts[k] += c
    return [(*_bucket_bounds(k), c) for k, c in enumerate(counts)]


def _shard_info(prefix: str, checksums: bool) -> dict[str, Any]:
    problems = check(prefix, checksums=checksums)
    row: dict[str, Any] = {
        "prefix": prefix,
        "dtype": None,
        "documents": None,
        "sequences": None,
        "tokens": None,
        "bin_bytes": os.path.getsize(bin_path(prefix))
        if os.path.exists(bin_path(prefix))
        else None,
        "min_length": None,
        "mean_length": None,
        "max_length": None,
        "histogram": [],
        "problems": problems,
    }
    try:
        index = read_index(idx_path(prefix))
    except (OSError, ShardFormatError):
        return row  # already among the problems
    row.update(
        dtype=index.dtype.name,
        documents=max(len(index.document_indices) - 1, 0),
        sequences=len(index.lengths),
        tokens=sum_lengths(index.lengths),
        **_length_stats(index.lengths),
    )
    return row


def info(path: PathLike, *, checksums: bool = True) -> dict[str, Any]:
    """Counts, length statistics and problems for a shard or a directory of shards.

    `path` is a shard prefix, or a directory: its `manifest.json` says which
    shards it holds, else every `*.idx` in it (sorted) is one. The result has
    per-shard rows under "shards" and totals: documents, sequences, tokens,
    dtype, min/mean/max_length, "histogram" as (low, high, count) for lengths in
    [0, 1), [1, 2), [2, 4), [4, 8), ..., "problems" (those of `check` plus
    disagreements with the manifest) and, for a directory, "unfinished": what
    is missing before it can be called a finished run (a manifest marked
    complete, listing every shard of its set, and no `.partial` files).
    With `checksums=False` the SHA-256 sums are not verified (everything
    else still is).
    """
    path = os.fspath(path)
    problems: list[str] = []
    unfinished: list[str] = []
    manifest = None
    if os.path.isdir(path):
        try:
            manifest = read_manifest(path)
        except ShardFormatError as e:
            problems.append(str(e))
        if manifest is not None:
            prefixes = [p for p, _ in shard_entries(manifest, path)]
            if not prefixes:
                problems.append(f"{os.path.join(path, MANIFEST_NAME)}: lists no shards")
            unfinished += _unlisted_shards(path, manifest, prefixes)
            problems += _disagreements_with_parts(path, manifest)
        else:
            prefixes = sorted(str(p)[:-4] for p in Path(path).glob("*.idx"))
            parts = [p for p in Path(path).glob(PART_PATTERN) if p.is_dir()]
            if not prefixes and parts:
                problems.append(
                    f"{path}: no *.idx files and no {MANIFEST_NAME}, but {len(parts)} parts "
                    f"({PART_PATTERN}): bbpe combine them once every rank has finished"
                )
            elif not prefixes:
                problems.append(f"{path}: no *.idx files and no {MANIFEST_NAME}")
            elif not problems:
                unfinished.append(
                    f"{path}: no {MANIFEST_NAME}, so nothing says the run finished "
                    f"({len(prefixes)} shard(s) found; shards written by another tool "
                    "can be checked one by one by prefix)"
                )
        set_prefix = _set_prefix(manifest)
        unfinished += [
            f"{partial}: a shard that was being written"
            for partial in sorted(Path(path).glob(f"{set_prefix}*partial"))
        ]
    else:
        prefixes = [prefix_of(path)]
    shards = [_shard_info(prefix, checksums) for prefix in prefixes]
    for row in shards:
        problems += row["problems"]
    readable = [row for row in shards if row["sequences"] is not None]
    dtypes = sorted({row["dtype"] for row in readable})
    if len(dtypes) > 1:
        problems.append(f"{path}: shards have different dtypes: {', '.join(dtypes)}")
    n = sum(row["sequences"] for row in readable)
    tokens = sum(row["tokens"] for row in readable)
    mins = [row["min_length"] for row in readable if row["min_length"] is not None]
    maxs = [row["max_length"] for row in readable if row["max_length"] is not None]
    result: dict[str, Any] = {
        "path": path,
        "dtype": dtypes[0] if len(dtypes) == 1 else None,
        "documents": sum(row["documents"] for row in readable),
        "sequences": n,
        "tokens": tokens,
        "min_length": min(mins) if mins else None,
        "mean_length": tokens / n if n else None,
        "max_length": max(maxs) if maxs else None,
        "histogram": _merge_histograms([row["histogram"] for row in readable]),
        "shards": shards,
        "manifest": manifest,
        "problems": problems,
        "unfinished": unfinished,
    }
    if manifest is not None:
        if manifest.get("complete") is not True:
            where = os.path.join(path, MANIFEST_NAME)
            unfinished.insert(0, f"{where}: not marked complete (the writer did not finish)")
        problems += _check_manifest_totals(manifest, path, result)
    return result


def _set_prefix(manifest: dict | None) -> str:
    """The start of the names of the writer's shard files (``data_``) as a
    glob pattern, or "" (any name) when the manifest does not say."""
    settings = manifest.get("settings") if manifest else None
    prefix = settings.get("prefix") if isinstance(settings, dict) else None
    return glob.escape(f"{prefix}_") if isinstance(prefix, str) else ""


def _unlisted_shards(directory: str, manifest: dict, listed: list[str]) -> list[str]:
    """Shards of the manifest's set in `directory` that it does not list: a
    writer stopped between finishing a shard and recording it."""
    known = {os.path.normpath(p) for p in listed}
    found = {
        os.path.normpath(str(p)[: -len(p.suffix)])
        for suffix in ("bin", "idx")
        for p in Path(directory).glob(f"{_set_prefix(manifest)}*.{suffix}")
    }
    where = os.path.join(directory, MANIFEST_NAME)
    return [
        f"{prefix}: a shard in the directory that {where} does not list"
        for prefix in sorted(found - known)
    ]


def _disagreements_with_parts(directory: str, manifest: dict) -> list[str]:
    """A manifest listing shards in other directories (the parts `bbpe combine`
    listed) must say what the manifests beside them say, since `check`
    verifies each shard against the one beside it: a part written again
    after combining leaves the combined manifest stale."""
    where = os.path.join(directory, MANIFEST_NAME)
    here = os.path.normpath(os.path.abspath(directory))
    problems = []
    for prefix, entry in shard_entries(manifest, directory):
        if os.path.normpath(os.path.abspath(os.path.dirname(prefix))) == here:
            continue
        try:
            beside_path, beside = entry_for(prefix)
        except ShardFormatError:
            continue  # reported by check()
        if beside is None:
            what = f"not listed in {beside_path}"
        else:
            differ = [key for key in ENTRY_FIELDS if entry.get(key) != beside.get(key)]
            what = f"{', '.join(differ)} differ from {beside_path}" if differ else ""
        if what:
            problems.append(
                f"{entry_name(where, entry)}: {what}: the part changed after it was "
                "combined (run bbpe combine again)"
            )
    return problems


def _check_manifest_totals(manifest: dict, directory: str, result: dict) -> list[str]:
    where = os.path.join(directory, MANIFEST_NAME)
    problems = []
    if manifest.get("format") != MANIFEST_FORMAT:
        problems.append(f"{where}: format is {manifest.get('format')!r}, not {MANIFEST_FORMAT!r}")
    if result["dtype"] is not None and manifest.get("dtype") not in (None, result["dtype"]):
        problems.append(
            f"{where}: dtype {manifest['dtype']!r}, but the shards are {result['dtype']}"
        )
    if all(row["sequences"] is not None for row in result["shards"]):
        for key in ("documents", "sequences", "tokens"):
            want = manifest.get(key)
            if isinstance(want, int) and want != result[key]:
                problems.append(f"{where}: {key} is {want}, but the shards hold {result[key]}")
    return problems + _check_input_documents(manifest, where)


def _check_input_documents(manifest: dict, where: str) -> list[str]:
    """Each shard's `input_documents` (where a resumed run starts reading)
    must grow by at least the documents the shard holds, and the last one
    not exceed the documents plus the empty ones: a wrong count would make a
    resumed run skip or repeat input."""
    entries = [e for _, e in shard_entries(manifest, "") if not entry_field_problems("", e)]
    if len(entries) != len(manifest.get("shards") or []):
        return []  # the malformed entries are reported by check()
    if not any("input_documents" in entry for entry in entries):
        return []  # not written by bbpe: nothing to resume
    problems = []
    before = 0
    for entry in entries:
        count = entry.get("input_documents")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            problems.append(f"{entry_name(where, entry)}: input_documents is {count!r}")
            return problems
        if count - before < entry["documents"]:
            problems.append(
                f"{entry_name(where, entry)}: input_documents {count} "
                f"leaves fewer than its {entry['documents']} documents after the previous "
                f"shard's {before}"
            )
        before = count
    empty = manifest.get("empty_documents")
    written = sum(entry["documents"] for entry in entries)
    # Empty documents after the last shard are counted but in no shard's total.
    if isinstance(empty, int) and before > written + empty:
        problems.append(
            f"{where}: the last shard's input_documents is {before}, more than the "
            f"{written} documents of the shards and {empty} empty ones"
        )
    return problems
