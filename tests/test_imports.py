"""What importing a module loads: reading shards (and combining the parts
that ranks wrote) and making masked-LM batches need NumPy only, never the
compiled core, and the command line starts without NumPy (`bbpe encode`
never needs it)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import bbpe
from bbpe import shards

PACKAGE_ROOT = str(Path(bbpe.__file__).parent.parent)


def loaded_after(code: str) -> dict:
    """Runs `code` in a fresh interpreter; which of bbpe's heavy dependencies it loaded."""
    script = code + (
        "\nimport json, sys\n"
        "print(json.dumps({m: m in sys.modules for m in ('bbpe._core', 'numpy')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": PACKAGE_ROOT, "PATH": ""},
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_reading_shards_and_masking_batches_do_not_load_the_core(tmp_path):
    prefix = str(tmp_path / "data")
    lengths = [5, 3, 4, 6, 2, 5]
    shards.write_index(prefix + ".idx", lengths, [0, 2, 4, 6], np.uint16)
    tokens = np.arange(sum(lengths), dtype=np.uint16) % 50 + 10
    Path(prefix + ".bin").write_bytes(tokens.tobytes())
    code = f"""
import bbpe.shards, bbpe.packing, bbpe.masking, bbpe.blending, bbpe.data
from bbpe.shards import IndexedDataset, check, combine_parts, info
ds = IndexedDataset({prefix!r})
assert ds.document(1)[0].tolist() == {tokens[8:12].tolist()}
assert check({prefix!r}) == [] and info({prefix!r})["tokens"] == {sum(lengths)}
specials = bbpe.packing.SpecialIds(bos=0, eos=2, pad=1, mask=3)
masker = bbpe.masking.Masker(64, 3, [0, 1, 2, 3], pad_id=1)
dataset = bbpe.data.MaskedLMDataset({prefix!r}, specials=specials, masker=masker, max_len=8)
assert len(dataset) > 0 and dataset[0]["labels"].shape == dataset[0]["input_ids"].shape
blend = bbpe.data.MaskedLMDataset([(2, {prefix!r}), (1, {prefix!r})], specials=specials,
                                  masker=masker, max_len=8, split="train", split_weights=(2, 1, 0))
assert len(blend) > 0 and blend[0]["labels"].shape == blend[0]["input_ids"].shape
"""
    assert loaded_after(code) == {"bbpe._core": False, "numpy": True}


def test_the_command_line_starts_without_numpy():
    assert loaded_after("import bbpe.cli; bbpe.cli.build_parser()")["numpy"] is False


def test_importing_bbpe_never_imports_ray():
    script = (
        "import bbpe, bbpe.shards, bbpe.cli, sys\n"
        "bbpe.cli.build_parser()\n"
        "print('ray' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": PACKAGE_ROOT, "PATH": ""},
    )
    assert result.stdout.split() == ["False"]
