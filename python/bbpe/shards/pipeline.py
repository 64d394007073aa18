"""Corpus files to shards: the Rust pipeline (rust/shards/pipeline.rs) that
reads, encodes on all cores and writes Megatron shards, seen from Python.
It needs no NumPy, so `bbpe encode` starts quickly."""

from __future__ import annotations

import os

from bbpe import _core
from bbpe.shards import ranks
from bbpe.tokenizer import Tokenizer, core_threads


def parse_size(size: int | str) -> int:
    """Bytes from ``1GB``, ``512MB``, ``64KiB`` or a plain number."""
    if isinstance(size, int):
        return size
    text = size.strip().upper().replace(" ", "")
    units = {"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}
    units |= {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "B": 1}
    unit = next((u for u in units if text.endswith(u)), None)
    number, factor = (text[: -len(unit)], units[unit]) if unit else (text, 1)
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {size!r} (try 1GB, 512MB or 1073741824)") from None
    if value <= 0:
        raise ValueError(f"size must be positive, not {size!r}")
    return int(value * factor)


def write(
    inputs,
    output_dir,
    tokenizer,
    *,
    prefix: str = "data",
    shard_size: int | str = "1GB",
    split_sentences: bool = False,
    append_eos: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    format: str = "auto",
    text_field: str = "text",
    on_bad_input: str = "stop",
    threads: int | None = None,
    progress=None,
    rank: int | None = None,
    world_size: int | None = None,
) -> dict:
    """Encodes corpus files into Megatron shards ``<prefix>_00000.bin/.idx``, ...
    in ``output_dir``, with a ``manifest.json``; returns a summary dict.

    ``inputs`` are files, globs or directories (JSONL or text; gz, xz, zstd),
    ``"-"`` for standard input. ``tokenizer`` is a :class:`bbpe.Tokenizer` or a
    name/path for :meth:`Tokenizer.from_pretrained`. Reading, encoding (all
    cores) and writing overlap; the shards are the same for any thread count.
    ``resume`` continues an interrupted run (same inputs and settings) after
    its last finished shard; the result equals an uninterrupted run. An
    ``output_dir`` that already holds shards is refused unless ``resume`` or
    ``overwrite`` (which first deletes its manifest and ``<prefix>_*`` shards).

    The summary's counts (``documents``, ``sequences``, ``tokens``,
    ``text_bytes``) are the whole shard set's, a resumed run's earlier part
    included; ``encoded_text_bytes`` and ``encoded_tokens`` are what this call
    encoded.

    With ``rank`` and ``world_size`` this call is one of ``world_size`` ranks
    (machines or processes) encoding the corpus together: it encodes its
    share of the files (`bbpe.shards.ranks`) into its own part,
    ``output_dir/rank-<rank>-of-<world_size>/`` (the summary's ``part``);
    ``resume`` and ``overwrite`` act on that part only. Once every rank has
    finished, :func:`bbpe.shards.parts.combine_parts` makes ``output_dir``
    read as one run's shards."""
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    existing = "resume" if resume else "overwrite" if overwrite else "refuse"
    if (rank is None) != (world_size is None):
        raise ValueError("rank and world_size go together: give both or neither")
    name, tokenizer = _resolve(tokenizer)
    files, part, output_dir = _input_paths(inputs), None, os.fspath(output_dir)
    if rank is not None:
        files, fingerprint = files_of_rank(files, rank, world_size)
        part = (rank, world_size, fingerprint)
        output_dir = os.path.join(output_dir, ranks.part_name(rank, world_size))
    settings = _core.ShardSettings(
        prefix,
        parse_size(shard_size),
        split_sentences,
        append_eos,
        core_threads(threads),
        existing,
        part,
    )
    read = _core.ReadOptions(format=format, text_field=text_field, on_bad_input=on_bad_input)
    # The core writes the manifest; it knows the tokenizer only by this name.
    summary = _core.encode_shards(
        tokenizer._core,
        name if name is not None else repr(tokenizer),
        files,
        output_dir,
        settings,
        read,
        progress=progress,
    )
    if part is not None:
        summary["part"] = output_dir
    return summary


def count(
    inputs,
    tokenizer,
    *,
    format: str = "auto",
    text_field: str = "text",
    on_bad_input: str = "stop",
    threads: int | None = None,
    progress=None,
) -> dict:
    """Reads and encodes ``inputs`` as :func:`write` does, writing nothing:
    documents, tokens and text bytes, for sizing a corpus or measuring speed."""
    _, tokenizer = _resolve(tokenizer)
    read = _core.ReadOptions(format=format, text_field=text_field, on_bad_input=on_bad_input)
    return _core.count_tokens(
        tokenizer._core, _input_paths(inputs), read, core_threads(threads), progress=progress
    )


def input_files(inputs) -> list[str]:
    """The files :func:`write` reads for ``inputs`` (files, globs,
    directories), in reading order, as its manifest lists them."""
    return [os.fspath(f) for f in _core.expand_inputs(_input_paths(inputs))]


def _resolve(tokenizer) -> tuple[str | None, Tokenizer]:
    """The name a tokenizer was given by (if any) and the tokenizer itself."""
    if isinstance(tokenizer, (str, os.PathLike)):
        return os.fspath(tokenizer), Tokenizer.from_pretrained(tokenizer)
    return None, tokenizer


def _input_paths(inputs) -> list[str]:
    """Paths as the core takes them; ``-`` is standard input."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    return ["/dev/stdin" if os.fspath(p) == "-" else os.fspath(p) for p in inputs]


def files_of_rank(inputs: list[str], rank: int, world_size: int) -> tuple[list[str], str]:
    """The files rank `rank` of `world_size` encodes out of `inputs` (files,
    directories, globs as the core expands them) and the corpus fingerprint
    (:func:`ranks.corpus_sha256` of every file) its manifest records."""
    ranks.check_rank(rank, world_size)
    if world_size > 1 and any(p in ("-", "/dev/stdin") for p in inputs):
        raise ValueError(
            f"standard input (-) cannot be split among {world_size} ranks: name files instead"
        )
    files = input_files(inputs)
    sizes = []
    for file in files:
        try:
            sizes.append(os.stat(file).st_size)
        except OSError as e:
            raise OSError(e.errno, f"{file}: {e.strerror}") from None
    mine = ranks.share(sizes, rank, world_size)
    return files[mine.start : mine.stop], ranks.corpus_sha256(zip(files, sizes, strict=True))
