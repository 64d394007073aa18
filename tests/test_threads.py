"""Worker threads: a thread count is bounded, and asking for many different
counts does not leave a pool of threads behind for each."""

import json
import os
import subprocess
import sys
import time

import pytest

from bbpe import Tokenizer

TEXTS = ["It was a great day. 좋은 날이었다. " * 20] * 200


@pytest.fixture(scope="module")
def gpt2():
    return Tokenizer.from_pretrained("gpt2")


def test_too_many_threads_is_a_clear_error(gpt2):
    for call in (gpt2.encode_batch, gpt2.encode_batch_flat):
        with pytest.raises(ValueError, match=r"threads=1000000 is more than \d+"):
            call(TEXTS, threads=10**6)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/task")
def test_pools_of_many_sizes_do_not_pile_up_threads(gpt2):
    expected = gpt2.encode_batch(TEXTS, threads=1)
    cores = len(os.sched_getaffinity(0))
    for threads in range(1, 4 * cores + 1):
        assert gpt2.encode_batch(TEXTS, threads=threads) == expected
    # The all-cores pool and the latest other size, at most. Counted by name,
    # as other libraries in this process keep threads of their own (a Ray
    # driver's stay after ray.shutdown). A pool let go ends its threads on
    # their own time, so they are given a few seconds to go.
    bound = cores + 4 * cores
    deadline = time.monotonic() + 10
    while len(pool_threads()) > bound and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pool_threads()) <= bound


def pool_threads() -> list[str]:
    """This process's threads of bbpe's pools (named bbpe-N by system/threads.rs)."""
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:  # ended meanwhile
            pass
    return [name for name in names if name.startswith("bbpe-")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_resuming_shards_starts_no_thread_outside_bbpes_pools(tmp_path):
    # Rayon's global pool cannot be rebuilt in a forked child, and ignores
    # `threads`: every thread besides the interpreter's must be a bbpe-N.
    script = f"""
import json, os
from bbpe import shards
from bbpe.sample import sample_path
for resume in (False, True):
    shards.write(sample_path(), {str(tmp_path)!r}, "roberta-base", shard_size="100KB",
                 threads=1, resume=resume)
names = [open(f"/proc/self/task/{{t}}/comm").read().strip() for t in os.listdir("/proc/self/task")]
print(json.dumps(sorted(name for name in names if not name.startswith("bbpe-"))))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert len(json.loads(result.stdout)) == 1, result.stdout  # the interpreter's main thread


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_writing_shards_keeps_one_pool(tmp_path):
    # Encoding runs on the caller and a pool of threads - 1; converting,
    # cutting sentences and checking the shards a resumed run keeps use the
    # same threads, not a pool of their own.
    script = f"""
import json, os, re
from bbpe import shards
from bbpe.sample import sample_path
for resume in (False, True):
    shards.write(sample_path(), {str(tmp_path)!r}, "roberta-base", shard_size="100KB",
                 threads=3, resume=resume, split_sentences=True)
names = [open(f"/proc/self/task/{{t}}/comm").read().strip() for t in os.listdir("/proc/self/task")]
print(json.dumps(sorted(name for name in names if re.fullmatch(r"bbpe-[0-9]+", name))))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == ["bbpe-0", "bbpe-1"], result.stdout
