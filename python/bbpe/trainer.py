"""Training a byte-level BPE vocabulary (the work is done by the Rust core).

>>> import bbpe
>>> tok = bbpe.train(texts=["a first document", "a second one"], vocab_size=300)  # doctest: +SKIP
>>> tok = bbpe.train("corpus/*.jsonl.zst", vocab_size=50_265)                    # doctest: +SKIP

Files and texts are separate arguments: a string is never taken for text or
for a path by looking at the file system, so a mistyped path is an error that
names it, not a one-document corpus.

With the same settings the merges equal Hugging Face's ``BpeTrainer`` with a
``ByteLevel`` pre-tokenizer and the full byte alphabet: special tokens take the
first ids, then the 256 bytes, then merged tokens in the order they are made.
One default differs: tokens are at most 128 bytes long (``BpeTrainer`` has no
limit unless given one; pass ``max_token_length=None`` for its merges).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from bbpe import _core
from bbpe.tokenizer import Tokenizer, core_threads

# The defaults are the core's, said once there (rust/formats, rust/train).
ROBERTA_SPECIALS: list[str] = list(_core.ROBERTA_SPECIALS)
GPT2_SPECIALS: list[str] = list(_core.GPT2_SPECIALS)
#: RoBERTa's vocabulary size.
DEFAULT_VOCAB_SIZE: int = _core.DEFAULT_VOCAB_SIZE
#: The longest token of GPT-2's and RoBERTa's vocabularies, in bytes: they were
#: trained without a limit, on web text. Longer tokens come from long runs of
#: one character (a million spaces make tokens of 2, 4, ... up to 512 KB), use
#: vocabulary slots no other text needs, and bloat every vocabulary file.
DEFAULT_MAX_TOKEN_LENGTH: int = _core.DEFAULT_MAX_TOKEN_LENGTH
#: Memory a distinct word takes at training's peak, with room to spare: 90
#: bytes were measured with 20M distinct words, 131 with 4M (the merge loop's
#: pair index included).
BYTES_PER_WORD = 160


def default_max_words() -> int | None:
    """The distinct words that fit in half of this machine's memory (or of the
    cgroup's limit, in a container) at ``BYTES_PER_WORD`` each; None where the
    memory is not known. Training past it keeps the most frequent words and
    reports what it dropped, instead of being killed for memory."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max") as limit:
            memory = min(memory, int(limit.read()))
    except (OSError, ValueError):  # no cgroup v2 limit ("max" or no file)
        pass
    return memory // 2 // BYTES_PER_WORD


#: A path, a glob or a directory, or several of them.
Files = str | os.PathLike | Iterable[str | os.PathLike]
#: Documents: strings, or lists of strings (a batch of documents per item).
Texts = Iterable[str] | Iterable[list[str]]
#: Called as ``progress(stage, done, total)``: stage ``"read"`` counts input
#: bytes (``total`` is None when unknown), stage ``"merge"`` counts merges.
ProgressCallback = Callable[[str, int, int | None], object]


@dataclass
class TrainingReport:
    """What a training run did."""

    documents: int
    text_bytes: int
    unique_words: int
    merges: int
    vocab_size: int
    count_seconds: float
    merge_seconds: float
    pruned_words: int = 0
    pruned_occurrences: int = 0
    files: int = 0
    skipped: int = 0
    first_skipped: str | None = None
    #: JSON lines whose lone surrogate escapes were read as U+FFFD.
    replaced_surrogates: int = 0
    #: The cap on distinct words this run had (None: none).
    max_words: int | None = None
    #: Documents held back from training (``holdout_every``), for evaluation.
    held_out: list[str] = field(default_factory=list, repr=False)


def _file_inputs(files: Files) -> list[str]:
    """``files`` as the core takes them: a list of paths, globs or directories
    (each must match something; the core's error names the one that does not)."""
    if isinstance(files, (str, os.PathLike)):
        return [os.fspath(files)]
    if isinstance(files, (bytes, bytearray)):
        raise TypeError("files must be a path or a list of paths, not bytes")
    inputs = list(files)
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(
                f"files must be paths (str or os.PathLike), not {type(item).__name__}: {item!r}"
            )
    if not inputs:
        raise ValueError("files is empty: name at least one file, glob or directory")
    return [os.fspath(item) for item in inputs]


def _texts_or_files(files, texts) -> None:
    """Checks that exactly one of the two inputs is given, and that texts are
    not a single string (which would be taken character by character)."""
    if (files is None) == (texts is None):
        raise TypeError(
            "pass either files (paths, globs or directories) or texts= (an iterable of strings)"
        )
    if isinstance(texts, (str, bytes, bytearray, os.PathLike)):
        raise TypeError(
            f"texts must be an iterable of strings, not a single {type(texts).__name__} "
            "(a list of one document is [text]; files are the first argument)"
        )


def _resolve_max_words(max_words: int | None | Literal["auto"]) -> int | None:
    return default_max_words() if max_words == "auto" else max_words


