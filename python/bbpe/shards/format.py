"""The indexed-dataset files themselves (Megatron's "MMIDIDX"): their layout,
Megatron's dtype codes, the `.idx` parsed and memory-mapped, and a plain NumPy
`.idx` writer. Mirrors rust/shards/format.rs.

`prefix.bin` is every sequence's token ids concatenated, little-endian, no header.
`prefix.idx` is, little-endian::

    9 bytes   magic  b"MMIDIDX\\x00\\x00"
    u64       version = 1
    u8        dtype code of the .bin (see DTYPES; 8 = uint16, 4 = int32 for tokens)
    u64       N, the number of sequences
    u64       D, the number of document-index entries (documents + 1)
    int32[N]  sequence lengths, in tokens
    int64[N]  sequence pointers: byte offset of each sequence in the .bin
    int64[D]  document indices [0, ..., N]: entry k+1 is one past document k's
              last sequence

(megatron-core's multimodal variant appends int8[N] sequence modes; they are
read if present.)
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from bbpe._publish import partial_file, publish

PathLike = str | os.PathLike[str]

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
# magic, version, dtype code, N, D: the arrays start right after.
_HEADER = struct.Struct("<9sQBQQ")
HEADER_SIZE = _HEADER.size  # 34
MANIFEST_FORMAT = "megatron-mmididx-v1"

# Megatron's dtype codes (megatron.core.datasets.indexed_dataset.DType). Explicitly
# little-endian so that the files mean the same thing on any machine. (fairseq's
# older table maps 7 to float64; no token shard uses the float codes.)
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<u1"),
    2: np.dtype("<i1"),
    3: np.dtype("<i2"),
    4: np.dtype("<i4"),
    5: np.dtype("<i8"),
    6: np.dtype("<f8"),
    7: np.dtype("<f4"),
    8: np.dtype("<u2"),
}
CODES: dict[np.dtype, int] = {dtype: code for code, dtype in DTYPES.items()}

# Elements per chunk in passes over big arrays: 2M int64 = 16 MiB at a time.
CHUNK = 1 << 21
# Copy buffer for .bin files and hashing.
COPY_BUFFER = 16 << 20
_INT32_MAX = 2**31 - 1


class ShardFormatError(ValueError):
    """A shard file that is not a valid indexed dataset; the message names the file."""


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """The token dtype for a vocabulary: uint16 below 65,500 ids, else int32.

    The threshold is Megatron's (`DType.optimal_dtype`), not 65,536, so shards
    are byte-identical to the ones its preprocessing script writes.
    """
    if vocab_size < 0:
        raise ValueError(f"vocabulary size must be non-negative, not {vocab_size}")
    return DTYPES[8] if vocab_size < 65_500 else DTYPES[4]


def code_of(dtype: Any) -> int:
    """Megatron's dtype code for a NumPy dtype (or anything `np.dtype` accepts)."""
    dt = np.dtype(dtype)
    for code, known in DTYPES.items():
        if dt == known:
            return code
    raise ValueError(
        f"dtype {dt} has no indexed-dataset code; use one of "
        + ", ".join(f"{d.name} ({c})" for c, d in sorted(DTYPES.items()))
        + (" (little-endian)" if dt.byteorder == ">" else "")
    )


def dtype_of(code: int) -> np.dtype:
    """The NumPy dtype for one of Megatron's dtype codes."""
    try:
        return DTYPES[code]
    except KeyError:
        raise ValueError(f"unknown dtype code {code}; known: {sorted(DTYPES)}") from None


def idx_path(prefix: PathLike) -> str:
    return os.fspath(prefix) + ".idx"


def bin_path(prefix: PathLike) -> str:
    return os.fspath(prefix) + ".bin"


def prefix_of(path: PathLike) -> str:
    """`path` as a shard prefix; `x.idx` / `x.bin` are taken to mean `x` when
    `x.idx` exists and `x.idx.idx` does not."""
    path = os.fspath(path)
    for suffix in (".idx", ".bin"):
        if (
            path.endswith(suffix)
            and not os.path.exists(path + ".idx")
            and os.path.exists(path[: -len(suffix)] + ".idx")
        ):
            return path[: -len(suffix)]
    return path


