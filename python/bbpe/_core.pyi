"""Type stubs for the Rust extension module (see rust/python.rs)."""

import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

class CoreTokenizer:
    @staticmethod
    def from_gpt2_files(
        vocab_path: str, merges_path: str, special_tokens: list[str] | None = None
    ) -> CoreTokenizer: ...
    @staticmethod
    def from_hf_json(path: str) -> CoreTokenizer: ...
    @staticmethod
    def from_hf_json_text(text: str) -> CoreTokenizer: ...
    @staticmethod
    def from_tiktoken(
        path: str, special_tokens: list[tuple[str, int]], pattern: str
    ) -> CoreTokenizer: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def pattern(self) -> str: ...
    @property
    def add_prefix_space(self) -> bool: ...
    @property
    def roberta_template(self) -> bool: ...
    def with_prefix_space(self, add_prefix_space: bool) -> CoreTokenizer: ...
    def special_tokens(self) -> list[tuple[str, int]]: ...
    @property
    def end_of_document_id(self) -> int | None: ...
    def token_to_id(self, token: str) -> int | None: ...
    def id_to_token(self, id: int) -> str | None: ...
    def get_vocab(self) -> list[tuple[str, int]]: ...
    def word_boundaries(self) -> tuple[bytes, bytes]: ...
    def pretokenize(self, text: str) -> list[str]: ...
    def encode(
        self,
        text: str,
        allowed_special: list[int] | None = None,
        around: tuple[int, int] | None = None,
    ) -> list[int]: ...
    def encode_with_offsets(
        self, text: str, allowed_special: list[int] | None = None
    ) -> tuple[list[int], list[tuple[int, int]]]: ...
    def encode_batch(
        self,
        texts: list[str],
        allowed_special: list[int] | None = None,
        threads: int = 0,
        around: tuple[int, int] | None = None,
    ) -> list[list[int]]: ...
    def encode_batch_flat(
        self, texts: list[str], allowed_special: list[int] | None = None, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]: ...
    def decode_bytes(self, ids: list[int], skip_special_tokens: bool = False) -> bytes: ...
    def decode_batch_bytes(
        self, batch: list[list[int]], skip_special_tokens: bool = False, threads: int = 0
    ) -> list[bytes]: ...
    def save_gpt2(self, vocab_path: str, merges_path: str) -> None: ...
    def to_hf_json(self) -> str: ...
    def save_tiktoken(self, path: str) -> None: ...

ROBERTA_SPECIALS: list[str]
GPT2_SPECIALS: list[str]
DEFAULT_VOCAB_SIZE: int
GPT2_PATTERN_R50K: str
DEFAULT_MAX_TOKEN_LENGTH: int

class TrainSettings:
    def __init__(
        self,
        vocab_size: int,
        min_frequency: int,
        special_tokens: list[str],
        max_token_length: int | None = None,
        pattern: str | None = None,
        max_words: int | None = None,
        threads: int = 0,
    ) -> None: ...

class ReadOptions:
    def __init__(
        self, format: str = "auto", text_field: str = "text", on_bad_input: str = "stop"
    ) -> None: ...

class ShardSettings:
    def __init__(
        self,
        prefix: str,
        shard_bytes: int,
        split_sentences: bool = False,
        append_eos: bool = False,
        threads: int = 0,
        existing: str = "refuse",
        part: tuple[int, int, str] | None = None,
    ) -> None: ...

Progress = Callable[[str, int, int | None], object]

def train_files(
    inputs: list[str],
    settings: TrainSettings,
    read: ReadOptions,
    holdout: tuple[int, int] = (0, 0),
    progress: Progress | None = None,
) -> tuple[CoreTokenizer, dict[str, Any], list[str]]: ...
def train_texts(
    texts: Iterable[str | list[str] | tuple[str, ...]],
    settings: TrainSettings,
    holdout: tuple[int, int] = (0, 0),
    progress: Progress | None = None,
) -> tuple[CoreTokenizer, dict[str, Any], list[str]]: ...

class CountSettings:
    def __init__(
        self, pattern: str | None = None, max_words: int | None = None, threads: int = 0
    ) -> None: ...

def train_counts(
    tables: list[str], settings: TrainSettings, progress: Progress | None = None
) -> tuple[CoreTokenizer, dict[str, Any]]: ...
def count_files_to_table(
    inputs: list[str],
    output: str,
    settings: CountSettings,
    read: ReadOptions,
    part: tuple[int, int, str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]: ...
def count_texts_to_table(
    texts: Iterable[str | list[str] | tuple[str, ...]],
    output: str,
    settings: CountSettings,
    progress: Progress | None = None,
) -> dict[str, Any]: ...
def merge_count_tables(inputs: list[str], output: str) -> dict[str, Any]: ...
def inspect_count_table(path: str) -> dict[str, Any]: ...
def encode_shards(
    tokenizer: CoreTokenizer,
    tokenizer_name: str,
    inputs: list[str],
    out_dir: str,
    settings: ShardSettings,
    read: ReadOptions,
    progress: Callable[[str, tuple[int, int, int, int], int | None], object] | None = None,
) -> dict[str, Any]: ...
def count_tokens(
    tokenizer: CoreTokenizer,
    inputs: list[str],
    read: ReadOptions,
    threads: int = 0,
    progress: Callable[[str, tuple[int, int, int, int], int | None], object] | None = None,
) -> dict[str, Any]: ...
def expand_inputs(inputs: list[str]) -> list[os.PathLike[str]]: ...
