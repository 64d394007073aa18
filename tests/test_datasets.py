"""bbpe inside Hugging Face `datasets`: `Dataset.map` caches by a fingerprint
of the function, which pickles the tokenizer; that pickle must be the same in
every run, or each run recomputes and `datasets` warns that the function could
not be hashed. (Forked `map` workers are in test_fork.py.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import bbpe

MAP = """
import json, os, sys
import datasets, bbpe
from bbpe.sample import sample_path
name = sys.argv[2]
if name == "trained":
    tok = bbpe.train(sample_path(), vocab_size=1000)
else:
    tok = bbpe.Tokenizer.from_pretrained(name)
ds = datasets.load_from_disk(sys.argv[1])
out = ds.map(lambda batch: tok(batch["text"], truncation=True, max_length=64), batched=True)
files = [f["filename"] for f in out.cache_files]
mtimes = [os.path.getmtime(f) for f in files]
ids = out.to_dict()["input_ids"]
print(json.dumps({"fingerprint": out._fingerprint, "files": files, "mtimes": mtimes, "ids": ids}))
"""


@pytest.mark.trainers
@pytest.mark.parametrize("name", ["roberta-base", "trained"])
def test_map_is_cached_by_the_same_fingerprint_in_every_run(tmp_path, name):
    datasets = pytest.importorskip("datasets")
    from bbpe.sample import sample_texts

    texts = sample_texts()
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(tmp_path / "data"))
    env_path = str(Path(bbpe.__file__).parent.parent)
    runs = []
    for _ in range(2):  # two processes: nothing shared but the files
        done = subprocess.run(
            [sys.executable, "-c", MAP, str(tmp_path / "data"), name],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": env_path, "PATH": "", "HF_DATASETS_OFFLINE": "1"},
        )
        assert "hashed" not in done.stderr, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    first, second = runs
    assert first["fingerprint"] == second["fingerprint"]
    assert first["files"] == second["files"] and first["mtimes"] == second["mtimes"]  # reused
    tok = bbpe.Tokenizer.from_pretrained(name) if name != "trained" else None
    if tok is not None:
        assert first["ids"] == tok(texts, truncation=True, max_length=64)["input_ids"]
