"""What a tiktoken rank file does not say: the split pattern and the special
tokens. Known for OpenAI's standard encodings by name; bbpe writes them next
to its own rank files (``vocab.tiktoken`` + ``vocab.tiktoken.json``).

``vocab.tiktoken.json`` is one JSON object, ``{"pattern": str,
"special_tokens": {token: id}}``: the ``pat_str`` and ``special_tokens`` of
``tiktoken.Encoding``, whose ``mergeable_ranks`` are
``tiktoken.load.load_tiktoken_bpe("vocab.tiktoken")``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from bbpe._core import GPT2_PATTERN_R50K
from bbpe._publish import write_durably

ENDOFTEXT = "<|endoftext|>"
ENDOFPROMPT = "<|endofprompt|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"

# GPT-2's pattern as tiktoken spells it (possessive quantifiers, same pieces):
# the core's, which knows it for GPT-2's and runs its own scanner.
R50K_PATTERN = GPT2_PATTERN_R50K
CL100K_PATTERN = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"
    r"| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"
)
_O200K_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_O200K_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_O200K_CONTRACTION = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
O200K_PATTERN = "|".join(
    [
        rf"[^\r\n\p{{L}}\p{{N}}]?{_O200K_UPPER}*{_O200K_LOWER}+{_O200K_CONTRACTION}",
        rf"[^\r\n\p{{L}}\p{{N}}]?{_O200K_UPPER}+{_O200K_LOWER}*{_O200K_CONTRACTION}",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)


class Encoding(NamedTuple):
    pattern: str
    special_tokens: dict[str, int]


STANDARD_ENCODINGS = {
    "gpt2": Encoding(R50K_PATTERN, {ENDOFTEXT: 50256}),
    "r50k_base": Encoding(R50K_PATTERN, {ENDOFTEXT: 50256}),
    "p50k_base": Encoding(R50K_PATTERN, {ENDOFTEXT: 50256}),
    "cl100k_base": Encoding(
        CL100K_PATTERN,
        {
            ENDOFTEXT: 100257,
            FIM_PREFIX: 100258,
            FIM_MIDDLE: 100259,
            FIM_SUFFIX: 100260,
            ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": Encoding(O200K_PATTERN, {ENDOFTEXT: 199999, ENDOFPROMPT: 200018}),
}


def settings_path(rank_file: str | os.PathLike) -> Path:
    """Where bbpe keeps a rank file's pattern and special tokens."""
    return Path(f"{os.fspath(rank_file)}.json")


def write_settings(rank_file: str | os.PathLike, pattern: str, special_tokens: dict) -> Path:
    path = settings_path(rank_file)
    settings = {"pattern": pattern, "special_tokens": special_tokens}
    write_durably(path, json.dumps(settings, ensure_ascii=False, indent=1))
    return path


def _read_settings(path: Path) -> Encoding:
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        pattern, specials = settings["pattern"], settings["special_tokens"]
        valid = isinstance(pattern, str) and all(
            isinstance(k, str) and isinstance(v, int) for k, v in specials.items()
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not bbpe's tiktoken settings: {e}") from None
    if not valid:
        raise ValueError(f"{path}: expected a string pattern and special tokens str -> int")
    return Encoding(pattern, specials)


def resolve(
    rank_file: str | os.PathLike,
    pattern: str | None,
    encoding: str | None,
    special_tokens: dict[str, int] | None,
) -> Encoding:
    """The pattern and special tokens to load ``rank_file`` with: those given,
    else a standard encoding's (named, or the file's name), else those bbpe
    saved beside it. A file that none of these covers is refused: GPT-2's
    pattern on a cl100k file would load and give other ids than tiktoken."""
    if pattern is not None and encoding is not None:
        raise ValueError("pass pattern= or encoding=, not both")
    known = ", ".join(STANDARD_ENCODINGS)
    if encoding is not None:
        if encoding not in STANDARD_ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; known: {known}")
        found = STANDARD_ENCODINGS[encoding]
    elif pattern is not None:
        found = Encoding(pattern, {})
    elif settings_path(rank_file).exists():
        found = _read_settings(settings_path(rank_file))
    elif Path(rank_file).stem in STANDARD_ENCODINGS:
        found = STANDARD_ENCODINGS[Path(rank_file).stem]
    else:
        raise ValueError(
            f"{os.fspath(rank_file)}: a tiktoken rank file does not say which split "
            f"pattern it was made with; pass pattern= or encoding= (one of {known})"
        )
    if special_tokens is not None:
        return Encoding(found.pattern, dict(special_tokens))
    return found
