"""The Rust trainer (bbpe.train): the same vocabulary and merges as the
reference trainer and Hugging Face's BpeTrainer, from files or iterators, for
any thread count; bad input, pruning, progress and the vocabulary files."""

import gzip
import json
import lzma
import pickle
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bbpe
from bbpe.reference import bytes_to_token_string, token_string_to_bytes
from bbpe.reference import train as reference_train
from bbpe.sample import sample_path, sample_texts
from conftest import hf_trained, vocab_and_merges

SAMPLE_DOCS = sample_texts()
SNIPPETS = ["a", "b", "ab", " ", "  ", "\n", "가", "나다", "😀", "'s", "1", "<s>", "é", "aaa"]


def reference_vocab_and_merges(trained):
    n = len(trained.specials)
    strings = [*trained.specials, *map(bytes_to_token_string, trained.tokens[n:])]
    merges = [tuple(map(bytes_to_token_string, pair)) for pair in trained.merge_pairs()]
    return {s: i for i, s in enumerate(strings)}, merges


corpora = st.lists(
    st.lists(st.sampled_from(SNIPPETS), max_size=12).map("".join), min_size=1, max_size=30
)


@settings(max_examples=300, deadline=None)
@given(
    texts=corpora,
    extra=st.integers(0, 120),
    min_frequency=st.integers(0, 3),
    specials=st.sampled_from([[], ["<|endoftext|>"], bbpe.ROBERTA_SPECIALS, ["ab", "<s>"]]),
    max_token_length=st.one_of(st.none(), st.integers(1, 6)),
)
def test_same_merges_as_the_reference(texts, extra, min_frequency, specials, max_token_length):
    vocab_size = 256 + len(specials) + extra
    ours = bbpe.train(
        texts=iter(texts),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        max_token_length=max_token_length,
    )
    reference = reference_train(
        texts, vocab_size, min_frequency, list(specials), max_token_length=max_token_length
    )
    vocab, merges = vocab_and_merges(ours.to_json())
    assert (vocab, merges) == reference_vocab_and_merges(reference)
    if max_token_length is not None:
        lengths = [len(token_string_to_bytes(a + b)) for a, b in merges]
        assert all(n <= max_token_length for n in lengths)


@pytest.mark.parametrize(
    ("vocab_size", "min_frequency", "specials"),
    [(4000, 0, bbpe.GPT2_SPECIALS), (2500, 2, bbpe.ROBERTA_SPECIALS)],
)
def test_same_merges_as_hugging_face_on_real_text(vocab_size, min_frequency, specials):
    ours = bbpe.train(
        texts=SAMPLE_DOCS,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        max_token_length=None,  # BpeTrainer's default
    )
    vocab, merges = vocab_and_merges(ours.to_json())
    hf_vocab, hf_merges = hf_trained(SAMPLE_DOCS, vocab_size, min_frequency, specials)
    assert len(merges) == vocab_size - 256 - len(specials)
    assert merges == hf_merges
    assert vocab == hf_vocab


def test_result_does_not_depend_on_threads_or_chunking():
    one = bbpe.train(texts=SAMPLE_DOCS, vocab_size=3000, threads=1).to_json()
    two = bbpe.train(texts=SAMPLE_DOCS, vocab_size=3000, threads=2).to_json()
    chunks = [SAMPLE_DOCS[i : i + 7] for i in range(0, len(SAMPLE_DOCS), 7)]
    chunked = bbpe.train(texts=iter(chunks), vocab_size=3000, threads=2).to_json()
    assert one == two == chunked


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    """The sample corpus as JSONL (plain, gz, xz), one-document-per-line text
    and blank-line-separated text, plus the expected iterator-trained vocabulary."""
    root = tmp_path_factory.mktemp("corpus")
    docs = [d.replace("\n", " ").strip() for d in SAMPLE_DOCS[:120]]
    docs = [d for d in docs if d]
    jsonl = "".join(json.dumps({"id": i, "text": d}) + "\n" for i, d in enumerate(docs))
    (root / "docs.jsonl").write_text(jsonl, encoding="utf-8")
    (root / "docs.jsonl.gz").write_bytes(gzip.compress(jsonl.encode()))
    (root / "docs.jsonl.xz").write_bytes(lzma.compress(jsonl.encode()))
    (root / "docs.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
    (root / "paragraphs.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    if shutil.which("zstd"):
        subprocess.run(
            ["zstd", "-q", str(root / "docs.jsonl"), "-o", str(root / "docs.jsonl.zst")], check=True
        )
    expected = bbpe.train(texts=iter(docs), vocab_size=1200).to_json()
    return root, docs, expected


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("docs.jsonl", "auto"),
        ("docs.jsonl.gz", "auto"),
        ("docs.jsonl.xz", "auto"),
        ("docs.jsonl.zst", "auto"),
        ("docs.txt", "lines"),
        ("paragraphs.txt", "auto"),
    ],
)
@pytest.mark.parametrize("threads", [1, 6])
def test_files_read_by_rust_train_like_the_same_texts(corpus_files, name, fmt, threads):
    # From 6 threads on, a file's blocks of lines are parsed on threads of their own.
    root, docs, expected = corpus_files
    if not (root / name).exists():
        pytest.skip("no zstd command to make the file")
    tok, report = bbpe.train_with_report(root / name, vocab_size=1200, format=fmt, threads=threads)
    assert report.documents == len(docs)
    assert report.files == 1
    assert tok.to_json() == expected


