"""The transformers face: pair truncation by Hugging Face's exact rule, and
``Tokenizer.__call__`` against ``transformers.RobertaTokenizerFast``, both
built offline from the bundled roberta-base files."""

import subprocess
import sys

import numpy as np
import pytest

from bbpe import Tokenizer, sample
from conftest import build_hf_byte_level, vocab_files

STRATEGIES = ("longest_first", "only_first", "only_second")


@pytest.fixture(scope="module")
def roberta():
    return Tokenizer.from_pretrained("roberta-base")


@pytest.fixture(scope="module")
def hf_roberta_template():
    """Hugging Face tokenizers with RoBERTa's template (``<s> A </s></s> B </s>``)."""
    from tokenizers import processors

    tok = build_hf_byte_level("roberta-base")
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    return tok


@pytest.fixture(scope="module")
def hf_fast():
    """transformers' RobertaTokenizerFast from the bundled files, offline, with
    roberta-base's settings: ``<mask>`` takes the space before it (lstrip), and
    512 tokens at most."""
    transformers = pytest.importorskip("transformers")
    vocab, merges = (str(path) for path in vocab_files("roberta-base"))
    mask = transformers.AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)
    return transformers.RobertaTokenizerFast(
        vocab=vocab, merges=merges, mask_token=mask, model_max_length=512
    )


@pytest.fixture(scope="module")
def documents():
    """A third of the sample corpus: English and Korean, from a few tokens to
    thousands (all of it makes the comparisons slow, not more searching)."""
    return sample.sample_texts()[::3]


def hf_truncated(hf, a: str, b: str | None, max_length: int, strategy: str):
    """HF's ids for (a, b) truncated to `max_length`, or None where HF refuses."""
    hf.enable_truncation(max_length=max_length, strategy=strategy)
    try:
        return hf.encode(a, b).ids
    except Exception:  # tokenizers raises a bare Exception for a truncation it cannot do
        return None
    finally:
        hf.no_truncation()


def bbpe_truncated(tok, a: str, b: str | None, max_length: int, strategy: str):
    try:
        return tok.encode(a, b, max_length=max_length, truncation=strategy)
    except ValueError:
        return None


def x_text(n: int) -> str:
    """A text of exactly `n` tokens (" x" is one token)."""
    return " x" * n


def test_x_text_has_one_token_per_x(roberta):
    assert len(roberta.encode(x_text(300), add_special_tokens=False)) == 300


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pair_truncation_is_hugging_faces_around_the_budget(roberta, hf_roberta_template, strategy):
    """Every pair of lengths around RoBERTa's budget, odd and even, each way round."""
    mismatches = []
    for max_length in range(509, 513):
        for len_a in range(240, 270):
            for len_b in range(240, 270):
                a, b = x_text(len_a), x_text(len_b)
                expected = hf_truncated(hf_roberta_template, a, b, max_length, strategy)
                got = bbpe_truncated(roberta, a, b, max_length, strategy)
                if got != expected:
                    mismatches.append((len_a, len_b, max_length))
    assert not mismatches, f"{len(mismatches)} cases differ, e.g. {mismatches[:5]}"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_truncation_is_hugging_faces_on_short_inputs(roberta, hf_roberta_template, strategy):
    """Small lengths, budgets down to the template's size, singles and pairs,
    including the cases HF refuses (bbpe then raises ValueError)."""
    mismatches = []
    for max_length in range(2, 12):
        for len_a in range(0, 10):
            for len_b in [None, *range(0, 10)]:
                if len_b is not None and max_length < 4:
                    continue  # no room for the template: HF does not cut, bbpe refuses
                a, b = x_text(len_a), None if len_b is None else x_text(len_b)
                expected = hf_truncated(hf_roberta_template, a, b, max_length, strategy)
                got = bbpe_truncated(roberta, a, b, max_length, strategy)
                if got != expected:
                    mismatches.append((len_a, len_b, max_length, got, expected))
    assert not mismatches, f"{len(mismatches)} cases differ, e.g. {mismatches[:5]}"


@pytest.mark.parametrize(
    ("len_a", "len_b", "max_length"),
    [(300, 300, 511), (301, 400, 511), (255, 260, 511), (300, 300, 509)],
)
def test_the_issues_cases_keep_what_hf_keeps(
    roberta, hf_roberta_template, len_a, len_b, max_length
):
    """Odd budgets where both segments are cut: HF gives the extra token to the
    longer segment, to B when they are equally long."""
    a, b = x_text(len_a), x_text(len_b)
    hf_roberta_template.enable_truncation(max_length=max_length)
    hf_ids = hf_roberta_template.encode(a, b).ids
    hf_roberta_template.no_truncation()
    ids = roberta.encode(a, b, max_length=max_length, truncation=True)
    assert segment_lengths(ids) == segment_lengths(hf_ids)
    assert ids == hf_ids


def segment_lengths(ids: list[int]) -> tuple[int, int]:
    """Tokens of A and of B in ``<s> A </s></s> B </s>``."""
    first_end = ids.index(2)
    return first_end - 1, len(ids) - first_end - 3


