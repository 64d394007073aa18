"""Reading documents from corpus files: JSONL (one JSON object per line, text in
a chosen field) or plain text (one document per line, or documents separated
by blank lines), optionally gzip- or xz-compressed. Errors name the file and line.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

Format = Literal["auto", "jsonl", "lines", "paragraphs"]


def sample_path() -> Path:
    """The bundled sample corpus (public domain and CC0 text, English and Korean)."""
    return Path(str(resources.files("bbpe") / "samples" / "sample.jsonl"))


def sample_texts() -> list[str]:
    """The sample corpus's documents, in order."""
    with open(sample_path(), encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


class CorpusError(ValueError):
    """A document that cannot be read, with the file and line it is on."""


@dataclass
class Document:
    text: str
    path: str
    line: int


def _open_binary(path: Path) -> io.BufferedIOBase:
    name = path.name
    if name.endswith(".gz"):
        raw = gzip.open(path, "rb")  # noqa: SIM115
    elif name.endswith(".xz"):
        raw = lzma.open(path, "rb")  # noqa: SIM115
    elif name.endswith((".zst", ".zstd")):
        raise CorpusError(f"{path}: zstd input is not supported yet; decompress it first")
    else:
        raw = open(path, "rb")  # noqa: SIM115
    return raw


def _format_of(path: Path, fmt: Format) -> Format:
    if fmt != "auto":
        return fmt
    stem = path.name
    for suffix in (".gz", ".xz", ".zst", ".zstd"):
        stem = stem.removesuffix(suffix)
    return "jsonl" if stem.endswith((".jsonl", ".json")) else "paragraphs"


def read_documents(
    path: str | os.PathLike, fmt: Format = "auto", text_field: str = "text"
) -> Iterator[Document]:
    """Documents of one file, in order."""
    path = Path(path)
    fmt = _format_of(path, fmt)
    with _open_binary(path) as lines:
        number = 0
        paragraph: list[str] = []
        start = 1
        try:
            # Lines are decoded one by one so that an error names its own line.
            for number, raw in enumerate(lines, 1):  # noqa: B007 - used after the loop
                line = raw.decode("utf-8").rstrip("\n")
                if fmt == "jsonl":
                    if line.strip():
                        yield Document(
                            _json_text(line, text_field, path, number), str(path), number
                        )
                elif fmt == "lines":
                    if line:
                        yield Document(line, str(path), number)
                elif line.strip():
                    if not paragraph:
                        start = number
                    paragraph.append(line)
                elif paragraph:
                    yield Document("\n".join(paragraph), str(path), start)
                    paragraph = []
        except UnicodeDecodeError as e:
            raise CorpusError(
                f"{path}, line {number}: invalid UTF-8 ({e.reason} at byte {e.start})"
            ) from e
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise CorpusError(f"{path}, after line {number}: {e}") from e
        if paragraph:
            yield Document("\n".join(paragraph), str(path), start)


def _json_text(line: str, field: str, path: Path, number: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise CorpusError(
            f"{path}, line {number}: not valid JSON ({e.msg}, column {e.colno})"
        ) from e
    if not isinstance(record, dict) or field not in record:
        raise CorpusError(f"{path}, line {number}: no {field!r} field")
    text = record[field]
    if not isinstance(text, str):
        raise CorpusError(f"{path}, line {number}: field {field!r} is not a string")
    return text