def test_globs_directories_and_lists_of_paths(corpus_files, tmp_path):
    root, docs, _ = corpus_files
    (tmp_path / "sub").mkdir()
    shutil.copy(root / "docs.jsonl", tmp_path / "sub" / "a.jsonl")
    shutil.copy(root / "docs.jsonl.gz", tmp_path / "b.jsonl.gz")
    by_dir = bbpe.train_with_report(tmp_path, vocab_size=1200)[1]
    by_glob = bbpe.train_with_report(str(tmp_path / "**" / "*.jsonl*"), vocab_size=1200)[1]
    by_list = bbpe.train_with_report(
        [str(tmp_path / "sub" / "a.jsonl"), tmp_path / "b.jsonl.gz"], vocab_size=1200
    )[1]
    for report in (by_dir, by_glob, by_list):
        assert (report.files, report.documents) == (2, 2 * len(docs))


def test_lone_surrogates_in_training_texts_become_one_replacement_character_each():
    # As Tokenizer.encode replaces them; a pair of surrogates is one character.
    texts = ["x\ud800 y\udfff", "\ud83d\ude00 z"]
    replaced = ["x\ufffd y\ufffd", "\U0001f600 z"]
    assert bbpe.Tokenizer.from_pretrained("gpt2").encode_batch(texts) == [
        bbpe.Tokenizer.from_pretrained("gpt2").encode(t) for t in replaced
    ]
    _, from_surrogates = bbpe.train_with_report(texts=iter(texts), vocab_size=300, min_frequency=1)
    _, from_replaced = bbpe.train_with_report(texts=iter(replaced), vocab_size=300, min_frequency=1)
    assert from_surrogates.text_bytes == from_replaced.text_bytes
    assert from_surrogates.unique_words == from_replaced.unique_words


def test_json_lines_with_lone_surrogates_train_as_the_strings_do(tmp_path):
    # Python reads the file's lone surrogates as such (the API makes them
    # U+FFFD) and an escaped pair as one character.
    texts = [f"doc {i} \ud800 and \U0001f600 pair \udfff{i % 7}" for i in range(200)]
    lines = [json.dumps({"text": t}) for t in texts]
    assert "\\ud800" in lines[0] and "\\ud83d\\ude00" in lines[0]
    path = tmp_path / "surrogates.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    from_file, report = bbpe.train_with_report(path, vocab_size=300)
    from_strings = bbpe.train(texts=(json.loads(line)["text"] for line in lines), vocab_size=300)
    assert report.replaced_surrogates == len(texts)
    assert from_file.get_vocab() == from_strings.get_vocab()


def test_a_missing_file_among_good_ones_is_an_error_naming_it(corpus_files, tmp_path):
    root, _, _ = corpus_files
    good = str(root / "docs.jsonl")
    with pytest.raises(ValueError, match=r"typo\.jsonl: no such file"):
        bbpe.train([good, str(tmp_path / "typo.jsonl")], vocab_size=300)
    with pytest.raises(ValueError, match=r"nothing-\*\.jsonl: no such file"):
        bbpe.train_with_report([str(tmp_path / "nothing-*.jsonl")], vocab_size=300)
    with pytest.raises(ValueError, match="files is empty"):
        bbpe.train([], vocab_size=300)


