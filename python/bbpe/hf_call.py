"""``Tokenizer.__call__`` shaped like transformers' tokenizer call, so that code
written for ``RobertaTokenizerFast`` runs unchanged in the common cases: the
options are resolved as transformers resolves them, and the result is a
:class:`BatchEncoding` of lists or of NumPy, PyTorch or Arrow arrays.

Encoding is the tokenizer's (Rust batch encoding for the ids); this module only
cuts, wraps and pads the rows and builds the masks beside them.
"""

from __future__ import annotations

from numbers import Integral
from typing import TYPE_CHECKING

from bbpe.tokenizer import _check_shaping, _kept_lengths

if TYPE_CHECKING:
    from bbpe.tokenizer import Tokenizer

TENSOR_TYPES = (None, "np", "pt", "arrow")
NO_SPAN = (0, 0)
# What padding appends to each column, as transformers pads it.
PAD_VALUES = {"token_type_ids": 0, "attention_mask": 0, "special_tokens_mask": 1}


class BatchEncoding(dict):
    """The model's inputs by name (``input_ids``, ``attention_mask``, ...), also
    readable as attributes (``enc.input_ids``), as transformers' BatchEncoding."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"this encoding has no {name!r} (it has {list(self)})") from None


def call(
    tok: Tokenizer,
    text,
    text_pair,
    *,
    add_special_tokens: bool,
    padding,
    truncation,
    max_length,
    pad_to_multiple_of,
    return_tensors,
    return_token_type_ids,
    return_attention_mask,
    return_special_tokens_mask: bool,
    return_offsets_mapping: bool,
) -> BatchEncoding:
    """:meth:`Tokenizer.__call__`; see there."""
    batched = isinstance(text, (list, tuple))
    texts, pairs = _inputs(text, text_pair, batched)
    padding, truncation, max_length = _resolve(
        tok, padding, truncation, max_length, pad_to_multiple_of
    )
    if return_tensors not in TENSOR_TYPES:
        raise ValueError(
            f"return_tensors must be None, 'np', 'pt' or 'arrow', not {return_tensors!r}"
        )
    templated = add_special_tokens and tok.has_roberta_template
    if return_tensors == "arrow" and not padding and not return_offsets_mapping:
        names = ["input_ids"]
        names += ["token_type_ids"] if return_token_type_ids else []
        names += ["attention_mask"] if return_attention_mask is not False else []
        names += ["special_tokens_mask"] if return_special_tokens_mask else []
        return _flat_arrow(tok, texts, pairs, names, templated, max_length, truncation)
    firsts, seconds = _segments(tok, texts, pairs, return_offsets_mapping)

    columns: dict[str, list] = {"input_ids": []}
    if return_token_type_ids:
        columns["token_type_ids"] = []
    if return_attention_mask is not False:
        columns["attention_mask"] = []
    if return_special_tokens_mask:
        columns["special_tokens_mask"] = []
    if return_offsets_mapping:
        columns["offset_mapping"] = []
    pair_texts = pairs or [None] * len(texts)
    for text_a, text_b, (first, first_spans), (second, second_spans) in zip(
        texts, pair_texts, firsts, seconds, strict=True
    ):
        first, second = tok._truncated(first, second, add_special_tokens, max_length, truncation)
        ids = tok._template(first, second) if templated else _joined(first, second)
        columns["input_ids"].append(ids)
        if return_token_type_ids:
            columns["token_type_ids"].append([0] * len(ids))  # RoBERTa's are all 0, pairs too
        if return_attention_mask is not False:
            columns["attention_mask"].append([1] * len(ids))
        if return_special_tokens_mask:
            plain_b = None if second is None else [0] * len(second)
            columns["special_tokens_mask"].append(_wrap([0] * len(first), plain_b, 1, templated))
        if return_offsets_mapping:  # trimmed once cut: only the kept tokens' spans
            spans_a = tok._trimmed_spans(text_a, first, first_spans[: len(first)])
            spans_b = (
                None
                if second is None
                else tok._trimmed_spans(text_b, second, second_spans[: len(second)])
            )
            columns["offset_mapping"].append(_wrap(spans_a, spans_b, NO_SPAN, templated))
    if padding:
        _pad_columns(tok, columns, padding, max_length, pad_to_multiple_of)
    return BatchEncoding(
        (name, _as_tensors(name, rows, return_tensors, batched)) for name, rows in columns.items()
    )


def _inputs(text, text_pair, batched: bool) -> tuple[list[str], list[str] | None]:
    """Texts and pairs as lists, checked: one str, or a list (tuple) of them."""
    if not batched:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str or a list of str, not {type(text).__name__}")
        if text_pair is not None and not isinstance(text_pair, str):
            raise TypeError(f"text_pair must be a str for one text, not {type(text_pair).__name__}")
        return [text], None if text_pair is None else [text_pair]
    if text_pair is None:
        return list(text), None
    if not isinstance(text_pair, (list, tuple)):
        raise TypeError(
            f"text_pair must be a list of str for a list of texts, not {type(text_pair).__name__}"
        )
    if len(text_pair) != len(text):
        raise ValueError(f"{len(text)} texts but {len(text_pair)} text_pair entries")
    return list(text), list(text_pair)


def _resolve(tok: Tokenizer, padding, truncation, max_length, pad_to_multiple_of):
    """(padding, truncation, max_length) in the tokenizer's own terms, by
    transformers' rules: a ``max_length`` alone truncates, ``padding=True``
    pads to the longest row, a missing ``max_length`` is ``model_max_length``."""
    if max_length is not None and padding is False and truncation is None:
        truncation = True
    if padding is True:
        padding = "longest"
    elif isinstance(padding, str) and padding == "do_not_pad":
        padding = False
    if truncation is None or (isinstance(truncation, str) and truncation == "do_not_truncate"):
        truncation = False
    if max_length is None and (truncation is not False or padding == "max_length"):
        max_length = tok.model_max_length
        if max_length is None:
            raise ValueError(
                "truncation or padding='max_length' needs max_length: this tokenizer has no "
                "model_max_length (set tok.model_max_length or pass max_length)"
            )
    _check_shaping(max_length, truncation, padding)
    if pad_to_multiple_of is not None and (
        isinstance(pad_to_multiple_of, bool)
        or not isinstance(pad_to_multiple_of, Integral)
        or pad_to_multiple_of < 1
    ):
        raise ValueError(
            f"pad_to_multiple_of must be a positive int or None, not {pad_to_multiple_of!r}"
        )
    if truncation and padding and pad_to_multiple_of and max_length % pad_to_multiple_of:
        raise ValueError(
            f"truncation to max_length={max_length} with padding needs max_length to be a "
            f"multiple of pad_to_multiple_of={pad_to_multiple_of}"
        )
    return padding, truncation, max_length


def _segments(tok: Tokenizer, texts: list[str], pairs: list[str] | None, with_spans: bool):
    """(ids, spans) of each text and of each pair (``(None, None)`` without
    pairs); spans are None unless asked for, and then come text by text,
    untrimmed (trimming is per token in Python: done on what truncation keeps)."""
    if with_spans:

        def encode(values):
            return [
                tok.encode_with_offsets(t, add_special_tokens=False, trim_offsets=False)
                for t in values
            ]

    else:

        def encode(values):
            return [(ids, None) for ids in tok.encode_batch(values, add_special_tokens=False)]

    firsts = encode(texts)
    seconds = [(None, None)] * len(texts) if pairs is None else encode(pairs)
    return firsts, seconds


def _joined(first: list[int], second: list[int] | None) -> list[int]:
    return first if second is None else first + second


def _wrap(first: list, second: list | None, fill, templated: bool) -> list:
    """A column laid out as RoBERTa's template lays out ids, ``fill`` standing
    for each template token."""
    if not templated:
        return _joined(first, second)
    if second is None:
        return [fill, *first, fill]
    return [fill, *first, fill, fill, *second, fill]


def _pad_columns(tok: Tokenizer, columns: dict[str, list], padding, max_length, multiple):
    """Pads every row of every column to the longest row (or ``max_length``),
    rounded up to ``multiple``; longer rows (not truncated) stay as they are."""
    pad_id = tok.pad_token_id
    if pad_id is None:
        raise ValueError("this vocabulary has no <pad> token to pad with")
    rows = columns["input_ids"]
    length = max_length if padding == "max_length" else max(map(len, rows), default=0)
    if multiple and length % multiple:
        length += multiple - length % multiple
    values = {**PAD_VALUES, "input_ids": pad_id, "offset_mapping": NO_SPAN}
    for name, column in columns.items():
        for row in column:
            row.extend([values[name]] * (length - len(row)))


def _as_tensors(name: str, rows: list[list], return_tensors, batched: bool):
    """One column as transformers returns it: lists (one text: one row, not a
    batch of one), or a batch of arrays of the kind asked for."""
    if return_tensors is None:
        return rows if batched else rows[0]
    if return_tensors == "arrow":
        return _arrow(name, rows)
    array = _numpy(name, rows)
    if return_tensors == "np":
        return array
    try:
        import torch
    except ImportError:
        raise ImportError(
            'return_tensors="pt" needs PyTorch, which is not installed; '
            'use return_tensors="np" or install torch'
        ) from None
    return torch.from_numpy(array)


def _numpy(name: str, rows: list[list]):
    import numpy as np

    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        raise ValueError(
            f"the {name} rows have different lengths ({min(lengths)} to {max(lengths)}), so they "
            "cannot be one array: pass padding=True (and truncation=True for texts longer "
            "than max_length)"
        )
    shape = (len(rows), lengths.pop() if lengths else 0)
    if name == "offset_mapping":
        shape += (2,)
    return np.array(rows, dtype=np.int64).reshape(shape)


def _pyarrow():
    try:
        import pyarrow as pa
    except ImportError:
        raise ImportError(
            'return_tensors="arrow" needs pyarrow, which is not installed; '
            'use return_tensors="np" or install pyarrow'
        ) from None
    return pa


def _arrow(name: str, rows: list[list]):
    pa = _pyarrow()
    item = pa.list_(pa.int64(), 2) if name == "offset_mapping" else pa.int64()
    return pa.array(rows, type=pa.list_(item))


def _flat_arrow(tok: Tokenizer, texts, pairs, names, templated, max_length, truncation):
    """The Arrow columns straight from the core's flat ids, without a Python
    object per token: rows are cut by per-row lengths (HF's rule, as for lists)
    and wrapped in the template by NumPy index arithmetic. (Padded or offset
    columns take the list path.)"""
    import numpy as np

    pa = _pyarrow()
    segments = [tok.encode_batch_flat(texts, allowed_special="all")]
    if pairs is not None:
        segments.append(tok.encode_batch_flat(pairs, allowed_special="all"))
    lengths = [np.diff(offsets) for _, offsets in segments]
    kept = [length.copy() for length in lengths]
    if truncation:
        specials = (4 if pairs is not None else 2) if templated else 0
        budget = max_length - specials
        if budget < 0:
            raise ValueError(
                f"max_length={max_length} leaves no room: the template adds {specials} tokens"
            )
        b_lengths = lengths[1].tolist() if pairs is not None else [None] * len(texts)
        for row, (a, b) in enumerate(zip(lengths[0].tolist(), b_lengths, strict=True)):
            kept_a, kept_b = _kept_lengths(a, b, budget, truncation)
            kept[0][row] = kept_a
            if pairs is not None:
                kept[1][row] = kept_b
    # Each row: [bos] A [eos] ([eos] B [eos]) with the template, A (B) without.
    before = [1, 2] if templated else [0, 0]  # template tokens before A, and between A and B
    after = 1 if templated else 0
    row_lengths = sum(kept) + before[0] + after + (before[1] if pairs is not None else 0)
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(row_lengths, out=starts[1:])
    ids = np.empty(int(starts[-1]), dtype=np.int64)
    special = np.ones(len(ids), dtype=np.int64)
    at = starts[:-1] + before[0]
    for k, (flat, offsets) in enumerate(segments):
        if k == 1:
            at = at + before[1]
        _gather(ids, special, at, flat, offsets[:-1], kept[k])
        at = at + kept[k]
    if templated:
        template = np.flatnonzero(special)
        ids[template] = tok.eos_token_id
        ids[starts[:-1]] = tok.bos_token_id
    columns = {
        "input_ids": ids,
        "token_type_ids": np.zeros(len(ids), dtype=np.int64),
        "attention_mask": np.ones(len(ids), dtype=np.int64),
        "special_tokens_mask": special,
    }
    list_array = pa.LargeListArray if starts[-1] > 2**31 - 1 else pa.ListArray
    offsets = pa.array(starts if list_array is pa.LargeListArray else starts.astype(np.int32))
    return BatchEncoding(
        (name, list_array.from_arrays(offsets, pa.array(columns[name]))) for name in names
    )


def _gather(out, special, at, flat, sources, counts) -> None:
    """Copies ``counts[r]`` ids of ``flat`` from ``sources[r]`` to ``at[r]`` in
    ``out`` for every row r at once, marking them as not special."""
    import numpy as np

    total = int(counts.sum())
    row = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    out[at[row] + within] = flat[sources[row] + within]
    special[at[row] + within] = 0
