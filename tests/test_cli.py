"""The `bbpe` command line: the README's main job and its errors."""

import json
import os
import sys
from pathlib import Path

import pytest

import bbpe
from bbpe.cli import main
from bbpe.sample import sample_path, sample_texts
from conftest import ray_or_skip


def test_encode_sample_reports_counts(capsys):
    assert main(["encode", "--sample", "--tokenizer", "roberta-base", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    documents = sample_texts()
    assert summary["documents"] == len(documents)
    assert summary["text_bytes"] == sum(len(d.encode()) for d in documents)
    assert summary["tokens"] > 0 and summary["bytes_per_token"] > 1


def test_encode_counts_match_the_tokenizer(tmp_path, capsys):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("First document.\nStill the first.\n\n두 번째 문서\n", encoding="utf-8")
    assert main(["encode", str(corpus), "--tokenizer", "gpt2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == 2
    from bbpe import Tokenizer

    gpt2 = Tokenizer.from_pretrained("gpt2")
    texts = ["First document.\nStill the first.", "두 번째 문서"]
    assert summary["tokens"] == sum(len(gpt2.encode(t, allowed_special="none")) for t in texts)


def test_bad_input_names_file_and_line(tmp_path, capsys):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"text": "ok"}\n{"text": "cut\n', encoding="utf-8")
    assert main(["encode", str(corpus)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl, line 2: not valid JSON" in err
    assert main(["encode", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err


def test_missing_field_and_invalid_utf8(tmp_path, capsys):
    corpus = tmp_path / "fields.jsonl"
    corpus.write_text('{"body": "x"}\n', encoding="utf-8")
    assert main(["encode", str(corpus)]) == 2
    assert 'fields.jsonl, line 1: no "text" field' in capsys.readouterr().err
    binary = tmp_path / "latin.txt"
    binary.write_bytes(b"fine\nline two\nthird \xff\xfe broken\n")
    assert main(["encode", str(binary)]) == 2
    assert "latin.txt, line 3: invalid UTF-8" in capsys.readouterr().err


def test_compressed_data_under_a_text_name_and_a_byte_order_mark(tmp_path, capsys):
    import gzip

    misnamed = tmp_path / "corpus.txt"
    misnamed.write_bytes(gzip.compress(b"some text\n"))
    assert main(["encode", str(misnamed)]) == 2
    err = capsys.readouterr().err
    assert "corpus.txt: looks like gzip-compressed data; name it corpus.txt.gz" in err
    with_bom = tmp_path / "bom.jsonl"
    with_bom.write_text('{"text": "a b"}\n', encoding="utf-8-sig")
    assert main(["encode", str(with_bom), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text_bytes"] == 3


def test_tokenize_prints_tokens(capsys):
    assert main(["tokenize", "It was a great day", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokens"] == ["It", "Ġwas", "Ġa", "Ġgreat", "Ġday"]
    assert out["ids"] == [243, 21, 10, 372, 183]


def test_train_sample_writes_every_format_and_encode_uses_it(tmp_path, capsys):
    out = tmp_path / "vocab"
    args = ["train", "--sample", "-o", str(out), "--vocab-size", "2000", "--holdout-every", "20"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "merges.txt",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "vocab.tiktoken",
        "vocab.tiktoken.json",
    ]
    assert summary["vocab_size"] == 2000
    assert summary["documents"] + summary["held_out_documents"] == len(sample_texts())
    assert summary["held_out_bytes_per_token"] > 2
    assert summary["unique_words"] > 1000

    assert main(["encode", "--sample", "--tokenizer", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] > 0


def test_train_reports_bad_lines(tmp_path, capsys):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(b"fine line\nbroken \xfe line\nanother fine line\n")
    out = str(tmp_path / "out")
    assert main(["train", str(corpus), "-o", out, "--format", "lines", "--vocab-size", "300"]) == 2
    assert "bad.txt, line 2: invalid UTF-8" in capsys.readouterr().err
    args = ["train", str(corpus), "-o", out, "--format", "lines", "--vocab-size", "300"]
    assert main([*args, "--on-bad-input", "skip"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 bad lines" in printed and "line 2" in printed


def test_train_max_words_keeps_the_cap_and_says_what_it_dropped(tmp_path, capsys):
    # 6000 distinct words, each seen once, under a cap of 2000.
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = [letters[i % 26] + letters[i // 26 % 26] + letters[i // 676] for i in range(6000)]
    corpus = tmp_path / "words.txt"
    corpus.write_text(" ".join(words) + "\n", encoding="utf-8")
    args = ["train", str(corpus), "-o", str(tmp_path / "out"), "--vocab-size", "1000"]
    args += ["--min-frequency", "1", "--max-words", "2000"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["unique_words"] == 2000
    assert (summary["pruned_words"], summary["pruned_occurrences"]) == (4000, 4000)
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "warning: --max-words 2,000 dropped 4,000 distinct words (4,000 occurrences" in err


def test_train_names_a_missing_input_and_exits_2(tmp_path, capsys):
    good = tmp_path / "good.txt"
    good.write_text("a document\nanother one\n", encoding="utf-8")
    out = str(tmp_path / "out")
    for missing in ("typo.txt", "corpus/*.jsonl.xz"):
        assert main(["train", str(good), str(tmp_path / missing), "-o", out]) == 2
        assert f"{missing}: no such file" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "*.jsonl.xz"), "-o", out]) == 2
    assert "*.jsonl.xz: no such file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_encode_to_shards_then_info_and_merge(tmp_path, capsys):
    out = tmp_path / "shards"
    args = ["encode", "--sample", "-o", str(out), "--tokenizer", "roberta-base"]
    assert main([*args, "--shard-size", "300KB", "--append-eos", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == len(sample_texts())
    assert len(summary["shards"]) >= 2

    assert main(["info", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == []
    assert (report["documents"], report["tokens"]) == (summary["documents"], summary["tokens"])

    prefixes = [str(out / name) for name in summary["shards"]]
    assert main(["merge", *prefixes, "-o", str(tmp_path / "all")]) == 0
    assert f"{summary['tokens']:,} tokens" in capsys.readouterr().out

    # A flipped byte in a shard is found and named; info exits 1, merge 2.
    first = out / f"{summary['shards'][0]}.bin"
    data = bytearray(first.read_bytes())
    data[100] ^= 0xFF
    first.write_bytes(bytes(data))
    assert main(["info", str(out)]) == 1
    assert first.name in capsys.readouterr().out
    assert main(["merge", *prefixes, "-o", str(tmp_path / "again")]) == 2
    assert f"{first}: SHA-256" in capsys.readouterr().err
    assert not list(tmp_path.glob("again*"))


def test_info_never_calls_an_unfinished_run_ok(tmp_path, capsys):
    out = tmp_path / "shards"
    args = ["encode", "--sample", "-o", str(out), "--shard-size", "300KB", "--json"]
    assert main(args) == 0
    capsys.readouterr()
    (out / "manifest.json").unlink()
    assert main(["info", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "unfinished" in printed and "no manifest.json" in printed
    assert "ok:" not in printed
    assert main(["info", str(out), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["unfinished"]


def test_encode_refuses_to_overwrite_shards(tmp_path, capsys):
    out = str(tmp_path / "shards")
    assert main(["encode", "--sample", "-o", out, "--json"]) == 0
    capsys.readouterr()
    assert main(["encode", "--sample", "-o", out]) == 2
    assert "already holds shards" in capsys.readouterr().err
    args = ["encode", "--sample", "-o", out, "--overwrite", "--shard-size", "100KB", "--json"]
    assert main(args) == 0
    names = json.loads(capsys.readouterr().out)["shards"]
    assert len(names) > 1  # the one old shard is gone, the new ones are all there is
    assert sorted(p.stem for p in (tmp_path / "shards").glob("*.bin")) == names


def test_resumed_encode_reports_the_whole_datasets_bytes_per_token(tmp_path, capsys):
    from bbpe.shards import pipeline

    base = ["encode", "--sample", "--tokenizer", "roberta-base", "--shard-size", "100KB"]
    assert main([*base, "-o", str(tmp_path / "whole"), "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)

    def interrupt(stage, done, total):
        if done[2] > whole["tokens"] // 2:
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        pipeline.write(
            str(sample_path()), cut, "roberta-base", shard_size="100KB", progress=interrupt
        )
    assert main([*base, "-o", str(cut), "--resume", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["resumed_documents"] > 0
    assert 0 < resumed["encoded_text_bytes"] < resumed["text_bytes"]
    for key in ("documents", "tokens", "text_bytes", "bytes_per_token"):
        assert resumed[key] == whole[key], key


def test_train_defaults_are_bbpe_trains(tmp_path, capsys):
    """`bbpe train FILES -o DIR` and `bbpe.train(FILES)` with their defaults
    write byte-identical vocabulary files (no document held back by either)."""
    files = str(sample_path())
    assert main(["train", files, "-o", str(tmp_path / "cli")]) == 0
    capsys.readouterr()
    bbpe.train(files).save(tmp_path / "api")
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()


def test_train_max_token_length_none_lifts_the_limit(tmp_path, capsys):
    corpus = tmp_path / "spaces.txt"
    corpus.write_text("x" + " " * 5000 + "x\n")
    longest = {}
    for limit in ["none", "8"]:
        out = tmp_path / limit
        assert main(["train", str(corpus), "-o", str(out), "--max-token-length", limit]) == 0
        tok = bbpe.Tokenizer.from_pretrained(out)
        longest[limit] = max(len(tok.decode_bytes([i])) for i in range(tok.vocab_size))
    capsys.readouterr()
    assert longest["8"] == 8 and longest["none"] > 1000


def test_train_says_when_the_memory_cap_dropped_words(tmp_path, capsys, monkeypatch):
    from bbpe import trainer

    letters = "abcdefghijklmnopqrstuvwxyz"
    words = [letters[i % 26] + letters[i // 26 % 26] + letters[i // 676] for i in range(3000)]
    corpus = tmp_path / "words.txt"
    corpus.write_text(" ".join(words) + "\n", encoding="utf-8")
    monkeypatch.setattr(trainer, "default_max_words", lambda: 1000)
    args = ["train", str(corpus), "-o", str(tmp_path / "out"), "--vocab-size", "400"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "--max-words 1,000 (auto: half of the memory) dropped 2,000 distinct words" in err


def test_commands_that_read_a_corpus_describe_its_options_alike():
    from bbpe.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    shared = ["--format", "--text-field", "--on-bad-input", "--threads", "--progress", "--json"]

    def described(command):
        actions = {a.option_strings[-1]: a for a in commands[command]._actions if a.option_strings}
        return {o: (actions[o].help, actions[o].default, actions[o].choices) for o in shared}

    assert described("encode") == described("train")


def test_encode_on_ray_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    # None in sys.modules makes `import ray` fail as if Ray were not installed.
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "bbpe.ray", raising=False)
    monkeypatch.delattr(bbpe, "ray", raising=False)
    args = ["encode", str(sample_path()), "-o", str(tmp_path / "out"), "--ray"]
    assert main(args) == 2
    assert "pip install 'bbpe[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_encode_on_ray_starts_a_local_cluster_of_its_own(tmp_path):
    """In a fresh process: `--ray` alone starts a local cluster, encodes and stops it."""
    ray_or_skip()
    import subprocess

    from bbpe import shards

    env = dict(os.environ, PYTHONPATH=str(Path(bbpe.__file__).parent.parent))
    args = [sys.executable, "-m", "bbpe", "encode", str(sample_path()), "--tokenizer", "gpt2"]
    run = subprocess.run(
        [*args, "-o", str(tmp_path / "ray"), "--ray", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1])["encoded_blocks"] == 1
    shards.write(sample_path(), tmp_path / "single", "gpt2")
    (entry,) = json.loads((tmp_path / "ray" / "manifest.json").read_text())["shards"]
    single = tmp_path / "single" / "data_00000.bin"
    assert (tmp_path / "ray" / f"{entry['prefix']}.bin").read_bytes() == single.read_bytes()
