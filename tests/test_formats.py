"""Vocabulary files: loading, saving, and the ids other tools get from them."""

import base64
import json
import time

import pytest

import bbpe
from bbpe import Tokenizer, sample

TEXTS = [
    "It was a great day, wasn't it?",
    "안녕하세요! 한국어 텍스트 😀",
    "def f(x):\n    return x  # code\n\n\n",
    "Ünïcödé   spaces\t\ttabs  ",
    "Fill the <mask> here:\t<mask>, then </s> and <s>.",
]


@pytest.fixture(scope="module")
def sample_texts():
    return sample.sample_texts()[:60] + TEXTS


@pytest.mark.parametrize("name", ["gpt2", "roberta-base"])
def test_gpt2_files_round_trip(tmp_path, name, sample_texts):
    original = Tokenizer.from_pretrained(name)
    vocab, merges = original.save(tmp_path)
    reloaded = Tokenizer.from_files(vocab, merges)
    assert reloaded.special_tokens == original.special_tokens
    assert reloaded.encode_batch(sample_texts) == original.encode_batch(sample_texts)
    assert (
        merges.read_text().splitlines()[1:]
        == (
            (sample.sample_path().parent.parent / "vocabularies" / name / "merges.txt")
            .read_text()
            .splitlines()[1:]
        )
    )


@pytest.mark.parametrize("name", ["gpt2", "roberta-base"])
def test_hf_tokenizer_json_gives_identical_ids(tmp_path, name, sample_texts):
    tokenizers = pytest.importorskip("tokenizers")
    original = Tokenizer.from_pretrained(name)
    path = original.save(tmp_path, format="hf")[0]
    hf = tokenizers.Tokenizer.from_file(str(path))
    for text in sample_texts:
        assert hf.encode(text).ids == original.encode(text), text[:60]
    for a, b in zip(sample_texts[:10], sample_texts[10:20], strict=True):
        assert hf.encode(a, b).ids == original.encode(a, b)
    # And bbpe reads the file back to the same tokenizer.
    assert Tokenizer.from_file(path).encode_batch(sample_texts) == original.encode_batch(
        sample_texts
    )


def test_tiktoken_file_gives_identical_ids(tmp_path, sample_texts):
    tiktoken = pytest.importorskip("tiktoken")
    gpt2 = Tokenizer.from_pretrained("gpt2")
    path, _ = gpt2.save(tmp_path, format="tiktoken")
    ranks = {}
    for line in path.read_text().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    encoding = tiktoken.Encoding(
        name="bbpe-gpt2",
        pat_str=gpt2.pattern,
        mergeable_ranks=ranks,
        special_tokens=gpt2.special_tokens,
    )
    for text in sample_texts:
        assert encoding.encode_ordinary(text) == gpt2.encode(text, allowed_special="none")
    reloaded = Tokenizer.from_tiktoken(path)
    assert reloaded.special_tokens == gpt2.special_tokens
    assert reloaded.encode_batch(sample_texts) == gpt2.encode_batch(sample_texts)


def test_tiktoken_export_refuses_fairseq_ids(tmp_path):
    with pytest.raises(ValueError, match="not in merge order"):
        Tokenizer.from_pretrained("roberta-base").save(tmp_path, format="tiktoken")


@pytest.fixture
def small_vocab(tmp_path):
    """A GPT-2 vocabulary trimmed to its bytes and first 100 merges."""
    gpt2 = Tokenizer.from_pretrained("gpt2")
    vocab_path, merges_path = gpt2.save(tmp_path / "full")
    vocab = json.loads(vocab_path.read_text())
    merges = merges_path.read_text().splitlines()[: 1 + 100]
    keep = {t: i for t, i in vocab.items() if i < 256 + 100}
    return keep, merges


def _write(tmp_path, vocab_text, merges_lines):
    v, m = tmp_path / "vocab.json", tmp_path / "merges.txt"
    v.write_text(vocab_text, encoding="utf-8")
    m.write_text("\n".join(merges_lines) + "\n", encoding="utf-8")
    return v, m


def test_small_vocab_loads(tmp_path, small_vocab):
    vocab, merges = small_vocab
    v, m = _write(tmp_path, json.dumps(vocab), merges)
    assert Tokenizer.from_files(v, m).vocab_size == 356


