"""bbpe: exact GPT-2 / RoBERTa byte-level BPE with a Rust core.

>>> from bbpe import Tokenizer
>>> tok = Tokenizer.from_pretrained("roberta-base")
>>> tok.encode("It was a great day")
[0, 243, 21, 10, 372, 183, 2]
"""

import importlib

__version__ = "0.1.0"

# Public names and the modules that define them, imported on first use so that
# `import bbpe` (and the command line, which first limits BLAS threads) does
# not pay for NumPy until something needs it.
_EXPORTS = {
    "Tokenizer": "bbpe.tokenizer",
    "GPT2_SPECIALS": "bbpe.trainer",
    "ROBERTA_SPECIALS": "bbpe.trainer",
    "TrainingReport": "bbpe.trainer",
    "train": "bbpe.trainer",
    "train_with_report": "bbpe.trainer",
    "train_from_counts": "bbpe.trainer",
    "train_from_counts_with_report": "bbpe.trainer",
    "count_words": "bbpe.counting",
    "merge_counts": "bbpe.counting",
    "inspect_counts": "bbpe.counting",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bbpe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