def test_strings_are_texts_only_when_passed_as_texts():
    with pytest.raises(TypeError, match="not a single str"):
        bbpe.train(texts="one document", vocab_size=300)
    with pytest.raises(TypeError, match="either files"):
        bbpe.train(vocab_size=300)
    with pytest.raises(TypeError, match="either files"):
        bbpe.train(str(sample_path()), texts=["a"], vocab_size=300)
    with pytest.raises(TypeError, match="files must be paths"):
        bbpe.train([["a list of texts"]], vocab_size=300)
    one = bbpe.Tokenizer.train_from_iterator(["a a b", "a b"], vocab_size=300)
    assert one.to_json() == bbpe.train(texts=iter(["a a b", "a b"]), vocab_size=300).to_json()
    with pytest.raises(TypeError, match="not a single str"):
        bbpe.Tokenizer.train_from_iterator("one document", vocab_size=300)


def test_bad_lines_name_file_and_line_or_are_skipped_and_counted(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"text": "good one"}\n{"text": "bad \xff byte"}\n{"txt": "no field"}\n'
        b'{"text": "also good"}\n{"text": \n'
    )
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: invalid UTF-8"):
        bbpe.train(path, vocab_size=300)
    tok, report = bbpe.train_with_report(path, vocab_size=300, on_bad_input="skip")
    assert report.skipped == 3
    assert report.documents == 2
    assert "line 2" in report.first_skipped
    assert tok.vocab_size > 256
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 1: no \"txt\" field"):
        bbpe.train(path, vocab_size=300, text_field="txt")
    with pytest.raises(ValueError, match='unknown document format "csv": expected auto, jsonl'):
        bbpe.train(path, vocab_size=300, format="csv")
    with pytest.raises(ValueError, match='unknown bad-input policy "drop": expected stop or skip'):
        bbpe.train(path, vocab_size=300, on_bad_input="drop")


def test_missing_inputs_and_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="nothing-here"):
        bbpe.train(str(tmp_path / "nothing-here" / "*.jsonl"))
    with pytest.raises(ValueError, match="vocab_size 100"):
        bbpe.train(texts=["text"], vocab_size=100)
    with pytest.raises(ValueError, match="twice"):
        bbpe.train(texts=["text"], special_tokens=["<s>", "<s>"])
    with pytest.raises(ValueError, match="format"):
        bbpe.train(sample_path(), format="csv")
    with pytest.raises(TypeError, match="must be str"):
        bbpe.train(texts=iter([b"bytes are not text"]))


def test_max_words_prunes_the_rarest_and_says_so():
    _, full = bbpe.train_with_report(texts=SAMPLE_DOCS, vocab_size=1000)
    _, capped = bbpe.train_with_report(texts=SAMPLE_DOCS, vocab_size=1000, max_words=5000)
    assert full.pruned_words == 0
    assert 0 < capped.unique_words <= 5000
    assert capped.pruned_words > 0
    assert capped.unique_words + capped.pruned_words == full.unique_words


def test_holdout_keeps_documents_out_of_training():
    _, report = bbpe.train_with_report(texts=SAMPLE_DOCS, vocab_size=1000, holdout_every=10)
    assert len(report.held_out) == len(SAMPLE_DOCS) // 10
    assert report.held_out == SAMPLE_DOCS[9::10][: len(report.held_out)]
    assert report.documents == len(SAMPLE_DOCS) - len(report.held_out)


def test_progress_reports_reading_then_merging_and_can_stop_training():
    seen = []
    tok = bbpe.train(texts=SAMPLE_DOCS, vocab_size=2000, progress=lambda *a: seen.append(a))
    stages = [stage for stage, _, _ in seen]
    assert stages[0] == "read" and stages[-1] == "merge"
    assert stages.index("merge") > stages.index("read")
    assert seen[-1][1] == tok.vocab_size - 256 - 5

    def stop(stage, done, total):
        if stage == "merge":
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        bbpe.train(texts=SAMPLE_DOCS, vocab_size=2000, progress=stop)


