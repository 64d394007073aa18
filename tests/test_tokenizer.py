"""Behaviour of the public Tokenizer API."""

import multiprocessing
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbpe import Tokenizer, sample


@pytest.fixture(scope="module")
def roberta():
    return Tokenizer.from_pretrained("roberta-base")


@pytest.fixture(scope="module")
def gpt2():
    return Tokenizer.from_pretrained("gpt2")


@pytest.fixture(scope="module")
def sample_texts():
    return sample.sample_texts()


def test_seed_examples(roberta):
    assert roberta.tokenize("It was a great day") == ["It", "Ġwas", "Ġa", "Ġgreat", "Ġday"]
    assert roberta.encode("It was a great day") == [0, 243, 21, 10, 372, 183, 2]
    assert roberta.encode("Hello world", "How are you?") == [
        0,
        31414,
        232,
        2,
        2,
        6179,
        32,
        47,
        116,
        2,
    ]


def test_roberta_special_ids(roberta):
    assert roberta.special_tokens == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 50264}
    assert (roberta.bos_token_id, roberta.pad_token_id, roberta.eos_token_id) == (0, 1, 2)
    assert roberta.mask_token_id == 50264
    assert roberta.vocab_size == 50265


def test_gpt2_has_no_template(gpt2):
    assert gpt2.special_tokens == {"<|endoftext|>": 50256}
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.encode("Hello", "world") == [15496, 6894]
    assert gpt2.eos_token_id == 50256


def test_mask_absorbs_the_space_before_it(roberta):
    # As roberta-base's own tokenizer.json (lstrip on <mask>): "a <mask>" is two tokens.
    assert roberta.encode("a <mask> b") == [0, 102, 50264, 741, 2]
    ids, spans = roberta.encode_with_offsets("a <mask>", add_special_tokens=False)
    assert ids == [102, 50264] and spans == [(0, 1), (2, 8)]


def test_special_tokens_in_text(roberta, gpt2):
    text = "a <mask> b</s>"
    assert 50264 in roberta.encode(text, add_special_tokens=False)
    plain = roberta.encode(text, add_special_tokens=False, allowed_special="none")
    assert 50264 not in plain and 2 not in plain
    assert roberta.decode(plain) == text
    only_mask = roberta.encode(text, add_special_tokens=False, allowed_special={"<mask>"})
    assert 50264 in only_mask and 2 not in only_mask
    assert gpt2.encode("x<|endoftext|>y") == [87, 50256, 88]
    with pytest.raises(ValueError, match="not special tokens"):
        roberta.encode("x", allowed_special={"<|endoftext|>"})


def test_decode_round_trip_and_errors(roberta):
    text = "안녕하세요, world! 😀 e\u0301"
    assert roberta.decode(roberta.encode(text)) == "<s>" + text + "</s>"
    assert roberta.decode(roberta.encode(text), skip_special_tokens=True) == text
    # A token sequence cut inside a character: replacement, or a strict error.
    ids = roberta.encode("😀", add_special_tokens=False)
    assert len(ids) > 1
    assert roberta.decode(ids[:1]) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        roberta.decode(ids[:1], errors="strict")
    for bad in ([50265], [-1], [2**40]):
        with pytest.raises(ValueError, match="not in the vocabulary"):
            roberta.decode(bad)
    assert roberta.decode(np.array(roberta.encode("numpy ids"))) == "<s>numpy ids</s>"


def test_token_lookup(roberta):
    assert roberta.token_to_id("Ġgreat") == 372
    assert roberta.id_to_token(372) == "Ġgreat"
    assert roberta.token_to_id("<mask>") == 50264
    assert roberta.id_to_token(0) == "<s>"
    assert roberta.token_to_id("not-a-token-☃") is None
    assert roberta.id_to_token(10**6) is None
    vocab = roberta.get_vocab()
    assert vocab["Ġthe"] == 5 and len(vocab) == roberta.vocab_size