def write_header(f, dtype: np.dtype, sequences: int, entries: int) -> None:
    f.write(_HEADER.pack(MAGIC, VERSION, code_of(dtype), sequences, entries))


def write_array(f, array: np.ndarray, dtype: str) -> None:
    f.write(np.ascontiguousarray(array, dtype=dtype).tobytes())


def write_index(
    path: PathLike, lengths: Iterable[int], document_indices: Iterable[int], dtype: Any
) -> None:
    """Write a `.idx` file for sequences of `lengths` tokens of `dtype`.

    Pointers are the cumulative byte offsets (lengths times the dtype's size).
    `document_indices` is `[0, ..., len(lengths)]`, non-decreasing. The file is
    written as `path.partial`, flushed to disk and renamed when complete.
    """
    path = os.fspath(path)
    dtype = np.dtype(dtype)
    code_of(dtype)  # refuse dtypes without a code before creating anything
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    docs = np.asarray(document_indices, dtype=np.int64).reshape(-1)
    n = len(lengths)
    if n and (lengths.min() < 0 or lengths.max() > _INT32_MAX):
        raise ValueError(f"{path}: sequence lengths must be in [0, 2**31)")
    if len(docs) == 0 or docs[0] != 0 or docs[-1] != n or np.any(np.diff(docs) < 0):
        raise ValueError(
            f"{path}: document indices must start at 0, not decrease and end at "
            f"the number of sequences ({n})"
        )
    pointers = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1] * dtype.itemsize, out=pointers[1:])
    with partial_file(path) as f:
        write_header(f, dtype, n, len(docs))
        write_array(f, lengths, "<i4")
        write_array(f, pointers, "<i8")
        write_array(f, docs, "<i8")
    publish(path)


@dataclass
class Index:
    """A parsed, memory-mapped `.idx`: arrays are read-only views of the mapping."""

    path: str
    dtype: np.dtype
    lengths: np.ndarray
    pointers: np.ndarray
    document_indices: np.ndarray
    modes: np.ndarray | None


def read_index(path: str) -> Index:
    """Map `path` and check its header against its size; errors name the file."""
    size = os.path.getsize(path)
    if size < HEADER_SIZE:
        raise ShardFormatError(
            f"{path}: truncated: {size} bytes, shorter than the {HEADER_SIZE}-byte header"
        )
    with open(path, "rb") as f:
        magic, version, code, n, d = _HEADER.unpack(f.read(HEADER_SIZE))
    if magic != MAGIC:
        raise ShardFormatError(
            f"{path}: not an indexed-dataset index: starts with {magic!r}, expected {MAGIC!r}"
        )
    if version != VERSION:
        raise ShardFormatError(f"{path}: unsupported version {version} (expected {VERSION})")
    if code not in DTYPES:
        raise ShardFormatError(f"{path}: unknown dtype code {code}; known: {sorted(DTYPES)}")
    expected = HEADER_SIZE + 12 * n + 8 * d
    if size < expected:
        raise ShardFormatError(
            f"{path}: truncated: the header announces {n} sequences and {d} "
            f"document-index entries, which take {expected} bytes; the file has {size}"
        )
    # megatron-core's multimodal files carry one int8 mode per sequence at the end.
    multimodal = n > 0 and size == expected + n
    if size != expected and not multimodal:
        raise ShardFormatError(
            f"{path}: {size - expected} unexpected bytes after the arrays (the header "
            f"announces {n} sequences and {d} document-index entries, {expected} bytes)"
        )
    mapping = np.memmap(path, dtype=np.uint8, mode="r")
    lengths = np.frombuffer(mapping, dtype="<i4", count=n, offset=HEADER_SIZE)
    pointers = np.frombuffer(mapping, dtype="<i8", count=n, offset=HEADER_SIZE + 4 * n)
    docs = np.frombuffer(mapping, dtype="<i8", count=d, offset=HEADER_SIZE + 12 * n)
    modes = np.frombuffer(mapping, dtype="<i1", count=n, offset=expected) if multimodal else None
    return Index(path, DTYPES[code], lengths, pointers, docs, modes)


def chunks(n: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, CHUNK):
        yield start, min(start + CHUNK, n)


def sum_lengths(lengths: np.ndarray) -> int:
    return sum(int(lengths[s:e].sum(dtype=np.int64)) for s, e in chunks(len(lengths)))
