"""A small, readable, torch-free reference encoder: the oracle in property tests.

Each module mirrors the Rust stage of the same name (rust/<name>.rs; merging is
rust/encode/merge.rs, training rust/train/) and does the same job the plain
way, so the fast core can be checked against it:

>>> from bbpe.reference import ReferenceEncoder
>>> enc = ReferenceEncoder.from_files("vocab.json", "merges.txt")  # doctest: +SKIP
"""

from bbpe.reference.byte_alphabet import (
    BYTE_TO_CHAR,
    CHAR_TO_BYTE,
    bytes_to_token_string,
    token_string_to_bytes,
)
from bbpe.reference.encode import ReferenceEncoder
from bbpe.reference.merge import merge
from bbpe.reference.pretokenize import GPT2_PATTERN, pretokenize
from bbpe.reference.train import Trained, count_words, learn_merges, train
from bbpe.reference.vocab import Vocab

__all__ = [
    "BYTE_TO_CHAR",
    "CHAR_TO_BYTE",
    "GPT2_PATTERN",
    "ReferenceEncoder",
    "Trained",
    "Vocab",
    "bytes_to_token_string",
    "count_words",
    "learn_merges",
    "merge",
    "pretokenize",
    "token_string_to_bytes",
    "train",
]