def test_offsets(roberta):
    text = "It was 한국"
    ids, spans = roberta.encode_with_offsets(text)
    assert len(ids) == len(spans)
    assert spans[0] == (0, 0) and spans[-1] == (0, 0)
    words = [text[s:e] for s, e in spans[1:-1]]
    # The lone space token trims to nothing; Korean syllables split across
    # byte-level tokens widen to whole characters.
    assert words == ["It", "was", "", "한", "한", "국", "국", "국"]
    _, raw = roberta.encode_with_offsets(text, trim_offsets=False, add_special_tokens=False)
    assert text[raw[1][0] : raw[1][1]] == " was"
    pair_ids, pair_spans = roberta.encode_with_offsets("Hi", "there")
    assert pair_ids == roberta.encode("Hi", "there")
    assert len(pair_spans) == len(pair_ids)


def test_truncation_and_padding(roberta):
    ids = roberta.encode("one two three four five", max_length=4, truncation=True)
    assert ids == [0, *roberta.encode("one two", add_special_tokens=False), 2]
    pair = roberta.encode("a b c d e f", "x", max_length=7, truncation=True)
    assert len(pair) == 7 and pair[-3:] == [2, roberta.token_to_id("x"), 2]
    padded = roberta.encode("hi", max_length=6, padding="max_length")
    assert padded == [0, roberta.token_to_id("hi"), 2, 1, 1, 1]
    with pytest.raises(ValueError, match="max_length"):
        roberta.encode("x", truncation=True)
    with pytest.raises(ValueError, match="no room"):
        roberta.encode("x", "y", max_length=3, truncation=True)


def test_batch_matches_single(roberta, sample_texts):
    import gc

    texts = sample_texts[:50]
    batch = roberta.encode_batch(texts)
    assert batch == [roberta.encode(t) for t in texts]
    # The template's ids are written into each list as the core makes it.
    bos, eos = roberta.token_to_id("<s>"), roberta.token_to_id("</s>")
    plain = roberta.encode_batch(texts, add_special_tokens=False)
    assert batch == [[bos, *ids, eos] for ids in plain]
    assert not any(gc.is_tracked(ids) for ids in batch)
    assert roberta.encode("") == [bos, eos] and roberta.encode_batch([""]) == [[bos, eos]]
    pairs = roberta.encode_batch(texts[:5], texts[5:10])
    assert pairs == [roberta.encode(a, b) for a, b in zip(texts[:5], texts[5:10], strict=True)]


def test_id_lists_are_plain_lists_the_collector_skips(gpt2, sample_texts):
    """Lists of ints cannot form cycles, so bbpe untracks them; they behave as
    any list (and a copy is tracked as usual)."""
    import gc

    batch = gpt2.encode_batch(sample_texts[:3], add_special_tokens=False)
    single = gpt2.encode(sample_texts[0], add_special_tokens=False)
    assert single == batch[0] and type(single) is list
    for ids in [*batch, single]:
        assert not gc.is_tracked(ids)
    assert gc.is_tracked(batch)  # the outer list holds lists
    copy = list(single)
    copy.append(copy)
    assert gc.is_tracked(copy) and copy[:-1] == single
    single.extend([1, 2])
    assert single[-2:] == [1, 2]


def test_ints_in_id_lists_outlive_every_list_and_tokenizer():
    """Lists share one int per id. Either each list holds a reference to it
    (its count rises by one per token and falls back), or the int is
    permanent and lists hold it without raising the count; never a list
    holding an int that its count does not cover."""
    import gc
    import sys

    tokenizer = Tokenizer.from_pretrained("gpt2")
    text = " the" * 1000
    the = tokenizer.encode(text, add_special_tokens=False)[0]
    the_id = int(the)
    before = sys.getrefcount(the)
    lists = tokenizer.encode_batch([text] * 3, add_special_tokens=False)
    assert all(ids[0] is the for ids in lists)
    during = sys.getrefcount(the)
    del lists
    after = sys.getrefcount(the)
    counted = during == before + 3000 and after == before
    permanent = during == before and after >= 2**30
    assert counted or permanent, (before, during, after)
    # Many more releases than a count of one would survive, and the
    # tokenizer gone: the int is still there, and still the same id.
    for _ in range(300):
        tokenizer.encode_batch([text] * 10, add_special_tokens=False)
    del tokenizer
    gc.collect()
    assert sys.getrefcount(the) > 1 and the == the_id and the + 1 == the_id + 1
    fresh = Tokenizer.from_pretrained("gpt2")
    assert fresh.encode(text, add_special_tokens=False) == [the_id] * 1000


