"""Encoding a corpus into Megatron shards with the Rust pipeline
(bbpe.shards.write): round trips, sentence splitting, thread independence,
resume after an interruption, refusal to overwrite, and bad input."""

import json
from pathlib import Path

import pytest

import bbpe
from bbpe import shards
from bbpe.corpus import sample_texts

DOCS = sample_texts()


@pytest.fixture(scope="module")
def roberta():
    return bbpe.Tokenizer.from_pretrained("roberta-base")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    lines = [json.dumps({"text": d}) for d in DOCS]
    lines.insert(5, json.dumps({"text": ""}))  # an empty document is counted, not written
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_all(directory: Path) -> list[list[list[int]]]:
    """Every document of every shard in order, as lists of sequences."""
    manifest = json.loads((directory / "manifest.json").read_text())
    documents = []
    for shard in manifest["shards"]:
        with shards.IndexedDataset(directory / shard["prefix"]) as ds:
            for k in range(ds.documents):
                documents.append([seq.tolist() for seq in ds.document(k)])
    return documents


def test_round_trip_decodes_to_the_input(corpus, tmp_path, roberta):
    summary = shards.write(corpus, tmp_path, roberta, shard_size="200KB")
    assert summary["documents"] == len(DOCS)
    assert summary["empty_documents"] == 1
    assert len(summary["shards"]) > 2
    documents = read_all(tmp_path)
    assert [roberta.decode(doc[0]) for doc in documents] == DOCS
    assert all(len(doc) == 1 for doc in documents)
    assert documents[0][0] == roberta.encode(
        DOCS[0], add_special_tokens=False, allowed_special="none"
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["dtype"] == "uint16"
    assert manifest["tokens"] == sum(len(s) for doc in documents for s in doc)
    assert manifest["inputs"] == [{"path": str(corpus), "bytes": corpus.stat().st_size}]
    assert all(not shards.check(tmp_path / s["prefix"]) for s in manifest["shards"])


def test_sentences_are_sequences_grouped_by_document(corpus, tmp_path, roberta):
    shards.write(corpus, tmp_path, roberta, split_sentences=True, append_eos=True)
    documents = read_all(tmp_path)
    assert len(documents) == len(DOCS)
    assert sum(len(doc) for doc in documents) > 3 * len(documents)
    eos = roberta.token_to_id("</s>")
    for doc, text in zip(documents, DOCS, strict=True):
        # The sentences together are the document's ids, then </s>.
        assert [i for seq in doc for i in seq] == [
            *roberta.encode(text, add_special_tokens=False, allowed_special="none"),
            eos,
        ]
        assert all(seq for seq in doc)


def test_shards_do_not_depend_on_threads(corpus, tmp_path, roberta):
    for threads in (1, 2):
        shards.write(
            corpus,
            tmp_path / str(threads),
            roberta,
            threads=threads,
            shard_size="300KB",
            split_sentences=True,
        )
    for one in sorted((tmp_path / "1").iterdir()):
        assert one.read_bytes() == (tmp_path / "2" / one.name).read_bytes(), one.name


def test_resume_after_an_interruption_equals_an_uninterrupted_run(corpus, tmp_path, roberta):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    shards.write(corpus, whole, roberta, shard_size="100KB")

    def interrupt(stage, done, total):
        if done[2] > 120_000:  # tokens: a few shards are finished by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        shards.write(corpus, cut, roberta, shard_size="100KB", progress=interrupt)
    manifest = json.loads((cut / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["shards"]
    assert not list(cut.glob("*partial*"))  # nothing half-written is left looking finished
    with pytest.raises(ValueError, match="already holds shards"):
        shards.write(corpus, cut, roberta, shard_size="100KB")
    with pytest.raises(ValueError, match="cannot resume"):
        shards.write(corpus, cut, roberta, shard_size="50KB", resume=True)

    summary = shards.write(corpus, cut, roberta, shard_size="100KB", resume=True)
    assert summary["resumed_documents"] > 0
    assert sorted(p.name for p in whole.iterdir()) == sorted(p.name for p in cut.iterdir())
    for path in whole.iterdir():
        assert path.read_bytes() == (cut / path.name).read_bytes(), path.name


def test_bad_lines_are_named_or_skipped(tmp_path, roberta):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_bytes(b'{"text": "one"}\n{"text": "two \xff"}\n{"text": "three"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: invalid UTF-8"):
        shards.write(corpus, tmp_path / "out", roberta)
    summary = shards.write(corpus, tmp_path / "skip", roberta, on_bad_input="skip")
    assert (summary["documents"], summary["skipped"]) == (2, 1)
    assert [roberta.decode(d[0]) for d in read_all(tmp_path / "skip")] == ["one", "three"]


def test_special_token_text_in_the_corpus_is_plain_text(tmp_path, roberta):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("a <mask> b </s>\n", encoding="utf-8")
    shards.write(corpus, tmp_path / "out", roberta, format="lines")
    [[ids]] = read_all(tmp_path / "out")
    assert ids == roberta.encode(
        "a <mask> b </s>", allowed_special="none", add_special_tokens=False
    )
    assert roberta.token_to_id("<mask>") not in ids


def test_sizes_and_settings_are_checked(corpus, tmp_path, roberta):
    assert shards.parse_size("1GB") == 10**9
    assert shards.parse_size("64KiB") == 65536
    with pytest.raises(ValueError, match="not a size"):
        shards.parse_size("lots")
    gpt2 = bbpe.Tokenizer.from_pretrained("gpt2")
    assert shards.end_of_document_id(gpt2) == 50256
    with pytest.raises(ValueError, match="no such file"):
        shards.write(tmp_path / "missing.jsonl", tmp_path / "out", roberta)


def test_rust_shards_equal_the_plain_writer(corpus, tmp_path, roberta):
    """The pipeline's index is byte-identical to bbpe.shards.write_index's, which
    test_shards_format checks against Megatron's own builder."""
    shards.write(corpus, tmp_path, roberta, split_sentences=True, shard_size="10MB")
    prefix = tmp_path / "data_00000"
    ds = shards.IndexedDataset(prefix)
    plain = tmp_path / "plain"
    shards.write_index(str(plain) + ".idx", ds.sequence_lengths, ds.document_indices, ds.dtype)
    assert Path(str(plain) + ".idx").read_bytes() == Path(str(prefix) + ".idx").read_bytes()


def test_megatron_reads_rust_shards(corpus, tmp_path, roberta):
    megatron = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    shards.write(corpus, tmp_path, roberta, split_sentences=True, shard_size="10MB")
    prefix = tmp_path / "data_00000"
    ds = shards.IndexedDataset(prefix)
    theirs = megatron.IndexedDataset(str(prefix), multimodal=False, mmap=True)
    assert len(theirs) == len(ds)
    assert theirs.document_indices.tolist() == ds.document_indices.tolist()
    assert all(theirs[i].tolist() == ds[i].tolist() for i in range(len(ds)))


def test_standard_input_and_an_unwritable_output(corpus, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "from-stdin"
    env = {"PYTHONPATH": str(Path(bbpe.__file__).parent.parent), "PATH": "/usr/bin:/bin"}
    args = [sys.executable, "-m", "bbpe", "encode", "-", "-o", str(out), "--format", "jsonl"]
    result = subprocess.run(
        [*args, "--json"], input=corpus.read_bytes(), capture_output=True, env=env, check=True
    )
    assert json.loads(result.stdout)["documents"] == len(DOCS)

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match="a-file"):
        shards.write(corpus, blocker / "shards", "roberta-base")


def test_overwrite_deletes_nothing_until_the_inputs_are_found(corpus, tmp_path, roberta):
    shards.write(corpus, tmp_path, roberta)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match="missing.jsonl"):
        shards.write(tmp_path / "missing.jsonl", tmp_path, roberta, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    (tmp_path / "notes.txt").write_text("not ours")
    shards.write(corpus, tmp_path, roberta, overwrite=True, shard_size="300KB")
    names = {p.name for p in tmp_path.iterdir()}
    assert "notes.txt" in names and "data_00001.bin" in names
