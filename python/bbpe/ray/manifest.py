"""The driver's last step: the receipts of a run's blocks → one global
`manifest.json`, in the single-machine writer's schema (so `bbpe info`,
`bbpe.shards.check` and `bbpe.packing.ShardDocuments` read it unchanged).
Needs no Ray: it works on plain dicts, and refuses a block that is missing,
present twice, or not of this run."""

from __future__ import annotations

import json
import os
from collections import Counter

from bbpe._publish import write_durably
from bbpe.shards.manifest import ENTRY_FIELDS, MANIFEST_NAME, compose_run


def compose(header: dict, keys: list[str], receipts: list[dict]) -> dict:
    """The manifest of the blocks `keys` (in input order) from their
    `receipts` (any order): `header`'s tokenizer, settings and dtype, every
    block's input, the shards of the blocks that hold documents with their
    counts and checksums, and the totals. ``input_documents`` counts, as the
    single-machine writer's does, the input documents (empty ones included)
    up to the end of each shard."""
    counts = Counter(r["key"] for r in receipts)
    expected = set(keys)
    problems = [f"block {k}: present {n} times (twice or more)" for k, n in counts.items() if n > 1]
    problems += [f"block {k}: missing (no receipt)" for k in keys if k not in counts]
    problems += [f"block {k}: not a block of this run" for k in counts if k not in expected]
    if problems:
        raise ValueError("cannot write the manifest: " + "; ".join(problems))
    by_key = {r["key"]: r for r in receipts}
    pieces = []
    for key in keys:
        receipt = by_key[key]
        # A block of only empty documents has no shard, as on one machine.
        entries = []
        if receipt["prefix"] is not None:
            entry = {"prefix": receipt["prefix"]} | {f: receipt[f] for f in ENTRY_FIELDS}
            entries.append(entry | {"input_documents": receipt["input_documents"]})
        pieces.append((entries, receipt["input_documents"]))
    return compose_run(header, pieces, [by_key[key]["input"] for key in keys])


def write(out_dir: str, manifest: dict) -> None:
    """Publishes `manifest` as `out_dir/manifest.json` (whole or not at all)."""
    write_durably(os.path.join(out_dir, MANIFEST_NAME), json.dumps(manifest, indent=2))