def test_id_lists_behave_as_lists_python_made():
    """The core may give a list its slots itself (`id_lists.rs`): each must
    then grow, shrink, be copied, sorted, compared and freed as any list,
    with CPython's own allocator, and be left alone by the garbage
    collector (a list of ints cannot be in a cycle)."""
    import gc
    import sys

    tokenizer = Tokenizer.from_pretrained("roberta-base")
    texts = ["", "a", " 한국어 문장", "hello world " * 50]
    for template in (True, False):
        lists = tokenizer.encode_batch(texts, add_special_tokens=template)
        expected = [tokenizer.encode(text, add_special_tokens=template) for text in texts]
        assert lists == expected
        for ids, again in zip(lists, expected, strict=True):
            assert type(ids) is list and not gc.is_tracked(ids)
            ids.extend(range(1000))
            ids.append("not an int")
            assert ids[: len(again)] == again and ids[-1] == "not an int"
            del ids[len(again) :]
            assert ids == again and sorted(ids) == sorted(again) and ids.copy() == again
            ids.insert(0, -1)
            assert ids.pop(0) == -1 and sys.getsizeof(ids) >= 56
        del lists
        gc.collect()


def test_batch_independent_of_thread_count(gpt2, sample_texts):
    reference = gpt2.encode_batch(sample_texts, threads=1)
    for threads in (2, 3, 7):
        assert gpt2.encode_batch(sample_texts, threads=threads) == reference
    ids, offsets = gpt2.encode_batch_flat(sample_texts, threads=2)
    assert ids.dtype == np.uint32 and offsets.dtype == np.int64
    assert offsets[0] == 0 and offsets[-1] == len(ids) and len(offsets) == len(sample_texts) + 1
    for i in (0, 17, len(sample_texts) - 1):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == reference[i]


def test_numpy_results(roberta):
    texts = ["short", "a somewhat longer text", ""]
    arrays = roberta.encode_batch(texts, return_numpy=True)
    assert [a.tolist() for a in arrays] == roberta.encode_batch(texts)
    padded = roberta.encode_batch(texts, padding=True, return_numpy=True)
    assert padded.shape == (3, max(len(a) for a in arrays))
    assert padded[2].tolist()[:2] == [0, 2] and set(padded[2].tolist()[2:]) == {1}
    fixed = roberta.encode_batch(
        texts, padding="max_length", truncation=True, max_length=4, return_numpy=True
    )
    assert fixed.shape == (3, 4)


def test_lone_surrogates_are_replaced(roberta):
    assert roberta.encode("a\ud800b") == roberta.encode("a\ufffdb")
    assert roberta.encode_batch(["ok", "x\udfffy"]) == [
        roberta.encode("ok"),
        roberta.encode("x\ufffdy"),
    ]


def test_a_text_that_is_not_a_string_is_named_by_its_position(roberta):
    for call in (roberta.encode_batch, roberta.encode_batch_flat):
        with pytest.raises(TypeError, match=r"texts\[2\] is bytes, not str"):
            call(["ok", "fine", b"bytes", "never reached"])
    with pytest.raises(TypeError, match=r"pairs\[0\] is int, not str"):
        roberta.encode_batch(["a"], [3])
    with pytest.raises(TypeError, match=r"text is NoneType, not str"):
        roberta.encode(None)
    with pytest.raises(TypeError, match=r"pair is int, not str"):
        roberta.encode_with_offsets("a", 5)


