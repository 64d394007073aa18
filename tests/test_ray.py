"""bbpe.ray.encode: shards written by a Ray job equal single-machine
`bbpe.shards.write` document for document, from files and from a
`ray.data.Dataset`; a worker killed mid-write is retried without losing or
repeating documents; a rerun skips the blocks whose receipts still hold; the
manifest step refuses missing or repeated blocks. bbpe.ray.train: parts
counted by Ray tasks learn the single-machine merges. One local cluster for
the module (two CPUs)."""

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import ray_or_skip

ray = ray_or_skip()

import bbpe  # noqa: E402
import bbpe.ray as bbpe_ray  # noqa: E402
from bbpe import shards  # noqa: E402
from bbpe.packing import ShardDocuments  # noqa: E402
from bbpe.ray import manifest as ray_manifest  # noqa: E402
from bbpe.sample import sample_texts  # noqa: E402

TEXTS = sample_texts()[:90]
TOKENIZER = "gpt2"


@pytest.fixture(scope="module", autouse=True)
def cluster():
    # Workers inherit the driver's environment: they import this worktree's
    # bbpe, and this module (for the sink subclass below).
    paths = [str(Path(bbpe.__file__).parent.parent), str(Path(__file__).parent)]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if old is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    """Three files: JSONL with an empty document, plain lines, gzipped JSONL."""
    directory = tmp_path_factory.mktemp("corpus")
    first = [json.dumps({"text": t}) for t in TEXTS[:30]]
    first.insert(3, json.dumps({"text": ""}))
    a = directory / "a.jsonl"
    a.write_text("\n".join(first) + "\n", encoding="utf-8")
    b = directory / "b.txt"
    lines = [line for t in TEXTS[30:60] for line in t.splitlines() if line.strip()]
    b.write_text("\n".join(lines) + "\n", encoding="utf-8")
    c = directory / "c.jsonl.gz"
    with gzip.open(c, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in TEXTS[60:])
    return [a, b, c]


def documents(directory: Path) -> list[list[list[int]]]:
    """Every document of every shard in manifest order, as lists of sequences."""
    manifest = json.loads((directory / "manifest.json").read_text())
    out = []
    for entry in manifest["shards"]:
        with shards.IndexedDataset(directory / entry["prefix"]) as ds:
            out += [[s.tolist() for s in ds.document(k)] for k in range(ds.documents)]
    return out


def single_machine(inputs, directory: Path, **settings) -> list[list[list[int]]]:
    shards.write(inputs, directory, TOKENIZER, **settings)
    return documents(directory)


def assert_sound(directory: Path) -> dict:
    """The manifest's counts match the shards, and every shard checks out."""
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["complete"] is True
    for entry in manifest["shards"]:
        assert shards.check(directory / entry["prefix"]) == []
    report = shards.info(directory)
    assert report["problems"] == [] and report["unfinished"] == []
    corpus = ShardDocuments(directory)
    assert (corpus.num_documents, corpus.num_tokens) == (manifest["documents"], manifest["tokens"])
    assert not list(directory.glob("*.partial"))
    return manifest


def test_workers_import_this_worktrees_bbpe():
    where = ray.get(ray.remote(lambda: __import__("bbpe").__file__).remote())
    assert where == bbpe.__file__


@pytest.mark.parametrize(
    "settings", [{}, {"append_eos": True, "split_sentences": True}], ids=["plain", "eos+sentences"]
)
def test_files_give_the_single_machine_documents(corpus, tmp_path, settings):
    want = single_machine(corpus, tmp_path / "single", **settings)
    summary = bbpe_ray.encode(corpus, tmp_path / "ray", TOKENIZER, concurrency=2, **settings)
    assert documents(tmp_path / "ray") == want
    manifest = assert_sound(tmp_path / "ray")
    single = json.loads((tmp_path / "single" / "manifest.json").read_text())
    for key in ("dtype", "documents", "sequences", "tokens", "empty_documents", "tokenizer"):
        assert manifest[key] == single[key], key
    assert manifest["inputs"] == single["inputs"]
    assert summary["blocks"] == summary["encoded_blocks"] == 3
    assert summary["documents"] == single["documents"]


def dataset_texts() -> list[str]:
    texts = TEXTS[:40]
    return texts[:5] + [""] + texts[5:]


