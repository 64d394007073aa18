"""Indexed token shards: the `prefix.bin` + `prefix.idx` pairs that Megatron-LM /
megatron-core, NeMo and GPT-NeoX train from ("MMIDIDX" format), one module per
concern:

- `format`: the file layout, dtype codes, the `.idx` parsed, a NumPy `.idx` writer;
- `reader`: `IndexedDataset`, a memory-mapped shard pair;
- `manifest`: the `manifest.json` a writer leaves beside its shards;
- `verify` (`check`) and `stats` (`info`): whether shards are sound, and what they hold;
- `concat` (`concatenate`): shard pairs joined into one (`bbpe merge`);
- `ranks` and `parts` (`combine_parts`): a corpus encoded by several ranks
  at once, each into its own part, and the parts listed as one set
  (`bbpe encode --rank`, `bbpe combine`);
- `pipeline`: `write` and `count`, corpus files encoded into shards by the
  Rust core (rust/shards/pipeline.rs).

Names are imported on first use: reading shards needs NumPy only, never the
compiled core, and `bbpe encode` (which writes through `pipeline`) never loads
NumPy. Nothing here reads a whole file into memory: arrays are memory-mapped
and long passes over them go chunk by chunk.
"""

import importlib

_EXPORTS = {
    "CODES": "format",
    "DTYPES": "format",
    "HEADER_SIZE": "format",
    "MAGIC": "format",
    "ShardFormatError": "format",
    "bin_path": "format",
    "code_of": "format",
    "dtype_for_vocab": "format",
    "dtype_of": "format",
    "idx_path": "format",
    "write_index": "format",
    "IndexedDataset": "reader",
    "MANIFEST_FORMAT": "manifest",
    "MANIFEST_NAME": "manifest",
    "file_sha256": "manifest",
    "read_manifest": "manifest",
    "check": "verify",
    "info": "stats",
    "concatenate": "concat",
    "combine_parts": "parts",
    "count": "pipeline",
    "input_files": "pipeline",
    "parse_size": "pipeline",
    "write": "pipeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"bbpe.shards.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bbpe.shards' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
