"""The transformers face: pair truncation by Hugging Face's exact rule, and
``Tokenizer.__call__`` against ``transformers.RobertaTokenizerFast``, both
built offline from the bundled roberta-base files."""

import pytest

from bbpe import Tokenizer
from conftest import build_hf_byte_level

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
