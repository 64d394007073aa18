"""Shard files (`prefix.bin` + `prefix.idx`, Megatron's MMIDIDX) as
`bbpe.shards` reads and joins them: byte layout, reader, check, info and
concatenation; and interop with
megatron-core itself, through fixtures its builder wrote (always) and live
(when `megatron.core` can be imported)."""

import hashlib
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from bbpe import shards
from bbpe.shards import (
    HEADER_SIZE,
    IndexedDataset,
    ShardFormatError,
    check,
    code_of,
    concatenate,
    dtype_for_vocab,
    info,
    write_index,
)
from bbpe.shards import format as shard_format

DATA = Path(__file__).parent / "data" / "megatron"

# Documents as lists of sequences as lists of token ids; they include a document
# without sequences and one holding an empty sequence.
DOCS_U16 = [[[1, 2, 3], [4]], [], [[65_499, 0, 7, 7]], [[]], [[10, 11], [12, 13, 14]]]
DOCS_I32 = [[[100_000, 2**31 - 1]], [[0], [5, 6]], []]
# (documents, one mode per sequence) for megatron-core's multimodal variant.
DOCS_MULTIMODAL = ([[[1, 2], [3]], [[4, 5, 6]]], [0, 1, 2])


def sequences_of(docs):
    return [seq for doc in docs for seq in doc]


def document_indices_of(docs):
    return np.cumsum([0] + [len(doc) for doc in docs])


def write_shard(prefix, docs, dtype):
    """A shard the plain way: tokens to `.bin`, `write_index` for the `.idx`."""
    prefix = os.fspath(prefix)
    seqs = sequences_of(docs)
    tokens = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs] + [np.zeros(0)])
    Path(prefix + ".bin").write_bytes(tokens.astype(np.dtype(dtype).newbyteorder("<")).tobytes())
    write_index(prefix + ".idx", [len(s) for s in seqs], document_indices_of(docs), dtype)
    return prefix


def assert_reads(ds, docs):
    seqs = sequences_of(docs)
    assert len(ds) == len(seqs)
    for i, seq in enumerate(seqs):
        assert ds[i].tolist() == seq
    assert ds.documents == len(docs)
    for k, doc in enumerate(docs):
        assert [s.tolist() for s in ds.document(k)] == doc
    assert ds.document_indices.tolist() == document_indices_of(docs).tolist()


# ---------------------------------------------------------------------------
# byte layout


