"""The scale-out paths against one process on this machine: what splitting the
work costs, and whether the result is the same.

    PYTHONPATH=python python benches/scale.py
    PYTHONPATH=python python benches/scale.py --corpus en --max-mb 40 --parts 1,2,7 --markdown

The corpus is decompressed once to plain JSONL and cut between documents into
parts of about equal size. Every step runs as a `bbpe` command in a fresh
process, timed by its wall clock, with its own peak RSS (VmHWM):

- train: `bbpe train whole.jsonl` against `bbpe count` of each part, `bbpe
  count --merge` of the tables and `bbpe train --from-counts`; the merges must
  be identical. "K machines" is the slowest count plus merge plus learn: the
  wall clock with one machine per part.
- encode: `bbpe encode -o` of the corpus cut into `--files` files against W
  ranks (`--rank R --world-size W`, one after another here; "W machines" is
  the slowest rank plus `bbpe combine`) and, with `--ray`, `bbpe encode
  --ray` on a local cluster with 1 and 2 encoding actors (Ray's start
  included). The ids of every run, in manifest order, must be identical.
- ray-train: `bbpe train` against `bbpe train --ray` on a local cluster.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CORPUS_DIR, MB, REPO, machine_info, render

# The command in-process, then its peak RSS from VmHWM: the high-water mark of
# the process's own memory. (`wait4`'s ru_maxrss would not do: Linux carries
# the parent's high-water mark over fork and exec, so every child would
# report at least this script's peak.)
LAUNCHER = """
import sys
from bbpe.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    peak = next(line.split()[1] for line in status if line.startswith("VmHWM"))
print(f"peak-rss-kb {peak}", file=sys.stderr)
sys.exit(code)
"""
BBPE = [sys.executable, "-c", LAUNCHER]


def run(args: list[str]) -> tuple[float, float, str]:
    """Runs a bbpe command; its wall seconds, peak RSS in MB, and stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    started = time.perf_counter()
    done = subprocess.run(BBPE + args, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"bbpe {' '.join(args)} failed:\n{done.stderr}")
    peak_kb = int(done.stderr.rsplit("peak-rss-kb ", 1)[1])
    return seconds, peak_kb / 1024, done.stdout


def cut_corpus(name: str, max_mb: float | None, directory: Path, parts: int) -> list[Path]:
    """The corpus's documents as `parts` JSONL files of about equal text."""
    lines = []
    with lzma.open(CORPUS_DIR / f"{name}.jsonl.xz", "rt", encoding="utf-8") as source:
        size = 0
        for line in source:
            lines.append(line)
            size += len(line.encode())
            if max_mb and size >= max_mb * MB:
                break
    per_part = size / parts
    groups: list[list[str]] = [[] for _ in range(parts)]
    written = 0
    for line in lines:
        groups[min(int(written / per_part), parts - 1)].append(line)
        written += len(line.encode())
    paths = []
    for index, group in enumerate(groups):
        paths.append(directory / f"part{index:03d}.jsonl")
        paths[-1].write_text("".join(group), encoding="utf-8")
    return paths


def read_merges(directory: Path) -> list[str]:
    return (directory / "merges.txt").read_text(encoding="utf-8").splitlines()


def bench_train(args, work: Path) -> tuple[list[str], list[list[str]], list[str]]:
    learn = ["--vocab-size", str(args.vocab_size), "--max-words", "none", "--json"]
    learn += ["--threads", str(args.threads)]
    whole = cut_corpus(args.corpus, args.max_mb, work, 1)[0]
    seconds, rss, out = run(["train", str(whole), "-o", str(work / "one"), *learn])
    one = json.loads(out)
    rows = [["one process: bbpe train", f"{seconds:.2f}", "", f"{rss:.0f}", "", "(reference)"]]
    notes = [
        f"corpus: {args.corpus}, {one['text_bytes'] / MB:.1f} MB of text, "
        f"{one['documents']:,} documents, {one['unique_words']:,} distinct words; "
        f"vocab {args.vocab_size:,}, {args.threads} threads per process"
    ]
    for parts in args.parts:
        directory = work / f"parts{parts}"
        directory.mkdir()
        files = cut_corpus(args.corpus, args.max_mb, directory, parts)
        counts, tables = [], []
        for path in files:
            table = path.with_suffix(".bin")
            counts.append(
                run(
                    ["count", str(path), "-o", str(table), "--threads", str(args.threads), "--json"]
                )
            )
            tables.append(table)
        table_mb = sum(t.stat().st_size for t in tables) / MB
        merged = directory / "all.bin"
        merge_s, merge_rss, out = run(
            ["count", "--merge", *map(str, tables), "-o", str(merged), "--json"]
        )
        merged_mb = json.loads(out)["file_bytes"] / MB
        learn_s, learn_rss, _ = run(
            ["train", "--from-counts", str(merged), "-o", str(directory / "vocab"), *learn]
        )
        same = read_merges(directory / "vocab") == read_merges(work / "one")
        count_sum = sum(s for s, _, _ in counts)
        count_max = max(s for s, _, _ in counts)
        rows.append(
            [
                f"{parts} parts: count each, merge, learn",
                f"{count_sum + merge_s + learn_s:.2f}",
                f"{count_max + merge_s + learn_s:.2f}",
                f"{max(max(r for _, r, _ in counts), merge_rss, learn_rss):.0f}",
                f"{table_mb:.1f} / {merged_mb:.1f}",
                "identical" if same else "DIFFERENT",
            ]
        )
        notes.append(
            f"{parts} parts: counting {count_sum:.2f} s in all (slowest part {count_max:.2f} s), "
            f"merging the tables {merge_s:.2f} s ({merge_rss:.0f} MB), learning "
            f"{learn_s:.2f} s ({learn_rss:.0f} MB)"
        )
    headers = [
        "path",
        "one machine s",
        "K machines s",
        "peak RSS MB",
        "tables / merged MB",
        "merges",
    ]
    return headers, rows, notes


