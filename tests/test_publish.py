"""Files the Python side publishes (tokenizer.json, bbpe's tiktoken settings,
shard indices, merged shards) are durable: written under a partial name,
flushed, renamed, and their directory flushed; a failure leaves the earlier
file as it was and no partial file."""

import os
from pathlib import Path

import numpy as np
import pytest

from bbpe import Tokenizer, shards
from bbpe.shards import format as shard_format

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="names flushed files by /proc/self/fd"
)


@pytest.fixture
def fsynced(monkeypatch):
    """The paths `os.fsync` is called on, in order."""
    calls = []
    real = os.fsync

    def recording(fd):
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return calls


def _shard(prefix: Path, lengths: list[int]) -> str:
    ids = np.arange(sum(lengths), dtype=np.uint16)
    ids.tofile(str(prefix) + ".bin")
    shards.write_index(str(prefix) + ".idx", lengths, [0, len(lengths)], np.uint16)
    return str(prefix)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if "partial" in p.name)


def test_tokenizer_json_and_tiktoken_settings_are_flushed_with_their_directory(tmp_path, fsynced):
    gpt2 = Tokenizer.from_pretrained("gpt2")
    tokenizer_json, config, special_tokens_map = gpt2.save_pretrained(tmp_path)[:3]
    _, settings = gpt2.save(tmp_path, format="tiktoken")
    directory = str(tmp_path.resolve())
    assert fsynced == [
        entry
        for path in (tokenizer_json, config, special_tokens_map, settings)
        for entry in (f"{path.resolve()}.partial", directory)
    ]
    assert _leftovers(tmp_path) == []


def test_shard_index_and_merged_shards_are_flushed_with_their_directory(tmp_path, fsynced):
    first = _shard(tmp_path / "a", [3, 4])
    second = _shard(tmp_path / "b", [5])
    directory = str(tmp_path.resolve())
    assert fsynced == [
        f"{directory}/a.idx.partial",
        directory,
        f"{directory}/b.idx.partial",
        directory,
    ]
    fsynced.clear()
    shards.concatenate([first, second], tmp_path / "ab")
    assert fsynced == [
        f"{directory}/ab.bin.partial",
        f"{directory}/ab.idx.partial",
        directory,
        directory,
    ]
    assert _leftovers(tmp_path) == []


def test_a_failed_save_leaves_the_earlier_file_and_no_partial(tmp_path, monkeypatch):
    gpt2 = Tokenizer.from_pretrained("gpt2")
    path = gpt2.save(tmp_path, format="hf")[0]
    before = path.read_bytes()
    roberta = Tokenizer.from_pretrained("roberta-base")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        roberta.save(tmp_path, format="hf")
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_a_failed_index_write_or_merge_leaves_the_earlier_files(tmp_path, monkeypatch):
    first = _shard(tmp_path / "a", [3, 4])
    merged = shards.concatenate([first], tmp_path / "m")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_write_array = shard_format.write_array
    calls = []

    def failing(f, array, dtype):
        calls.append(dtype)
        if len(calls) == 2:  # after the header and the first array
            raise OSError(28, "No space left on device")
        return real_write_array(f, array, dtype)

    monkeypatch.setattr(shard_format, "write_array", failing)
    with pytest.raises(OSError, match="No space left"):
        shards.write_index(first + ".idx", [1, 1, 1], [0, 3], np.uint16)
    calls.clear()
    with pytest.raises(OSError, match="No space left"):
        shards.concatenate([first], merged)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