@pytest.mark.parametrize(
    ("dtype", "code", "document_indices"),
    [(np.uint16, 8, [0, 2, 2, 3, 4, 6]), (np.int32, 4, [0, 1, 3, 3])],
)
def test_header_and_arrays_byte_exact(tmp_path, dtype, code, document_indices):
    docs = DOCS_U16 if dtype is np.uint16 else DOCS_I32
    prefix = write_shard(tmp_path / "s", docs, dtype)
    seqs = sequences_of(docs)
    lengths = [len(s) for s in seqs]
    n, d, size = len(seqs), len(docs) + 1, np.dtype(dtype).itemsize
    raw = Path(prefix + ".idx").read_bytes()
    assert raw[0:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack("<Q", raw[9:17]) == (1,)
    assert raw[17] == code
    assert struct.unpack("<Q", raw[18:26]) == (n,)
    assert struct.unpack("<Q", raw[26:34]) == (d,)
    assert HEADER_SIZE == 34
    at = 34
    assert list(struct.unpack(f"<{n}i", raw[at : at + 4 * n])) == lengths
    at += 4 * n
    pointers = list(struct.unpack(f"<{n}q", raw[at : at + 8 * n]))
    assert pointers == [size * sum(lengths[:i]) for i in range(n)]
    at += 8 * n
    assert list(struct.unpack(f"<{d}q", raw[at : at + 8 * d])) == document_indices
    assert len(raw) == at + 8 * d
    fmt = "<" + {np.uint16: "H", np.int32: "i"}[dtype] * sum(lengths)
    assert struct.unpack(fmt, Path(prefix + ".bin").read_bytes()) == tuple(
        t for s in seqs for t in s
    )


def test_write_index_refuses_invalid_input(tmp_path):
    with pytest.raises(ValueError, match="document indices"):
        write_index(tmp_path / "a.idx", [1, 2], [0, 1], np.uint16)
    with pytest.raises(ValueError, match="document indices"):
        write_index(tmp_path / "a.idx", [1, 2], [0, 2, 1, 2], np.uint16)
    with pytest.raises(ValueError, match="lengths"):
        write_index(tmp_path / "a.idx", [1, -2], [0, 2], np.uint16)
    with pytest.raises(ValueError, match="no indexed-dataset code"):
        write_index(tmp_path / "a.idx", [1], [0, 1], np.uint64)
    assert list(tmp_path.iterdir()) == []


def test_dtypes():
    assert dtype_for_vocab(50_265) == np.uint16
    assert dtype_for_vocab(65_499) == np.uint16
    assert dtype_for_vocab(65_500) == np.int32
    assert dtype_for_vocab(200_019) == np.int32
    assert {c: d.name for c, d in shards.DTYPES.items()} == {
        1: "uint8",
        2: "int8",
        3: "int16",
        4: "int32",
        5: "int64",
        6: "float64",
        7: "float32",
        8: "uint16",
    }
    for code, dtype in shards.DTYPES.items():
        assert code_of(dtype) == code == shards.CODES[dtype]
    assert code_of(np.uint16) == code_of("uint16") == code_of("<u2") == 8
    assert code_of(np.int32) == 4
    with pytest.raises(ValueError, match="little-endian"):
        code_of(">u2")
    with pytest.raises(ValueError, match="no indexed-dataset code"):
        code_of(np.uint32)


# ---------------------------------------------------------------------------
# reader


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_reader_returns_views_of_the_written_sequences(tmp_path, dtype):
    docs = DOCS_U16 if dtype is np.uint16 else DOCS_I32
    ds = IndexedDataset(write_shard(tmp_path / "s", docs, dtype))
    assert ds.dtype == dtype
    assert_reads(ds, docs)
    seqs = sequences_of(docs)
    assert ds.sequence_lengths.tolist() == [len(s) for s in seqs]
    assert ds.sequence_pointers.dtype == np.int64 and ds.sequence_lengths.dtype == np.int32
    assert ds.num_tokens == sum(len(s) for s in seqs)
    assert ds[-1].tolist() == seqs[-1] and ds[np.int64(0)].tolist() == seqs[0]
    first = ds[0]
    assert not first.flags.writeable and not first.flags.owndata  # a view, not a copy
    assert [s.tolist() for s in ds] == seqs
    assert ds.sequence_modes is None
    with pytest.raises(IndexError):
        ds[len(seqs)]
    with pytest.raises(IndexError):
        ds[-len(seqs) - 1]
    with pytest.raises(TypeError):
        ds["0"]


def test_document_boundaries(tmp_path):
    ds = IndexedDataset(write_shard(tmp_path / "s", DOCS_U16, np.uint16))
    assert ds.documents == 5
    assert ds.document_indices.tolist() == [0, 2, 2, 3, 4, 6]
    assert ds.document(1) == []  # a document without sequences
    assert [s.tolist() for s in ds.document(3)] == [[]]  # one empty sequence
    assert [s.tolist() for s in ds.document(-1)] == [[10, 11], [12, 13, 14]]
    with pytest.raises(IndexError):
        ds.document(5)


def test_get_with_offset_and_length(tmp_path):
    ds = IndexedDataset(write_shard(tmp_path / "s", DOCS_U16, np.uint16))
    # sequence 2 is [65_499, 0, 7, 7]
    assert ds.get(2).tolist() == [65_499, 0, 7, 7]
    assert ds.get(2, offset=1).tolist() == [0, 7, 7]
    assert ds.get(2, offset=1, length=2).tolist() == [0, 7]
    assert ds.get(2, length=0).tolist() == []
    assert ds.get(2, offset=4).tolist() == []
    assert ds.get(-1, offset=2, length=1).tolist() == [14]
    for offset, length in [(0, 5), (5, None), (-1, 1), (1, -1), (0, -1), (3, 2)]:
        with pytest.raises(IndexError, match=f"offset {offset}, length {length}"):
            ds.get(2, offset=offset, length=length)
    for offset, length in [(1.0, 1), (0, 2.5), (True, 1), ("1", None)]:
        with pytest.raises(TypeError, match="must be an int"):
            ds.get(2, offset=offset, length=length)
    with pytest.raises(IndexError, match="sequence 6 out of range"):
        ds.get(6)


def test_slicing(tmp_path):
    ds = IndexedDataset(write_shard(tmp_path / "s", DOCS_U16, np.uint16))
    seqs = sequences_of(DOCS_U16)
    for key in [slice(None), slice(1, 4), slice(-2, None), slice(None, None, 2), slice(5, 1, -2)]:
        assert [s.tolist() for s in ds[key]] == seqs[key]
    assert ds[4:2] == []


def test_open_by_file_name_and_errors_name_the_file(tmp_path):
    prefix = write_shard(tmp_path / "s", DOCS_U16, np.uint16)
    assert len(IndexedDataset(prefix + ".idx")) == len(IndexedDataset(Path(prefix)))
    with pytest.raises(FileNotFoundError, match=r"missing\.idx"):
        IndexedDataset(tmp_path / "missing")
    raw = bytearray(Path(prefix + ".idx").read_bytes())
    raw[0:9] = b"NOTANIDX!"
    Path(prefix + ".idx").write_bytes(bytes(raw))
    with pytest.raises(ShardFormatError, match=r"s\.idx: not an indexed-dataset index"):
        IndexedDataset(prefix)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda raw: raw.__setitem__(slice(9, 17), struct.pack("<Q", 2)), "unsupported version 2"),
        (lambda raw: raw.__setitem__(17, 9), "unknown dtype code 9"),
        (lambda raw: raw.__setitem__(slice(18, 26), struct.pack("<Q", 99)), "truncated"),
        # Counts no file of this size can hold: an error, not a huge allocation or mapping.
        (
            lambda raw: raw.__setitem__(slice(18, 26), struct.pack("<Q", 10**12)),
            "announces 1000000000000 sequences",
        ),
        (lambda raw: raw.__setitem__(slice(26, 34), struct.pack("<Q", 2**64 - 1)), "truncated"),
        (lambda raw: raw.extend(b"\0\0\0"), "3 unexpected bytes"),
        (lambda raw: raw.__delitem__(slice(20, None)), "shorter than the 34-byte header"),
    ],
)
def test_header_validation(tmp_path, patch, message):
    prefix = write_shard(tmp_path / "s", DOCS_U16, np.uint16)
    raw = bytearray(Path(prefix + ".idx").read_bytes())
    patch(raw)
    Path(prefix + ".idx").write_bytes(bytes(raw))
    with pytest.raises(ShardFormatError, match=message) as error:
        IndexedDataset(prefix)
    assert str(error.value).startswith(prefix + ".idx: ")
    assert any(message in p for p in check(prefix))