def shard_ids_sha256(directory: Path) -> str:
    """SHA-256 of the ids of every shard in manifest order: equal for two runs
    only if they hold the same documents, in the same order, with one dtype."""
    manifest = json.loads((directory / "manifest.json").read_text())
    digest = hashlib.sha256()
    for entry in manifest["shards"]:
        digest.update((directory / (entry["prefix"] + ".bin")).read_bytes())
    return digest.hexdigest()


def bench_encode(args, work: Path) -> tuple[list[str], list[list[str]], list[str]]:
    """One `bbpe encode -o` against ranks (then `bbpe combine`) and Ray."""
    encode = ["--tokenizer", "roberta-base", "--append-eos", "--json"]
    files = cut_corpus(args.corpus, args.max_mb, work, args.files)
    names = [str(f) for f in files]
    seconds, rss, out = run(["encode", *names, "-o", str(work / "one"), *encode])
    tokens = json.loads(out)["tokens"]
    reference = shard_ids_sha256(work / "one")
    text_mb = sum(f.stat().st_size for f in files) / MB
    rows = [["one process: bbpe encode -o", f"{seconds:.2f}", "", f"{rss:.0f}", "(reference)"]]
    notes = [
        f"encoding: {args.corpus}, {text_mb:.1f} MB of JSONL in {len(files)} files, "
        f"{tokens:,} tokens, roberta-base, --append-eos"
    ]
    for world in args.parts:
        out_dir = work / f"ranks{world}"
        ranks = [
            run(
                [
                    "encode",
                    *names,
                    "-o",
                    str(out_dir),
                    "--rank",
                    str(r),
                    "--world-size",
                    str(world),
                    "--threads",
                    str(args.threads),
                    *encode,
                ]
            )
            for r in range(world)
        ]
        combine_s, combine_rss, _ = run(["combine", str(out_dir)])
        total = sum(s for s, _, _ in ranks)
        slowest = max(s for s, _, _ in ranks)
        same = shard_ids_sha256(out_dir) == reference
        rows.append(
            [
                f"{world} ranks, then bbpe combine",
                f"{total + combine_s:.2f}",
                f"{slowest + combine_s:.2f}",
                f"{max([r for _, r, _ in ranks] + [combine_rss]):.0f}",
                "identical" if same else "DIFFERENT",
            ]
        )
        notes.append(
            f"{world} ranks: slowest rank {slowest:.2f} s, combine {combine_s:.2f} s "
            f"(checksums of every shard)"
        )
    if args.ray:
        for actors in (1, 2):
            out_dir = work / f"ray{actors}"
            seconds, rss, out = run(
                ["encode", *names, "-o", str(out_dir), "--ray", "--threads", str(actors), *encode]
            )
            same = shard_ids_sha256(out_dir) == reference
            rows.append(
                [
                    f"Ray, {actors} encoding actor(s), local cluster",
                    f"{seconds:.2f}",
                    "",
                    f"{rss:.0f} (driver)",
                    "identical" if same else "DIFFERENT",
                ]
            )
        seconds, _, _ = run(["encode", *names, "-o", str(work / "ray1"), "--ray", *encode])
        notes.append(f"Ray rerun with every block done (receipts checked): {seconds:.2f} s")
    headers = ["path", "one machine s", "W machines s", "peak RSS MB", "ids"]
    return headers, rows, notes


def bench_ray_train(args, work: Path) -> tuple[list[str], list[list[str]], list[str]]:
    learn = ["--vocab-size", str(args.vocab_size), "--max-words", "none", "--json"]
    files = [str(f) for f in cut_corpus(args.corpus, args.max_mb, work, args.files)]
    one_s, one_rss, _ = run(["train", *files, "-o", str(work / "one"), *learn])
    ray_s, ray_rss, _ = run(["train", *files, "-o", str(work / "ray"), "--ray", *learn])
    same = read_merges(work / "ray") == read_merges(work / "one")
    rows = [
        ["one process: bbpe train", f"{one_s:.2f}", f"{one_rss:.0f}", "(reference)"],
        [
            "bbpe train --ray (local cluster)",
            f"{ray_s:.2f}",
            f"{ray_rss:.0f} (driver)",
            "identical" if same else "DIFFERENT",
        ],
    ]
    return ["path", "seconds", "peak RSS MB", "merges"], rows, []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="en", help="en, ko, multi or code")
    parser.add_argument("--max-mb", type=float, default=None, help="first N MB of the corpus")
    parser.add_argument("--parts", default="1,2,7", help="part counts to cut the corpus into")
    parser.add_argument("--vocab-size", type=int, default=50_265)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--files", type=int, default=8, help="input files for encoding")
    parser.add_argument("--sections", default="train,encode", help="train, encode, ray-train")
    parser.add_argument("--ray", action="store_true", help="also time bbpe encode --ray")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    args.parts = [int(p) for p in args.parts.split(",")]
    benches = {"train": bench_train, "encode": bench_encode, "ray-train": bench_ray_train}
    print("\n".join(machine_info()))
    for section in args.sections.split(","):
        with tempfile.TemporaryDirectory(prefix="bbpe-scale-") as work:
            headers, rows, notes = benches[section](args, Path(work))
        print(f"\n{section}:")
        print(render(headers, rows, args.markdown))
        for note in notes:
            print(f"- {note}")


if __name__ == "__main__":
    main()