def test_a_dataset_gives_the_single_machine_documents_of_its_texts(tmp_path):
    texts = dataset_texts()
    reference = tmp_path / "texts.jsonl"
    reference.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    settings = {"append_eos": True, "split_sentences": True}
    want = single_machine(reference, tmp_path / "single", **settings)
    dataset = ray.data.from_items([{"id": i, "body": t} for i, t in enumerate(texts)])
    dataset = dataset.repartition(4)
    summary = bbpe_ray.encode(
        dataset, tmp_path / "ray", TOKENIZER, text_column="body", concurrency=2, **settings
    )
    got = documents(tmp_path / "ray")
    assert got == want
    tokenizer = bbpe.Tokenizer.from_pretrained(TOKENIZER)
    eos = tokenizer.eos_token_id
    # Independently of the pipeline: the sentences of each document join
    # into the text's ids.
    expected = [
        tokenizer.encode(t, add_special_tokens=False, allowed_special="none") + [eos]
        for t in texts
        if t
    ]
    assert [[i for s in doc for i in s] for doc in got] == expected
    assert_sound(tmp_path / "ray")
    assert summary["blocks"] == 4


def test_a_parquet_dataset(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    texts = dataset_texts()
    table = pyarrow.table({"text": texts})
    pq.write_table(table, tmp_path / "texts.parquet", row_group_size=10)
    reference = tmp_path / "texts.jsonl"
    reference.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    # A Tokenizer object travels to the workers pickled.
    tokenizer = bbpe.Tokenizer.from_pretrained(TOKENIZER)
    shards.write(reference, tmp_path / "single", tokenizer)
    want = documents(tmp_path / "single")
    dataset = ray.data.read_parquet(str(tmp_path / "texts.parquet"))
    bbpe_ray.encode(dataset, tmp_path / "ray", tokenizer)
    assert documents(tmp_path / "ray") == want
    assert_sound(tmp_path / "ray")
    # Named as a file, with other columns beside the text.
    table = table.append_column("id", pyarrow.array(range(len(texts))))
    pq.write_table(table, tmp_path / "more.parquet", row_group_size=10)
    bbpe_ray.encode(tmp_path / "more.parquet", tmp_path / "by-path", tokenizer)
    assert documents(tmp_path / "by-path") == want
    with pytest.raises(ValueError, match=r"texts\.jsonl: Parquet and other files"):
        bbpe_ray.encode([tmp_path / "more.parquet", reference], tmp_path / "mixed", tokenizer)


class CrashingSink(bbpe_ray.ShardSink):
    """Dies (as a killed worker would) the first time it writes the second
    input's `.bin`, with half of it in the partial file."""

    def write_file(self, path: str, data: bytes) -> None:
        marker = Path(self.out_dir).parent / "crashed"
        if path.endswith(".bin") and "b.txt" in Path(path).name and not marker.exists():
            marker.write_text("once")
            with open(path + ".partial", "wb") as f:
                f.write(data[: len(data) // 2])
            os._exit(1)
        super().write_file(path, data)


def test_a_worker_killed_mid_write_is_retried(corpus, tmp_path, monkeypatch):
    want = single_machine(corpus, tmp_path / "single")
    monkeypatch.setattr(bbpe_ray, "ShardSink", CrashingSink)
    bbpe_ray.encode(corpus, tmp_path / "ray", TOKENIZER, concurrency=2)
    assert (tmp_path / "crashed").exists()
    assert documents(tmp_path / "ray") == want
    manifest = assert_sound(tmp_path / "ray")
    assert len({e["prefix"] for e in manifest["shards"]}) == len(manifest["shards"]) == 3


class CrashingEncoder(bbpe_ray.BlockEncoder):
    """Dies (as a killed worker would) the first time it encodes the second
    input, halfway through the run."""

    def encode_file(self, key, path, settings):
        marker = Path(path).parent / "encoder-crashed"
        if path.endswith("b.txt") and not marker.exists():
            marker.write_text("once")
            os._exit(1)
        return super().encode_file(key, path, settings)


def test_an_encoding_actor_killed_mid_block_is_restarted(corpus, tmp_path, monkeypatch):
    want = single_machine(corpus, tmp_path / "single")
    monkeypatch.setattr(bbpe_ray, "BlockEncoder", CrashingEncoder)
    bbpe_ray.encode(corpus, tmp_path / "ray", TOKENIZER, concurrency=1)
    assert (corpus[1].parent / "encoder-crashed").exists()
    (corpus[1].parent / "encoder-crashed").unlink()
    assert documents(tmp_path / "ray") == want
    manifest = assert_sound(tmp_path / "ray")
    assert len({e["prefix"] for e in manifest["shards"]}) == len(manifest["shards"]) == 3


def test_a_rerun_skips_blocks_whose_receipts_hold(corpus, tmp_path):
    out = tmp_path / "ray"
    want = single_machine(corpus, tmp_path / "single")
    bbpe_ray.encode(corpus, out, TOKENIZER)
    bins = sorted(out.glob("*.bin"))
    written = {p: p.stat().st_mtime_ns for p in bins}

    again = bbpe_ray.encode(corpus, out, TOKENIZER)
    assert (again["encoded_blocks"], again["skipped_blocks"]) == (0, 3)
    assert {p: p.stat().st_mtime_ns for p in bins} == written

    damaged = bins[1]
    data = bytearray(damaged.read_bytes())
    data[0] ^= 1
    damaged.write_bytes(bytes(data))
    repaired = bbpe_ray.encode(corpus, out, TOKENIZER)
    assert (repaired["encoded_blocks"], repaired["skipped_blocks"]) == (1, 2)
    assert [p for p in bins if p.stat().st_mtime_ns != written[p]] == [damaged]
    assert documents(out) == want
    assert_sound(out)

    other = bbpe_ray.encode(corpus, out, TOKENIZER, append_eos=True)
    assert other["encoded_blocks"] == 3
    assert documents(out) == single_machine(corpus, tmp_path / "eos", append_eos=True)


def test_the_command_line_runs_on_ray(corpus, tmp_path, capsys):
    from bbpe import cli

    out = tmp_path / "ray"
    args = ["encode", *map(str, corpus), "-o", str(out), "--ray", "--tokenizer", TOKENIZER]
    assert cli.main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["blocks"] == 3
    assert documents(out) == single_machine(corpus, tmp_path / "single")


# The manifest step, on receipts alone.


def receipt(key: str, documents: int = 2) -> dict:
    return {
        "key": key,
        "input": {"path": f"/corpus/{key}.jsonl", "bytes": 10},
        "prefix": f"data_{key}" if documents else None,
        "documents": documents,
        "sequences": documents,
        "tokens": 5 * documents,
        "bin_bytes": 10 * documents,
        "bin_sha256": "0" * 64,
        "idx_sha256": "1" * 64,
        "input_documents": documents + 1,
        "text_bytes": 30,
    }


HEADER = {"tokenizer": {"name": "gpt2"}, "settings": {"prefix": "data"}, "dtype": "uint16"}


def test_the_manifest_lists_blocks_in_input_order():
    keys = ["k0", "k1", "k2"]
    got = ray_manifest.compose(HEADER, keys, [receipt("k2"), receipt("k0", 0), receipt("k1")])
    assert [e["prefix"] for e in got["shards"]] == ["data_k1", "data_k2"]
    assert [e["input_documents"] for e in got["shards"]] == [4, 7]
    assert (got["documents"], got["empty_documents"], got["complete"]) == (4, 3, True)
    assert [i["path"] for i in got["inputs"]] == [f"/corpus/{k}.jsonl" for k in keys]


def test_the_manifest_step_refuses_a_missing_block():
    with pytest.raises(ValueError, match="k1.*missing"):
        ray_manifest.compose(HEADER, ["k0", "k1"], [receipt("k0")])


def test_the_manifest_step_refuses_a_block_present_twice():
    with pytest.raises(ValueError, match="k0.*twice"):
        ray_manifest.compose(HEADER, ["k0", "k1"], [receipt("k0"), receipt("k1"), receipt("k0")])


def test_the_manifest_step_refuses_a_block_of_another_run():
    with pytest.raises(ValueError, match="stray"):
        ray_manifest.compose(HEADER, ["k0"], [receipt("k0"), receipt("stray")])


def test_bad_input_is_an_error_naming_the_file_and_line(corpus, tmp_path):
    out = tmp_path / "ray"
    bbpe_ray.encode(corpus, out, TOKENIZER)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: not valid JSON"):
        bbpe_ray.encode([*corpus, bad], out, TOKENIZER)
    # No manifest of a run that did not finish; the finished blocks stay.
    assert not (out / "manifest.json").exists()
    again = bbpe_ray.encode(corpus, out, TOKENIZER)
    assert (again["encoded_blocks"], again["skipped_blocks"]) == (0, 3)
    assert documents(out) == single_machine(corpus, tmp_path / "single")


def test_shards_of_another_writer_are_refused(corpus, tmp_path):
    shards.write(corpus[:1], tmp_path, TOKENIZER)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match="already holds shards not written by bbpe.ray"):
        bbpe_ray.encode(corpus, tmp_path, TOKENIZER)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_concurrency_must_be_positive(corpus, tmp_path):
    with pytest.raises(ValueError, match="concurrency"):
        bbpe_ray.encode(corpus, tmp_path, TOKENIZER, concurrency=0)


def test_texts_reach_the_pipeline_unchanged():
    """A dataset's texts go to the pipeline as JSON lines: quotes, escapes,
    control and line-separator characters come back as the same text."""
    pyarrow = pytest.importorskip("pyarrow")
    from bbpe.ray.encoding import BlockEncoder, Settings, run_header

    texts = [
        'say "hi"\\n\\\\ there',
        "tab\tcr\rlf\ncrlf\r\n end",
        "nul\x00 bell\x07 del\x7f",
        "line\u2028para\u2029 bom\ufeff",
        "emoji 🙂 and 한국어 and é",
        "<|endoftext|> </s> <s>",
        " ",
    ]
    settings = Settings(append_eos=True)
    encoder = BlockEncoder(TOKENIZER, settings, run_header(TOKENIZER, settings))
    row = encoder.encode_texts("block000000", pyarrow.chunked_array([texts]))
    tokenizer = bbpe.Tokenizer.from_pretrained(TOKENIZER)
    want = [
        tokenizer.encode(t, add_special_tokens=False, allowed_special="none") + [50256]
        for t in texts
    ]
    ids = np.frombuffer(row["bin"], dtype="<u2").tolist()
    assert ids == [i for doc in want for i in doc]
    assert (row["documents"], row["input_documents"]) == (len(texts), len(texts))


# Training: parts counted by Ray tasks, learned on the driver.

LEARNING = dict(vocab_size=600, min_frequency=2, max_words=None, threads=1)


def merges_of(tokenizer) -> list[str]:
    return json.loads(tokenizer.to_json())["model"]["merges"]


@pytest.mark.parametrize("parts", [1, 3])
def test_training_on_ray_learns_the_single_machine_merges(corpus, parts):
    want, single = bbpe.train_with_report(corpus, **LEARNING)
    progress = []
    tok, report = bbpe_ray.train_with_report(
        corpus, parts=parts, progress=lambda *p: progress.append(p), **LEARNING
    )
    assert merges_of(tok) == merges_of(want)
    assert tok.get_vocab() == want.get_vocab()
    assert (report.documents, report.text_bytes) == (single.documents, single.text_bytes)
    assert (report.files, report.unique_words) == (3, single.unique_words)
    # Parts are whole files balanced by size: some may be empty and not run.
    stage, done, counted = progress[0]
    assert (stage, done) == ("count", 0) and 1 <= counted <= parts
    assert ("count", counted, counted) in progress
    assert progress[-1][0] == "merge"


def test_training_on_ray_from_the_command_line(corpus, tmp_path, capsys):
    from bbpe import cli

    out = tmp_path / "vocab"
    args = ["train", *map(str, corpus), "-o", str(out), "--ray", "--vocab-size", "600"]
    assert cli.main([*args, "--max-words", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 3
    want = bbpe.train(corpus, **LEARNING)
    assert merges_of(bbpe.Tokenizer.from_pretrained(out)) == merges_of(want)


def test_training_on_ray_names_a_bad_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl.*line 2"):
        bbpe_ray.train(bad, parts=1, **LEARNING)


# Large files of one document per line, cut into byte ranges.


def test_line_cuts_fall_just_after_line_ends(tmp_path):
    from bbpe.ray.blocks import line_cuts

    data = b"".join(b"x" * (i % 37) + b"\n" for i in range(400)) + b"no end"
    path = tmp_path / "lines.jsonl"
    path.write_bytes(data)
    for block_bytes in (1, 50, 999, len(data) - 3, len(data) + 1):
        cuts = line_cuts(str(path), block_bytes)
        assert all(data[cut - 1 : cut] == b"\n" for cut in cuts)
        bounds = [0, *cuts, len(data)]
        sizes = [end - start for start, end in zip(bounds, bounds[1:], strict=False)]
        assert all(size >= block_bytes for size in sizes[:-1]) and sizes[-1] > 0


@pytest.mark.parametrize(
    "settings", [{}, {"append_eos": True, "split_sentences": True}], ids=["plain", "eos+sentences"]
)
def test_a_large_file_is_cut_into_blocks_of_whole_lines(corpus, tmp_path, settings):
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    inputs = [big, *corpus]
    want = single_machine(inputs, tmp_path / "single", **settings)
    summary = bbpe_ray.encode(
        inputs, tmp_path / "ray", TOKENIZER, block_size=big.stat().st_size // 5, **settings
    )
    # The JSONL files are cut (the gzipped one is not): more blocks than files.
    assert summary["blocks"] > 3 + 4
    assert documents(tmp_path / "ray") == want
    manifest = assert_sound(tmp_path / "ray")
    ranges = [i for i in manifest["inputs"] if "start" in i and i["path"].endswith("big.jsonl")]
    assert ranges[0]["start"] == 0 and ranges[-1]["end"] == big.stat().st_size


def test_a_bad_line_in_a_block_names_the_file_and_the_block(tmp_path):
    lines = [json.dumps({"text": t}) for t in TEXTS[:40]]
    lines[30] = '{"text": broken'
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl \(the block of bytes \d+-\d+"):
        bbpe_ray.encode(bad, tmp_path / "out", TOKENIZER, block_size=bad.stat().st_size // 4)
