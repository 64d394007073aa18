"""Fuzzes the `.idx` reader (`bbpe.shards`) with atheris: whatever the index
holds, opening and reading a shard, `check()` and `info()` raise only
ShardFormatError / ValueError (never another exception, a crash or a
huge allocation), and what is read agrees with the index: a sequence has its
length, a document its sequences, and a shard that `check()` calls sound
reads without error.

The input's first two bytes give the `.bin`'s size; the rest is the `.idx`.
Run from the repository root (see fuzz/README.md):
    PYTHONPATH=python python fuzz/python/idx_reader.py DIR fuzz/corpus/idx_reader
"""

import os
import resource
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from bbpe import shards

# A huge allocation fails as MemoryError, reported below as a finding.
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

DIRECTORY = tempfile.mkdtemp(prefix="bbpe-fuzz-idx-")
PREFIX = os.path.join(DIRECTORY, "shard")
# Reads per input: enough to reach every kind of entry, few enough to stay fast.
MOST_READS = 64


def read_everything(prefix: str) -> None:
    with shards.IndexedDataset(prefix) as ds:
        lengths, docs = ds.sequence_lengths, ds.document_indices
        repr(ds)
        assert ds.num_tokens == sum(int(n) for n in lengths)
        for i in range(min(len(ds), MOST_READS)):
            assert len(ds[i]) == lengths[i], (i, len(ds[i]), lengths[i])
            ds.get(i, 0, int(lengths[i]) // 2)
        for k in range(min(ds.documents, MOST_READS)):
            assert len(ds.document(k)) == docs[k + 1] - docs[k], (k, docs[k], docs[k + 1])


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    with open(shards.bin_path(PREFIX), "wb") as f:
        f.write(bytes(range(256)) * (int.from_bytes(data[:2], "little") // 256 + 1))
        f.truncate(int.from_bytes(data[:2], "little"))
    with open(shards.idx_path(PREFIX), "wb") as f:
        f.write(data[2:])
    problems = shards.check(PREFIX)
    shards.info(PREFIX)
    try:
        read_everything(PREFIX)
    except ValueError as e:  # ShardFormatError is one
        assert problems, f"check() found no problem, but reading raised {e!r}"


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