# ------------------------------------------------------------ Tokenizer.__call__
ALL_OUTPUTS = {"return_special_tokens_mask": True, "return_offsets_mapping": True}


def as_lists(encoding) -> dict:
    """An encoding's columns as plain lists (arrays' values, offsets as tuples)."""
    out = {}
    for name, value in encoding.items():
        value = value.tolist() if hasattr(value, "tolist") else value
        if name == "offset_mapping":
            value = (
                [tuple(s) for s in value]
                if value and isinstance(value[0][0], int)
                else [[tuple(span) for span in row] for row in value]
            )
        out[name] = value
    return out


def assert_same(ours, theirs):
    assert list(ours) == list(theirs)  # the same keys, in transformers' order
    ours, theirs = as_lists(ours), as_lists(theirs)
    for name in theirs:
        assert ours[name] == theirs[name], name


@pytest.mark.parametrize("return_tensors", [None, "np"])
@pytest.mark.parametrize("padding", [False, "longest", "max_length"])
@pytest.mark.parametrize("max_length", [512, 64])
@pytest.mark.parametrize("pairs", [False, True])
def test_call_is_transformers_on_documents(
    roberta, hf_fast, documents, pairs, max_length, padding, return_tensors
):
    if return_tensors == "np" and padding is False:
        pytest.skip("rows of different lengths make no array")
    texts, text_pair = (documents[::2], documents[1::2][::-1]) if pairs else (documents, None)
    texts = texts[: len(text_pair)] if pairs else texts
    options = dict(
        truncation=True,
        max_length=max_length,
        padding=padding,
        return_tensors=return_tensors,
        **ALL_OUTPUTS,
    )
    assert_same(roberta(texts, text_pair, **options), hf_fast(texts, text_pair, **options))


@pytest.mark.parametrize("truncation", ["only_first", "only_second", "longest_first"])
def test_call_cuts_pairs_of_documents_as_transformers(roberta, hf_fast, documents, truncation):
    """Short texts against long ones, so each strategy can cut its segment."""
    by_length = sorted(documents, key=len)
    short, long = by_length[:12], by_length[-12:]
    texts, pairs = (long, short) if truncation == "only_first" else (short, long)
    options = dict(truncation=truncation, max_length=200, padding=True, **ALL_OUTPUTS)
    assert_same(roberta(texts, pairs, **options), hf_fast(texts, pairs, **options))


@pytest.mark.parametrize("return_tensors", [None, "np"])
def test_call_on_one_text_is_transformers(roberta, hf_fast, documents, return_tensors):
    """One str gives flat lists, or arrays with a batch axis of one."""
    for text, pair in [(documents[0], None), (documents[-1], documents[3]), ("a <mask> b", " c")]:
        for options in [
            {},
            {"truncation": True},  # to model_max_length
            {"max_length": 30},  # a max_length alone truncates
            {"padding": "max_length", "max_length": 40, "truncation": True},
            {"padding": True, "pad_to_multiple_of": 8, "return_token_type_ids": True},
        ]:
            options = {**options, **ALL_OUTPUTS, "return_tensors": return_tensors}
            assert_same(roberta(text, pair, **options), hf_fast(text, pair, **options))


def test_call_without_template_tokens_or_attention_mask(roberta, hf_fast, documents):
    texts = documents[:20]
    options = dict(
        add_special_tokens=False,
        truncation=True,
        max_length=48,
        padding="max_length",
        return_attention_mask=False,
        **ALL_OUTPUTS,
    )
    assert_same(roberta(texts, **options), hf_fast(texts, **options))


def test_call_keeps_what_transformers_keeps_at_odd_budgets(roberta, hf_fast):
    """The issue's cases through the call: (300, 300, 511) keeps 253 of A and
    254 of B in HF, where bbpe used to keep 254 and 253."""
    for len_a, len_b, max_length in [
        (300, 300, 511),
        (301, 400, 511),
        (255, 260, 511),
        (300, 300, 509),
    ]:
        a, b = x_text(len_a), x_text(len_b)
        ours = roberta(a, b, truncation=True, max_length=max_length).input_ids
        theirs = hf_fast(a, b, truncation=True, max_length=max_length)["input_ids"]
        assert segment_lengths(ours) == segment_lengths(theirs)
        assert ours == theirs


def test_encoding_reads_as_attributes(roberta):
    encoding = roberta(["a b", "c"], padding=True)
    assert encoding.input_ids is encoding["input_ids"]
    assert encoding.attention_mask == [[1, 1, 1, 1], [1, 1, 1, 0]]
    with pytest.raises(AttributeError, match="no 'offset_mapping'"):
        _ = encoding.offset_mapping


def test_model_max_length(roberta):
    assert roberta.model_max_length == 512
    assert Tokenizer.from_pretrained("gpt2").model_max_length == 1024
    assert len(roberta(x_text(600), truncation=True).input_ids) == 512
    tok = Tokenizer.from_pretrained("gpt2")
    tok.model_max_length = None
    with pytest.raises(ValueError, match="no model_max_length"):
        tok("a", truncation=True)


