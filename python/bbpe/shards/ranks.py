"""A corpus encoded by several ranks at once (machines or processes: a Slurm
array, plain scripts): which files each rank encodes and where its part goes.

The inputs are expanded to files exactly as a single run reads them, and each
rank takes a contiguous range of that list, balanced by file size, so the
ranks' parts in rank order hold the single run's documents in its order.
Files are never split. Rank R of W writes an ordinary shard set (shards and
its own `manifest.json`, resumable like any other) into
``OUT/rank-0000R-of-0000W/`` (`bbpe.shards.pipeline`); `bbpe.shards.parts`
combines the parts. Neither NumPy nor the core here: `bbpe encode` never
loads NumPy, and combining parts never needs the core.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

#: Part directories in an output directory, as a glob pattern.
PART_PATTERN = "rank-*-of-*"


def part_name(rank: int, world_size: int) -> str:
    """The directory, inside the output directory, of rank `rank`'s part."""
    return f"rank-{rank:05d}-of-{world_size:05d}"


def check_rank(rank: int, world_size: int) -> None:
    """Raises ValueError unless `rank` is one of `world_size` >= 1 ranks."""
    for name, value in (("rank", rank), ("world size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, not {value!r}")
    if world_size < 1:
        raise ValueError(f"world size must be at least 1, not {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(
            f"rank {rank} is out of range for world size {world_size} "
            f"(ranks are 0 to {world_size - 1})"
        )


def share(sizes: Sequence[int], rank: int, world_size: int) -> range:
    """The positions of the files (of `sizes` bytes, in order) that `rank` encodes.

    A file goes to the rank whose equal slice of the corpus holds its middle
    byte, so each rank's range is contiguous, the ranges follow each other in
    rank order, and a rank's bytes are within one file of an equal share.
    Each file weighs one byte more than its size, so empty files are shared
    out too. Ranks may get no files (more ranks than files).
    """
    check_rank(rank, world_size)
    total = sum(sizes) + len(sizes)
    start = end = 0
    before = 0
    for i, size in enumerate(sizes):
        weight = size + 1
        # Twice the middle byte, so the arithmetic stays in integers.
        owner = (2 * before + weight) * world_size // (2 * total)
        before += weight
        if owner < rank:
            start = end = i + 1
        elif owner == rank:
            end = i + 1
        else:
            break
    return range(start, end)


def corpus_sha256(files: Iterable[tuple[str, int | None]]) -> str:
    """SHA-256 of a file list as (path, size) pairs: the same in every part
    of a run only if every rank split the same files."""
    digest = hashlib.sha256()
    for path, size in files:
        digest.update(os.fsencode(path) + b"\0" + str(size).encode() + b"\n")
    return digest.hexdigest()
