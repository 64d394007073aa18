"""Training in two phases: word counts of corpus parts, written as count
tables, merged, then learned. The merges must be one machine's."""

from __future__ import annotations

import json
import random

import pytest

import bbpe
from bbpe.cli import main
from bbpe.sample import sample_path
from conftest import vocab_and_merges

SETTINGS = dict(vocab_size=1_200, min_frequency=2, max_words=None, threads=1)


@pytest.fixture(scope="module")
def documents() -> list[str]:
    with open(sample_path(), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


@pytest.fixture(scope="module")
def one_machine(documents):
    return bbpe.train(texts=documents, **SETTINGS)


def merges_of(tokenizer) -> list:
    return vocab_and_merges(tokenizer.to_json())[1]


def write_parts(directory, documents, parts: int) -> list[str]:
    """The corpus cut at document boundaries into `parts` JSONL files of
    uneven sizes."""
    cuts = sorted(random.Random(parts).sample(range(1, len(documents)), parts - 1))
    bounds = [0, *cuts, len(documents)]
    paths = []
    for part, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        path = directory / f"part{part}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for text in documents[start:end]:
                f.write(json.dumps({"text": text}) + "\n")
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("parts", [1, 2, 7])
def test_parts_counted_apart_and_merged_learn_one_machines_merges(
    documents, one_machine, tmp_path, parts
):
    files = write_parts(tmp_path, documents, parts)
    tables = []
    for i, path in enumerate(files):
        summary = bbpe.count_words(path, output=tmp_path / f"counts{i}.bin", threads=1)
        assert summary["parts"] == 1 and summary["pruned_words"] == 0
        tables.append(tmp_path / f"counts{i}.bin")
    assert sum(bbpe.inspect_counts(t)["documents"] for t in tables) == len(documents)

    # Merged all at once, in reverse, and as a tree: the same file.
    flat = bbpe.merge_counts(tables, tmp_path / "flat.bin")
    bbpe.merge_counts(tables[::-1], tmp_path / "reversed.bin")
    half = len(tables) // 2 or 1
    bbpe.merge_counts(tables[:half], tmp_path / "left.bin")
    subtrees = [tmp_path / "left.bin"]
    if tables[half:]:
        bbpe.merge_counts(tables[half:], tmp_path / "right.bin")
        subtrees.append(tmp_path / "right.bin")
    tree = bbpe.merge_counts(subtrees[::-1], tmp_path / "tree.bin")
    flat_bytes = (tmp_path / "flat.bin").read_bytes()
    assert (tmp_path / "reversed.bin").read_bytes() == flat_bytes
    assert (tmp_path / "tree.bin").read_bytes() == flat_bytes
    assert flat["parts"] == parts and tree["parts"] == (parts if parts > 1 else 1)
    assert flat["documents"] == len(documents)

    for source in ([tmp_path / "flat.bin"], tables[::-1]):
        learned, report = bbpe.train_from_counts_with_report(source, **SETTINGS)
        assert merges_of(learned) == merges_of(one_machine)
        assert learned.get_vocab() == one_machine.get_vocab()
        assert report.documents == len(documents)
        assert report.merges == len(merges_of(one_machine))


def test_files_and_texts_count_to_the_same_table(documents, tmp_path):
    path = write_parts(tmp_path, documents, 1)[0]
    bbpe.count_words(path, output=tmp_path / "from-file.bin")
    bbpe.count_words(texts=documents, output=tmp_path / "from-texts.bin")
    assert (tmp_path / "from-file.bin").read_bytes() == (tmp_path / "from-texts.bin").read_bytes()


def test_a_cap_on_merged_counts_is_one_machines_cap_on_one_batch(documents, tmp_path):
    # The sample is one counting batch (16 MB), so one machine prunes once,
    # at the end, as learning from merged counts does.
    capped = {**SETTINGS, "max_words": 3_000}
    tok, report = bbpe.train_with_report(texts=documents, **capped)
    assert report.pruned_words > 0
    tables = [tmp_path / f"c{i}.bin" for i in range(3)]
    for table, path in zip(tables, write_parts(tmp_path, documents, 3), strict=True):
        bbpe.count_words(path, output=table)
    learned, merged_report = bbpe.train_from_counts_with_report(tables, **capped)
    assert merged_report.unique_words == report.unique_words == 3_000
    assert merged_report.pruned_words == report.pruned_words
    assert merges_of(learned) == merges_of(tok)


def test_the_pattern_travels_with_the_counts(documents, tmp_path):
    pattern = r"\w+|\s+|[^\w\s]+"
    bbpe.count_words(texts=documents[:200], output=tmp_path / "p.bin", pattern=pattern)
    expected = bbpe.train(texts=documents[:200], pattern=pattern, **SETTINGS)
    learned = bbpe.train_from_counts(tmp_path / "p.bin", **SETTINGS)
    assert merges_of(learned) == merges_of(expected)
    assert learned.encode_batch(documents[:5]) == expected.encode_batch(documents[:5])
    bbpe.count_words(texts=documents[:200], output=tmp_path / "gpt2.bin")
    with pytest.raises(ValueError, match=r"gpt2\.bin.*split pattern"):
        bbpe.merge_counts([tmp_path / "p.bin", tmp_path / "gpt2.bin"], tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()
    assert not (tmp_path / "x.bin.partial").exists()


def test_damaged_tables_are_errors_naming_them(documents, tmp_path):
    table = tmp_path / "counts.bin"
    bbpe.count_words(texts=documents[:50], output=table)
    data = table.read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.bin.*truncated"):
        bbpe.train_from_counts(tmp_path / "cut.bin", **SETTINGS)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    (tmp_path / "flipped.bin").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"flipped\.bin"):
        bbpe.inspect_counts(tmp_path / "flipped.bin")
    (tmp_path / "shard.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(ValueError, match=r"shard\.jsonl.*not a bbpe count table"):
        bbpe.merge_counts([table, tmp_path / "shard.jsonl"], tmp_path / "out.bin")
    with pytest.raises(OSError, match=r"missing\.bin"):
        bbpe.inspect_counts(tmp_path / "missing.bin")


def test_command_line_counts_merges_and_trains(documents, one_machine, tmp_path, capsys):
    files = write_parts(tmp_path, documents, 2)
    for i, path in enumerate(files):
        assert main(["count", path, "-o", str(tmp_path / f"c{i}.bin"), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["parts"] == 1
    merged = str(tmp_path / "all.bin")
    assert (
        main(["count", "--merge", str(tmp_path / "c1.bin"), str(tmp_path / "c0.bin"), "-o", merged])
        == 0
    )
    assert "2 parts" in capsys.readouterr().out
    out = tmp_path / "vocab"
    args = [
        "train",
        "--from-counts",
        merged,
        "-o",
        str(out),
        "--vocab-size",
        "1200",
        "--max-words",
        "none",
        "--json",
    ]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(documents)
    assert merges_of(bbpe.Tokenizer.from_pretrained(out)) == merges_of(one_machine)
    assert main(["train", files[0], "--from-counts", merged, "-o", str(out)]) == 2
    assert "not both" in capsys.readouterr().err


def test_ranks_count_their_shares_and_learning_needs_all_of_them(
    documents, one_machine, tmp_path, capsys
):
    files = write_parts(tmp_path, documents, 5)
    tables = []
    for rank in range(7):  # more ranks than files: some shares are empty
        table = str(tmp_path / f"rank{rank}.bin")
        args = ["count", *files, "-o", table, "--rank", str(rank), "--world-size", "7", "--json"]
        assert main(args) == 0
        assert json.loads(capsys.readouterr().out)["ranks"] == [[rank], 7]
        tables.append(table)
    assert sum(bbpe.inspect_counts(t)["documents"] for t in tables) == len(documents)
    with pytest.raises(ValueError, match="rank 3 missing"):
        bbpe.train_from_counts(tables[:3] + tables[4:], **SETTINGS)
    with pytest.raises(ValueError, match=r"rank 0 of 7 is counted twice"):
        bbpe.merge_counts([tables[0], *tables], tmp_path / "twice.bin")
    assert merges_of(bbpe.train_from_counts(tables[::-1], **SETTINGS)) == merges_of(one_machine)
    with pytest.raises(ValueError, match="give both or neither"):
        bbpe.count_words(files, output=tmp_path / "x.bin", rank=1)
