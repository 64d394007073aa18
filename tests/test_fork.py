"""A tokenizer must work in a forked child exactly as in its parent, whether
or not the parent's worker threads ran before the fork (multiprocessing and
DataLoader workers under Linux's default start method, `datasets.map`).
Each scenario runs in a fresh interpreter with a time limit, so a deadlock
fails the test instead of hanging the suite."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")

PRELUDE = """
import multiprocessing as mp, os, bbpe
tok = bbpe.Tokenizer.from_pretrained("roberta-base")
texts = ["It was a great day. 좋은 날이었다. " * 20] * 1000
expected = tok.encode(texts[0])
expected_flat = tok.encode(texts[0], add_special_tokens=False)  # flat ids have no template
def encode(chunk):
    return tok.encode_batch(chunk)
def encode_flat(chunk):
    ids, offsets = tok.encode_batch_flat(chunk)
    return ids.tolist()
"""

SCENARIOS = {
    # The reproduction: no pool ran in the parent.
    "fork pool, parent idle": """
with mp.get_context("fork").Pool(2) as pool:
    results = pool.map(encode, [texts[:500], texts[500:]])
assert [r for part in results for r in part] == [expected] * 1000
""",
    # The parent's pool ran, then the child encodes on all cores.
    "fork pool after the parent encoded": """
assert tok.encode_batch(texts) == [expected] * 1000
with mp.get_context("fork").Pool(2) as pool:
    results = pool.map(encode_flat, [texts[:500], texts[500:]])
assert results == [expected_flat * 500] * 2
assert tok.encode_batch(texts[:10], threads=1) == [expected] * 10
""",
    # A DataLoader-like worker: os.fork, encode in the child, report by exit status.
    "bare os.fork, twice deep": """
tok.encode_batch(texts, threads=2)
for depth in range(2):
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        break
    ok = tok.encode_batch(texts) == [expected] * 1000
    ok = ok and tok.encode_batch_flat(texts)[0].tolist() == expected_flat * 1000
    if depth == 1 or not ok:
        os._exit(0 if ok else 1)
""",
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_encoding_in_a_forked_child(name):
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(SCENARIOS[name])
    code = f"if True:\n{textwrap.indent(code, '    ')}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: no result in 120 s (a deadlock)")
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.trainers
def test_datasets_map_with_two_processes(tmp_path):
    datasets = pytest.importorskip("datasets")
    import bbpe

    tok = bbpe.Tokenizer.from_pretrained("roberta-base")
    texts = ["It was a great day. 좋은 날이었다. " * 20] * 200
    tok.encode_batch(texts)  # the pool has run before the fork
    data = datasets.Dataset.from_dict({"text": texts})
    mapped = data.map(
        lambda batch: {"ids": tok.encode_batch(batch["text"])},
        batched=True,
        num_proc=2,
        cache_file_name=str(tmp_path / "cache.arrow"),
    )
    assert mapped["ids"] == tok.encode_batch(texts)
