"""Faults and stress at CI scale (about a minute and a half on two cores): the
probes of reliability/faults.py with small inputs and few repetitions;
reliability/stress.py runs the same probes at full size and prints a table.
Resume after a full disk is tests/test_shards.py's, fork safety
tests/test_fork.py's; these add what they do not cover."""

import json

import pytest

import bbpe
from bbpe import shards

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def roberta():
    return bbpe.Tokenizer.from_pretrained("roberta-base")


def test_resuming_a_finished_run_changes_nothing_and_succeeds(tmp_path, roberta):
    """A kill can land after the run finished but before its process exited;
    `--resume` must then confirm the run rather than fail."""
    corpus = tmp_path / "docs.txt"
    corpus.write_text("".join(f"document {i} with words\n" for i in range(3000)))
    whole, again = tmp_path / "whole", tmp_path / "again"
    first = shards.write(corpus, whole, roberta, shard_size="4KB", format="lines")
    shards.write(corpus, again, roberta, shard_size="4KB", format="lines")
    summary = shards.write(corpus, again, roberta, shard_size="4KB", format="lines", resume=True)
    assert summary["resumed_documents"] == 3000
    assert summary["encoded_tokens"] == 0
    assert summary["tokens"] == first["tokens"]
    assert sorted(p.name for p in whole.iterdir()) == sorted(p.name for p in again.iterdir())
    for path in whole.iterdir():
        assert path.read_bytes() == (again / path.name).read_bytes(), path.name
    assert json.loads((again / "manifest.json").read_text())["complete"] is True

