"""Training a vocabulary on a Ray cluster: `train`.

The corpus's files are cut into parts (contiguous runs of whole files of
about equal size, as ``bbpe encode --rank`` cuts them), and a Ray task per
part counts its words into a count table (`bbpe.count_words`). The tables
come back to the driver through Ray's object store, so the workers need no
shared file system, and the driver learns from them merged as they are read
(`bbpe.train_from_counts`): counts are merged exactly, then learned, so the
merges are those of `bbpe.train` on one machine with the same settings.
"""

from __future__ import annotations

import os
import tempfile

import ray

from bbpe import counting
from bbpe.shards.pipeline import input_files
from bbpe.shards.ranks import share
from bbpe.tokenizer import Tokenizer
from bbpe.trainer import TrainingReport, train_from_counts_with_report

#: Parts per CPU of the cluster by default: enough that a slow part does not
#: leave the others idle at the end, few enough that tables stay few.
PARTS_PER_CPU = 2


def train_with_report(
    files,
    *,
    parts: int | None = None,
    address: str | None = None,
    pattern: str | None = None,
    format: str = "auto",
    text_field: str = "text",
    on_bad_input: str = "stop",
    progress=None,
    **learning,
) -> tuple[Tokenizer, TrainingReport]:
    """:func:`train`, also returning a :class:`bbpe.TrainingReport`."""
    from bbpe.ray import _connect  # the package's one way to reach a cluster

    if parts is not None and parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    paths = input_files(files)
    started = _connect(address)
    try:
        if parts is None:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            parts = max(1, min(len(paths), PARTS_PER_CPU * cpus))
        reading = dict(pattern=pattern, format=format, text_field=text_field)
        reading["on_bad_input"] = on_bad_input
        with tempfile.TemporaryDirectory(prefix="bbpe-counts-") as directory:
            tables, summaries = _count_parts(paths, parts, reading, directory, progress)
            tokenizer, report = train_from_counts_with_report(
                tables, progress=_learning_progress(progress), **learning
            )
    finally:
        if started:
            ray.shutdown()
    report.files = sum(s["files"] for s in summaries)
    report.skipped = sum(s["skipped"] for s in summaries)
    report.first_skipped = next((s["first_skipped"] for s in summaries if s["skipped"]), None)
    report.replaced_surrogates = sum(s["replaced_surrogates"] for s in summaries)
    return tokenizer, report


def train(files, **settings) -> Tokenizer:
    """Trains a vocabulary on the Ray cluster: the merges of :func:`bbpe.train`
    on the same files with the same settings, counted by Ray tasks (one per
    part of the corpus, ``parts`` of them: by default two per CPU of the
    cluster, at most one per file) and learned on the driver.

    ``files`` are paths, globs or directories as :func:`bbpe.train` takes
    them, readable at the same paths on every node. ``address`` names a
    cluster to join (``"auto"``, ``"ray://..."``) when Ray is not running;
    None starts a local one for this call. ``progress(stage, done, total)``
    is called on the driver with stage ``"count"`` (parts counted) and then
    ``"merge"``. The learning settings (``vocab_size``, ``min_frequency``,
    ``special_tokens``, ``max_token_length``, ``max_words``, ``threads``) are
    :func:`bbpe.train_from_counts`'s; ``max_words`` caps the merged counts.
    """
    tokenizer, _ = train_with_report(files, **settings)
    return tokenizer


def _count_parts(paths, parts, reading, directory, progress) -> tuple[list[str], list[dict]]:
    """Counts each part in a task; the tables written to `directory`, in part
    order, and the tasks' summaries."""
    sizes = [os.path.getsize(p) if os.path.isfile(p) else 0 for p in paths]
    groups = [[paths[i] for i in share(sizes, part, parts)] for part in range(parts)]
    groups = [group for group in groups if group]
    pending = {_count_part.remote(group, reading): n for n, group in enumerate(groups)}
    tables: list[str | None] = [None] * len(groups)
    summaries: list[dict | None] = [None] * len(groups)
    if progress is not None:
        progress("count", 0, len(groups))
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        number = pending.pop(ready[0])
        table, summary = ray.get(ready[0])
        tables[number] = os.path.join(directory, f"part-{number:05d}.bin")
        with open(tables[number], "wb") as f:
            f.write(table)
        summaries[number] = summary
        if progress is not None:
            progress("count", len(groups) - len(pending), len(groups))
    return tables, summaries


# A task only writes into its own temporary directory and returns bytes, so
# Ray may run it again after a worker dies (its retries on system failures).
@ray.remote(num_cpus=1, max_retries=3)
def _count_part(files: list[str], reading: dict) -> tuple[bytes, dict]:
    """A part's count table, as bytes for the object store, and its summary."""
    with tempfile.TemporaryDirectory(prefix="bbpe-count-") as directory:
        table = os.path.join(directory, "counts.bin")
        summary = counting.count_words(files, output=table, threads=1, **reading)
        with open(table, "rb") as f:
            return f.read(), summary


def _learning_progress(progress):
    if progress is None:
        return None
    return lambda stage, done, total: progress(stage, done, total) if stage == "merge" else None