def test_one_string_where_a_batch_is_expected_is_a_type_error(roberta):
    for call in (roberta.encode_batch, roberta.encode_batch_flat):
        for single in ("hello", b"hello"):
            with pytest.raises(TypeError, match="texts must be a list of strings"):
                call(single)
    with pytest.raises(TypeError, match="pairs must be a list of strings"):
        roberta.encode_batch(["hello"], "x")
    with pytest.raises(TypeError, match="batch must be a list of id sequences"):
        roberta.decode_batch([0, 243, 2])
    with pytest.raises(TypeError, match="batch must be a list of id sequences"):
        roberta.decode_batch(np.array([0, 243, 2]))
    with pytest.raises(TypeError, match="batch must be a list of id sequences"):
        roberta.decode_batch("hello")
    rows = [[0, 243, 2], np.array([0, 2])]
    assert roberta.decode_batch(rows) == [roberta.decode(r) for r in rows]
    assert roberta.decode_batch(np.array([[0, 243, 2]])) == [roberta.decode([0, 243, 2])]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"padding": "max_length", "max_length": -1},
            "max_length must be a positive int or None, not -1",
        ),
        (
            {"padding": "max_length", "max_length": 0},
            "max_length must be a positive int or None, not 0",
        ),
        ({"max_length": 2.5, "truncation": True}, "max_length must be .*, not 2.5"),
        ({"max_length": True, "truncation": True}, "max_length must be .*, not True"),
        ({"padding": "longest_first"}, "padding must be .*, not 'longest_first'"),
        ({"padding": 1}, "padding must be .*, not 1"),
        ({"truncation": "yes", "max_length": 4}, "truncation must be .*, not 'yes'"),
        ({"truncation": 1, "max_length": 4}, "truncation must be .*, not 1"),
        ({"padding": "max_length"}, 'padding="max_length" needs max_length'),
    ],
)
def test_shaping_options_are_checked_and_named(roberta, options, message):
    with pytest.raises(ValueError, match=message):
        roberta.encode("hi", **options)
    with pytest.raises(ValueError, match=message):
        roberta.encode_batch(["hi"], **options)


def test_max_length_below_the_template_and_rows_longer_than_max_length(roberta):
    with pytest.raises(ValueError, match="max_length=1 leaves no room: the template adds 4"):
        roberta.encode_batch(["a"], ["b"], max_length=1, truncation=True)
    assert roberta.encode("a", max_length=2, truncation=True) == [0, 2]
    assert roberta.encode("a b c", max_length=5, truncation="longest_first") == roberta.encode(
        "a b c", max_length=5, truncation=True
    )
    # Without truncation a longer text stays whole in lists (as in Hugging Face) ...
    long = roberta.encode_batch(["a b c d e", "a"], padding="max_length", max_length=4)
    assert len(long[0]) == 7 and long[1] == [0, roberta.token_to_id("a"), 2, 1]
    # ... and cannot be a (rows, max_length) array: the error says which and why.
    with pytest.raises(ValueError, match=r"texts\[0\] has 7 tokens, more than max_length=4"):
        roberta.encode_batch(["a b c d e"], padding="max_length", max_length=4, return_numpy=True)


