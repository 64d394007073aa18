"""Encoding a corpus into Megatron shards on a Ray cluster: `encode`; training
a vocabulary on one: `train` (`training`).

The work is cut into blocks (an input file each, or a block of a
`ray.data.Dataset`), encoded by actors that load the tokenizer once
(`encoding`), written as one shard pair and a receipt per block by a Ray
`Datasink` (`sink`), and listed by the driver in one `manifest.json` in
input order (`manifest`). A rerun skips the blocks whose receipts still hold
(`blocks`). Ray is an optional dependency: ``pip install 'bbpe[ray]'``;
importing `bbpe` never imports it.
"""

from __future__ import annotations

try:
    import ray
    import ray.data
except ImportError as e:
    raise ImportError(f"bbpe.ray needs Ray Data ({e}): pip install 'bbpe[ray]'") from e

import contextlib
import os
import threading

from bbpe._publish import remove_quietly
from bbpe.ray import manifest
from bbpe.ray.blocks import Block, dataset_blocks, file_blocks, finished_blocks
from bbpe.ray.encoding import TEXTS_AS_JSONL, BlockEncoder, Settings, run_header
from bbpe.ray.sink import RECEIPT_SUFFIX, ShardSink, receipt_path, shard_prefix
from bbpe.ray.training import train, train_with_report
from bbpe.shards.manifest import MANIFEST_NAME, read_manifest, shard_entries
from bbpe.shards.pipeline import input_files, parse_size

__all__ = ["ShardSink", "encode", "train", "train_with_report"]


def encode(
    source,
    out_dir,
    tokenizer,
    *,
    text_column: str = "text",
    format: str = "auto",
    text_field: str = "text",
    on_bad_input: str = "stop",
    append_eos: bool = False,
    split_sentences: bool = False,
    concurrency: int | None = None,
    block_size: int | str = "256MB",
    address: str | None = None,
    progress=None,
) -> dict:
    """Encodes `source` into Megatron shards in `out_dir` on Ray, one shard
    pair ``data_<key>.bin/.idx`` per block, with a ``manifest.json`` that
    lists them in input order; returns a summary dict.

    `source` is corpus files, globs or directories (read as `bbpe encode`
    reads them, one block per file; ``format``, ``text_field`` and
    ``on_bad_input`` as in :func:`bbpe.shards.write`), Parquet files (read by
    Ray Data, the documents in ``text_column``, then as a dataset), or a `ray.data.Dataset`
    whose string column `text_column` holds the documents (one block per
    block of the dataset, its order kept; the dataset is run to the end
    first, in the object store, so that each block's key is its position and
    a digest of its texts tells a rerun whether it changed). Each block's shards are the ones
    `bbpe.shards.write` makes of its documents. An uncompressed file of one
    document per line (JSONL, or ``format="lines"``) larger than
    ``block_size`` is cut at line ends into blocks of about that size, so
    that one large file is shared out too. ``tokenizer`` is a name or
    path for :meth:`bbpe.Tokenizer.from_pretrained`, or a Tokenizer (pickled
    to the workers). ``concurrency`` is the number of encoding actors (default:
    the cluster's CPUs). Without a running Ray, ``address`` names a cluster to
    join (``"auto"``, ``"ray://..."``), and None starts a local one for this
    call. Blocks whose receipts and files hold from an earlier run with the
    same settings and input are not encoded again. ``progress(done, total)``
    is called on the driver as blocks finish."""
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be a positive number of actors, not {concurrency}")
    started = _connect(address)
    try:
        with _data_context():
            return _encode(
                source,
                os.path.abspath(os.fspath(out_dir)),
                tokenizer,
                text_column,
                Settings(format, text_field, on_bad_input, append_eos, split_sentences),
                concurrency,
                parse_size(block_size),
                progress,
            )
    finally:
        if started:
            ray.shutdown()


def _encode(
    source, out_dir, tokenizer, text_column, settings, concurrency, block_bytes, progress
) -> dict:
    source = _parquet_as_dataset(source, text_column)
    from_dataset = isinstance(source, ray.data.Dataset)
    if from_dataset:
        dataset_settings = Settings(
            **TEXTS_AS_JSONL,
            append_eos=settings.append_eos,
            split_sentences=settings.split_sentences,
        )
        run = run_header(tokenizer, dataset_settings)
        run["settings"] |= {"format": "ray.data", "text_field": text_column, "on_bad_input": None}
        blocks = dataset_blocks(source, text_column)
    else:
        run = run_header(tokenizer, settings)
        blocks = file_blocks(source, settings.format, block_bytes)
    os.makedirs(out_dir, exist_ok=True)
    _refuse_other_shards(out_dir)
    kept = finished_blocks(out_dir, blocks, run)
    todo = [block for block in blocks if block.key not in kept]
    receipts = list(kept.values())
    if todo:
        # Listed shards are about to change: no manifest until the run is whole.
        remove_quietly(os.path.join(out_dir, MANIFEST_NAME))
        receipts += _write_blocks(
            todo, out_dir, tokenizer, settings, run, concurrency, progress, len(kept), len(blocks)
        )
    elif progress is not None:
        progress(len(blocks), len(blocks))
    keys = [block.key for block in blocks]
    composed = manifest.compose(run, keys, receipts)
    manifest.write(out_dir, composed)
    new = [r for r in receipts if r["key"] not in kept]
    return {
        "blocks": len(blocks),
        "encoded_blocks": len(todo),
        "skipped_blocks": len(kept),
        "shards": [entry["prefix"] for entry in composed["shards"]],
        "documents": composed["documents"],
        "sequences": composed["sequences"],
        "tokens": composed["tokens"],
        "empty_documents": composed["empty_documents"],
        "text_bytes": sum(r["text_bytes"] for r in receipts),
        "encoded_text_bytes": sum(r["text_bytes"] for r in new),
    }


