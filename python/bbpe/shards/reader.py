"""`IndexedDataset`: a shard pair read through memory maps, NumPy only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from numbers import Integral
from typing import Any

import numpy as np

from bbpe.shards.format import (
    Index,
    PathLike,
    ShardFormatError,
    bin_path,
    idx_path,
    prefix_of,
    read_index,
    sum_lengths,
)


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
        self._open(prefix_of(prefix))

    def _open(self, prefix: str) -> None:
        self.prefix = prefix
        self.idx_path = idx_path(prefix)
        self.bin_path = bin_path(prefix)
        for path in (self.idx_path, self.bin_path):
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path}: no such file (shard prefix {prefix!r})")
        self._index = read_index(self.idx_path)
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

    def _idx(self) -> Index:
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
            self._num_tokens = sum_lengths(self.sequence_lengths)
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

    def tokens(self) -> np.ndarray:
        """Every token of the `.bin` as one read-only array of `dtype`, a view of
        the mapping: sequence i is its `sequence_pointers[i] // dtype.itemsize`
        and following `sequence_lengths[i]` tokens."""
        self._idx()  # refuses a closed dataset
        size = self.dtype.itemsize
        return np.frombuffer(self._bin, dtype=self.dtype, count=len(self._bin) // size)

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