def test_bad_json_names_file_and_line(tmp_path, small_vocab):
    vocab, merges = small_vocab
    text = json.dumps(vocab, indent=0)
    v, m = _write(tmp_path, text[: len(text) // 2], merges)  # truncated
    with pytest.raises(ValueError, match=r"vocab\.json.*line \d+"):
        Tokenizer.from_files(v, m)


def test_merge_with_unknown_part_names_line(tmp_path, small_vocab):
    vocab, merges = small_vocab
    merges = [*merges[:50], "Ġzzz q", *merges[50:]]
    v, m = _write(tmp_path, json.dumps(vocab), merges)
    with pytest.raises(ValueError, match=r"merges\.txt, line 51: merge part \"Ġzzz\""):
        Tokenizer.from_files(v, m)


def test_malformed_merge_line(tmp_path, small_vocab):
    vocab, merges = small_vocab
    merges = [*merges[:10], "Ġt"]  # cut in the middle of a line
    v, m = _write(tmp_path, json.dumps(vocab), merges)
    with pytest.raises(ValueError, match=r"merges\.txt, line 11: expected two tokens"):
        Tokenizer.from_files(v, m)


@pytest.mark.parametrize(
    ("bad_merge", "message"),
    [
        ("Ġzzz q", r"model\.merges\[50\]: merge part \"Ġzzz\""),
        ("Ġt", r"model\.merges\[50\]: expected"),
    ],
)
def test_bad_merge_in_tokenizer_json_names_its_place(tmp_path, small_vocab, bad_merge, message):
    vocab, merges = small_vocab
    v, m = _write(tmp_path, json.dumps(vocab), merges)
    document = json.loads(Tokenizer.from_files(v, m).to_json())
    document["model"]["merges"].insert(50, bad_merge)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Tokenizer.from_file(path)


def test_truncated_merges_detected(tmp_path, small_vocab):
    vocab, merges = small_vocab
    v, m = _write(tmp_path, json.dumps(vocab), merges[:60])
    with pytest.raises(ValueError, match=r"merges\.txt.*produced by no merge.*truncated"):
        Tokenizer.from_files(v, m)


def test_duplicate_id_named(tmp_path, small_vocab):
    vocab, merges = small_vocab
    text = json.dumps(vocab)[:-1] + ', "Ġextra": 5}'
    v, m = _write(tmp_path, text, merges)
    with pytest.raises(ValueError, match=r"vocab\.json.*id 5 is given to both"):
        Tokenizer.from_files(v, m)


def test_duplicate_key_named(tmp_path, small_vocab):
    vocab, merges = small_vocab
    text = json.dumps(vocab)[:-1] + ', "Ġt": 999}'
    v, m = _write(tmp_path, text, merges)
    with pytest.raises(ValueError, match=r"vocab\.json, entry \"Ġt\": the token appears twice"):
        Tokenizer.from_files(v, m)


def test_bad_id_value(tmp_path, small_vocab):
    vocab, merges = small_vocab
    vocab["Ġt"] = -3
    v, m = _write(tmp_path, json.dumps(vocab), merges)
    with pytest.raises(ValueError, match=r"entry \"Ġt\": id must be an integer"):
        Tokenizer.from_files(v, m)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        Tokenizer.from_files(tmp_path / "nope.json", tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="neither a bundled vocabulary"):
        Tokenizer.from_pretrained("no-such-model")


def test_unsupported_hf_json(tmp_path):
    roberta = Tokenizer.from_pretrained("roberta-base")
    data = json.loads(roberta.to_json())
    data["normalizer"] = {"type": "NFC"}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    with pytest.raises(
        ValueError, match=r"tokenizer\.json, normalizer: normalizers are not supported"
    ):
        Tokenizer.from_file(path)


def test_bad_tiktoken_line(tmp_path):
    path = tmp_path / "bad.tiktoken"
    path.write_text("IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(ValueError, match=r"bad\.tiktoken, line 2"):
        Tokenizer.from_tiktoken(path, encoding="gpt2")


def byte_rank_lines() -> list[str]:
    return [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]


def test_duplicate_tiktoken_rank_names_both_lines(tmp_path):
    path = tmp_path / "dup.tiktoken"
    lines = [*byte_rank_lines(), "", "ICA= 256", "YWI= 256"]  # "  " and "ab"
    path.write_text("\n".join(lines) + "\n")
    message = r"dup\.tiktoken, line 259: rank 256 is already given on line 258"
    with pytest.raises(ValueError, match=message):
        Tokenizer.from_tiktoken(path, encoding="gpt2")


def test_one_megabyte_token_is_written_and_read_quickly(tmp_path):
    """Splitting a token into the two parts tiktoken would join is near-linear
    in its length (it was quadratic: a 100 KB token took over a minute)."""
    widths = [2**k for k in range(1, 21)]  # up to 1 MiB of spaces
    lines = byte_rank_lines()
    lines += [f"{base64.b64encode(b' ' * w).decode()} {255 + k}" for k, w in enumerate(widths, 1)]
    path = tmp_path / "long.tiktoken"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    tok = Tokenizer.from_tiktoken(path, encoding="gpt2", special_tokens={})
    loaded = time.perf_counter()
    (written, _) = tok.save(tmp_path / "again", format="tiktoken")
    saved = time.perf_counter()
    assert written.read_text() == path.read_text()
    assert tok.encode(" " * 2**20) == [255 + len(widths)]
    assert loaded - start < 10 and saved - loaded < 10, (loaded - start, saved - loaded)


def test_offsets_match_hf_tokenizers(tmp_path, sample_texts):
    tokenizers = pytest.importorskip("tokenizers")
    roberta = Tokenizer.from_pretrained("roberta-base")
    path = roberta.save(tmp_path, format="hf")[0]
    hf = tokenizers.Tokenizer.from_file(str(path))
    for text in sample_texts:
        expected = hf.encode(text)
        ids, offsets = roberta.encode_with_offsets(text)
        assert ids == expected.ids
        assert offsets == [tuple(o) for o in expected.offsets], text[:60]
    pair = hf.encode("Hello world", "How are you?")
    assert roberta.encode_with_offsets("Hello world", "How are you?") == (
        pair.ids,
        [tuple(o) for o in pair.offsets],
    )


def test_transformers_fast_tokenizer_gives_identical_ids(tmp_path, sample_texts):
    transformers = pytest.importorskip("transformers")
    roberta = Tokenizer.from_pretrained("roberta-base")
    path = roberta.save(tmp_path, format="hf")[0]
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(path),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    for text in sample_texts:
        assert fast(text)["input_ids"] == roberta.encode(text), text[:60]
    batch = fast(sample_texts[:8], sample_texts[8:16], truncation=True, max_length=64)
    ours = roberta.encode_batch(
        sample_texts[:8], sample_texts[8:16], truncation=True, max_length=64
    )
    assert batch["input_ids"] == ours
    assert fast.decode(roberta.encode("Fill <mask> in")) == roberta.decode(
        roberta.encode("Fill <mask> in")
    )


# -- files whose ids would size tables: refused before anything is allocated --

HUGE_ID = 4_000_000_000  # one slot per id up to it would take 64 GiB


def test_vocab_json_with_a_huge_id_is_refused(tmp_path):
    vocab, merges = Tokenizer.from_pretrained("gpt2").save(tmp_path)
    entries = json.loads(vocab.read_text(encoding="utf-8"))
    entries["Ġthe"] = HUGE_ID
    vocab.write_text(json.dumps(entries), encoding="utf-8")
    with pytest.raises(ValueError, match=rf'vocab\.json: token "Ġthe" has id {HUGE_ID}'):
        Tokenizer.from_files(vocab, merges)


def test_tokenizer_json_with_a_huge_added_token_id_is_refused(tmp_path):
    data = json.loads(Tokenizer.from_pretrained("roberta-base").to_json())
    data["added_tokens"][4]["id"] = HUGE_ID
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=rf'tokenizer\.json: token "<mask>" has id {HUGE_ID}'):
        Tokenizer.from_file(path)


def test_tiktoken_file_with_a_huge_rank_is_refused(tmp_path):
    gpt2 = Tokenizer.from_pretrained("gpt2")
    path, _ = gpt2.save(tmp_path, format="tiktoken")
    lines = path.read_text().splitlines()
    token, _ = lines[-1].split()
    lines[-1] = f"{token} {HUGE_ID}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"vocab\.tiktoken, line {len(lines)}: .*{HUGE_ID}"):
        Tokenizer.from_tiktoken(path, special_tokens=gpt2.special_tokens)


SPECIALS_IN_WHITESPACE = [
    "a <mask> b",
    "a  <mask>b",
    "x\n<mask>\n y",
    "<mask> starts, ends <mask>",
    "\t<mask>\t<mask>  <mask>",
    "<s> x </s>  <pad>\n<unk> y",
]


def test_one_vocabulary_gives_the_same_ids_however_it_is_loaded(tmp_path):
    """RoBERTa's convention everywhere: `<mask>` absorbs the spaces before it,
    whether the vocabulary was just trained, or loaded from vocab.json +
    merges.txt (which cannot record it), tokenizer.json (which bbpe writes
    saying so) or bbpe's tiktoken files."""
    from bbpe.cli import main

    directory = tmp_path / "trained"
    assert main(["train", "--sample", "-o", str(directory), "--vocab-size", "1000"]) == 0
    loads = {
        "from_pretrained": Tokenizer.from_pretrained(directory),
        "from_files": Tokenizer.from_files(directory / "vocab.json", directory / "merges.txt"),
        "from_file": Tokenizer.from_file(directory / "tokenizer.json"),
        "from_tiktoken": Tokenizer.from_tiktoken(directory / "vocab.tiktoken"),
        "trained": bbpe.train(sample.sample_path(), vocab_size=1000),
    }
    for text in SPECIALS_IN_WHITESPACE:
        ids = {how: tok.encode(text) for how, tok in loads.items()}
        assert len(set(map(tuple, ids.values()))) == 1, (text, ids)
    trained = loads["trained"]
    a_then_mask = trained.encode("a", add_special_tokens=False) + [trained.mask_token_id]
    assert trained.encode("a  <mask>", add_special_tokens=False) == a_then_mask

    added = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    assert [t["content"] for t in added if t["lstrip"]] == ["<mask>"]
    tokenizers = pytest.importorskip("tokenizers")
    hf = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    for text in SPECIALS_IN_WHITESPACE:
        assert hf.encode(text).ids == loads["from_files"].encode(text), text