def test_empty_shard(tmp_path):
    prefix = write_shard(tmp_path / "e", [], np.uint16)
    assert os.path.getsize(prefix + ".bin") == 0
    ds = IndexedDataset(prefix)
    assert len(ds) == 0 and ds.documents == 0 and ds.num_tokens == 0 and ds[:] == []
    assert check(prefix) == []


def test_pickling_reopens_by_prefix(tmp_path):
    prefix = write_shard(tmp_path / "s", DOCS_U16, np.uint16)
    ds = IndexedDataset(prefix)
    state = pickle.dumps(ds)
    assert len(state) < 300  # the prefix, not the data
    copy = pickle.loads(state)
    assert copy.prefix == prefix
    assert_reads(copy, DOCS_U16)


def test_close_and_context_manager(tmp_path):
    prefix = write_shard(tmp_path / "s", DOCS_U16, np.uint16)
    with IndexedDataset(prefix) as ds:
        view = ds[0]
    with pytest.raises(ValueError, match="closed"):
        ds[0]
    assert view.tolist() == [1, 2, 3]  # views handed out stay valid
    assert "closed" in repr(ds)
    assert pickle.loads(pickle.dumps(ds)).documents == 5


# ---------------------------------------------------------------------------
# check


def idx_offsets(n):
    """Byte offsets of the lengths, pointers and document indices in a `.idx`."""
    return HEADER_SIZE, HEADER_SIZE + 4 * n, HEADER_SIZE + 12 * n


