"""Encoding a corpus into Megatron shards with the Rust pipeline
(bbpe.shards.write): round trips, sentence splitting, thread independence,
resume after an interruption, refusal to overwrite, and bad input."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import bbpe
from bbpe import shards
from bbpe.sample import sample_texts

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
    # From 6 threads on, the corpus's blocks of lines are parsed on threads too.
    for threads in (1, 2, 6):
        shards.write(
            corpus,
            tmp_path / str(threads),
            roberta,
            threads=threads,
            shard_size="300KB",
            split_sentences=True,
        )
    for one in sorted((tmp_path / "1").iterdir()):
        for threads in (2, 6):
            other = tmp_path / str(threads) / one.name
            assert one.read_bytes() == other.read_bytes(), (one.name, threads)


def test_resume_after_an_interruption_equals_an_uninterrupted_run(corpus, tmp_path, roberta):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    uninterrupted = shards.write(corpus, whole, roberta, shard_size="100KB")

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
    # The totals are the whole dataset's, text as well as tokens (bytes/token).
    for key in ("documents", "sequences", "tokens", "text_bytes"):
        assert summary[key] == uninterrupted[key], key
    assert sorted(p.name for p in whole.iterdir()) == sorted(p.name for p in cut.iterdir())
    for path in whole.iterdir():
        assert path.read_bytes() == (cut / path.name).read_bytes(), path.name


def encode_in_a_child(corpus: Path, out: Path, *options: str, file_size_limit=None):
    """`bbpe encode` in a child process; `file_size_limit` caps every file it
    writes as a full disk would (SIGXFSZ ignored, so the write fails with EFBIG)."""
    import resource
    import signal
    import subprocess
    import sys

    def limit_file_sizes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {
        "PYTHONPATH": str(Path(bbpe.__file__).parent.parent),
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    args = [sys.executable, "-m", "bbpe", "encode", str(corpus), "-o", str(out), *options]
    return subprocess.run(
        [*args, "--format", "lines", "--json"],
        capture_output=True,
        env=env,
        preexec_fn=limit_file_sizes if file_size_limit else None,
    )


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


@pytest.mark.skipif(sys.platform == "win32", reason="a full disk is played by RLIMIT_FSIZE (POSIX)")
@pytest.mark.parametrize(
    ("words_per_line", "shard_size", "file_size_limit"),
    [
        # Many one-word documents: the first .idx outgrows the limit, the .bin not.
        (1, "1KB", 1500),
        # One long document a shard: the first manifest.json outgrows the limit.
        (60, "100", 500),
        # Later shards: the manifest grows past the limit after a few shards.
        (60, "100", 2500),
    ],
)
def test_a_full_disk_leaves_a_resumable_run(tmp_path, words_per_line, shard_size, file_size_limit):
    corpus = tmp_path / "docs.txt"
    words = [f"word{i}" for i in range(3000)]
    lines = [" ".join(words[i : i + words_per_line]) for i in range(0, 3000, words_per_line)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    options = ("--shard-size", shard_size)
    assert encode_in_a_child(corpus, whole, *options).returncode == 0

    full = encode_in_a_child(corpus, cut, *options, file_size_limit=file_size_limit)
    assert full.returncode != 0
    assert b"File too large" in full.stderr, full.stderr
    resumed = encode_in_a_child(corpus, cut, *options, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert same_files(whole, cut)


def interrupted_states(whole: Path):
    """What a crash can leave, made from an uninterrupted run's files: each a
    function that fills an empty directory and returns how many shards of it
    are verifiably whole."""
    manifest = json.loads((whole / "manifest.json").read_text())

    def copy(cut, *names):
        for name in names:
            (cut / name).write_bytes((whole / name).read_bytes())

    def shard_files(count):
        return [f"data_{k:05}{suffix}" for k in range(count) for suffix in (".bin", ".idx")]

    def manifest_of(cut, count):
        earlier = dict(manifest, complete=False, shards=manifest["shards"][:count])
        (cut / "manifest.json").write_text(json.dumps(earlier, indent=2))

    def no_shard_finished(cut):
        (cut / "data_00000.bin.partial").write_bytes(b"\x01\x02")
        return 0

    def a_bin_without_its_idx(cut):
        copy(cut, "data_00000.bin")
        return 0

    def leftover_partials(cut):
        copy(cut, *shard_files(2))
        manifest_of(cut, 2)
        (cut / "data_00002.bin.partial").write_bytes(b"\x01")
        (cut / "data_00002.idx.partial").write_bytes(b"\x02")
        (cut / "manifest.json.partial").write_text("{")
        return 2

    def renamed_but_not_listed(cut):
        copy(cut, *shard_files(3))
        manifest_of(cut, 2)
        return 2

    def no_manifest(cut):
        copy(cut, *shard_files(3))
        return 0

    def a_truncated_manifest(cut):
        copy(cut, *shard_files(3))
        manifest_of(cut, 3)
        text = (cut / "manifest.json").read_bytes()
        (cut / "manifest.json").write_bytes(text[: len(text) // 2])
        return 0

    def a_listed_idx_never_reached_the_disk(cut):
        copy(cut, *shard_files(3))
        manifest_of(cut, 3)
        (cut / "data_00002.idx").unlink()
        return 2

    def a_listed_bin_with_a_bad_byte(cut):
        copy(cut, *shard_files(3))
        manifest_of(cut, 3)
        data = bytearray((cut / "data_00001.bin").read_bytes())
        data[len(data) // 2] ^= 1
        (cut / "data_00001.bin").write_bytes(bytes(data))
        return 1

    return [
        no_shard_finished,
        a_bin_without_its_idx,
        leftover_partials,
        renamed_but_not_listed,
        no_manifest,
        a_truncated_manifest,
        a_listed_idx_never_reached_the_disk,
        a_listed_bin_with_a_bad_byte,
    ]


def test_every_interrupted_state_resumes_from_its_last_whole_shard(corpus, tmp_path, roberta):
    whole = tmp_path / "whole"
    shards.write(corpus, whole, roberta, shard_size="100KB")
    manifest = json.loads((whole / "manifest.json").read_text())
    assert len(manifest["shards"]) > 3
    for state in interrupted_states(whole):
        cut = tmp_path / state.__name__
        cut.mkdir()
        whole_shards = state(cut)
        summary = shards.write(corpus, cut, roberta, shard_size="100KB", resume=True)
        expected = manifest["shards"][whole_shards - 1]["input_documents"] if whole_shards else 0
        assert summary["resumed_documents"] == expected, state.__name__
        assert same_files(whole, cut), state.__name__


def test_bad_lines_are_named_or_skipped(tmp_path, roberta):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_bytes(b'{"text": "one"}\n{"text": "two \xff"}\n{"text": "three"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: invalid UTF-8"):
        shards.write(corpus, tmp_path / "out", roberta)
    summary = shards.write(corpus, tmp_path / "skip", roberta, on_bad_input="skip")
    assert (summary["documents"], summary["skipped"]) == (2, 1)
    assert [roberta.decode(d[0]) for d in read_all(tmp_path / "skip")] == ["one", "three"]


def test_surrogates_in_json_lines_get_the_api_policy(tmp_path, roberta):
    # json.dumps writes lone surrogates as escapes; the API replaces them with U+FFFD.
    texts = ["lone \ud800 high", "lone \udfff low", "pair \U0001f600", "\U0001f600\ud83d"]
    lines = [json.dumps({"text": t}) for t in texts]
    assert "\\ud83d\\ude00" in lines[2]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="ascii")
    summary = shards.write(corpus, tmp_path / "out", roberta)
    assert summary["replaced_surrogates"] == 3
    documents = [doc[0] for doc in read_all(tmp_path / "out")]
    # What Python reads from the same lines, through the API.
    read_by_python = [json.loads(line)["text"] for line in lines]
    expected = [
        roberta.encode(t, add_special_tokens=False, allowed_special="none") for t in read_by_python
    ]
    assert documents == expected
    assert roberta.decode(documents[2]) == "pair \U0001f600"
    assert roberta.decode(documents[0]) == "lone \ufffd high"


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
    with pytest.raises(ValueError, match="no such file"):
        shards.write(tmp_path / "missing.jsonl", tmp_path / "out", roberta)
    with pytest.raises(ValueError, match='unknown document format "json": expected auto, jsonl'):
        shards.write(corpus, tmp_path / "out", roberta, format="json")
    with pytest.raises(ValueError, match='bad-input policy "ignore": expected stop or skip'):
        shards.count(corpus, roberta, on_bad_input="ignore")
    assert not (tmp_path / "out").exists()


def test_documents_end_with_the_tokenizers_end_of_document_token(tmp_path):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("one document\nand another\n", encoding="utf-8")
    gpt2 = bbpe.Tokenizer.from_pretrained("gpt2")
    assert gpt2.eos_token_id == 50256
    shards.write(corpus, tmp_path / "gpt2", gpt2, format="lines", append_eos=True)
    assert [doc[-1][-1] for doc in read_all(tmp_path / "gpt2")] == [50256, 50256]
    manifest = json.loads((tmp_path / "gpt2" / "manifest.json").read_text())
    assert manifest["settings"]["eos_id"] == 50256
    # Without </s> or <|endoftext|> there is nothing to append: an error, and
    # nothing written.
    plain = bbpe.train(texts=["one document", "and another"], vocab_size=260, special_tokens=[])
    assert plain.eos_token_id is None
    with pytest.raises(ValueError, match=r"no end-of-document token \(</s> or <\|endoftext\|>\)"):
        shards.write(corpus, tmp_path / "plain", plain, append_eos=True)
    assert not (tmp_path / "plain").exists()
    shards.write(corpus, tmp_path / "plain", plain, format="lines")


def test_rust_shards_equal_the_plain_writer(corpus, tmp_path, roberta):
    """The pipeline's index is byte-identical to bbpe.shards.write_index's, which
    test_shard_files checks against Megatron's own builder."""
    shards.write(corpus, tmp_path, roberta, split_sentences=True, shard_size="10MB")
    prefix = tmp_path / "data_00000"
    ds = shards.IndexedDataset(prefix)
    plain = tmp_path / "plain"
    shards.write_index(str(plain) + ".idx", ds.sequence_lengths, ds.document_indices, ds.dtype)
    assert Path(str(plain) + ".idx").read_bytes() == Path(str(prefix) + ".idx").read_bytes()