def _parquet_as_dataset(source, text_column: str):
    """Parquet files as the dataset Ray Data reads from them (their
    `text_column` only, in file order); anything else unchanged. bbpe's own
    reader reads text and JSONL, not Parquet."""
    if isinstance(source, ray.data.Dataset):
        return source
    files = input_files(source)
    parquet = [f.endswith(".parquet") for f in files]
    if not any(parquet):
        return source
    if not all(parquet):
        first = files[parquet.index(False)]
        raise ValueError(
            f"{first}: Parquet and other files cannot be encoded in one run; "
            "encode the Parquet files separately"
        )
    return ray.data.read_parquet(files).select_columns([text_column])


def _refuse_other_shards(out_dir: str) -> None:
    """A manifest whose shards have no receipts is another writer's (`bbpe
    encode` without --ray): its files are left alone."""
    existing = read_manifest(out_dir)
    if existing is None:
        return
    foreign = [
        entry["prefix"]
        for prefix, entry in shard_entries(existing, out_dir)
        if not os.path.exists(prefix + RECEIPT_SUFFIX)
    ]
    if foreign:
        raise ValueError(
            f"{out_dir} already holds shards not written by bbpe.ray ({foreign[0]}, listed in "
            f"its {MANIFEST_NAME}): choose another directory"
        )


def _write_blocks(
    todo: list[Block], out_dir, tokenizer, settings, run, concurrency, progress, done, total
) -> list[dict]:
    """Encodes and writes `todo`; this run's receipts."""
    for block in todo:  # a stale receipt must not count as done
        remove_quietly(receipt_path(out_dir, block.key))
    if todo[0].path is not None:
        items = [{"key": b.key, "path": b.path, "range": b.byte_range} for b in todo]
        work = ray.data.from_items(items, override_num_blocks=len(items))
        batch_size = 1
    else:
        work = ray.data.from_arrow_refs([block.texts for block in todo])
        batch_size = None  # a whole block per call
    if concurrency is None:
        concurrency = max(1, int(ray.cluster_resources().get("CPU", 1)))
    actors = min(concurrency, len(todo))
    if isinstance(tokenizer, (str, os.PathLike)) and os.path.exists(tokenizer):
        tokenizer = os.path.abspath(tokenizer)  # workers have other working directories
    encoded = work.map_batches(
        BlockEncoder,
        fn_constructor_kwargs={"tokenizer": tokenizer, "settings": settings, "run": run},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
    )
    sink = ShardSink(out_dir, run, {block.key: block.input for block in todo})
    try:
        with _reporting(progress, out_dir, todo, done, total):
            # Writing is I/O: on no CPU of its own, it runs beside the encoders
            # (which hold every CPU when concurrency is the cluster's).
            encoded.write_datasink(sink, ray_remote_args={"num_cpus": 0}, concurrency=actors)
    except ray.exceptions.RayError as e:
        # bbpe's own error (a bad line, naming its file), not Ray's wrapping.
        cause = _cause(e)
        if isinstance(cause, (ValueError, OSError)):
            raise cause from None
        raise
    finally:
        # What killed attempts left and their retries did not overwrite.
        for block in todo:
            for suffix in (".bin", ".idx", RECEIPT_SUFFIX):
                name = os.path.join(out_dir, shard_prefix(block.key) + suffix)
                remove_quietly(name + ".partial")
    return sink.receipts


def _cause(error: BaseException) -> BaseException | None:
    """The error raised in a task, inside the Ray errors that carry it."""
    while isinstance(error, ray.exceptions.RayError):
        error = getattr(error, "cause", None) or error.__cause__
    return error


@contextlib.contextmanager
def _reporting(progress, out_dir: str, todo: list[Block], done: int, total: int):
    """Calls `progress(done, total)` from a thread, by the receipts written so far."""
    if progress is None:
        yield
        return
    stop = threading.Event()

    receipts = {os.path.basename(receipt_path(out_dir, block.key)) for block in todo}

    def watch():
        while True:
            finished = len(receipts.intersection(os.listdir(out_dir)))
            progress(done + finished, total)
            if stop.wait(0.5):
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    progress(total, total)


@contextlib.contextmanager
def _data_context():
    """Ray Data keeps the dataset's order (the blocks' keys are their
    positions) and raises the encoder's own errors (a bad line, naming its
    file) rather than a wrapping of them, while this is active."""
    context = ray.data.DataContext.get_current()
    before = (context.execution_options.preserve_order, context.raise_original_map_exception)
    context.execution_options.preserve_order = True
    context.raise_original_map_exception = True
    try:
        yield
    finally:
        context.execution_options.preserve_order, context.raise_original_map_exception = before


def _connect(address: str | None) -> bool:
    """Joins or starts a cluster unless Ray is running; whether it started one."""
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(include_dashboard=False)
    else:
        ray.init(address=address)
    return True
