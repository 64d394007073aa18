"""tiktoken rank files of other encodings than GPT-2's: the split pattern is
given or known, never guessed, and the ids are tiktoken's."""

import json
import shutil
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bbpe
from bbpe import Tokenizer, sample
from bbpe.tiktoken_encodings import CL100K_PATTERN, O200K_PATTERN, STANDARD_ENCODINGS

tiktoken = pytest.importorskip("tiktoken")
from tiktoken.load import load_tiktoken_bpe  # noqa: E402
from tiktoken_ext import openai_public  # noqa: E402

PATTERNS = {"cl100k_base": CL100K_PATTERN, "o200k_base": O200K_PATTERN}


def test_standard_encodings_are_tiktokens():
    # tiktoken's own definitions, with the downloads of the rank files stubbed out.
    with (
        mock.patch.object(openai_public, "load_tiktoken_bpe", return_value={}),
        mock.patch.object(openai_public, "data_gym_to_mergeable_bpe_ranks", return_value={}),
    ):
        for name, encoding in STANDARD_ENCODINGS.items():
            theirs = openai_public.ENCODING_CONSTRUCTORS[name]()
            assert encoding.pattern == theirs["pat_str"], name
            assert encoding.special_tokens == theirs["special_tokens"], name


@pytest.fixture(scope="module")
def texts():
    return sample.sample_texts()[:200]


@pytest.fixture(scope="module", params=sorted(PATTERNS))
def trained(request, texts, tmp_path_factory):
    """A small vocabulary trained under a tiktoken encoding's pattern, its rank
    file, and tiktoken's Encoding of that file."""
    pattern = PATTERNS[request.param]
    tok = bbpe.train(
        texts=texts, vocab_size=1500, special_tokens=bbpe.GPT2_SPECIALS, pattern=pattern
    )
    assert tok.pattern == pattern
    rank_file, _ = tok.save(tmp_path_factory.mktemp(request.param), format="tiktoken")
    encoding = tiktoken.Encoding(
        name=f"bbpe-{request.param}",
        pat_str=pattern,
        mergeable_ranks=load_tiktoken_bpe(str(rank_file)),
        special_tokens=tok.special_tokens,
    )
    return tok, rank_file, encoding


def test_trained_vocabulary_gives_tiktokens_ids(trained, texts):
    tok, _, encoding = trained
    ours = tok.encode_batch(texts, allowed_special="none")
    assert ours == [encoding.encode_ordinary(text) for text in texts]


PIECES = st.sampled_from(
    [" ", "  ", "\t", "\n", "\r\n", "\n\n", "'s", "'S", "'ll", "'VE", "’s", "don't", "HELLO",
     "Hello", "hello", "İstanbul", "ǅungla", "ß", "e\u0301", "Éclair", "日本語", "한국어",
     "Привет", "مرحبا", "١٢٣", "12345", "3.14", "/", "//", "!?", "...", "😀", "a1b2"]
)  # fmt: skip
MIXED_TEXT = st.lists(
    st.one_of(PIECES, st.text(st.characters(blacklist_categories=("Cs",)), max_size=4)),
    max_size=20,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=MIXED_TEXT)
def test_generated_text_gives_tiktokens_ids(trained, text):
    tok, rank_file, encoding = trained
    assert tok.encode(text, allowed_special="none") == encoding.encode_ordinary(text)


def test_bbpe_rank_file_round_trips_with_its_pattern(trained, texts):
    tok, rank_file, _ = trained
    reloaded = Tokenizer.from_tiktoken(rank_file)
    assert reloaded.pattern == tok.pattern
    assert reloaded.special_tokens == tok.special_tokens
    assert reloaded.encode_batch(texts) == tok.encode_batch(texts)


def test_rank_file_of_unknown_pattern_is_refused(trained, tmp_path):
    _, rank_file, _ = trained
    bare = tmp_path / "vocab.tiktoken"
    shutil.copy(rank_file, bare)
    with pytest.raises(ValueError, match=r"vocab\.tiktoken: .*pass pattern= or encoding="):
        Tokenizer.from_tiktoken(bare)
    with pytest.raises(ValueError, match="unknown encoding 'cl200k'"):
        Tokenizer.from_tiktoken(bare, encoding="cl200k")
    with pytest.raises(ValueError, match="not both"):
        Tokenizer.from_tiktoken(bare, pattern=CL100K_PATTERN, encoding="cl100k_base")


def test_standard_encoding_by_name_or_file_name(trained, tmp_path):
    tok, rank_file, _ = trained
    named = tmp_path / "cl100k_base.tiktoken"
    shutil.copy(rank_file, named)
    by_file_name = Tokenizer.from_tiktoken(named, special_tokens={})
    by_name = Tokenizer.from_tiktoken(rank_file, encoding="cl100k_base", special_tokens={})
    assert by_file_name.pattern == by_name.pattern == CL100K_PATTERN
    assert by_name.special_tokens == {}


@pytest.mark.parametrize("pattern", [None, CL100K_PATTERN])
def test_settings_file_gives_tiktoken_bbpes_special_tokens(tmp_path, texts, pattern):
    """tiktoken keeps the pattern and special tokens outside the rank file: an
    Encoding built from bbpe's two files alone agrees with bbpe on them."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    extra = {} if pattern is None else {"pattern": pattern}
    tok = bbpe.train(texts=texts, vocab_size=1000, special_tokens=specials, **extra)
    rank_file, settings_file = tok.save(tmp_path, format="tiktoken")
    saved = json.loads(settings_file.read_text(encoding="utf-8"))
    encoding = tiktoken.Encoding(
        name="bbpe-saved",
        pat_str=saved["pattern"],
        mergeable_ranks=load_tiktoken_bpe(str(rank_file)),
        special_tokens=saved["special_tokens"],
    )
    assert encoding.special_tokens_set == set(specials)
    reloaded = Tokenizer.from_tiktoken(rank_file)
    assert reloaded.special_tokens == tok.special_tokens == saved["special_tokens"]
    marked = [
        f"<|im_start|>user\n{a}<|im_end|><|endoftext|>{b}<|endoftext|>"
        for a, b in zip(texts[:20], texts[20:40], strict=True)
    ]
    for text in marked:
        ids = encoding.encode(text, allowed_special="all")
        assert reloaded.encode(text) == ids == tok.encode(text)
        assert reloaded.encode(text, allowed_special="none") == encoding.encode_ordinary(text)
