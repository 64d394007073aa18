"""`concatenate`: shard pairs joined into one, as Megatron's `merge_datasets.py`
does (the `bbpe merge` command), every input verified on the way."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterable, Iterator

import numpy as np

from bbpe._publish import partial_file, partial_path, publish, remove_quietly
from bbpe.shards import format as shard_format
from bbpe.shards.format import (
    COPY_BUFFER,
    PathLike,
    ShardFormatError,
    bin_path,
    chunks,
    idx_path,
    prefix_of,
)
from bbpe.shards.manifest import checksum_problems, entry_for, entry_name, file_sha256
from bbpe.shards.reader import IndexedDataset
from bbpe.shards.verify import check


def concatenate(prefixes: Iterable[PathLike], output_prefix: PathLike) -> str:
    """Concatenate shards into one `output_prefix.bin` / `.idx`, in order.

    The `.bin` files are stream-copied; the merged index is written array by
    array, shard by shard and chunk by chunk, with pointers moved by the bytes
    of the shards before and document indices by their sequences. All inputs
    must have one dtype. Each input is verified as `check` does: its index and
    `.bin` size first, and, when a manifest beside it lists it, its counts, its
    `.idx` checksum and, while it is copied, its `.bin` checksum; the first
    input that fails is named in a ShardFormatError. Both outputs are written
    under a `.partial` suffix, flushed to disk and renamed when complete (the
    `.idx` last), so a failure, a crash or a power loss never leaves a pair
    that looks finished. Returns the
    output prefix.
    """
    inputs = [prefix_of(p) for p in prefixes]
    output = os.fspath(output_prefix)
    if not inputs:
        raise ValueError("merge needs at least one shard")
    out_abs = os.path.normpath(os.path.abspath(output))
    for prefix in inputs:
        if os.path.normpath(os.path.abspath(prefix)) == out_abs:
            raise ValueError(f"{output}: the output would overwrite one of the inputs")
    bin_checksums = [_verify_input(p) for p in inputs]
    datasets = [IndexedDataset(p) for p in inputs]
    try:
        return _concatenate(datasets, bin_checksums, output)
    finally:
        for ds in datasets:
            ds.close()


def _verify_input(prefix: str) -> tuple[str, str] | None:
    """Raises ShardFormatError naming `prefix` if `check` finds it unsound
    (each .bin must hold exactly what its index describes, or rebasing the
    pointers by file sizes would point into the wrong shard). Returns the
    manifest's `.bin` SHA-256 and where it is from, to compare while copying
    rather than read the `.bin` twice."""

    def refuse(problems: list[str]) -> ShardFormatError:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        return ShardFormatError(f"cannot merge {prefix}: {problems[0]}{more}")

    problems = check(prefix, checksums=False)
    if problems:
        raise refuse(problems)
    manifest_path, entry = entry_for(prefix)
    if entry is None:
        return None
    where = entry_name(manifest_path, entry)
    want = entry.get("idx_sha256")
    if isinstance(want, str):
        path = idx_path(prefix)
        problems = checksum_problems(path, file_sha256(path), want, where)
        if problems:
            raise refuse(problems)
    want = entry.get("bin_sha256")
    return (want, where) if isinstance(want, str) else None


def _concatenate(
    datasets: list[IndexedDataset], bin_checksums: list[tuple[str, str] | None], output: str
) -> str:
    dtype = datasets[0].dtype
    for ds in datasets[1:]:
        if ds.dtype != dtype:
            raise ValueError(
                f"cannot merge shards of different dtypes: {datasets[0].prefix} is "
                f"{dtype.name}, {ds.prefix} is {ds.dtype.name}"
            )
    bin_sizes = [os.path.getsize(ds.bin_path) for ds in datasets]
    total_n = sum(len(ds) for ds in datasets)
    total_d = 1 + sum(ds.documents for ds in datasets)
    bin_out, idx_out = bin_path(output), idx_path(output)
    try:
        with partial_file(bin_out) as out:
            for ds, checksum in zip(datasets, bin_checksums, strict=True):
                _copy_verified(ds, checksum, out)
        with partial_file(idx_out) as out:
            shard_format.write_header(out, dtype, total_n, total_d)
            for ds in datasets:
                for s, e in chunks(len(ds)):
                    shard_format.write_array(out, ds.sequence_lengths[s:e], "<i4")
            byte_base = 0
            for ds, size in zip(datasets, bin_sizes, strict=True):
                for s, e in chunks(len(ds)):
                    shard_format.write_array(out, ds.sequence_pointers[s:e] + byte_base, "<i8")
                byte_base += size
            shard_format.write_array(out, np.zeros(1), "<i8")
            sequence_base = 0
            for ds in datasets:
                docs = ds.document_indices
                for s, e in chunks(len(docs) - 1):
                    shard_format.write_array(out, docs[1 + s : 1 + e] + sequence_base, "<i8")
                sequence_base += len(ds)
        # The .idx last, and any old .idx gone first: a finished-looking pair is
        # then always this merge's .bin with this merge's .idx.
        remove_quietly(idx_out)
        publish(bin_out)
        publish(idx_out)
    except BaseException:
        remove_quietly(partial_path(bin_out))
        remove_quietly(partial_path(idx_out))
        raise
    return output


def _copy_verified(ds: IndexedDataset, checksum: tuple[str, str] | None, out) -> None:
    """Appends `ds`'s .bin to `out`, comparing it with the manifest's SHA-256.
    Holes in a sparse .bin stay holes in `out` (as ``cp --sparse=auto``), so
    a sparse input is neither read nor written as gigabytes of zeros (the
    checksum still counts them)."""
    digest = hashlib.sha256() if checksum else None
    with open(ds.bin_path, "rb", buffering=0) as src:
        size = os.fstat(src.fileno()).st_size
        copied = 0
        for start, end in _data_extents(src.fileno(), size):
            _skip_hole(out, start - copied, digest)
            src.seek(start)
            while start < end:
                block = src.read(min(COPY_BUFFER, end - start))
                if not block:
                    raise ShardFormatError(f"{ds.bin_path}: shorter than {size} bytes while copied")
                if digest:
                    digest.update(block)
                out.write(block)
                start += len(block)
            copied = end
        if copied < size:
            _skip_hole(out, size - copied, digest)
            out.truncate()  # the file ends in the hole: make it that long
    if checksum:
        want, where = checksum
        problems = checksum_problems(ds.bin_path, digest.hexdigest(), want, where)
        if problems:
            raise ShardFormatError(f"cannot merge {ds.prefix}: {problems[0]}")


def _data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of data in the first `size` bytes of a file;
    what lies between is a hole (zeros). Without SEEK_DATA, all is data."""
    if not hasattr(os, "SEEK_DATA"):
        yield 0, size
        return
    position = 0
    while position < size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # nothing but a hole to the end
                return
            raise
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        position = end


def _skip_hole(out, length: int, digest) -> None:
    """Leaves `length` bytes of zeros in `out` as a hole, hashing them."""
    if length <= 0:
        return
    out.seek(length, os.SEEK_CUR)
    if digest:
        zeros = memoryview(bytes(min(length, COPY_BUFFER)))
        while length:
            step = min(length, len(zeros))
            digest.update(zeros[:step])
            length -= step