def test_trained_tokenizer_saves_loads_and_is_read_by_peers(tmp_path):
    tok = bbpe.Tokenizer.train_from_iterator(SAMPLE_DOCS, vocab_size=3000)
    text = "Training a tokenizer on 한국어 text, 2026."
    ids = tok.encode(text)
    assert ids[0] == 0 and ids[-1] == 2  # RoBERTa's specials give RoBERTa's template
    assert tok.decode(ids, skip_special_tokens=True) == text
    tok.save(tmp_path, "gpt2")
    tok.save(tmp_path, "hf")
    tok.save(tmp_path, "tiktoken")
    assert (
        bbpe.Tokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt").encode(text)
        == ids
    )
    assert bbpe.Tokenizer.from_file(tmp_path / "tokenizer.json").encode(text) == ids
    assert pickle.loads(pickle.dumps(tok)).encode(text) == ids

    tokenizers = pytest.importorskip("tokenizers")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert hf.encode(text).ids == ids
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    enc = tiktoken.Encoding(
        "trained",
        pat_str=tok.pattern,
        mergeable_ranks=load_tiktoken_bpe(str(tmp_path / "vocab.tiktoken")),
        special_tokens={},
    )
    assert enc.encode_ordinary(text) == tok.encode(text, add_special_tokens=False)


def test_custom_split_pattern_matches_the_reference():
    pattern = r"\w+|[^\w\s]+|\s+"
    texts = SAMPLE_DOCS[:40]
    ours = bbpe.train(texts=texts, vocab_size=1500, min_frequency=2, pattern=pattern)
    assert ours.pattern == pattern
    reference = reference_train(texts, 1500, 2, bbpe.ROBERTA_SPECIALS, pattern=pattern)
    assert vocab_and_merges(ours.to_json()) == reference_vocab_and_merges(reference)
    # Words never cross the pattern's pieces: no token mixes spaces ("Ġ") and ASCII letters.
    merged = [a + b for a, b in vocab_and_merges(ours.to_json())[1]]
    assert any(t.startswith("Ġ") for t in merged)
    assert not any("Ġ" in t and any(c.isascii() and c.isalnum() for c in t) for t in merged)


@pytest.mark.parametrize("letter", [" ", "a"])
def test_a_long_run_of_one_character_makes_no_token_longer_than_the_default(letter, tmp_path):
    """By default no token is longer than GPT-2's longest (128 bytes): a
    document of ten million spaces makes tokens of 2, 4, ... 128 of them, not
    half a megabyte, and it trains, is saved and reloads in seconds."""
    gpt2 = bbpe.Tokenizer.from_pretrained("gpt2")
    gpt2_longest = max(len(gpt2.decode_bytes([i])) for i in range(gpt2.vocab_size))
    tok = bbpe.train(texts=[letter * 10_000_000])
    lengths = [len(tok.decode_bytes([i])) for i in range(tok.vocab_size)]
    assert max(lengths) == gpt2_longest
    tok.save(tmp_path, "tiktoken")
    reloaded = bbpe.Tokenizer.from_tiktoken(tmp_path / "vocab.tiktoken")
    assert reloaded.encode(letter * 1000) == tok.encode(letter * 1000)
    uncapped = bbpe.train(texts=[letter * 100_000], max_token_length=None)
    assert max(len(uncapped.decode_bytes([i])) for i in range(uncapped.vocab_size)) > 10_000


def test_distinct_words_are_capped_by_memory_by_default(monkeypatch):
    from bbpe import trainer

    letters = "abcdefghijklmnopqrstuvwxyz"
    texts = [
        " ".join(letters[i % 26] + letters[i // 26 % 26] + letters[i // 676] for i in range(5000))
    ]
    _, report = bbpe.train_with_report(texts=texts, vocab_size=300, min_frequency=1)
    assert report.max_words == trainer.default_max_words() > 1_000_000
    assert (report.unique_words, report.pruned_words) == (5000, 0)
    # A machine with room for 1,500 words keeps the 1,500 and says what it dropped.
    monkeypatch.setattr(trainer, "default_max_words", lambda: 1500)
    _, report = bbpe.train_with_report(texts=texts, vocab_size=300, min_frequency=1)
    assert (report.max_words, report.unique_words, report.pruned_words) == (1500, 1500, 3500)
    _, report = bbpe.train_with_report(texts=texts, vocab_size=300, max_words=None)
    assert (report.max_words, report.unique_words) == (None, 5000)
