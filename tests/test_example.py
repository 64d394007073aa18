"""examples/pretrain_roberta.py trains: raw JSONL -> vocabulary -> shards ->
masked batches -> transformers' RobertaForMaskedLM with torch, and the loss
falls. A tiny model on the bundled sample, a few dozen steps on the CPU."""

import importlib.util
from pathlib import Path

import pytest

from bbpe.sample import sample_path

EXAMPLE = Path(__file__).parent.parent / "examples" / "pretrain_roberta.py"


def load_example():
    spec = importlib.util.spec_from_file_location("pretrain_roberta", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.trainers
@pytest.mark.parametrize(
    ("format", "masking"), [("full-sentences", "dynamic"), ("segment-pair", "static")]
)
def test_pretraining_lowers_the_loss(tmp_path, format, masking):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    example = load_example()
    run = example.main(
        ["--sample", "--tiny", "--steps", "40", "--vocab-size", "2000", "--max-len", "64"]
        + ["--batch-size", "8", "--format", format, "--masking", masking, "--quiet"]
        + ["--workdir", str(tmp_path), "--eval", str(sample_path())]
        + ["--eval-batches", "4", "--device", "cpu", "--torch-threads", "1"]
    )
    losses = run["losses"]
    assert len(losses) == 40 and all(loss > 0 for loss in losses)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.3, (first, last)
    assert run["eval_losses"] and run["eval_losses"][-1] < first
    assert run["tokens_per_second"] > 0
