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



@pytest.mark.parametrize(
    ("field", "damage"),
    [
        # A renamed key: its check was skipped without a word.
        ("bin_sha256", lambda entry: entry.pop("bin_sha256")),
        ("input_documents", lambda entry: entry.pop("input_documents")),
        ("documents", lambda entry: entry.update(documents="12")),
        # A wrong count of input documents: a resumed run would skip input.
        ("input_documents", lambda entry: entry.update(input_documents=1)),
    ],
    ids=["no bin_sha256", "no input_documents", "documents a string", "input_documents too few"],
)
def test_info_reports_a_manifest_entry_that_lost_or_garbled_a_field(
    tmp_path, roberta, field, damage
):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("".join(f"document {i} with words\n" for i in range(300)))
    shards.write(corpus, tmp_path / "out", roberta, shard_size="1KB", format="lines")
    manifest_path = tmp_path / "out" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    damage(manifest["shards"][1])
    manifest_path.write_text(json.dumps(manifest, indent=2))
    problems = shards.info(tmp_path / "out")["problems"]
    assert any(str(manifest_path) in p and field in p for p in problems), problems
