"""Counts, not times: what one pass of `encode_core` costs under cachegrind.

This VM's timings move by 10-20% from minute to minute, more than most changes to the
encoder are worth. Cachegrind counts the instructions a pass runs and the reads that
miss a 32 KB L1 and a 1 MB last-level cache (this machine's L1d and L2 per core), the
same on every run. Each build runs twice, with one pass and with two; the difference is
one pass with a fresh encoder, so reading the corpus is left out. The first build is the
baseline the others are compared with.

    cargo bench --bench encode_core --no-run     # then copy target/release/deps/encode_core-*
    python benches/encode_counts.py /tmp/en.jsonl --mb 60 /tmp/ec_before /tmp/ec_after

Needs valgrind. A pass of 60 MB takes about a minute under it.
"""

import argparse
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

CACHES = ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64"]


def counts(binary: str, corpus: str, mb: int, passes: int) -> tuple[int, int, int]:
    """Instructions, L1 data read misses and last-level data read misses of a whole run."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", *CACHES]
    command += ["--cachegrind-out-file=/dev/null", binary, corpus]
    command += ["--mb", str(mb), "--repeats", str(passes)]
    done = subprocess.run(command, capture_output=True, text=True)
    report = done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{binary} under cachegrind exited with {done.returncode}:\n{report}")

    def number(pattern: str) -> int:
        found = re.search(pattern, report)
        if found is None:
            raise RuntimeError(f"no {pattern!r} in cachegrind's report for {binary}:\n{report}")
        return int(found.group(1).replace(",", ""))

    return (
        number(r"I\s+refs:\s+([\d,]+)"),
        number(r"D1\s+misses:\s+[\d,]+\s+\(\s*([\d,]+) rd"),
        number(r"LLd misses:\s+[\d,]+\s+\(\s*([\d,]+) rd"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a JSONL file, as encode_core reads it")
    parser.add_argument("binaries", nargs="+", help="encode_core builds; the first is the baseline")
    parser.add_argument("--mb", type=int, default=60, help="millions of bytes of text to encode")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.error("valgrind is needed (its cachegrind tool does the counting); install it first")
    for path in [args.corpus, *args.binaries]:
        if not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    runs = [(binary, passes) for binary in args.binaries for passes in (1, 2)]
    with ThreadPoolExecutor() as pool:
        results = list(pool.map(lambda run: counts(run[0], args.corpus, args.mb, run[1]), runs))
    per_pass = {}
    for (binary, passes), result in zip(runs, results, strict=True):
        sign = 1 if passes == 2 else -1
        totals = per_pass.setdefault(binary, [0, 0, 0])
        for i, value in enumerate(result):
            totals[i] += sign * value
    base = per_pass[args.binaries[0]]
    print(f"one pass over {args.mb} MB of {args.corpus}, fresh encoder, one thread")
    print(f"{'build':<32} {'instructions':>16} {'L1 read misses':>18} {'1 MB LL misses':>18}")
    for binary in args.binaries:
        cells = [
            f"{value / 1e6:,.{2 if i else 0}f}M ({value / base[i]:.3f}x)"
            for i, value in enumerate(per_pass[binary])
        ]
        print(f"{binary:<32} {cells[0]:>16} {cells[1]:>18} {cells[2]:>18}")


if __name__ == "__main__":
    main()
