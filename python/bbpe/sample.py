"""The bundled sample corpus (`bbpe train` and `bbpe encode` on it are the
README's quickstart). Corpus files themselves are read by the Rust
core (rust/corpus/), for training and encoding alike."""

import json
from importlib import resources
from pathlib import Path


def sample_path() -> Path:
    """The bundled sample corpus (public domain and CC0 text, English and Korean)."""
    return Path(str(resources.files("bbpe") / "samples" / "sample.jsonl"))


def sample_texts() -> list[str]:
    """The sample corpus's documents, in order."""
    with open(sample_path(), encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]
