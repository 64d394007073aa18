"""`combine_parts`: the parts that several ranks wrote (`bbpe.shards.ranks`)
made into one shard set, the `bbpe combine` command.

Only a manifest is written: ``manifest.json`` in the output directory lists
every part's shards in rank order, with the single run's header (tokenizer,
settings, every input in order) and totals, so `info`, `check`,
`ShardDocuments` and Megatron (given the listed prefixes) read the directory
as one run's shards. No shard data is copied or moved.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bbpe._publish import write_durably
from bbpe.shards.format import PathLike, ShardFormatError
from bbpe.shards.manifest import MANIFEST_NAME, compose_run, read_manifest, shard_entries
from bbpe.shards.ranks import PART_PATTERN, corpus_sha256, part_name
from bbpe.shards.verify import check

#: What every part of one run must have alike (besides its corpus fingerprint).
SAME_IN_EVERY_PART = ("tokenizer", "settings", "format", "dtype")


@dataclass
class _Part:
    path: str  # its manifest.json
    directory: str
    manifest: dict
    rank: int
    world_size: int


def combine_parts(
    output_dir: PathLike,
    part_manifests: Iterable[PathLike] | None = None,
    *,
    checksums: bool = True,
) -> dict:
    """Writes ``output_dir/manifest.json`` listing the shards of every rank's
    part, in rank order, and returns it.

    ``part_manifests`` are the parts' ``manifest.json`` files (or the
    directories holding them), one per rank, in any order: what
    ``bbpe.shards.write(inputs, output_dir, tokenizer, rank=r,
    world_size=w)`` wrote for each ``r`` (its summary's ``part``). By default
    they are found in ``output_dir`` (``rank-*-of-*/manifest.json``). The
    parts may lie elsewhere; the combined manifest names their shards
    relative to ``output_dir``.

    Nothing is written unless every rank 0 to W-1 is there exactly once,
    finished, with the same tokenizer, settings and corpus (the same file
    list split), and every listed shard passes `check` (sizes, pointers,
    counts and, with ``checksums``, SHA-256 against its part's manifest).
    Otherwise a ValueError (a ShardFormatError for an unsound shard) names
    the missing, duplicated or different part. A ``manifest.json`` already in
    ``output_dir`` is replaced only if an earlier combination wrote it.
    """
    output_dir = os.fspath(output_dir)
    if part_manifests is None:
        found = sorted(Path(output_dir).glob(PART_PATTERN))
        if not found:
            raise ValueError(
                f"{output_dir}: no parts ({PART_PATTERN}/); write them with "
                "bbpe encode --rank R --world-size W"
            )
        part_manifests = [p for p in found if p.is_dir()]
    target = os.path.join(output_dir, MANIFEST_NAME)
    existing = read_manifest(output_dir)
    if existing is not None and "parts" not in existing:
        raise ValueError(
            f"{target}: the manifest of shards written into {output_dir} itself, not of "
            "combined parts; combining would replace it: move that run elsewhere first"
        )
    by_rank = _by_rank([_read_part(p) for p in part_manifests], output_dir)
    first = by_rank[0]
    for part in by_rank[1:]:
        _check_alike(first, part)
    inputs = [entry for part in by_rank for entry in part.manifest.get("inputs", [])]
    _check_inputs(first, inputs)
    _check_shards(by_rank, checksums)
    manifest = _combined_manifest(by_rank, inputs, output_dir)
    write_durably(target, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _read_part(path: PathLike) -> _Part:
    path = os.fspath(path)
    if not os.path.isdir(path) and os.path.basename(path) != MANIFEST_NAME:
        raise ValueError(f"{path}: neither a part's directory nor its {MANIFEST_NAME}")
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    path = os.path.join(directory, MANIFEST_NAME)
    manifest = read_manifest(directory)
    if manifest is None:
        raise ValueError(f"{path}: missing (a rank that has not finished: run it again)")
    part = manifest.get("part")
    fields = {"rank": int, "world_size": int, "corpus_sha256": str}
    if not isinstance(part, dict) or any(
        not isinstance(part.get(key), kind) or isinstance(part.get(key), bool)
        for key, kind in fields.items()
    ):
        raise ValueError(
            f'{path}: not the manifest of a rank\'s part (its "part" is {part!r}; '
            "parts are written by bbpe encode --rank R --world-size W)"
        )
    rank, world_size = part["rank"], part["world_size"]
    if manifest.get("complete") is not True:
        raise ValueError(
            f"{path}: rank {rank} of {world_size} is not complete (interrupted or still "
            "running: finish it with --resume)"
        )
    return _Part(path, directory, manifest, rank, world_size)


def _by_rank(found: list[_Part], output_dir: str) -> list[_Part]:
    """The parts in rank order, if they are ranks 0 to W-1 of one W, once each."""
    if not found:
        raise ValueError("no parts to combine")
    sizes: dict[int, list[str]] = {}
    for part in found:
        sizes.setdefault(part.world_size, []).append(part.path)
    if len(sizes) > 1:
        listing = "; ".join(f"{w}: {', '.join(paths)}" for w, paths in sorted(sizes.items()))
        raise ValueError(f"parts of different world sizes ({listing}): remove the stale ones")
    world_size = found[0].world_size
    by_rank: dict[int, _Part] = {}
    for part in found:
        if part.rank in by_rank:
            raise ValueError(
                f"rank {part.rank} of {world_size} twice: {by_rank[part.rank].path} and {part.path}"
            )
        if not 0 <= part.rank < world_size:
            raise ValueError(f"{part.path}: rank {part.rank} is out of range for {world_size}")
        by_rank[part.rank] = part
    missing = [r for r in range(world_size) if r not in by_rank]
    if missing:
        named = [
            f"missing rank {r} of {world_size} (its part: "
            f"{os.path.join(output_dir, part_name(r, world_size))})"
            for r in missing[:3]
        ]
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError("; ".join(named) + more)
    return [by_rank[r] for r in range(world_size)]


def _check_alike(first: _Part, part: _Part) -> None:
    for key in SAME_IN_EVERY_PART:
        want, got = first.manifest.get(key), part.manifest.get(key)
        if got == want:
            continue
        if isinstance(want, dict) and isinstance(got, dict):
            names = [k for k in {**want, **got} if want.get(k) != got.get(k)]
            what = ", ".join(
                f"{k} is {json.dumps(got.get(k))} here, {json.dumps(want.get(k))} in rank 0's"
                for k in names
            )
        else:
            what = f"{json.dumps(got)} here, {json.dumps(want)} in rank 0's"
        raise ValueError(f"{part.path}: {key} unlike rank 0's ({first.path}): {what}")
    if part.manifest["part"]["corpus_sha256"] != first.manifest["part"]["corpus_sha256"]:
        raise ValueError(
            f"{part.path}: rank {part.rank} split a different file list from rank 0's "
            f"({first.path}): files were added, removed or changed between the ranks' "
            "starts; encode the parts again"
        )


def _check_inputs(first: _Part, inputs: list) -> None:
    """The parts' inputs in rank order must be the very file list they split."""
    try:
        listed = [(entry["path"], entry["bytes"]) for entry in inputs]
    except (KeyError, TypeError):
        raise ValueError('a part\'s manifest has malformed "inputs" entries') from None
    if corpus_sha256(listed) != first.manifest["part"]["corpus_sha256"]:
        raise ValueError(
            f"the parts' inputs ({len(listed)} files in rank order) are not the file list "
            f"the ranks split (see {first.path}): a file changed while the ranks ran, or "
            "a manifest was edited; encode the parts again"
        )


def _check_shards(parts: list[_Part], checksums: bool) -> None:
    prefixes = []
    for part in parts:
        listed = part.manifest.get("shards")
        entries = shard_entries(part.manifest, part.directory)
        if not isinstance(listed, list) or len(entries) != len(listed):
            raise ShardFormatError(f'{part.path}: malformed "shards"')
        prefixes += [prefix for prefix, _ in entries]
    # Hashing releases the GIL: the shards are checked on all cores.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = list(pool.map(functools.partial(check, checksums=checksums), prefixes))
    problems = [problem for shard in found for problem in shard]
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ShardFormatError(f"cannot combine the parts: {problems[0]}{more}")


def _combined_manifest(parts: list[_Part], inputs: list, output_dir: str) -> dict:
    """One run's manifest: the header, totals and shards of all parts, each
    shard's ``input_documents`` counted from the start of the whole corpus."""
    pieces = []
    for part in parts:
        part_empty = part.manifest.get("empty_documents")
        if not isinstance(part_empty, int) or isinstance(part_empty, bool) or part_empty < 0:
            raise ShardFormatError(f"{part.path}: empty_documents is {part_empty!r}")
        entries = []
        for prefix, entry in shard_entries(part.manifest, part.directory):
            if not isinstance(entry.get("input_documents"), int):
                raise ShardFormatError(
                    f"{part.path}: shard {entry['prefix']!r} has no input_documents"
                )
            entries.append({**entry, "prefix": os.path.relpath(prefix, output_dir)})
        read = sum(entry["documents"] for entry in entries) + part_empty
        pieces.append((entries, read))
    first = parts[0].manifest
    extra = {
        "parts": {
            "world_size": len(parts),
            "corpus_sha256": first["part"]["corpus_sha256"],
            "manifests": [os.path.relpath(part.path, output_dir) for part in parts],
        }
    }
    return compose_run(first, pieces, inputs, extra)
