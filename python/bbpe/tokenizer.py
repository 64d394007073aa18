"""The public tokenizer: a thin Python layer over the Rust core (`bbpe._core`).

The core does all per-token work with the GIL released; this module turns
options into core calls and shapes the results (lists or NumPy arrays).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from importlib import resources
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bbpe import tiktoken_encodings, transformers_files
from bbpe._core import CoreTokenizer
from bbpe._publish import write_durably

if TYPE_CHECKING:  # NumPy is imported where arrays are made, so that loading is quick
    import numpy as np

    from bbpe.hf_call import BatchEncoding

    Ids = Sequence[int] | np.ndarray

PRETRAINED = ("gpt2", "roberta-base")

AllowedSpecial = Literal["all", "none"] | Iterable[str]
Padding = bool | Literal["longest", "max_length"]
TRUNCATIONS = ("longest_first", "only_first", "only_second")
Truncation = bool | Literal["longest_first", "only_first", "only_second"]


def _pretrained_dir(name: str) -> Path:
    return Path(str(resources.files("bbpe") / "vocabularies" / name))


def _without_surrogates(text: str) -> str:
    """Lone surrogates cannot be UTF-8: replace them with U+FFFD, as tiktoken does."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _utf8_safe(call, texts, name):
    """Run `call(texts)`, retrying with lone surrogates replaced if the core
    refuses them. `texts` is one string or a list of them."""
    try:
        return call(texts)
    except UnicodeEncodeError:
        if isinstance(texts, str):
            return call(_without_surrogates(texts))
        return call([_without_surrogates(t) for t in texts])
    except TypeError:
        _check_strings(texts, name)
        raise


def _check_strings(texts, name):
    """Names the first value of `texts` (one value or a list) that is not a
    string, by `name` and its position: the core's message does not say."""
    items = enumerate(texts) if isinstance(texts, list) else [(None, texts)]
    for i, text in items:
        if not isinstance(text, str):
            where = name if i is None else f"{name}[{i}]"
            raise TypeError(f"{where} is {type(text).__name__}, not str") from None


def _text_list(texts, name: str) -> list:
    """`texts` as a list; one string is refused rather than taken for a
    sequence of one-character texts."""
    if isinstance(texts, (str, bytes, bytearray)):
        raise TypeError(
            f"{name} must be a list of strings, not a single {type(texts).__name__}; "
            f"wrap one text as [text]"
        )
    return list(texts)


def _id_lists(batch) -> list[list[int]]:
    """`batch` as lists of ids; a flat sequence of ids (or a string) is refused
    rather than read as many one-token sequences."""
    rows = None if isinstance(batch, (str, bytes, bytearray)) else list(batch)
    if rows is None or any(isinstance(row, (int, str, bytes)) or _is_scalar(row) for row in rows):
        raise TypeError(
            "batch must be a list of id sequences (a 2-D array or lists of ids), "
            "not one sequence; decode() takes one"
        )
    return [_id_list(row) for row in rows]


def _is_scalar(value) -> bool:
    """A NumPy scalar or 0-d array (what iterating a 1-D array gives)."""
    return getattr(value, "ndim", None) == 0


def _check_shaping(max_length, truncation, padding) -> None:
    """Refuse values of the shaping options that would be ignored or misread."""
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, Integral) or max_length < 1
    ):
        raise ValueError(f"max_length must be a positive int or None, not {max_length!r}")
    if not (isinstance(truncation, bool) or truncation in TRUNCATIONS):
        raise ValueError(
            "truncation must be True, False, 'longest_first', 'only_first' or "
            f"'only_second', not {truncation!r}"
        )
    if not (isinstance(padding, bool) or padding in ("longest", "max_length")):
        raise ValueError(f"padding must be False, True, 'longest' or 'max_length', not {padding!r}")
    if padding == "max_length" and max_length is None:
        raise ValueError('padding="max_length" needs max_length')
    if truncation is not False and max_length is None:
        raise ValueError("truncation needs max_length")


def _id_list(ids: Ids) -> list[int]:
    return ids.tolist() if hasattr(ids, "tolist") else list(ids)


