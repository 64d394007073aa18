"""Training's first phase on its own: documents -> word counts, written as a
count table (the format is documented in rust/train/count_table.rs).

Counting runs anywhere, one process per part of a corpus (a Slurm array, a
Spark or Ray task per group of files); the tables are merged, in any order and
in any grouping, and :func:`bbpe.train_from_counts` learns from the merged
counts the merges one machine would learn from the whole corpus:

>>> import bbpe
>>> bbpe.count_words("part-0/*.jsonl.zst", output="counts-0.bin")      # doctest: +SKIP
>>> bbpe.count_words("part-1/*.jsonl.zst", output="counts-1.bin")      # doctest: +SKIP
>>> bbpe.merge_counts(["counts-0.bin", "counts-1.bin"], "all.bin")     # doctest: +SKIP
>>> tok = bbpe.train_from_counts("all.bin", vocab_size=50_265)         # doctest: +SKIP

Partitions must cut the corpus between documents (whole files, or whole
lines of a JSONL file): a word is counted within its document only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Literal

from bbpe import _core
from bbpe.shards.pipeline import files_of_rank
from bbpe.tokenizer import core_threads
from bbpe.trainer import Files, ProgressCallback, Texts, _file_inputs, _texts_or_files


def count_words(
    files: Files | None = None,
    *,
    texts: Texts | None = None,
    output: str | os.PathLike,
    pattern: str | None = None,
    max_words: int | None = None,
    format: Literal["auto", "jsonl", "lines", "paragraphs"] = "auto",
    text_field: str = "text",
    on_bad_input: Literal["stop", "skip"] = "stop",
    threads: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Counts the words of ``files`` (or ``texts=``) as :func:`bbpe.train`
    does and writes them to the count table ``output``; returns its summary
    (``words``, ``occurrences``, ``documents``, ``text_bytes``, ...).

    With ``rank`` and ``world_size`` this call counts one rank's share of the
    files, cut as ``bbpe encode --rank`` cuts them (whole files, contiguous,
    balanced by size; a share may be empty), and the table records which
    rank of which file list it holds: merging refuses a rank twice or another
    corpus's ranks, and learning refuses tables with a rank missing.

    ``max_words`` caps the distinct words kept while counting (the rarest go
    first, counted in ``pruned_words``): it bounds this process's memory, but
    the table then holds this part's most frequent words, not all of them.
    Leave it None for counts that merge exactly; cap at learning instead.
    """
    _texts_or_files(files, texts)
    if (rank is None) != (world_size is None):
        raise ValueError("rank and world_size go together: give both or neither")
    if rank is not None and texts is not None:
        raise ValueError("rank and world_size share out files, not texts=")
    settings = _core.CountSettings(pattern, max_words, core_threads(threads))
    if files is None:
        return _core.count_texts_to_table(texts, os.fspath(output), settings, progress=progress)
    inputs, part = _file_inputs(files), None
    if rank is not None:
        inputs, fingerprint = files_of_rank(inputs, rank, world_size)
        part = (rank, world_size, fingerprint)
    read = _core.ReadOptions(format=format, text_field=text_field, on_bad_input=on_bad_input)
    return _core.count_files_to_table(
        inputs, os.fspath(output), settings, read, part, progress=progress
    )


def merge_counts(tables: Iterable[str | os.PathLike], output: str | os.PathLike) -> dict:
    """Merges count tables into one at ``output``, streaming (memory grows
    with the number of tables, not their size). The order of ``tables`` does
    not matter: the same counts give the same file. Tables split with
    different patterns are refused, naming the one that differs."""
    return _core.merge_count_tables([os.fspath(t) for t in tables], os.fspath(output))


def inspect_counts(table: str | os.PathLike) -> dict:
    """A count table's summary, after checking the whole file (word order,
    totals, SHA-256); a damaged table is an error naming it."""
    return _core.inspect_count_table(os.fspath(table))