def test_rows_of_different_lengths_make_no_array(roberta):
    with pytest.raises(ValueError, match="different lengths .* pass padding=True"):
        roberta(["a", "a b c"], return_tensors="np")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"return_tensors": "tf"}, "return_tensors must be .*, not 'tf'"),
        ({"truncation": "longest"}, "truncation must be .*, not 'longest'"),
        ({"padding": "shortest"}, "padding must be .*, not 'shortest'"),
        ({"pad_to_multiple_of": 0}, "pad_to_multiple_of must be .*, not 0"),
        (
            {"padding": True, "truncation": True, "max_length": 10, "pad_to_multiple_of": 4},
            "max_length=10 .* multiple of pad_to_multiple_of=4",
        ),
        ({"truncation": "only_second", "max_length": 3}, "needs a pair"),
    ],
)
def test_call_refuses_bad_options(roberta, options, message):
    with pytest.raises(ValueError, match=message):
        roberta("a b c d", **options)


def test_call_refuses_mismatched_inputs(roberta):
    with pytest.raises(TypeError, match="text must be a str or a list of str, not int"):
        roberta(3)
    with pytest.raises(TypeError, match="text_pair must be a list"):
        roberta(["a"], "b")
    with pytest.raises(ValueError, match="2 texts but 1 text_pair"):
        roberta(["a", "b"], ["c"])


def test_torch_is_imported_only_for_pt():
    code = (
        "import sys\n"
        "from bbpe import Tokenizer\n"
        "tok = Tokenizer.from_pretrained('roberta-base')\n"
        "tok(['a', 'b c'], padding=True, truncation=True, return_tensors='np')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.trainers
def test_pt_gives_torch_tensors_or_says_torch_is_missing(roberta, hf_fast):
    try:
        import torch
    except ImportError:
        with pytest.raises(ImportError, match='return_tensors="pt" needs PyTorch'):
            roberta(["a"], return_tensors="pt")
        pytest.skip("torch is not installed: only its absence was checked")
    options = dict(padding=True, return_tensors="pt", **ALL_OUTPUTS)
    ours = roberta(["a b", "c"], **options)
    assert all(isinstance(value, torch.Tensor) for value in ours.values())
    assert_same(ours, hf_fast(["a b", "c"], **options))


@pytest.mark.trainers
def test_arrow_gives_list_arrays_or_says_pyarrow_is_missing(roberta):
    try:
        import pyarrow as pa
    except ImportError:
        with pytest.raises(ImportError, match='return_tensors="arrow" needs pyarrow'):
            roberta(["a"], return_tensors="arrow")
        pytest.skip("pyarrow is not installed: only its absence was checked")
    texts = ["a b", "c", "<mask> d e f"]
    ours = roberta(texts, return_tensors="arrow", **ALL_OUTPUTS)
    lists = roberta(texts, **ALL_OUTPUTS)
    assert all(isinstance(value, pa.ListArray) for value in ours.values())
    assert ours.input_ids.to_pylist() == lists.input_ids  # ragged rows stay ragged
    assert ours.offset_mapping.to_pylist() == [
        [list(s) for s in row] for row in lists.offset_mapping
    ]
    assert np.asarray(ours.attention_mask.flatten()).dtype == np.int64


def test_model_max_length_survives_pickling(roberta):
    """A data loader's workers get the tokenizer by pickle: a changed
    model_max_length must reach them."""
    import pickle

    unnamed = Tokenizer.from_pretrained("roberta-base")
    unnamed.add_prefix_space = True  # no longer the bundled one: pickled as its JSON
    for tok in (Tokenizer.from_pretrained("roberta-base"), unnamed):
        tok.model_max_length = 128
        assert pickle.loads(pickle.dumps(tok)).model_max_length == 128


@pytest.mark.trainers
@pytest.mark.parametrize("name", ["roberta-base", "gpt2"])
def test_arrow_rows_come_from_the_flat_ids_as_the_lists_do(name):
    pytest.importorskip("pyarrow")
    tok = Tokenizer.from_pretrained(name)
    texts = [t for t in sample.sample_texts()[:60] if t] + ["", "<mask> a", "x " * 700]
    pairs = list(reversed(texts))
    columns = dict(return_token_type_ids=True, return_special_tokens_mask=True)
    cases = [
        dict(),
        dict(truncation=True, max_length=64),
        dict(text_pair=pairs, truncation=True, max_length=64),
        dict(text_pair=pairs, truncation="only_first", max_length=300),
        dict(text_pair=pairs, add_special_tokens=False),
    ]
    for case in cases:
        if case.get("truncation") == "only_first":
            case = {**case, "text_pair": [p[:20] for p in pairs]}
        try:
            lists = tok(texts, **columns, **case)
        except ValueError as error:  # refused the same way by both paths
            with pytest.raises(ValueError, match=str(error)[:40]):
                tok(texts, return_tensors="arrow", **columns, **case)
            continue
        arrow = tok(texts, return_tensors="arrow", **columns, **case)
        assert list(arrow) == list(lists)
        for key, rows in lists.items():
            assert arrow[key].to_pylist() == rows, (case, key)
