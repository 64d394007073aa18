"""A corpus encoded by several ranks (`bbpe encode --rank R --world-size W`)
and combined (`bbpe combine`): the same documents, ids and totals as one
machine's run, and every way a set of parts can be wrong named."""

import gzip
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bbpe import _core, cli, shards
from bbpe.packing import ShardDocuments
from bbpe.sample import sample_texts
from bbpe.shards import parts, pipeline, ranks

DOCS = sample_texts()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Five files of different sizes and kinds in a directory; the empty
    document and the blank paragraph are counted but not written."""
    root = tmp_path_factory.mktemp("corpus")

    def jsonl(docs):
        return "".join(json.dumps({"text": d}) + "\n" for d in docs)

    (root / "a.jsonl").write_text(jsonl(DOCS[:60] + [""] + DOCS[60:70]), encoding="utf-8")
    (root / "b.txt").write_text("\n\n".join(DOCS[70:75]) + "\n", encoding="utf-8")
    with gzip.open(root / "c.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(jsonl(DOCS[75:160]))
    (root / "d").mkdir()
    (root / "d" / "e.jsonl").write_text(jsonl(DOCS[160:162]), encoding="utf-8")
    (root / "f.txt").write_text("\n\n".join(DOCS[162:]) + "\n", encoding="utf-8")
    return root


def documents_of(directory: Path) -> list[list[list[int]]]:
    """Every document of the shards `directory/manifest.json` lists, in order."""
    manifest = json.loads((directory / "manifest.json").read_text())
    documents = []
    for shard in manifest["shards"]:
        with shards.IndexedDataset(directory / shard["prefix"]) as ds:
            documents += [[s.tolist() for s in ds.document(k)] for k in range(ds.documents)]
    return documents


def encode(corpus: Path, out: Path, *options: str) -> None:
    args = ["encode", str(corpus), "-o", str(out), "--shard-size", "40KB", *options]
    assert cli.main(args) == 0


def encode_in_parts(corpus: Path, out: Path, world_size: int, *options: str) -> None:
    for rank in range(world_size):
        encode(corpus, out, "--rank", str(rank), "--world-size", str(world_size), *options)


@pytest.mark.parametrize("options", [(), ("--append-eos",), ("--split-sentences", "--append-eos")])
def test_parts_combined_are_the_single_run(corpus, tmp_path, options):
    encode(corpus, tmp_path / "single", *options)
    single = documents_of(tmp_path / "single")
    alone = json.loads((tmp_path / "single" / "manifest.json").read_text())
    for world_size in (1, 2, 3, 7):
        out = tmp_path / f"w{world_size}"
        encode_in_parts(corpus, out, world_size, *options)
        assert cli.main(["combine", str(out)]) == 0
        assert documents_of(out) == single, world_size
        combined = json.loads((out / "manifest.json").read_text())
        for key in ("tokenizer", "settings", "inputs", "dtype", "format"):
            assert combined[key] == alone[key], (world_size, key)
        for key in ("documents", "sequences", "tokens", "empty_documents"):
            assert combined[key] == alone[key], (world_size, key)
        assert combined["complete"] is True
        assert combined["parts"]["world_size"] == world_size
        report = shards.info(out)
        assert report["problems"] == [] and report["unfinished"] == [], report
        assert report["documents"] == len(single)
        assert all(shards.check(out / s["prefix"]) == [] for s in combined["shards"])
        read_as_one, alone_read = ShardDocuments(out), ShardDocuments(tmp_path / "single")
        assert (read_as_one.document_starts == alone_read.document_starts).all()
        assert (read_as_one.sentence_lengths == alone_read.sentence_lengths).all()


def test_each_rank_gets_a_contiguous_balanced_share(corpus):
    files = [str(f) for f in _core.expand_inputs([str(corpus)])]
    for world_size in (1, 2, 3, 7):
        got = []
        for rank in range(world_size):
            mine, _ = pipeline.files_of_rank([str(corpus)], rank, world_size)
            got += mine
        assert got == files
    empty_ranks = [r for r in range(7) if not pipeline.files_of_rank([str(corpus)], r, 7)[0]]
    assert len(empty_ranks) >= 2  # five files, seven ranks


@given(st.lists(st.integers(0, 10**12), max_size=40), st.integers(1, 50))
def test_shares_cover_the_files_in_order_within_one_file_of_equal(sizes, world_size):
    shares = [ranks.share(sizes, rank, world_size) for rank in range(world_size)]
    assert [i for share in shares for i in share] == list(range(len(sizes)))
    weights = [s + 1 for s in sizes]
    fair, biggest = sum(weights) / world_size, max(weights, default=0)
    for share in shares:
        assert sum(weights[i] for i in share) <= fair + biggest


def test_rank_arguments_are_checked(corpus, tmp_path):
    with pytest.raises(ValueError, match="rank 3 is out of range for world size 3"):
        shards.write(corpus, tmp_path, "roberta-base", rank=3, world_size=3)
    with pytest.raises(ValueError, match="rank -1 is out of range"):
        shards.write(corpus, tmp_path, "roberta-base", rank=-1, world_size=3)
    with pytest.raises(ValueError, match="world size must be at least 1, not 0"):
        shards.write(corpus, tmp_path, "roberta-base", rank=0, world_size=0)
    with pytest.raises(ValueError, match="give both or neither"):
        shards.write(corpus, tmp_path, "roberta-base", rank=0)
    with pytest.raises(ValueError, match="standard input"):
        shards.write("-", tmp_path, "roberta-base", rank=0, world_size=2)
    assert list(tmp_path.iterdir()) == []
    args = ["encode", str(corpus), "-o", str(tmp_path), "--rank", "2", "--world-size", "2"]
    assert cli.main(args) == 2
    assert cli.main(["encode", str(corpus), "-o", str(tmp_path), "--rank", "0"]) == 2
    assert cli.main(["encode", str(corpus), "--rank", "0", "--world-size", "1"]) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def three_parts(corpus, tmp_path) -> Path:
    out = tmp_path / "out"
    encode_in_parts(corpus, out, 3)
    return out


def test_a_missing_rank_is_named(three_parts):
    shutil.rmtree(three_parts / "rank-00001-of-00003")
    with pytest.raises(ValueError, match=r"missing rank 1 of 3 \(.*rank-00001-of-00003"):
        parts.combine_parts(three_parts)
    assert not (three_parts / "manifest.json").exists()
    assert cli.main(["combine", str(three_parts)]) == 2


def test_an_unfinished_rank_is_named(three_parts):
    manifest = three_parts / "rank-00002-of-00003" / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "complete": False}))
    with pytest.raises(ValueError, match=r"rank-00002-of-00003.*not complete"):
        parts.combine_parts(three_parts)


def test_a_duplicated_rank_is_named(three_parts):
    shutil.rmtree(three_parts / "rank-00002-of-00003")
    shutil.copytree(three_parts / "rank-00001-of-00003", three_parts / "rank-00002-of-00003")
    with pytest.raises(ValueError, match=r"rank 1 of 3 twice: .*rank-00001.* and .*rank-00002"):
        parts.combine_parts(three_parts)
    given = [three_parts / "rank-00000-of-00003", three_parts / "rank-00001-of-00003"] * 2
    with pytest.raises(ValueError, match="rank 0 of 3 twice"):
        parts.combine_parts(three_parts, given)


def test_parts_of_another_world_size_are_refused(corpus, three_parts):
    encode(corpus, three_parts, "--rank", "0", "--world-size", "2")
    with pytest.raises(ValueError, match="different world sizes"):
        parts.combine_parts(three_parts)


def test_mismatched_settings_are_named(corpus, three_parts):
    rank = "rank-00001-of-00003"
    shutil.rmtree(three_parts / rank)
    encode(corpus, three_parts, "--rank", "1", "--world-size", "3", "--append-eos")
    with pytest.raises(ValueError, match=rf"{rank}.*settings.*append_eos.*rank 0"):
        parts.combine_parts(three_parts)


def test_ranks_that_split_different_file_lists_are_refused(corpus, tmp_path):
    live, out = tmp_path / "live", tmp_path / "out"
    shutil.copytree(corpus, live)
    encode(live, out, "--rank", "0", "--world-size", "3")
    encode(live, out, "--rank", "1", "--world-size", "3")
    # Rank 2 starts after a file was added: its share and fingerprint differ.
    (live / "g.jsonl").write_text(json.dumps({"text": "new"}) + "\n")
    encode(live, out, "--rank", "2", "--world-size", "3")
    with pytest.raises(ValueError, match="rank-00002-of-00003.*split a different file list"):
        parts.combine_parts(out)


def test_a_corrupted_part_is_named_and_nothing_is_published(three_parts):
    manifest = json.loads((three_parts / "rank-00001-of-00003" / "manifest.json").read_text())
    victim = three_parts / "rank-00001-of-00003" / (manifest["shards"][0]["prefix"] + ".bin")
    data = bytearray(victim.read_bytes())
    data[10] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{victim}: SHA-256"):
        parts.combine_parts(three_parts)
    assert not (three_parts / "manifest.json").exists()


def test_a_single_runs_manifest_is_never_replaced(corpus, tmp_path):
    encode(corpus, tmp_path)
    encode(corpus, tmp_path, "--rank", "0", "--world-size", "1")
    before = (tmp_path / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="not of combined parts"):
        parts.combine_parts(tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == before


def test_no_parts_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no parts"):
        parts.combine_parts(tmp_path)
    with pytest.raises(ValueError, match="no parts to combine"):
        parts.combine_parts(tmp_path, [])
    (tmp_path / "notes.json").write_text("{}")
    with pytest.raises(ValueError, match="notes.json: neither a part's directory nor"):
        parts.combine_parts(tmp_path, [tmp_path / "notes.json"])
    (tmp_path / "single").mkdir()
    (tmp_path / "single" / "manifest.json").write_text(json.dumps({"shards": []}))
    with pytest.raises(ValueError, match=r"not the manifest of a rank's part"):
        parts.combine_parts(tmp_path, [tmp_path / "single"])


def test_one_rank_resumes_and_the_parts_still_combine(corpus, tmp_path):
    encode(corpus, tmp_path / "single")
    out = tmp_path / "out"
    encode(corpus, out, "--rank", "0", "--world-size", "2")

    def interrupt(stage, done, total):
        if done[2] > 30_000:  # tokens: a few 40 KB shards are finished by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        shards.write(
            corpus, out, "roberta-base", shard_size="40KB", rank=1, world_size=2, progress=interrupt
        )
    with pytest.raises(ValueError, match="rank 1.*not complete"):
        parts.combine_parts(out)
    summary = shards.write(
        corpus, out, "roberta-base", shard_size="40KB", rank=1, world_size=2, resume=True
    )
    assert summary["resumed_documents"] > 0
    assert summary["part"] == str(out / "rank-00001-of-00002")
    parts.combine_parts(out)
    assert documents_of(out) == documents_of(tmp_path / "single")
    # Combining again (after a rank was redone, say) replaces its own manifest.
    parts.combine_parts(out)
    assert documents_of(out) == documents_of(tmp_path / "single")


def test_parts_named_by_their_manifests_may_lie_elsewhere(corpus, tmp_path):
    """As another engine (a Ray driver) calls it: each rank's summary names
    its part, and the combined manifest goes wherever the driver says."""
    encode(corpus, tmp_path / "single")
    written = [
        shards.write(
            corpus, tmp_path / "parts", "roberta-base", shard_size="40KB", rank=r, world_size=3
        )["part"]
        for r in (2, 0, 1)
    ]
    index = tmp_path / "index"
    index.mkdir()
    manifest = parts.combine_parts(index, [Path(p) / "manifest.json" for p in written])
    assert manifest["parts"]["manifests"][0] == "../parts/rank-00000-of-00003/manifest.json"
    assert documents_of(index) == documents_of(tmp_path / "single")
    report = shards.info(index)
    assert report["problems"] == [] and report["unfinished"] == []


def test_info_finds_a_part_changed_after_combining(corpus, three_parts):
    parts.combine_parts(three_parts)
    encode(
        corpus,
        three_parts,
        "--rank",
        "1",
        "--world-size",
        "3",
        "--overwrite",
        "--shard-size",
        "30KB",
    )
    problems = shards.info(three_parts)["problems"]
    stale = [p for p in problems if "changed after it was combined" in p]
    assert stale and "rank-00001-of-00003/data_00000" in stale[0], problems


@pytest.mark.trainers
def test_megatron_reads_the_combined_parts_as_the_single_run(corpus, tmp_path):
    megatron = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    encode(corpus, tmp_path / "single", "--split-sentences")
    out = tmp_path / "out"
    encode_in_parts(corpus, out, 3, "--split-sentences")
    parts.combine_parts(out)
    documents = []
    for shard in json.loads((out / "manifest.json").read_text())["shards"]:
        theirs = megatron.IndexedDataset(str(out / shard["prefix"]), multimodal=False, mmap=True)
        starts = theirs.document_indices.tolist()
        documents += [
            [theirs[i].tolist() for i in range(start, end)]
            for start, end in zip(starts, starts[1:], strict=False)
        ]
    assert documents == documents_of(tmp_path / "single")


def test_info_of_parts_not_yet_combined_says_to_combine_them(three_parts):
    problems = shards.info(three_parts)["problems"]
    assert len(problems) == 1 and "3 parts (rank-*-of-*): bbpe combine" in problems[0], problems