@pytest.mark.trainers
def test_megatron_reads_rust_shards(corpus, tmp_path, roberta):
    megatron = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    shards.write(corpus, tmp_path, roberta, split_sentences=True, shard_size="10MB")
    prefix = tmp_path / "data_00000"
    ds = shards.IndexedDataset(prefix)
    theirs = megatron.IndexedDataset(str(prefix), multimodal=False, mmap=True)
    assert len(theirs) == len(ds)
    assert theirs.document_indices.tolist() == ds.document_indices.tolist()
    assert all(theirs[i].tolist() == ds[i].tolist() for i in range(len(ds)))


@pytest.mark.trainers
def test_megatron_gpt_dataset_samples_are_bbpes_ids(corpus, tmp_path, roberta):
    pytest.importorskip("torch")
    gpt = pytest.importorskip("megatron.core.datasets.gpt_dataset")
    from megatron.core.datasets.blended_megatron_dataset_builder import (
        BlendedMegatronDatasetBuilder,
    )
    from megatron.core.tokenizers import MegatronTokenizer

    # megatron-core's own Hugging Face tokenizer, from the files bbpe saves:
    # GPTDataset needs its end-of-document and padding ids.
    roberta.save_pretrained(tmp_path / "tokenizer")
    theirs = MegatronTokenizer.from_pretrained(
        str(tmp_path / "tokenizer"), metadata_path={"library": "huggingface", "model_type": "gpt"}
    )
    assert (theirs.eod, theirs.pad) == (roberta.eos_token_id, roberta.pad_token_id)
    assert [theirs.tokenize(text) for text in DOCS[:20]] == roberta.encode_batch(
        DOCS[:20], add_special_tokens=False
    )
    shards.write(corpus, tmp_path / "shards", roberta, append_eos=True)
    eos = roberta.eos_token_id
    texts = [text for text in DOCS if text]  # the empty document is not written
    documents = [ids + [eos] for ids in roberta.encode_batch(texts, add_special_tokens=False)]
    length = 64
    config = gpt.GPTDatasetConfig(
        random_seed=1234,
        sequence_length=length,
        blend=([str(tmp_path / "shards" / "data_00000")], None),
        split="1,0,0",
        tokenizer=theirs,
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        path_to_cache=str(tmp_path / "cache"),
    )
    builder = BlendedMegatronDatasetBuilder(gpt.GPTDataset, [200, None, None], lambda: True, config)
    train, _, _ = builder.build()
    assert len(train) >= 200
    # Sample i is length + 1 ids read across documents in megatron's shuffled
    # order, from an offset in the first: they must be bbpe's ids there.
    for i in range(len(train)):
        sample = train[i]
        got = np.append(sample["tokens"].numpy(), sample["labels"].numpy()[-1])
        first, offset = train.sample_index[train.shuffle_index[i]]
        last = train.sample_index[train.shuffle_index[i] + 1][0]
        ids = [t for d in train.document_index[first : last + 1] for t in documents[d]]
        assert got.tolist() == ids[offset : offset + length + 1], f"sample {i}"


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


def test_shard_settings_are_checked_when_made():
    from bbpe import _core

    with pytest.raises(ValueError, match='expected refuse, resume or overwrite, not "bogus"'):
        _core.ShardSettings("data", 1 << 20, existing="bogus")
    _core.ShardSettings("data", 1 << 20, existing="resume")


def test_input_files_expand_as_the_pipeline_reads_them(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.txt", "d/sub/a.jsonl", "d/.hidden", "c.txt"):
        (tmp_path / name).write_text("x\n")
    got = shards.input_files([tmp_path / "d", str(tmp_path / "*.txt"), tmp_path / "c.txt"])
    assert got == [str(tmp_path / p) for p in ("d/b.txt", "d/sub/a.jsonl", "c.txt")]
    with pytest.raises(ValueError, match="nothing-here"):
        shards.input_files([tmp_path / "nothing-here*"])
