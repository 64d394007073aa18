"""Indexed token shards: the `prefix.bin` + `prefix.idx` pairs that Megatron-LM /
megatron-core, NeMo and GPT-NeoX train from ("MMIDIDX" format).

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
read if present.) A writer may put `manifest.json` beside the shards with
per-shard counts and SHA-256 sums; `check` verifies them when it is there.

This module is the Python side: a memory-mapped reader (`IndexedDataset`), a
checker (`check`, `info`), a merger (`merge`) and a plain NumPy `.idx` writer
(`write_index`); `write` and `count` (the Rust pipeline that encodes corpora
into shards) come from `bbpe.pipeline`. Nothing here reads a whole file into memory: arrays are
memory-mapped and long passes over them go chunk by chunk.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from bbpe._publish import partial_file, partial_path, publish, remove_quietly
from bbpe.pipeline import MANIFEST_NAME, count, end_of_document_id, parse_size, write

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
_CHUNK = 1 << 21
# Copy buffer for .bin files and hashing.
_COPY_BUFFER = 16 << 20
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


def _prefix_of(path: PathLike) -> str:
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


# ---------------------------------------------------------------------------
# writing


def _write_header(f, dtype: np.dtype, sequences: int, entries: int) -> None:
    f.write(_HEADER.pack(MAGIC, VERSION, code_of(dtype), sequences, entries))


def _write_array(f, array: np.ndarray, dtype: str) -> None:
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
        _write_header(f, dtype, n, len(docs))
        _write_array(f, lengths, "<i4")
        _write_array(f, pointers, "<i8")
        _write_array(f, docs, "<i8")
    publish(path)


# ---------------------------------------------------------------------------
# reading


@dataclass
class _Index:
    """A parsed, memory-mapped `.idx`: arrays are read-only views of the mapping."""

    path: str
    dtype: np.dtype
    lengths: np.ndarray
    pointers: np.ndarray
    document_indices: np.ndarray
    modes: np.ndarray | None


def _read_index(path: str) -> _Index:
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
    return _Index(path, DTYPES[code], lengths, pointers, docs, modes)


def _map_bin(path: str) -> np.ndarray:
    # np.memmap refuses empty files; an empty .bin is valid (no tokens).
    if os.path.getsize(path) == 0:
        return np.empty(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r")


class IndexedDataset:
    """A memory-mapped `prefix.idx` / `prefix.bin` pair (Megatron's format).

    `ds[i]` is sequence i as a read-only NumPy view into the `.bin` mapping
    (negative i counts from the end); `ds[a:b:c]` a list of such views;
    `ds.document(k)` the sequences of document k. Views stay valid after
    `close()`: they keep the mapping alive until they are gone.
    Pickling stores only the prefix; unpickling maps the files again.
    """

    def __init__(self, prefix: PathLike) -> None:
        self._open(_prefix_of(prefix))

    def _open(self, prefix: str) -> None:
        self.prefix = prefix
        self.idx_path = idx_path(prefix)
        self.bin_path = bin_path(prefix)
        for path in (self.idx_path, self.bin_path):
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path}: no such file (shard prefix {prefix!r})")
        self._index = _read_index(self.idx_path)
        self._bin = _map_bin(self.bin_path)
        self._num_tokens: int | None = None
        # An O(1) check that catches a truncated .bin before any read runs off its end.
        n = len(self._index.lengths)
        end = (
            int(self._index.pointers[-1]) + int(self._index.lengths[-1]) * self.dtype.itemsize
            if n
            else 0
        )
        if len(self._bin) < end:
            raise ShardFormatError(
                f"{self.bin_path}: {len(self._bin)} bytes, but the last sequence in "
                f"{self.idx_path} ends at byte {end} (a truncated .bin or a corrupt "
                f"index: check() tells which)"
            )

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Drop this object's references to the mappings (views already handed out
        keep theirs)."""
        self._index = None  # type: ignore[assignment]
        self._bin = None  # type: ignore[assignment]

    def __enter__(self) -> IndexedDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, str]:
        return {"prefix": self.prefix}

    def __setstate__(self, state: dict[str, str]) -> None:
        self._open(state["prefix"])

    def _idx(self) -> _Index:
        if self._index is None:
            raise ValueError(f"{self.prefix}: the dataset is closed")
        return self._index

    # -- properties ----------------------------------------------------------

    @property
    def dtype(self) -> np.dtype:
        return self._idx().dtype

    @property
    def sequence_lengths(self) -> np.ndarray:
        """int32[N], read-only."""
        return self._idx().lengths

    @property
    def sequence_pointers(self) -> np.ndarray:
        """int64[N] byte offsets into the `.bin`, read-only."""
        return self._idx().pointers

    @property
    def document_indices(self) -> np.ndarray:
        """int64[documents + 1]: document k is sequences [d[k], d[k+1])."""
        return self._idx().document_indices

    @property
    def sequence_modes(self) -> np.ndarray | None:
        """int8[N] for megatron-core's multimodal files, else None."""
        return self._idx().modes

    @property
    def documents(self) -> int:
        """The number of documents."""
        return max(len(self.document_indices) - 1, 0)

    @property
    def num_tokens(self) -> int:
        """Total tokens (the sum of the sequence lengths), computed once in chunks."""
        if self._num_tokens is None:
            self._num_tokens = _sum_lengths(self.sequence_lengths)
        return self._num_tokens

    def __len__(self) -> int:
        return len(self._idx().lengths)

    def __repr__(self) -> str:
        if self._index is None:
            return f"IndexedDataset({self.prefix!r}, closed)"
        return (
            f"IndexedDataset({self.prefix!r}, dtype={self.dtype.name}, "
            f"sequences={len(self)}, documents={self.documents})"
        )

    # -- access --------------------------------------------------------------

    def _position(self, i: int) -> int:
        n = len(self)
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"sequence {i} out of range for {n} sequences in {self.prefix}")
        return j

    def _sequence(self, j: int) -> tuple[int, int]:
        """(byte pointer, length) of sequence j from the index, refusing values
        NumPy would read differently (a count of -1 is "to the end of the file")."""
        index = self._idx()
        pointer, length = int(index.pointers[j]), int(index.lengths[j])
        if length < 0:
            raise ShardFormatError(
                f"{self.idx_path}: sequence {j} has length {length}; run check() on {self.prefix}"
            )
        if pointer < 0:
            raise ShardFormatError(
                f"{self.idx_path}: sequence {j} points at byte {pointer}; "
                f"run check() on {self.prefix}"
            )
        return pointer, length

    def _read(self, pointer: int, count: int) -> np.ndarray:
        try:
            return np.frombuffer(self._bin, dtype=self.dtype, count=count, offset=pointer)
        except ValueError:
            raise ShardFormatError(
                f"{self.bin_path}: {count} tokens at byte {pointer} are past the end of "
                f"the file ({len(self._bin)} bytes)"
            ) from None

    def __getitem__(self, key: int | np.integer | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(key, slice):
            return [self[i] for i in range(*key.indices(len(self)))]
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self._read(*self._sequence(self._position(key)))
        raise TypeError(f"sequence index must be an int or a slice, not {type(key).__name__}")

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def get(self, i: int, offset: int = 0, length: int | None = None) -> np.ndarray:
        """Tokens [offset, offset + length) of sequence i (to its end when length is
        None), as megatron-core's `IndexedDataset.get`; out-of-range parts raise."""
        offset = _count_argument(offset, "offset")
        length = None if length is None else _count_argument(length, "length")
        pointer, size = self._sequence(self._position(i))
        end = size if length is None else offset + length
        if offset < 0 or end < offset or end > size:
            raise IndexError(
                f"offset {offset}, length {length} out of range for sequence {i} "
                f"of {size} tokens in {self.prefix}"
            )
        return self._read(pointer + offset * self.dtype.itemsize, end - offset)

    def document(self, k: int) -> list[np.ndarray]:
        """The sequences of document k (negative k counts from the end)."""
        n = self.documents
        j = int(k) + n if k < 0 else int(k)
        if not 0 <= j < n:
            raise IndexError(f"document {k} out of range for {n} documents in {self.prefix}")
        docs = self.document_indices
        first, end = int(docs[j]), int(docs[j + 1])
        # Slicing with a corrupt pair would quietly give other sequences.
        if not 0 <= first <= end <= len(self):
            raise ShardFormatError(
                f"{self.idx_path}: document {j} is sequences [{first}, {end}), not within "
                f"the {len(self)} sequences; run check() on {self.prefix}"
            )
        return self[first:end]

    @staticmethod
    def exists(prefix: PathLike) -> bool:
        return os.path.exists(idx_path(prefix)) and os.path.exists(bin_path(prefix))


def _count_argument(value: Any, name: str) -> int:
    """An offset or length as a Python int; floats and bools are refused."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, not {value!r}")
    return int(value)


def _chunks(n: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, _CHUNK):
        yield start, min(start + _CHUNK, n)


def _sum_lengths(lengths: np.ndarray) -> int:
    return sum(int(lengths[s:e].sum(dtype=np.int64)) for s, e in _chunks(len(lengths)))


# ---------------------------------------------------------------------------
# manifest and checking


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


def _manifest_shards(manifest: dict, directory: str) -> list[tuple[str, dict]]:
    """(absolute-ish prefix, entry) for each well-formed shard entry."""
    shards = manifest.get("shards")
    out = []
    if isinstance(shards, list):
        for entry in shards:
            if isinstance(entry, dict) and isinstance(entry.get("prefix"), str):
                out.append((os.path.join(directory, entry["prefix"]), entry))
    return out


def _manifest_entry(prefix: str) -> tuple[str, dict | None]:
    """(manifest path, this prefix's entry) from the manifest beside `prefix`."""
    directory = os.path.dirname(prefix) or "."
    manifest = read_manifest(directory)
    manifest_path = os.path.join(directory, MANIFEST_NAME)
    if manifest is None:
        return manifest_path, None
    target = os.path.normpath(os.path.abspath(prefix))
    for shard_prefix, entry in _manifest_shards(manifest, directory):
        if os.path.normpath(os.path.abspath(shard_prefix)) == target:
            return manifest_path, entry
    return manifest_path, None


def file_sha256(path: PathLike) -> str:
    """SHA-256 of a file, read in 16 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_COPY_BUFFER):
            digest.update(block)
    return digest.hexdigest()


def _first(mask_indices: np.ndarray, start: int) -> int:
    return int(mask_indices[0]) + start


def _check_arrays(index: _Index, bin_size: int, bin_file: str) -> list[str]:
    """Lengths, pointers, document indices and the `.bin` size, chunk by chunk."""
    problems = []
    itemsize = index.dtype.itemsize
    lengths, pointers, docs = index.lengths, index.pointers, index.document_indices
    n, name = len(lengths), index.path
    negative = bad_pointers = tokens = 0
    first_negative = first_bad_pointer = -1
    pointer_example = (0, 0)
    offset = 0  # bytes before the current chunk, from the lengths
    for s, e in _chunks(n):
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
    for s, e in _chunks(len(docs) - 1):
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


def _entry_name(manifest_path: str, entry: dict) -> str:
    return f"{manifest_path} (shard {entry.get('prefix')!r})"


def _checksum_problems(path: str, got: str, want: str, where: str) -> list[str]:
    if got == want.lower():
        return []
    return [f"{path}: SHA-256 {got} does not match {want} in {where}"]


#: What every manifest records for each shard; a missing field would silently
#: skip its check. (`input_documents` is bbpe's own, checked where present.)
_ENTRY_FIELDS = {
    "documents": int,
    "sequences": int,
    "tokens": int,
    "bin_bytes": int,
    "bin_sha256": str,
    "idx_sha256": str,
}


def _entry_field_problems(where: str, entry: dict) -> list[str]:
    problems = []
    for key, kind in _ENTRY_FIELDS.items():
        value = entry.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"{where}: {key} is {value!r}, not {kind.__name__}")
        elif kind is int and value < 0:
            problems.append(f"{where}: {key} is negative ({value})")
    return problems


def _check_manifest_entry(
    prefix: str, manifest_path: str, entry: dict, index: _Index | None, checksums: bool
) -> list[str]:
    where = _entry_name(manifest_path, entry)
    problems = _entry_field_problems(where, entry)
    for suffix, key in ((".bin", "bin_sha256"), (".idx", "idx_sha256")):
        path = os.fspath(prefix) + suffix
        want = entry.get(key)
        if checksums and isinstance(want, str) and os.path.exists(path):
            problems += _checksum_problems(path, file_sha256(path), want, where)
    bin_file = bin_path(prefix)
    if isinstance(entry.get("bin_bytes"), int) and os.path.exists(bin_file):
        size = os.path.getsize(bin_file)
        if size != entry["bin_bytes"]:
            problems.append(f"{bin_file}: {size} bytes, but {where} says {entry['bin_bytes']}")
    if index is not None:
        counts = {
            "sequences": len(index.lengths),
            "documents": max(len(index.document_indices) - 1, 0),
            "tokens": _sum_lengths(index.lengths),
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
    prefix = _prefix_of(prefix)
    problems: list[str] = []
    index = None
    for path in (idx_path(prefix), bin_path(prefix)):
        if not os.path.exists(path):
            problems.append(f"{path}: missing")
    if not problems:
        try:
            index = _read_index(idx_path(prefix))
        except ShardFormatError as e:
            problems.append(str(e))
        if index is not None:
            problems += _check_arrays(index, os.path.getsize(bin_path(prefix)), bin_path(prefix))
    try:
        manifest_path, entry = _manifest_entry(prefix)
    except ShardFormatError as e:
        problems.append(str(e))
    else:
        if entry is not None:
            problems += _check_manifest_entry(prefix, manifest_path, entry, index, checksums)
    return problems


# ---------------------------------------------------------------------------
# info


def _bucket_bounds(k: int) -> tuple[int, int]:
    return (0, 1) if k == 0 else (1 << (k - 1), 1 << k)


def _length_stats(lengths: np.ndarray) -> dict[str, Any]:
    """min / mean / max and a power-of-two histogram of the lengths, in chunks."""
    counts = np.zeros(0, dtype=np.int64)
    low, high, total, n = None, None, 0, 0
    for s, e in _chunks(len(lengths)):
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
        index = _read_index(idx_path(prefix))
    except (OSError, ShardFormatError):
        return row  # already among the problems
    row.update(
        dtype=index.dtype.name,
        documents=max(len(index.document_indices) - 1, 0),
        sequences=len(index.lengths),
        tokens=_sum_lengths(index.lengths),
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
            prefixes = [p for p, _ in _manifest_shards(manifest, path)]
            if not prefixes:
                problems.append(f"{os.path.join(path, MANIFEST_NAME)}: lists no shards")
            unfinished += _unlisted_shards(path, manifest, prefixes)
        else:
            prefixes = sorted(str(p)[:-4] for p in Path(path).glob("*.idx"))
            if not prefixes:
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
        prefixes = [_prefix_of(path)]
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
    entries = [e for _, e in _manifest_shards(manifest, "") if not _entry_field_problems("", e)]
    if len(entries) != len(manifest.get("shards") or []):
        return []  # the malformed entries are reported by check()
    if not any("input_documents" in entry for entry in entries):
        return []  # not written by bbpe: nothing to resume
    problems = []
    before = 0
    for entry in entries:
        count = entry.get("input_documents")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            problems.append(f"{_entry_name(where, entry)}: input_documents is {count!r}")
            return problems
        if count - before < entry["documents"]:
            problems.append(
                f"{_entry_name(where, entry)}: input_documents {count} "
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


# ---------------------------------------------------------------------------
# merging


def merge(prefixes: Iterable[PathLike], output_prefix: PathLike) -> str:
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
    inputs = [_prefix_of(p) for p in prefixes]
    output = os.fspath(output_prefix)
    if not inputs:
        raise ValueError("merge needs at least one shard")
    out_abs = os.path.normpath(os.path.abspath(output))
    for prefix in inputs:
        if os.path.normpath(os.path.abspath(prefix)) == out_abs:
            raise ValueError(f"{output}: the output would overwrite one of the inputs")
    bin_checksums = [_verify_merge_input(p) for p in inputs]
    datasets = [IndexedDataset(p) for p in inputs]
    try:
        return _merge(datasets, bin_checksums, output)
    finally:
        for ds in datasets:
            ds.close()


def _verify_merge_input(prefix: str) -> tuple[str, str] | None:
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
    manifest_path, entry = _manifest_entry(prefix)
    if entry is None:
        return None
    where = _entry_name(manifest_path, entry)
    want = entry.get("idx_sha256")
    if isinstance(want, str):
        path = idx_path(prefix)
        problems = _checksum_problems(path, file_sha256(path), want, where)
        if problems:
            raise refuse(problems)
    want = entry.get("bin_sha256")
    return (want, where) if isinstance(want, str) else None


def _merge(
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
            _write_header(out, dtype, total_n, total_d)
            for ds in datasets:
                for s, e in _chunks(len(ds)):
                    _write_array(out, ds.sequence_lengths[s:e], "<i4")
            byte_base = 0
            for ds, size in zip(datasets, bin_sizes, strict=True):
                for s, e in _chunks(len(ds)):
                    _write_array(out, ds.sequence_pointers[s:e] + byte_base, "<i8")
                byte_base += size
            _write_array(out, np.zeros(1), "<i8")
            sequence_base = 0
            for ds in datasets:
                docs = ds.document_indices
                for s, e in _chunks(len(docs) - 1):
                    _write_array(out, docs[1 + s : 1 + e] + sequence_base, "<i8")
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
    """Appends `ds`'s .bin to `out`, comparing it with the manifest's SHA-256."""
    digest = hashlib.sha256() if checksum else None
    with open(ds.bin_path, "rb") as src:
        while block := src.read(_COPY_BUFFER):
            if digest:
                digest.update(block)
            out.write(block)
    if checksum:
        want, where = checksum
        problems = _checksum_problems(ds.bin_path, digest.hexdigest(), want, where)
        if problems:
            raise ShardFormatError(f"cannot merge {ds.prefix}: {problems[0]}")


__all__ = [
    "CODES",
    "DTYPES",
    "HEADER_SIZE",
    "IndexedDataset",
    "MAGIC",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "ShardFormatError",
    "bin_path",
    "check",
    "code_of",
    "count",
    "dtype_for_vocab",
    "dtype_of",
    "end_of_document_id",
    "file_sha256",
    "idx_path",
    "info",
    "merge",
    "parse_size",
    "read_manifest",
    "write",
    "write_index",
]
