"""How encoding, `bbpe encode -o` and training scale with cores, against peers.

    python benches/scaling.py --threads 1,2 --max-mb 20
    python benches/scaling.py --threads 1,2,4,8,16 --max-mb 200 --markdown   # a big host

For each thread count n, every measurement runs in a fresh process pinned with `taskset` to n
CPUs (the first n this process may use, so hyperthread siblings come last only if the OS lists
them last) and told to use n threads:

- encode: `benches/encode.py`'s worker, one engine at a time (bbpe's flat output, bbpe's lists,
  tiktoken's `encode_ordinary_batch`, HF tokenizers' `encode_batch_fast`, gigatoken where
  installed), texts already in memory, the GPT-2 vocabulary;
- shards: `bbpe encode FILE -o DIR` on the corpus as plain JSONL (reading, encoding, writing),
  then on the same text cut into `--files` plain JSONL files and into as many .xz files
  (xz preset 6): bbpe reads as many files at once as it has threads, so these show whether
  reading (JSON scanning, decompression) keeps up with the encoders;
- train: `bbpe train FILE` (50,257 tokens, GPT-2's special token, no word cap): counting,
  which spreads over the threads, then learning the merges, which mostly does not.
The two commands are timed by the seconds they report, without Python's start.

Speeds are MB of UTF-8 text a second; "per core" is the speed at n threads over n times the
speed at one. Nothing here assumes a core count: thread counts above the CPUs this process
may use are skipped and said so.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import CORPUS_DIR, MB, REPO, machine_info, render

ENCODE = Path(__file__).resolve().parent / "encode.py"
ENGINES = ["bbpe", "bbpe-list", "tiktoken", "hf", "gigatoken"]


def pinned(threads: int) -> list[str]:
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    return ["taskset", "-c", ",".join(map(str, cpus))]


def environment(threads: int) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    env["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")]))
    return env


def encode_speed(engine: str, corpus: Path, threads: int, max_mb: float, out: str) -> float | None:
    """MB/s of one engine's batch call, or None where it is not installed."""
    command = [sys.executable, str(ENCODE), "--worker", "--engine", engine]
    command += ["--threads", str(threads), "--out", out, "--corpus-file", str(corpus)]
    command += ["--max-mb", str(max_mb)]
    done = subprocess.run(
        pinned(threads) + command, env=environment(threads), capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{engine}, {threads} threads:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return None if "unavailable" in report else report["bytes"] / report["seconds"] / MB


def command_seconds(args: list[str], threads: int) -> float:
    """The seconds a `bbpe ... --json` command reports for its work (from
    loading the tokenizer or reading the first file; not Python's start)."""
    command = [*pinned(threads), sys.executable, "-m", "bbpe.cli", *args]
    command += ["--threads", str(threads), "--json"]
    done = subprocess.run(command, env=environment(threads), capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"bbpe {' '.join(args)}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def plain_corpus(
    corpus: Path, max_mb: float, files: int, directory: Path
) -> tuple[dict[str, list[Path]], int]:
    """The first `max_mb` MB of text of an xz JSONL corpus as one plain JSONL file, as
    `files` plain files and as `files` .xz files (by workload name); its text bytes."""
    import lzma

    lines, size = [], 0
    with lzma.open(corpus, "rb") as source:
        for line in source:
            lines.append(line)
            size += len(json.loads(line)["text"].encode("utf-8"))
            if size >= max_mb * MB:
                break
    whole = directory / "corpus.jsonl"
    whole.write_bytes(b"".join(lines))
    inputs = {"shards: bbpe encode -o": [whole]}
    plain, packed = [], []
    for k in range(files):
        part = b"".join(lines[k * len(lines) // files : (k + 1) * len(lines) // files])
        plain.append(directory / f"part{k:03d}.jsonl")
        plain[-1].write_bytes(part)
        packed.append(directory / f"part{k:03d}.jsonl.xz")
        packed[-1].write_bytes(lzma.compress(part, preset=6))
    inputs[f"shards: bbpe encode -o, {files} files"] = plain
    inputs[f"shards: bbpe encode -o, {files} .xz files"] = packed
    return inputs, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2,4,8,16")
    parser.add_argument("--corpus", default="en")
    parser.add_argument("--max-mb", type=float, default=20)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs")
    parser.add_argument("--files", type=int, default=16, help="files the text is cut into")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    available = len(os.sched_getaffinity(0))
    wanted = [int(n) for n in args.threads.split(",")]
    counts = [n for n in wanted if n <= available]
    skipped = [n for n in wanted if n > available]
    corpus = CORPUS_DIR / f"{args.corpus}.jsonl.xz"
    speeds: dict[str, dict[int, float | None]] = {}
    with tempfile.TemporaryDirectory(prefix="bbpe-scaling-") as work:
        work = Path(work)
        inputs, text_bytes = plain_corpus(corpus, args.max_mb, args.files, work)
        plain = inputs["shards: bbpe encode -o"][0]
        for _ in range(args.repeats):
            for n in counts:
                for engine in args.engines.split(","):
                    got = encode_speed(engine, corpus, n, args.max_mb, str(work / "ids"))
                    best = speeds.setdefault(f"encode: {engine}", {}).get(n)
                    speeds[f"encode: {engine}"][n] = max(filter(None, [got, best]), default=None)
                for name, files in inputs.items():
                    shards = ["encode", *map(str, files), "-o", str(work / "shards")]
                    seconds = command_seconds([*shards, "--overwrite", "--tokenizer", "gpt2"], n)
                    row = speeds.setdefault(name, {})
                    row[n] = max(row.get(n) or 0, text_bytes / seconds / MB)
                train = ["train", str(plain), "-o", str(work / "vocab"), "--vocab-size", "50257"]
                seconds = command_seconds([*train, "--gpt2-specials", "--max-words", "none"], n)
                row = speeds.setdefault("train: bbpe train", {})
                row[n] = max(row.get(n) or 0, text_bytes / seconds / MB)
    headers = [
        "workload",
        *[f"{n} thr MB/s" for n in counts],
        *[f"{n} thr per core" for n in counts[1:]],
    ]
    rows = []
    for name, by_count in speeds.items():
        one = by_count.get(counts[0])
        cells = [f"{by_count[n]:.1f}" if by_count.get(n) else "-" for n in counts]
        per_core = [
            f"{by_count[n] / (n / counts[0] * one):.2f}" if by_count.get(n) and one else "-"
            for n in counts[1:]
        ]
        rows.append([name, *cells, *per_core])
    print("\n".join(machine_info()))
    print(f"corpus: {args.corpus}, first {text_bytes / MB:.1f} MB of text; best of {args.repeats}")
    print(render(headers, rows, args.markdown))
    if skipped:
        print(f"skipped thread counts above the {available} CPUs available: {skipped}")


if __name__ == "__main__":
    main()