# Any code point, surrogates included, among runs of ASCII as in most text.
_any_char = st.integers(0, 0x10FFFF).map(chr)
_short_text = st.text(st.one_of(st.sampled_from("ab c.\n"), _any_char), max_size=80)
# Long texts too: short strings take CPython's UTF-8, longer ones bbpe's own conversion.
_text = st.one_of(_short_text, _short_text.map(lambda t: t * (1 + 400 // (len(t) + 1))))


def _rows(flat):
    ids, offsets = flat
    return [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


@settings(max_examples=300, deadline=None)
@given(st.lists(_text, max_size=6))
def test_batches_convert_any_text_as_single_encodes_do(gpt2, texts):
    # Batches make their texts' UTF-8 themselves; single texts get CPython's.
    expected = [gpt2.encode(t) for t in texts]
    assert gpt2.encode_batch(texts, threads=2) == expected
    for threads in (1, 2):
        assert _rows(gpt2.encode_batch_flat(texts, allowed_special="all", threads=threads)) == (
            expected
        )


def test_batches_convert_long_mixed_texts(gpt2):
    # Every UTF-8 length at every position against the converter's blocks of
    # code points; texts mostly of ASCII and mostly not, which convert differently.
    pieces = ["a", "é", "ÿ", "\u07ff", "\u0800", "한", "\uffff", "😀", "\U0010ffff"]
    texts = ["x" * shift + "".join(pieces) * 40 for shift in range(20)]
    texts += ["Hello, 세계! " * 300 + "ASCII only " * 100, "\u2019quoted\u2019 text " * 50]
    texts += ["한국어 문장입니다. " * 20000]  # over a run: cut into parts
    expected = [gpt2.encode(t) for t in texts]
    for threads in (1, 2):
        assert _rows(gpt2.encode_batch_flat(texts, threads=threads)) == expected
    assert gpt2.encode_batch(texts) == expected
    with_surrogate = [t[:37] + "\ud800" + t[37:] for t in texts]
    replaced = [t[:37] + "\ufffd" + t[37:] for t in texts]
    assert _rows(gpt2.encode_batch_flat(with_surrogate)) == [gpt2.encode(t) for t in replaced]


def test_add_prefix_space(roberta):
    tok = Tokenizer.from_pretrained("roberta-base")
    tok.add_prefix_space = True
    assert tok.encode("Hello", add_special_tokens=False) == roberta.encode(
        " Hello", add_special_tokens=False
    )
    assert tok.encode(" Hello", add_special_tokens=False) == roberta.encode(
        " Hello", add_special_tokens=False
    )
    ids, spans = tok.encode_with_offsets("Hello", add_special_tokens=False)
    assert spans == [(0, 5)]


def test_pickle(roberta):
    clone = pickle.loads(pickle.dumps(roberta))
    assert clone.encode("pickled 한국어") == roberta.encode("pickled 한국어")
    modified = Tokenizer.from_pretrained("roberta-base")
    modified.add_prefix_space = True
    clone = pickle.loads(pickle.dumps(modified))
    assert clone.add_prefix_space and clone.encode("x") == modified.encode("x")


def _encode_in_worker(args):
    tokenizer, text = args
    return tokenizer.encode(text)


def test_multiprocessing(roberta):
    texts = ["first text", "두 번째", "third"]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_encode_in_worker, [(roberta, t) for t in texts])
    assert results == [roberta.encode(t) for t in texts]


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,
        "가" * 300_000,
        " " * 1_000_000 + "x",
        "\n\t " * 300_000,
        "9" * 1_000_000,
        "".join(chr(0x4E00 + i % 20000) for i in range(300_000)),
    ],
    ids=["letters", "hangul", "spaces", "mixed-space", "digits", "cjk-no-spaces"],
)
def test_pathological_inputs_round_trip(gpt2, text):
    # Each is a single huge pretoken or run; encoding must stay near-linear
    # (a quadratic merge would not finish) and be exact.
    ids = gpt2.encode(text)
    assert gpt2.decode(ids, errors="strict") == text


def test_flat_batches_of_many_runs_and_none(gpt2, sample_texts):
    # Over 4M characters, in many runs on the pool; the book-length text (over
    # 512 KB) is cut into parts where its pretokens allow and must encode as a whole.
    book = "\n\n".join(sample_texts) * 3
    assert len(book.encode()) > 1 << 20
    texts = [*sample_texts * 10, book, "end"]
    assert sum(map(len, texts)) > 4 << 20
    ids, offsets = gpt2.encode_batch_flat(texts, threads=2)
    single, single_offsets = gpt2.encode_batch_flat(texts, threads=1)
    assert np.array_equal(ids, single) and np.array_equal(offsets, single_offsets)
    for i in (0, len(sample_texts), len(texts) - 2, len(texts) - 1):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == gpt2.encode(texts[i])
    empty_ids, empty_offsets = gpt2.encode_batch_flat([])
    assert empty_ids.tolist() == [] and empty_offsets.tolist() == [0]