def _checked_ids(call, *id_lists: list[int]):
    """Run `call`; ids the core cannot even take (negative, too large, not
    integers) are reported like ids it does not know: the check costs nothing
    unless something is wrong."""
    try:
        return call()
    except (OverflowError, TypeError):
        import numpy as np

        for ids in id_lists:
            for value in ids:
                if not isinstance(value, (int, np.integer)) or not 0 <= value < 2**32:
                    raise ValueError(f"token id {value!r} is not in the vocabulary") from None
        raise


class Tokenizer:
    """Byte-level BPE tokenizer with GPT-2's pre-tokenizer and RoBERTa's templates.

    Load one with :meth:`from_pretrained` (``"gpt2"``, ``"roberta-base"``, or a
    directory), :meth:`from_files` (vocab.json + merges.txt), :meth:`from_file`
    (Hugging Face tokenizer.json) or :meth:`from_tiktoken`.
    """

    def __init__(self, core: CoreTokenizer, *, name: str | None = None):
        self._core = core
        self._name = name
        self._special_tokens = dict(core.special_tokens())
        self._allowed_cache: dict[frozenset, list[int]] = {}
        # The longest input the model takes, what ``__call__`` truncates and
        # pads to when no ``max_length`` is given, as in transformers: 512 for
        # RoBERTa's template, 1024 for GPT-2's vocabulary, else unknown (None).
        self.model_max_length: int | None = (
            512 if self.has_roberta_template else 1024 if name == "gpt2" else None
        )

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike) -> Tokenizer:
        """A bundled vocabulary (``"gpt2"``, ``"roberta-base"``) or a directory
        holding ``tokenizer.json`` or ``vocab.json`` + ``merges.txt``."""
        name = str(name_or_path)
        if name in PRETRAINED:
            directory = _pretrained_dir(name)
            core = CoreTokenizer.from_gpt2_files(
                str(directory / "vocab.json"), str(directory / "merges.txt")
            )
            return cls(core, name=name)
        directory = Path(name)
        if (directory / "tokenizer.json").is_file():
            return cls.from_file(directory / "tokenizer.json")
        if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
            return cls.from_files(directory / "vocab.json", directory / "merges.txt")
        raise FileNotFoundError(
            f"{name!r} is neither a bundled vocabulary {PRETRAINED} nor a directory "
            "with tokenizer.json or vocab.json + merges.txt"
        )

    @classmethod
    def train_from_iterator(cls, texts: Iterable[str], **settings) -> Tokenizer:
        """Trains a vocabulary on an iterable of strings (or of lists of
        strings); the settings are :func:`bbpe.train`'s."""
        from bbpe.trainer import train  # the trainer builds Tokenizers: import late

        return train(texts=texts, **settings)

    @classmethod
    def from_files(
        cls,
        vocab: str | os.PathLike,
        merges: str | os.PathLike,
        special_tokens: Iterable[str] | None = None,
    ) -> Tokenizer:
        """GPT-2 style vocab.json + merges.txt. ``special_tokens`` defaults to
        whichever of RoBERTa's and GPT-2's specials vocab.json contains."""
        specials = None if special_tokens is None else list(special_tokens)
        return cls(CoreTokenizer.from_gpt2_files(os.fspath(vocab), os.fspath(merges), specials))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Tokenizer:
        """A Hugging Face tokenizer.json with a byte-level BPE model."""
        return cls(CoreTokenizer.from_hf_json(os.fspath(path)))

    @classmethod
    def from_tiktoken(
        cls,
        path: str | os.PathLike,
        special_tokens: dict[str, int] | None = None,
        *,
        pattern: str | None = None,
        encoding: str | None = None,
    ) -> Tokenizer:
        """A tiktoken rank file (``base64-token rank`` per line). The file does
        not record its split pattern: give ``pattern``, or ``encoding`` (one of
        OpenAI's: ``gpt2``, ``r50k_base``, ``p50k_base``, ``cl100k_base``,
        ``o200k_base``; also read from a file named after one, e.g.
        ``cl100k_base.tiktoken``), unless bbpe wrote the file (its pattern and
        special tokens are saved beside it). ``special_tokens`` default to the
        encoding's."""
        found = tiktoken_encodings.resolve(path, pattern, encoding, special_tokens)
        specials = list(found.special_tokens.items())
        return cls(CoreTokenizer.from_tiktoken(os.fspath(path), specials, found.pattern))

    # -------------------------------------------------------------- properties
    @property
    def vocab_size(self) -> int:
        return self._core.vocab_size

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._special_tokens)

    @property
    def pattern(self) -> str:
        return self._core.pattern

    @property
    def add_prefix_space(self) -> bool:
        return self._core.add_prefix_space

    @add_prefix_space.setter
    def add_prefix_space(self, value: bool) -> None:
        if value != self._core.add_prefix_space:
            self._core = self._core.with_prefix_space(bool(value))
            self._name = None

    @property
    def bos_token_id(self) -> int | None:
        return self._special_tokens.get("<s>")

    @property
    def eos_token_id(self) -> int | None:
        """The token that ends a document: ``</s>``, else ``<|endoftext|>``
        (the one ``bbpe.shards.write(append_eos=True)`` appends)."""
        return self._core.end_of_document_id

    @property
    def pad_token_id(self) -> int | None:
        return self._special_tokens.get("<pad>")

    @property
    def mask_token_id(self) -> int | None:
        return self._special_tokens.get("<mask>")

    def word_boundaries(self) -> tuple[np.ndarray, np.ndarray]:
        """Two bool arrays over the ids: whether a token starts a word (its bytes
        begin with a space or hold a newline) and whether it ends one (holds a
        newline); special tokens are neither. Whole-word masking reads them."""
        import numpy as np

        starts, ends = self._core.word_boundaries()
        return np.frombuffer(starts, dtype=bool), np.frombuffer(ends, dtype=bool)

    @property
    def has_roberta_template(self) -> bool:
        """Whether ``add_special_tokens`` wraps inputs as ``<s> A </s></s> B </s>``:
        as a tokenizer.json's post-processor says, else when the vocabulary has
        ``<s>`` and ``</s>``."""
        return self._core.roberta_template

    def token_to_id(self, token: str) -> int | None:
        """Id of a token spelled in the byte alphabet (``"Ġthe"``) or of a special token."""
        return self._core.token_to_id(token)

    def id_to_token(self, id: int) -> str | None:
        """The token spelled in the byte alphabet (``"Ġthe"``); None if no such id."""
        return self._core.id_to_token(id) if 0 <= id < 2**32 else None

    def get_vocab(self) -> dict[str, int]:
        """Token string (byte alphabet; special tokens as written) -> id."""
        return dict(self._core.get_vocab())

    # ---------------------------------------------------------------- encoding
    def _allowed(self, allowed_special: AllowedSpecial) -> list[int] | None:
        """Core form of `allowed_special`: None for all, a list of ids otherwise."""
        if allowed_special == "all":
            return None
        if allowed_special == "none":
            return []
        key = frozenset(allowed_special)
        if key not in self._allowed_cache:
            unknown = sorted(t for t in key if t not in self._special_tokens)
            if unknown:
                raise ValueError(
                    f"{unknown} are not special tokens of this vocabulary "
                    f"(it has {sorted(self._special_tokens)})"
                )
            self._allowed_cache[key] = sorted(self._special_tokens[t] for t in key)
        return self._allowed_cache[key]

    def _around(self, add_special_tokens: bool) -> tuple[int, int] | None:
        """The ids RoBERTa's template puts around a single text's, which the
        core writes into the text's list as it makes it (no second list)."""
        if not (add_special_tokens and self.has_roberta_template):
            return None
        return self._special_tokens["<s>"], self._special_tokens["</s>"]

    def _template(self, first: list[int], second: list[int] | None) -> list[int]:
        if not self.has_roberta_template:
            return first if second is None else first + second
        bos, eos = self._special_tokens["<s>"], self._special_tokens["</s>"]
        if second is None:
            return [bos, *first, eos]
        return [bos, *first, eos, eos, *second, eos]

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        if not self.has_roberta_template:
            return 0
        return 4 if pair else 2

    def _truncated(
        self,
        first: list[int],
        second: list[int] | None,
        add_special_tokens: bool,
        max_length: int | None,
        truncation: Truncation,
    ) -> tuple[list[int], list[int] | None]:
        """The segments cut so that they and the template fit ``max_length``."""
        if not truncation:
            return first, second
        extra = self.num_special_tokens_to_add(second is not None) if add_special_tokens else 0
        budget = max_length - extra
        if budget < 0:
            raise ValueError(
                f"max_length={max_length} leaves no room: the template adds {extra} tokens"
            )
        return _truncate(first, second, budget, truncation)

    def _finish(
        self,
        first: list[int],
        second: list[int] | None,
        add_special_tokens: bool,
        max_length: int | None,
        truncation: Truncation,
    ) -> list[int]:
        first, second = self._truncated(first, second, add_special_tokens, max_length, truncation)
        if add_special_tokens:
            return self._template(first, second)
        return first if second is None else first + second

    def _pad(self, rows: list[list[int]], padding: Padding, max_length: int | None) -> int | None:
        """Pads rows in place; returns the common length, or None without padding
        (or when rows longer than ``max_length`` were not truncated)."""
        if padding is False:
            return None
        longest = max((len(r) for r in rows), default=0)
        length = max_length if padding == "max_length" else longest
        pad = self.pad_token_id
        if pad is None:
            raise ValueError("this vocabulary has no <pad> token to pad with")
        for row in rows:
            row.extend([pad] * (length - len(row)))
        return length if longest <= length else None

    def encode(
        self,
        text: str,
        pair: str | None = None,
        *,
        add_special_tokens: bool = True,
        allowed_special: AllowedSpecial = "all",
        max_length: int | None = None,
        truncation: Truncation = False,
        padding: Padding = False,
        return_numpy: bool = False,
    ) -> list[int] | np.ndarray:
        """Token ids of ``text`` (and ``pair``), with RoBERTa's template when
        ``add_special_tokens`` and the vocabulary has ``<s>``/``</s>``.

        ``allowed_special`` chooses which special tokens written in the text
        (``"<mask>"``) become their ids: ``"all"``, ``"none"`` or a set of
        them; the others are encoded as plain text. ``truncation`` (``True``
        or ``"longest_first"``: the longer of text and pair loses tokens;
        ``"only_first"``, ``"only_second"``: only that one; segments are cut
        exactly as in Hugging Face) and ``padding="max_length"`` need a
        positive ``max_length``; other values of these options are refused,
        not ignored.
        """
        _check_shaping(max_length, truncation, padding)
        allowed = self._allowed(allowed_special)
        if pair is None and not truncation:
            around = self._around(add_special_tokens)
            ids = _utf8_safe(lambda t: self._core.encode(t, allowed, around), text, "text")
        else:
            first = _utf8_safe(lambda t: self._core.encode(t, allowed), text, "text")
            second = (
                None
                if pair is None
                else _utf8_safe(lambda t: self._core.encode(t, allowed), pair, "pair")
            )
            ids = self._finish(first, second, add_special_tokens, max_length, truncation)
        self._pad([ids], padding, max_length)
        if not return_numpy:
            return ids
        import numpy as np

        return np.asarray(ids, dtype=np.int64)

    def encode_batch(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        allowed_special: AllowedSpecial = "all",
        max_length: int | None = None,
        truncation: Truncation = False,
        padding: Padding = False,
        return_numpy: bool = False,
        threads: int | None = None,
    ) -> list[list[int]] | list[np.ndarray] | np.ndarray:
        """Encodes many texts on all cores (or ``threads``) with the GIL released.

        Returns lists; with ``return_numpy`` a 2-D int64 array when padded, else
        a list of 1-D arrays. Results do not depend on the number of threads.
        Lists of ids come untracked by the cyclic garbage collector (lists of
        ints cannot form cycles), so collections do not walk them.
        """
        texts = _text_list(texts, "texts")
        _check_shaping(max_length, truncation, padding)
        allowed = self._allowed(allowed_special)
        n_threads = core_threads(threads)
        # Single texts, whole: the core makes each list with its template.
        whole = pairs is None and not truncation
        around = self._around(add_special_tokens) if whole else None

        def run(batch):
            return self._core.encode_batch(batch, allowed, n_threads, around)

        firsts = _utf8_safe(run, texts, "texts")
        if pairs is None:
            seconds: list[list[int] | None] = [None] * len(firsts)
        else:
            pairs = _text_list(pairs, "pairs")
            if len(pairs) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
            seconds = _utf8_safe(run, pairs, "pairs")
        rows = (
            firsts
            if whole
            else [
                self._finish(a, b, add_special_tokens, max_length, truncation)
                for a, b in zip(firsts, seconds, strict=True)
            ]
        )
        length = self._pad(rows, padding, max_length)
        if not return_numpy:
            return rows
        import numpy as np

        if padding is False:
            return [np.asarray(r, dtype=np.int64) for r in rows]
        if length is None:
            i = next(i for i, r in enumerate(rows) if len(r) > max_length)
            raise ValueError(
                f"texts[{i}] has {len(rows[i])} tokens, more than max_length={max_length}, "
                "so the rows cannot be one array; pass truncation=True"
            )
        return np.array(rows, dtype=np.int64).reshape(len(rows), length)

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | Literal["longest", "max_length", "do_not_pad"] = False,
        truncation: Truncation | Literal["do_not_truncate"] | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_tensors: Literal["np", "pt", "arrow"] | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
    ) -> BatchEncoding:
        """Encodes like transformers' tokenizer call (``RobertaTokenizerFast``):
        ``tok(texts, truncation=True, padding=True, return_tensors="np")``.

        ``text`` is one string or a list of them (``text_pair`` alike); special
        tokens written in the text become their ids. Returns a dict, also read
        as attributes, of ``input_ids``, ``attention_mask`` and, when asked for,
        ``token_type_ids`` (all 0), ``special_tokens_mask`` (1 for template and
        padding tokens) and ``offset_mapping`` (character spans, ``(0, 0)`` for
        those). Options as in transformers: ``max_length`` defaults to
        :attr:`model_max_length` and alone turns truncation on; truncation cuts
        pairs exactly as Hugging Face does; ``padding=True`` pads to the longest
        row, ``"max_length"`` to ``max_length``, rounded up to
        ``pad_to_multiple_of``. ``return_tensors``: lists (None), int64 NumPy
        arrays (``"np"``), torch tensors (``"pt"``, importing torch only then)
        or Arrow list arrays (``"arrow"``, needs pyarrow); arrays have a batch
        axis even for one text, and NumPy and torch need rows of one length.
        """
        from bbpe.hf_call import call

        return call(
            self,
            text,
            text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
        )

    def encode_batch_flat(
        self,
        texts: Sequence[str],
        *,
        allowed_special: AllowedSpecial = "none",
        threads: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """All ids of all texts as one uint32 array, plus int64 offsets such that
        ``ids[offsets[i]:offsets[i+1]]`` are text ``i``'s ids (no template).
        No Python object is made per token: the fast path for corpora."""
        allowed = self._allowed(allowed_special)
        n_threads = core_threads(threads)
        return _utf8_safe(
            lambda batch: self._core.encode_batch_flat(batch, allowed, n_threads),
            _text_list(texts, "texts"),
            "texts",
        )

    def encode_with_offsets(
        self,
        text: str,
        pair: str | None = None,
        *,
        add_special_tokens: bool = True,
        allowed_special: AllowedSpecial = "all",
        trim_offsets: bool = True,
    ) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and, for each, its ``(start, end)`` character span in its text.

        Template tokens get ``(0, 0)``. A token holding part of a character
        spans the whole character. With ``trim_offsets`` (RoBERTa's setting,
        as in Hugging Face) spaces at either end of a token's span are left
        out, including those a special token like ``<mask>`` absorbed.
        """
        allowed = self._allowed(allowed_special)
        texts = [text] if pair is None else [text, pair]
        parts = []
        for name, t in zip(("text", "pair"), texts, strict=False):
            ids, spans = _utf8_safe(lambda s: self._core.encode_with_offsets(s, allowed), t, name)
            if trim_offsets:
                spans = self._trimmed_spans(t, ids, spans)
            parts.append((ids, spans))
        if not (add_special_tokens and self.has_roberta_template):
            return [i for p in parts for i in p[0]], [s for p in parts for s in p[1]]
        ids = self._template(parts[0][0], parts[1][0] if pair is not None else None)
        none = (0, 0)
        spans = [none, *parts[0][1], none]
        if pair is not None:
            spans += [none, *parts[1][1], none]
        return ids, spans

    def _trimmed_spans(
        self, text: str, ids: list[int], spans: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """`spans` of `ids` in `text` with the spaces at their ends left out."""
        special = set(self._special_tokens.values())
        return [
            _trim_span(text, s, any_space=i in special) for i, s in zip(ids, spans, strict=True)
        ]

    def tokenize(self, text: str, *, allowed_special: AllowedSpecial = "all") -> list[str]:
        """Token strings in GPT-2's byte alphabet (``['It', 'Ġwas', ...]``), no template."""
        ids = self.encode(text, add_special_tokens=False, allowed_special=allowed_special)
        return [self.id_to_token(i) for i in ids]

    def pretokenize(self, text: str) -> list[str]:
        """The pre-tokenizer's pieces of ``text``."""
        return _utf8_safe(self._core.pretokenize, text, "text")

    # ---------------------------------------------------------------- decoding
    def decode_bytes(self, ids: Ids, *, skip_special_tokens: bool = False) -> bytes:
        values = _id_list(ids)
        return _checked_ids(lambda: self._core.decode_bytes(values, skip_special_tokens), values)

    def decode(
        self,
        ids: Ids,
        *,
        skip_special_tokens: bool = False,
        errors: Literal["replace", "strict"] = "replace",
    ) -> str:
        """Text of ``ids``. Bytes that are not valid UTF-8 (a token sequence cut
        inside a character) become U+FFFD, or raise with ``errors="strict"``."""
        return self.decode_bytes(ids, skip_special_tokens=skip_special_tokens).decode(
            "utf-8", errors
        )

    def decode_batch(
        self,
        batch: Iterable[Ids],
        *,
        skip_special_tokens: bool = False,
        errors: Literal["replace", "strict"] = "replace",
        threads: int | None = None,
    ) -> list[str]:
        lists = _id_lists(batch)
        n_threads = core_threads(threads)
        raw = _checked_ids(
            lambda: self._core.decode_batch_bytes(lists, skip_special_tokens, n_threads), *lists
        )
        return [b.decode("utf-8", errors) for b in raw]

    # ------------------------------------------------------------------ saving
    def save(
        self,
        directory: str | os.PathLike,
        format: Literal["gpt2", "hf", "tiktoken"] = "gpt2",
    ) -> list[Path]:
        """Writes the vocabulary to ``directory``: ``gpt2`` (vocab.json +
        merges.txt), ``hf`` (what :meth:`save_pretrained` writes) or
        ``tiktoken`` (vocab.tiktoken, and its pattern and special tokens in
        vocab.tiktoken.json). Returns the paths written."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        if format == "gpt2":
            paths = [out / "vocab.json", out / "merges.txt"]
            self._core.save_gpt2(str(paths[0]), str(paths[1]))
        elif format == "hf":
            paths = self.save_pretrained(out)
        elif format == "tiktoken":
            rank_file = out / "vocab.tiktoken"
            self._core.save_tiktoken(str(rank_file))
            settings = tiktoken_encodings.write_settings(
                rank_file, self.pattern, self.special_tokens
            )
            paths = [rank_file, settings]
        else:
            raise ValueError(f"format must be 'gpt2', 'hf' or 'tiktoken', not {format!r}")
        return paths

    def save_pretrained(self, directory: str | os.PathLike) -> list[Path]:
        """Writes what ``transformers.AutoTokenizer.from_pretrained(directory)``
        needs for a fast tokenizer giving bbpe's ids, with no extra arguments:
        tokenizer.json, tokenizer_config.json (class, special tokens in their
        roles, ``model_max_length``, padding side), special_tokens_map.json,
        and vocab.json + merges.txt. Returns the paths written."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        text = self._core.to_hf_json()
        paths = [out / "tokenizer.json"]
        write_durably(paths[0], text)
        config = transformers_files.tokenizer_config(self._special_tokens, json.loads(text))
        paths += transformers_files.write(out, config)
        return paths + self.save(out, format="gpt2")

    def to_json(self) -> str:
        """The Hugging Face tokenizer.json text."""
        return self._core.to_hf_json()

    # ---------------------------------------------------------------- pickling
    def __reduce__(self):
        state = {"model_max_length": self.model_max_length}  # set on the new object by pickle
        if self._name is not None:
            return (Tokenizer.from_pretrained, (self._name,), state)
        return (_from_json_text, (self._core.to_hf_json(),), state)

    def __repr__(self) -> str:
        name = f"{self._name!r}, " if self._name else ""
        specials = sorted(self._special_tokens)
        return f"Tokenizer({name}vocab_size={self.vocab_size}, specials={specials})"


def _from_json_text(text: str) -> Tokenizer:
    return Tokenizer(CoreTokenizer.from_hf_json_text(text))


def core_threads(threads: int | None) -> int:
    """The core's thread count for a user's: 0 (every core) for None."""
    if threads is None:
        return 0
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    return threads


def _trim_span(text: str, span: tuple[int, int], any_space: bool) -> tuple[int, int]:
    """Leave spaces at either end out of a token's span, as Hugging Face's
    ByteLevel ``trim_offsets`` does: only ``" "`` for BPE tokens (a token of
    only spaces becomes empty), any whitespace a special token absorbed."""

    def is_space(c: str) -> bool:
        return c.isspace() if any_space else c == " "

    start, end = span
    while start < end and is_space(text[start]):
        start += 1
    while end > start and is_space(text[end - 1]):
        end -= 1
    return start, end


def _truncate(
    first: list[int], second: list[int] | None, budget: int, strategy: Truncation
) -> tuple[list[int], list[int] | None]:
    """Cut the segments to `budget` tokens together, exactly as Hugging Face's
    tokenizers does (`truncate_encodings`), so pairs line up with transformers."""
    a, b = _kept_lengths(len(first), None if second is None else len(second), budget, strategy)
    return first[:a], None if second is None else second[:b]


def _kept_lengths(a: int, b: int | None, budget: int, strategy: Truncation) -> tuple[int, int]:
    """How many tokens of segments of `a` and `b` tokens (`b` None without a
    pair) `_truncate` keeps to fit `budget`."""
    total = a + (b or 0)
    if total <= budget:
        return a, b or 0
    if budget == 0:  # HF empties every segment here, whatever the strategy
        return 0, 0
    if strategy in (True, "longest_first"):
        return (budget, 0) if b is None else _longest_first_lengths(a, b, budget)
    if strategy == "only_second" and b is None:
        raise ValueError("truncation='only_second' needs a pair: there is no second text")
    cut_first = strategy == "only_first"
    target = a if cut_first else b
    excess = total - budget
    if target <= excess:  # HF keeps at least one token of the segment it cuts
        which = "text" if cut_first else "pair"
        raise ValueError(
            f"truncation={strategy!r} cannot fit max_length: the {which} has "
            f"{target} tokens but {excess} must go; use truncation='longest_first'"
        )
    return (a - excess, b or 0) if cut_first else (a, b - excess)


def _longest_first_lengths(a: int, b: int, budget: int) -> tuple[int, int]:
    """How many tokens of segments of `a` and `b` tokens (more than `budget`
    together) Hugging Face keeps: the shorter stays whole if it takes at most
    half the budget; otherwise each gets half, the odd token going to the
    longer segment, to the second when they are equally long."""
    short = min(a, b)
    if 2 * short <= budget:
        kept_short, kept_long = short, budget - short
    else:
        kept_short, kept_long = budget // 2, budget - budget // 2
    return (kept_long, kept_short) if a > b else (kept_short, kept_long)