def patch_file(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def truncate(path, by):
    os.truncate(path, os.path.getsize(path) - by)


@pytest.fixture
def shard(tmp_path):
    return write_shard(tmp_path / "data_00000", DOCS_U16, np.uint16)


def test_a_corrupt_length_or_pointer_is_an_error_not_the_rest_of_the_file(shard):
    lengths, pointers, _ = idx_offsets(6)
    patch_file(shard + ".idx", lengths + 4 * 1, struct.pack("<i", -1))  # sequence 1: [4]
    ds = IndexedDataset(shard)  # only the last sequence is checked on opening
    for read in (lambda: ds[1], lambda: ds.get(1), lambda: ds.get(1, 0, 0), lambda: ds[:2]):
        with pytest.raises(ShardFormatError, match=r"s?data_00000\.idx: sequence 1 has length -1"):
            read()
    assert ds[0].tolist() == [1, 2, 3]
    patch_file(shard + ".idx", lengths + 4 * 1, struct.pack("<i", 1))
    patch_file(shard + ".idx", pointers + 8 * 1, struct.pack("<q", -2))
    with pytest.raises(ShardFormatError, match=r"data_00000\.idx: sequence 1 points at byte -2"):
        IndexedDataset(shard)[1]


@pytest.mark.parametrize(
    "entry, value, documents",
    [(1, -1, (0, 1)), (2, 9, (1, 2)), (2, 1, (1,)), (5, 7, (4,))],
)
def test_a_corrupt_document_index_is_an_error_not_other_sequences(shard, entry, value, documents):
    # Found by fuzzing (fuzz/python/idx_reader.py): document(k) sliced the
    # sequences with whatever the index held, so an index past the end was
    # cut short, a negative one counted from the end, a decreasing pair gave
    # no sequences, all without an error.
    _, _, docs = idx_offsets(6)
    patch_file(shard + ".idx", docs + 8 * entry, struct.pack("<q", value))
    ds = IndexedDataset(shard)
    for k in documents:
        with pytest.raises(ShardFormatError, match=rf"data_00000\.idx: document {k} is sequences"):
            ds.document(k)
    assert check(shard) != []


def test_check_accepts_a_sound_shard(shard):
    assert check(shard) == []


def test_check_truncated_bin(shard):
    truncate(shard + ".bin", 2)
    problems = check(shard)
    assert len(problems) == 1
    assert problems[0].startswith(shard + ".bin: truncated: 24 bytes")
    assert "13 uint16 tokens = 26 bytes" in problems[0]
    with pytest.raises(ShardFormatError, match=r"\.bin: 24 bytes"):
        IndexedDataset(shard)


def test_check_overlong_bin(shard):
    with open(shard + ".bin", "ab") as f:
        f.write(b"\0\0")
    assert check(shard) == [
        f"{shard}.bin: too long: 28 bytes, but the 6 sequence lengths in {shard}.idx "
        "add up to 13 uint16 tokens = 26 bytes"
    ]


def test_check_truncated_idx(shard):
    truncate(shard + ".idx", 8)
    problems = check(shard)
    assert len(problems) == 1 and problems[0].startswith(shard + ".idx: truncated")


def test_check_bad_magic(shard):
    patch_file(shard + ".idx", 0, b"MMIDIDY")
    problems = check(shard)
    assert len(problems) == 1
    assert problems[0].startswith(f"{shard}.idx: not an indexed-dataset index")


def test_check_wrong_pointers(shard):
    _, pointers, _ = idx_offsets(6)
    patch_file(shard + ".idx", pointers + 8 * 3, struct.pack("<q", 10))  # should be 16
    problems = check(shard)
    assert problems == [
        f"{shard}.idx: 1 sequence pointers are not the cumulative byte offsets of the "
        "lengths (first: sequence 3 points at byte 10, expected 16)"
    ]


def test_check_wrong_lengths(shard):
    lengths, _, _ = idx_offsets(6)
    patch_file(shard + ".idx", lengths, struct.pack("<i", 4))  # was 3
    problems = check(shard)
    assert any("5 sequence pointers are not the cumulative" in p for p in problems)
    assert any(p.startswith(f"{shard}.bin: truncated") for p in problems)
    patch_file(shard + ".idx", lengths, struct.pack("<i", -1))
    assert any(
        "1 negative sequence lengths (first: sequence 0, length -1)" in p for p in check(shard)
    )


def test_check_document_indices(shard):
    _, _, docs = idx_offsets(6)
    patch_file(shard + ".idx", docs + 8 * 2, struct.pack("<q", 1))  # [0, 2, 1, 3, 4, 6]
    assert check(shard) == [
        f"{shard}.idx: document indices decrease at 1 places (first: entry 2 is 1 after 2)"
    ]
    patch_file(shard + ".idx", docs, struct.pack("<q", 1))
    patch_file(shard + ".idx", docs + 8 * 2, struct.pack("<q", 2))
    assert check(shard) == [f"{shard}.idx: document indices start at 1, not 0"]
    patch_file(shard + ".idx", docs, struct.pack("<q", 0))
    patch_file(shard + ".idx", docs + 8 * 5, struct.pack("<q", 5))
    assert check(shard) == [
        f"{shard}.idx: document indices end at 5, not at the number of sequences (6)"
    ]


def test_check_chunked_matches_whole(shard, monkeypatch):
    _, pointers, docs = idx_offsets(6)
    patch_file(shard + ".idx", pointers + 8 * 5, struct.pack("<q", 0))
    patch_file(shard + ".idx", docs + 8 * 4, struct.pack("<q", 1))
    whole = check(shard)
    assert len(whole) == 2
    monkeypatch.setattr(shard_format, "CHUNK", 2)
    assert check(shard) == whole


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(directory, prefixes, dtype="uint16", **extra):
    entries = []
    for prefix in prefixes:
        ds = IndexedDataset(prefix)
        entries.append(
            {
                "prefix": os.path.relpath(prefix, directory),
                "documents": ds.documents,
                "sequences": len(ds),
                "tokens": ds.num_tokens,
                "bin_bytes": os.path.getsize(prefix + ".bin"),
                "bin_sha256": sha256(prefix + ".bin"),
                "idx_sha256": sha256(prefix + ".idx"),
            }
        )
    manifest = {
        "format": "megatron-mmididx-v1",
        "tokenizer": {"name": "gpt2", "vocab_sha256": "0" * 64},
        "dtype": dtype,
        "documents": sum(e["documents"] for e in entries),
        "sequences": sum(e["sequences"] for e in entries),
        "tokens": sum(e["tokens"] for e in entries),
        "shards": entries,
        "complete": True,
        **extra,
    }
    Path(directory, "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_check_checksums_against_the_manifest(shard, tmp_path):
    write_manifest(tmp_path, [shard])
    assert check(shard) == []
    patch_file(shard + ".bin", 3, b"\xff")  # a flipped byte: only the checksum sees it
    problems = check(shard)
    assert len(problems) == 1
    assert problems[0].startswith(f"{shard}.bin: SHA-256 ")
    assert "manifest.json (shard 'data_00000')" in problems[0]
    assert check(shard, checksums=False) == []
    write_manifest(tmp_path, [shard])
    _, _, docs = idx_offsets(6)
    patch_file(shard + ".idx", docs + 8 * 2, struct.pack("<q", 3))  # still valid: [0,2,3,3,4,6]
    problems = check(shard)
    assert len(problems) == 1 and problems[0].startswith(f"{shard}.idx: SHA-256 ")


def test_check_counts_against_the_manifest(shard, tmp_path):
    manifest = write_manifest(tmp_path, [shard])
    manifest["shards"][0].update(tokens=15, bin_bytes=30)
    Path(tmp_path, "manifest.json").write_text(json.dumps(manifest))
    problems = check(shard)
    assert len(problems) == 2
    assert any(p.startswith(f"{shard}.bin: 26 bytes, but ") for p in problems)
    assert any(p.startswith(f"{shard}.idx: 13 tokens, but ") for p in problems)


# ---------------------------------------------------------------------------
# merge


MERGE_INPUTS = [DOCS_U16, [[[9, 9]], [[8]]], [], [[[], [1]]], DOCS_U16[::-1]]


@pytest.mark.parametrize("chunk", [None, 1, 2])
def test_merge_round_trip(tmp_path, monkeypatch, chunk):
    if chunk:
        monkeypatch.setattr(shard_format, "CHUNK", chunk)
    prefixes = [
        write_shard(tmp_path / f"in{i}", docs, np.uint16) for i, docs in enumerate(MERGE_INPUTS)
    ]
    out = concatenate(prefixes, tmp_path / "merged")
    assert out == str(tmp_path / "merged")
    all_docs = [doc for docs in MERGE_INPUTS for doc in docs]
    ds = IndexedDataset(out)
    assert_reads(ds, all_docs)
    assert check(out) == []
    # Rebased arrays, spelled out: pointers move by the bytes before each shard,
    # document indices by the sequences before it.
    inputs = [IndexedDataset(p) for p in prefixes]
    byte_bases = np.cumsum([0] + [os.path.getsize(p + ".bin") for p in prefixes])
    seq_bases = np.cumsum([0] + [len(d) for d in inputs])
    assert ds.sequence_pointers.tolist() == [
        int(p) + int(b)
        for d, b in zip(inputs, byte_bases[:-1], strict=True)
        for p in d.sequence_pointers
    ]
    assert ds.document_indices.tolist() == [0] + [
        int(x) + int(b)
        for d, b in zip(inputs, seq_bases[:-1], strict=True)
        for x in d.document_indices[1:]
    ]
    assert Path(out + ".bin").read_bytes() == b"".join(
        Path(p + ".bin").read_bytes() for p in prefixes
    )
    # Byte for byte what write_index gives for the concatenation.
    write_shard(tmp_path / "direct", all_docs, np.uint16)
    assert Path(out + ".idx").read_bytes() == Path(tmp_path / "direct.idx").read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def test_merge_random_shards_in_small_chunks(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    all_docs, prefixes = [], []
    for i in range(6):
        docs = [
            [
                rng.integers(0, 2**31 - 1, rng.integers(0, 9)).tolist()
                for _ in range(rng.integers(0, 4))
            ]
            for _ in range(rng.integers(0, 30))
        ]
        prefixes.append(write_shard(tmp_path / f"in{i}", docs, np.int32))
        all_docs += docs
    monkeypatch.setattr(shard_format, "CHUNK", 7)
    out = concatenate(prefixes, tmp_path / "merged")
    assert check(out) == []
    assert_reads(IndexedDataset(out), all_docs)
    direct = write_shard(tmp_path / "direct", all_docs, np.int32)
    for suffix in (".bin", ".idx"):
        assert Path(out + suffix).read_bytes() == Path(direct + suffix).read_bytes()


def sparse_shard(prefix, lengths, document_indices, ends=True):
    """A uint16 shard of `lengths` whose `.bin` is a sparse file: zeros, save
    for each sequence's first and (with `ends`) last token, which are its
    number plus 1 and plus 1001. Gigabytes of tokens take no disk and no time
    to write."""
    prefix = os.fspath(prefix)
    pointers = np.concatenate(([0], np.cumsum(np.asarray(lengths[:-1], dtype=np.int64) * 2)))
    with open(prefix + ".bin", "wb") as f:
        f.truncate(2 * sum(lengths))
        for i, (pointer, length) in enumerate(zip(pointers.tolist(), lengths, strict=True)):
            f.seek(pointer)
            f.write(struct.pack("<H", i + 1))
            if ends:
                f.seek(pointer + 2 * (length - 1))
                f.write(struct.pack("<H", i + 1001))
    write_index(prefix + ".idx", lengths, document_indices, np.uint16)
    return prefix


def test_merge_past_4_gib_and_2_31_tokens(tmp_path):
    """Megatron's merge overflowed 32-bit sizes past about 40B tokens; here the
    merged pointers pass 2**31 and 2**32 bytes and the tokens 2**31."""
    first = sparse_shard(tmp_path / "a", [2**29, 2**29 + 5], [0, 1, 2])
    second = sparse_shard(tmp_path / "b", [2**30 - 100, 200, 7], [0, 2, 3])
    out = concatenate([first, second], tmp_path / "merged")
    lengths = [2**29, 2**29 + 5, 2**30 - 100, 200, 7]
    assert check(out) == []
    with IndexedDataset(out) as ds:
        assert ds.num_tokens == sum(lengths) > 2**31
        pointers = np.cumsum([0] + lengths[:-1], dtype=np.int64) * 2
        assert ds.sequence_pointers.tolist() == pointers.tolist()
        assert ds.sequence_pointers[-1] > 2**32
        assert ds.document_indices.tolist() == [0, 1, 2, 4, 5]
        numbers = [1, 2, 1, 2, 3]  # each input's sequences are numbered from 1
        for i, (number, length) in enumerate(zip(numbers, lengths, strict=True)):
            assert len(ds[i]) == length
            assert ds.get(i, 0, 1).tolist() == [number]
            assert ds.get(i, length - 1).tolist() == [number + 1000]
    assert info(out, checksums=False)["tokens"] == sum(lengths)


def test_merge_keeps_holes_and_checks_their_zeros(tmp_path):
    # Holes longer than the copy buffer, inside a file and at its end.
    a = sparse_shard(tmp_path / "a", [2**24, 5, 2**23 + 3], [0, 2, 3])
    b = write_shard(tmp_path / "b", DOCS_U16, np.uint16)
    c = sparse_shard(tmp_path / "c", [3, 2**24], [0, 1, 2], ends=False)
    write_manifest(tmp_path, [a, b, c])
    out = concatenate([a, b, c], tmp_path / "out")
    assert check(out) == []
    inputs = [Path(p + ".bin").read_bytes() for p in (a, b, c)]
    assert Path(out + ".bin").read_bytes() == b"".join(inputs)
    merged = os.stat(out + ".bin")
    if os.stat(a + ".bin").st_blocks * 512 < len(inputs[0]) // 4:  # the file system has holes
        assert merged.st_blocks * 512 < merged.st_size // 4
    patch_file(a + ".bin", 2**20, b"\x01")  # data in a hole: only the checksum sees it
    with pytest.raises(ShardFormatError, match=r"a\.bin: SHA-256 [0-9a-f]+ does not match"):
        concatenate([a, b, c], tmp_path / "again")
    assert not list(tmp_path.glob("again*"))


def test_merge_rejects_mixed_dtypes(tmp_path):
    a = write_shard(tmp_path / "a", DOCS_U16, np.uint16)
    b = write_shard(tmp_path / "b", DOCS_I32, np.int32)
    with pytest.raises(ValueError, match="different dtypes.*uint16.*int32"):
        concatenate([a, b], tmp_path / "out")
    assert not list(tmp_path.glob("out*"))


def test_merge_refuses_bad_inputs(tmp_path):
    a = write_shard(tmp_path / "a", DOCS_U16, np.uint16)
    with pytest.raises(ValueError, match="overwrite"):
        concatenate([a], a)
    with pytest.raises(ValueError, match="at least one"):
        concatenate([], tmp_path / "out")
    with open(a + ".bin", "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(ShardFormatError, match=r"a\.bin: too long: 28 bytes"):
        concatenate([a], tmp_path / "out")
    assert not list(tmp_path.glob("out*"))


def corrupt_pointer(prefix):
    _, pointers, _ = idx_offsets(6)
    patch_file(prefix + ".idx", pointers + 8 * 2, struct.pack("<q", 2))


def corrupt_document_indices(prefix):
    _, _, docs = idx_offsets(6)
    patch_file(prefix + ".idx", docs + 8 * 2, struct.pack("<q", 1))


def flip_a_token(prefix):
    patch_file(prefix + ".bin", 3, b"\xff")


def flip_a_document_index(prefix):
    _, _, docs = idx_offsets(6)
    patch_file(prefix + ".idx", docs + 8 * 2, struct.pack("<q", 3))  # still valid: [0,2,3,3,4,6]


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (corrupt_pointer, r"b\.idx: 1 sequence pointers are not the cumulative byte offsets"),
        (corrupt_document_indices, r"b\.idx: document indices decrease"),
        (flip_a_token, r"b\.bin: SHA-256 [0-9a-f]+ does not match"),
        (flip_a_document_index, r"b\.idx: SHA-256 [0-9a-f]+ does not match"),
    ],
)
def test_merge_verifies_each_input_and_leaves_nothing_on_failure(tmp_path, corrupt, message):
    a = write_shard(tmp_path / "a", DOCS_U16, np.uint16)
    b = write_shard(tmp_path / "b", DOCS_U16, np.uint16)
    write_manifest(tmp_path, [a, b])
    corrupt(b)
    with pytest.raises(ShardFormatError, match=message) as error:
        concatenate([a, b], tmp_path / "out")
    assert str(error.value).startswith(f"cannot merge {b}: ")
    assert not list(tmp_path.glob("out*"))


def test_merge_crash_leaves_no_finished_looking_output(tmp_path, monkeypatch):
    a = write_shard(tmp_path / "a", DOCS_U16, np.uint16)
    write_shard(tmp_path / "out", DOCS_I32, np.int32)  # an older output

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(shard_format, "write_header", crash)
    with pytest.raises(OSError, match="disk full"):
        concatenate([a], tmp_path / "out")
    assert not list(tmp_path.glob("*.partial"))
    # The old pair is untouched: nothing was renamed.
    assert_reads(IndexedDataset(tmp_path / "out"), DOCS_I32)


# ---------------------------------------------------------------------------
# info

LENGTHS = [0, 1, 2, 3, 4, 7, 8, 100]


def write_lengths_shard(prefix, lengths):
    docs = [[list(range(n))] for n in lengths]
    return write_shard(prefix, docs, np.uint16)


@pytest.mark.parametrize("chunk", [None, 3])
def test_info_of_a_prefix(tmp_path, monkeypatch, chunk):
    if chunk:
        monkeypatch.setattr(shard_format, "CHUNK", chunk)
    prefix = write_lengths_shard(tmp_path / "s", LENGTHS)
    result = info(prefix)
    assert result["problems"] == []
    assert (result["documents"], result["sequences"], result["tokens"]) == (8, 8, 125)
    assert result["dtype"] == "uint16"
    assert (result["min_length"], result["max_length"]) == (0, 100)
    assert result["mean_length"] == pytest.approx(125 / 8)
    assert result["histogram"] == [
        (0, 1, 1),
        (1, 2, 1),
        (2, 4, 2),
        (4, 8, 2),
        (8, 16, 1),
        (16, 32, 0),
        (32, 64, 0),
        (64, 128, 1),
    ]
    (row,) = result["shards"]
    assert row["prefix"] == prefix and row["bin_bytes"] == 250 and row["problems"] == []


def test_info_histogram_bucket_edges(tmp_path):
    prefix = write_lengths_shard(tmp_path / "s", [2**k - 1 for k in range(1, 12)] + [1024])
    counts = {low: c for low, _, c in info(prefix)["histogram"]}
    assert counts == {0: 0, 1: 1, **{2 ** (k - 1): 1 for k in range(2, 11)}, 1024: 2}


def test_info_of_a_directory_without_manifest(tmp_path):
    write_lengths_shard(tmp_path / "b", [5, 6])
    write_lengths_shard(tmp_path / "a", LENGTHS)
    result = info(tmp_path)
    assert [Path(r["prefix"]).name for r in result["shards"]] == ["a", "b"]
    assert (result["documents"], result["sequences"], result["tokens"]) == (10, 10, 136)
    assert result["histogram"][3] == (4, 8, 4)
    assert result["manifest"] is None and result["problems"] == []
    # Sound shards, but nothing says the run that wrote them finished.
    (reason,) = result["unfinished"]
    assert reason.startswith(f"{tmp_path}: no manifest.json, so nothing says the run finished")


def test_info_of_a_directory_with_manifest(tmp_path):
    a = write_lengths_shard(tmp_path / "data_00000", LENGTHS)
    b = write_lengths_shard(tmp_path / "data_00001", [5, 6])
    write_lengths_shard(tmp_path / "unlisted", [1])  # not of this set: other shard names
    write_manifest(tmp_path, [b, a], settings={"prefix": "data"})
    result = info(tmp_path)
    assert [Path(r["prefix"]).name for r in result["shards"]] == ["data_00001", "data_00000"]
    assert (result["documents"], result["tokens"]) == (10, 136)
    assert result["problems"] == [] and result["manifest"]["tokenizer"]["name"] == "gpt2"
    assert result["unfinished"] == []

    write_manifest(tmp_path, [a, b], settings={"prefix": "data"}, complete=False, tokens=1)
    patch_file(a + ".bin", 0, b"\x01")
    result = info(tmp_path)
    assert len(result["problems"]) == 2
    assert result["problems"][0].startswith(f"{a}.bin: SHA-256")
    assert "tokens is 1, but the shards hold 136" in result["problems"][1]
    assert len(info(tmp_path, checksums=False)["problems"]) == 1
    (reason,) = result["unfinished"]
    assert "not marked complete" in reason


def test_info_says_what_an_unfinished_run_lacks(tmp_path):
    a = write_lengths_shard(tmp_path / "data_00000", LENGTHS)
    b = write_lengths_shard(tmp_path / "data_00001", [5, 6])
    write_manifest(tmp_path, [a], settings={"prefix": "data"})
    (tmp_path / "data_00002.bin.partial").write_bytes(b"\0\0")
    result = info(tmp_path)
    assert result["problems"] == []
    assert result["unfinished"] == [
        f"{b}: a shard in the directory that {tmp_path / 'manifest.json'} does not list",
        f"{tmp_path / 'data_00002.bin.partial'}: a shard that was being written",
    ]


def test_info_reports_unreadable_shards(tmp_path):
    write_lengths_shard(tmp_path / "a", LENGTHS)
    bad = write_lengths_shard(tmp_path / "b", [5])
    patch_file(bad + ".idx", 0, b"X")
    b_i32 = write_shard(tmp_path / "c", DOCS_I32, np.int32)
    result = info(tmp_path)
    assert result["shards"][1]["sequences"] is None
    assert result["sequences"] == 8 + 3
    assert result["dtype"] is None
    assert any(p.startswith(f"{bad}.idx: not an indexed-dataset index") for p in result["problems"])
    assert any("different dtypes: int32, uint16" in p for p in result["problems"])
    assert Path(b_i32).name == "c"
    assert info(tmp_path / "nothing")["problems"][0].endswith("nothing.idx: missing")


# ---------------------------------------------------------------------------
# megatron-core interop
#
# tests/data/megatron/ holds shards written by megatron-core's own
# IndexedDatasetBuilder (see README.md there) from the DOCS_* above; they are
# read here with or without megatron installed. With megatron-core importable,
# the tests below also run it live in both directions.


@pytest.mark.parametrize(
    ("name", "docs", "dtype"),
    [("builder_uint16", DOCS_U16, np.uint16), ("builder_int32", DOCS_I32, np.int32)],
)
def test_reads_megatron_builder_fixtures(name, docs, dtype):
    ds = IndexedDataset(DATA / name)
    assert ds.dtype == dtype
    assert_reads(ds, docs)
    assert check(DATA / name) == []
    assert info(DATA / name)["problems"] == []


@pytest.mark.parametrize(
    ("name", "docs", "dtype"),
    [("builder_uint16", DOCS_U16, np.uint16), ("builder_int32", DOCS_I32, np.int32)],
)
def test_writes_what_megatron_builder_writes(tmp_path, name, docs, dtype):
    prefix = write_shard(tmp_path / name, docs, dtype)
    for suffix in (".bin", ".idx"):
        assert Path(prefix + suffix).read_bytes() == (DATA / (name + suffix)).read_bytes()


def test_reads_megatron_multimodal_fixture():
    docs, modes = DOCS_MULTIMODAL
    ds = IndexedDataset(DATA / "builder_multimodal")
    assert_reads(ds, docs)
    assert ds.sequence_modes.tolist() == modes
    assert check(DATA / "builder_multimodal") == []


def test_merge_is_megatron_add_index(tmp_path):
    """megatron's builder.add_index(u16) + add_index(u16) is the merged fixture."""
    a = write_shard(tmp_path / "a", DOCS_U16, np.uint16)
    b = write_shard(tmp_path / "b", DOCS_U16[::-1], np.uint16)
    out = concatenate([a, b], tmp_path / "merged")
    for suffix in (".bin", ".idx"):
        expected = (DATA / ("add_index_uint16" + suffix)).read_bytes()
        assert Path(out + suffix).read_bytes() == expected


def megatron_indexed_dataset():
    return pytest.importorskip("megatron.core.datasets.indexed_dataset")


def build_with_megatron(module, prefix, docs, dtype, modes=None):
    import torch

    prefix = os.fspath(prefix)
    builder = module.IndexedDatasetBuilder(
        prefix + ".bin", dtype=dtype, multimodal=modes is not None
    )
    modes_left = iter(modes or [])
    for doc in docs:
        for seq in doc:
            tensor = torch.tensor(seq, dtype=torch.int64)
            if modes is None:
                builder.add_item(tensor)
            else:
                builder.add_item(tensor, mode=next(modes_left))
        builder.end_document()
    builder.finalize(prefix + ".idx")
    return prefix


@pytest.mark.trainers
@pytest.mark.parametrize(("docs", "dtype"), [(DOCS_U16, np.uint16), (DOCS_I32, np.int32)])
def test_megatron_reads_bbpe_shards(tmp_path, docs, dtype):
    module = megatron_indexed_dataset()
    prefix = write_shard(tmp_path / "s", docs, dtype)
    theirs = module.IndexedDataset(prefix, multimodal=False, mmap=True)
    seqs = sequences_of(docs)
    assert len(theirs) == len(seqs)
    assert theirs.index.dtype == dtype
    for i, seq in enumerate(seqs):
        assert theirs[i].tolist() == seq
        if seq:
            assert theirs.get(i, offset=1).tolist() == seq[1:]
            assert theirs.get(i, offset=0, length=1).tolist() == seq[:1]
    assert [s.tolist() for s in theirs[0 : len(seqs)]] == seqs
    assert theirs.document_indices.tolist() == document_indices_of(docs).tolist()
    assert theirs.sequence_lengths.tolist() == [len(s) for s in seqs]


@pytest.mark.trainers
@pytest.mark.parametrize(("docs", "dtype"), [(DOCS_U16, np.uint16), (DOCS_I32, np.int32)])
def test_bbpe_reads_megatron_shards(tmp_path, docs, dtype):
    module = megatron_indexed_dataset()
    prefix = build_with_megatron(module, tmp_path / "m", docs, dtype)
    ds = IndexedDataset(prefix)
    assert ds.dtype == dtype
    assert_reads(ds, docs)
    assert check(prefix) == []
    # and the files are byte-identical to ours
    ours = write_shard(tmp_path / "ours", docs, dtype)
    for suffix in (".bin", ".idx"):
        assert Path(prefix + suffix).read_bytes() == Path(ours + suffix).read_bytes()


@pytest.mark.trainers
def test_megatron_fixtures_are_current(tmp_path):
    """The fixtures are what the installed megatron-core writes (regenerate them
    with BBPE_WRITE_MEGATRON_FIXTURES=1 if this fails after a format change)."""
    module = megatron_indexed_dataset()
    out = DATA if os.environ.get("BBPE_WRITE_MEGATRON_FIXTURES") else tmp_path
    build_with_megatron(module, out / "builder_uint16", DOCS_U16, np.uint16)
    build_with_megatron(module, out / "builder_int32", DOCS_I32, np.int32)
    build_with_megatron(
        module,
        out / "builder_multimodal",
        *DOCS_MULTIMODAL[:1],
        np.uint16,
        modes=DOCS_MULTIMODAL[1],
    )
    a = build_with_megatron(module, tmp_path / "a", DOCS_U16, np.uint16)
    b = build_with_megatron(module, tmp_path / "b", DOCS_U16[::-1], np.uint16)
    builder = module.IndexedDatasetBuilder(str(out / "add_index_uint16.bin"), dtype=np.uint16)
    builder.add_index(a)
    builder.add_index(b)
    builder.finalize(str(out / "add_index_uint16.idx"))
    names = ["builder_uint16", "builder_int32", "builder_multimodal", "add_index_uint16"]
    for name in names:
        for suffix in (".bin", ".idx"):
            assert (out / (name + suffix)).read_bytes() == (DATA / (name + suffix)).read_bytes()
