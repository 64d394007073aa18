"""Faults and stress at CI scale (about a minute on two cores): the
probes of reliability/faults.py with small inputs and few repetitions;
reliability/stress.py runs the same probes at full size and prints a table.
Resume after a full disk is tests/test_shards_pipeline.py's, fork safety
tests/test_fork.py's; these add what they do not cover."""

import json
import random
import signal
import sys
from pathlib import Path

import pytest

import bbpe
from bbpe import shards

if sys.platform == "win32":
    # The probes kill with POSIX signals, fork and cap file sizes with rlimits.
    pytest.skip("POSIX fault probes", allow_module_level=True)

# The probes live beside the long script.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
import faults  # noqa: E402

from test_shards_pipeline import same_files  # noqa: E402

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
    assert same_files(whole, again)
    assert json.loads((again / "manifest.json").read_text())["complete"] is True


@pytest.fixture(scope="module")
def lines_corpus(tmp_path_factory) -> Path:
    return faults.write_lines_corpus(tmp_path_factory.mktemp("corpus") / "docs.txt", 3)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_signal_at_a_random_moment_leaves_a_run_that_resumes_to_the_same_bytes(
    lines_corpus, tmp_path, sig
):
    rows = faults.interrupt_and_resume(
        lines_corpus,
        tmp_path,
        sig,
        times=3,
        rng=random.Random(sig),
        shard_size="100KB",
        resumes_killed=1,
    )
    for row in rows:
        assert row["resume_exit"] == 0, row
        assert row["identical"], row
        if sig == signal.SIGINT:
            assert row["partial_files"] == [], row
            # Otherwise the signal found the run done and Python exiting.
            if not row["finished_first"]:
                assert row["exit"] == 130 and row["stderr"].endswith("interrupted"), row


def test_a_full_disk_keeps_the_finished_shards_listed_and_whole(lines_corpus, tmp_path):
    corpus = faults.write_lines_corpus(tmp_path / "docs.txt", 0.3)
    row = faults.full_disk_then_resume(corpus, tmp_path, limit=30_000, shard_size="20KB")
    assert row["exit"] == 2, row
    assert "File too large" in row["stderr"] and str(tmp_path) in row["stderr"], row
    assert row["finished_shards"] > 0, row
    # Nothing is wrong with what was finished; the run is only unfinished.
    assert row["problems"] == [] and row["unfinished"], row
    assert row["resume_exit"] == 0 and row["identical"], row


def test_damaged_shards_are_reported_by_info_and_never_misread_as_another_error(
    lines_corpus, tmp_path
):
    whole = tmp_path / "whole"
    assert faults.encode_in_a_child(lines_corpus, whole, "--shard-size", "100KB").returncode == 0
    rows = faults.damage_shards(whole, tmp_path, trials=8, rng=random.Random(1))
    classes = {(row["file"].split(".")[-1], row["class"]) for row in rows}
    assert len(classes) == 7, classes
    for row in rows:
        assert not row["reader"].startswith("other error"), row
        if row["class"] == "manifest header" and row["damage"] == "flip":
            # Names and settings: compared with the next run's on --resume.
            assert not row["info"].startswith("raised"), row
        else:
            assert row["info"] == "names the file", row
        # The reader's checks are O(1) at opening plus each sequence's own
        # pointer and length; a cut-short file is always one of its errors.
        if row["damage"] == "truncate" and row["file"] != "manifest.json":
            assert row["reader"] == "error naming the file", row


def test_damaged_compressed_inputs_are_errors_naming_the_file(tmp_path, roberta):
    rows = faults.damage_compressed_inputs(
        tmp_path, trials=4, rng=random.Random(2), tokenizer=roberta
    )
    assert {row["format"] for row in rows} >= {".gz", ".xz"}
    for row in rows:
        assert row["encode"] == "names the file" and row["train"] == "names the file", row


def test_degenerate_documents_take_time_in_proportion_to_size(tmp_path):
    rows = faults.degenerate_inputs(
        tmp_path, faults.DEGENERATE_KINDS, sizes=[1_000_000, 4_000_000], timeout=120
    )
    for small, large in zip(rows[::2], rows[1::2], strict=True):
        for job in ("encode", "train"):
            assert large[f"{job}_exit"] == 0, large
            # Four times the text: well under ten times the time (quadratic
            # would be sixteen), with half a second for a busy machine.
            assert large[f"{job}_s"] < 10 * small[f"{job}_s"] + 0.5, (small, large)
            # Memory grows linearly: a document that is one pretoken of 3 MB
            # more costs about 30-50 bytes a byte more (merge state per byte;
            # figures in RELIABILITY.md), far from a quadratic blow-up.
            grown = (large[f"{job}_rss_mb"] - small[f"{job}_rss_mb"]) * 2**20
            assert grown < 100 * (large["bytes"] - small["bytes"]), (small, large)


def test_sixteen_threads_share_one_tokenizer(roberta):
    row = faults.shared_tokenizer(roberta, threads=16, seconds=8)
    assert row["error_count"] == 0 and row["mismatch_count"] == 0, row
    assert all(count > 0 for count in row["calls"].values()), row


def test_training_memory_per_distinct_word_is_measured(tmp_path):
    row = faults.training_memory(tmp_path, words=200_000, timeout=300)
    assert row.get("unique_words", 0) >= 200_000, row
    # A generous bound that still catches a per-word blow-up (the figure at
    # scale is in RELIABILITY.md).
    assert row["bytes_per_word"] < 2000, row


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