def train_with_report(
    files: Files | None = None,
    *,
    texts: Texts | None = None,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    min_frequency: int = 2,
    special_tokens: Iterable[str] = ROBERTA_SPECIALS,
    max_token_length: int | None = DEFAULT_MAX_TOKEN_LENGTH,
    pattern: str | None = None,
    max_words: int | None | Literal["auto"] = "auto",
    format: Literal["auto", "jsonl", "lines", "paragraphs"] = "auto",
    text_field: str = "text",
    on_bad_input: Literal["stop", "skip"] = "stop",
    holdout_every: int = 0,
    holdout_bytes: int = 4 << 20,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Tokenizer, TrainingReport]:
    """:func:`train`, also returning a :class:`TrainingReport`."""
    _texts_or_files(files, texts)
    if holdout_every < 0:
        raise ValueError(f"holdout_every must not be negative, not {holdout_every}")
    max_words = _resolve_max_words(max_words)
    settings = _core.TrainSettings(
        vocab_size,
        min_frequency,
        list(special_tokens),
        max_token_length,
        pattern,
        max_words,
        core_threads(threads),
    )
    holdout = (holdout_every, holdout_bytes)
    if files is not None:
        read = _core.ReadOptions(format=format, text_field=text_field, on_bad_input=on_bad_input)
        core, summary, held = _core.train_files(
            _file_inputs(files), settings, read, holdout=holdout, progress=progress
        )
    else:
        core, summary, held = _core.train_texts(texts, settings, holdout, progress)
    return Tokenizer(core), TrainingReport(**summary, max_words=max_words, held_out=held)


def train(files: Files | None = None, *, texts: Texts | None = None, **settings) -> Tokenizer:
    """Trains a byte-level BPE vocabulary and returns a ready :class:`Tokenizer`.

    Give one of ``files`` — a path, a glob (``"data/*.jsonl.zst"``), a
    directory, or a list of those; plain text (a document per line, or
    documents separated by blank lines), or JSONL with the text in
    ``text_field``; gzip, xz or zstd compressed — read by the Rust core, where
    an input that matches no file is an error naming it, or ``texts=``, an
    iterable of strings (or of lists of strings), e.g. a generator.

    Settings: ``vocab_size`` (50,265 as RoBERTa; special tokens and the 256
    bytes included), ``min_frequency`` (2), ``special_tokens`` (RoBERTa's;
    ``bbpe.GPT2_SPECIALS`` for GPT-2's), ``max_token_length`` (in bytes;
    128 by default, the longest token of GPT-2's and RoBERTa's vocabularies,
    trained without a limit: on text like theirs it changes nothing, while a
    run of a million spaces no longer makes half-megabyte tokens; None for no
    limit, as Hugging Face's ``BpeTrainer`` by default), ``pattern`` (split
    pattern; GPT-2's by default), ``max_words`` (cap on distinct words kept
    in memory, the rarest pruned first and counted in the report; ``"auto"``
    by default: as many as fit in half of this machine's memory, see
    :func:`default_max_words`, so results can differ between machines only
    when a corpus has more distinct words than that; an int or None for the
    same result everywhere), ``format``, ``text_field``,
    ``on_bad_input`` (``"stop"`` or ``"skip"`` bad lines,
    counted in the report), ``holdout_every`` (hold back every n-th document),
    ``threads`` (all cores by default) and ``progress``.
    """
    tokenizer, _ = train_with_report(files, texts=texts, **settings)
    return tokenizer


def train_from_counts_with_report(
    tables: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    min_frequency: int = 2,
    special_tokens: Iterable[str] = ROBERTA_SPECIALS,
    max_token_length: int | None = DEFAULT_MAX_TOKEN_LENGTH,
    max_words: int | None | Literal["auto"] = "auto",
    threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Tokenizer, TrainingReport]:
    """:func:`train_from_counts`, also returning a :class:`TrainingReport`."""
    if isinstance(tables, (str, os.PathLike)):
        tables = [tables]
    tables = [os.fspath(t) for t in tables]
    max_words = _resolve_max_words(max_words)
    settings = _core.TrainSettings(
        vocab_size,
        min_frequency,
        list(special_tokens),
        max_token_length,
        None,
        max_words,
        core_threads(threads),
    )
    core, summary = _core.train_counts(tables, settings, progress)
    return Tokenizer(core), TrainingReport(**summary, max_words=max_words)


def train_from_counts(
    tables: str | os.PathLike | Iterable[str | os.PathLike], **settings
) -> Tokenizer:
    """Learns a vocabulary from count tables (:func:`bbpe.count_words`,
    ``bbpe count``), merged as they are read: training's second phase.

    With the same settings the merges equal :func:`train`'s on the documents
    the tables were counted from, however the corpus was cut into parts and
    in whatever order the tables come. The split pattern is the tables'.
    ``max_words`` caps the merged counts, keeping the most frequent words by
    the rule counting prunes by; :func:`train` prunes after every 16 MB batch
    instead, so the two agree exactly when the cap is not reached, or when the
    corpus is one batch, and otherwise :func:`train`'s cap is the cruder
    (words dropped early cannot come back). Other settings as :func:`train`.
    """
    tokenizer, _ = train_from_counts_with_report(tables, **settings)
    return tokenizer
