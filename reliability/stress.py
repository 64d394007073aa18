"""Faults and stress at full size: runs the probes of reliability/faults.py and
prints a table of probes and results (RELIABILITY.md records one).

    PYTHONPATH=python python reliability/stress.py --quick    # minutes
    PYTHONPATH=python python reliability/stress.py --full     # about an hour, 20 GB of RAM
    PYTHONPATH=python python reliability/stress.py --quick --only signals damage

Exits 1 if any probe found a fault (a row marked FAIL)."""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faults  # noqa: E402

import bbpe  # noqa: E402

SCALES = {
    "quick": {
        "corpus_mb": 10,
        "kills": 5,
        "disk_limits": [5_000, 50_000, 100_000],
        "damage_trials": 24,
        "compressed_trials": 12,
        "runs": [2_500_000, 10_000_000],
        "one_line": [20_000_000, 80_000_000],
        "thread_seconds": 20,
        "forks": 30,
        "distinct_words": [1_000_000, 4_000_000],
    },
    "full": {
        "corpus_mb": 40,
        "kills": 20,
        "disk_limits": [5_000, 50_000, 80_000, 100_000],
        "damage_trials": 200,
        "compressed_trials": 60,
        "runs": [2_500_000, 10_000_000],
        "one_line": [75_000_000, 300_000_000],
        "thread_seconds": 180,
        "forks": 200,
        "distinct_words": [5_000_000, 20_000_000],
    },
}

Row = tuple[str, str, str, bool]  # probe, setting, result, ok


def signals(scale: dict, workdir: Path, rng: random.Random) -> list[Row]:
    corpus = faults.write_lines_corpus(workdir / "corpus.txt", scale["corpus_mb"])
    rows = []
    for sig in (signal.SIGKILL, signal.SIGINT):
        results = faults.interrupt_and_resume(
            corpus, workdir, sig, scale["kills"], rng, shard_size="1MB", resumes_killed=2
        )
        exits = collections.Counter(r["exit"] for r in results)
        partial = sum(bool(r["partial_files"]) for r in results)
        identical = sum(r["identical"] and r["resume_exit"] == 0 for r in results)
        slowest_exit = max(r["exit_s"] for r in results)
        ok = identical == len(results)
        if sig == signal.SIGINT:
            stopped = [r for r in results if not r["finished_first"]]
            ok = ok and partial == 0 and all(r["exit"] == 130 for r in stopped)
        rows.append(
            (
                f"{signal.Signals(sig).name} during encode -o, then --resume",
                f"{len(results)} runs, each hit at a random moment, then 2 of its resumed "
                f"runs too; {scale['corpus_mb']} MB, 1 MB shards",
                f"exits {dict(exits)} ({sum(r['finished_first'] for r in results)} after the "
                f"run had finished), at most {slowest_exit:.2f} s after the signal; "
                f".partial left {partial}x; "
                f"resume byte-identical {identical}/{len(results)}",
                ok,
            )
        )
        for r in results:
            if not (r["identical"] and r["resume_exit"] == 0):
                print(json.dumps(r), file=sys.stderr)
    return rows


def disk_full(scale: dict, workdir: Path, rng: random.Random) -> list[Row]:
    corpus = faults.write_lines_corpus(workdir / "corpus.txt", 5)
    rows = []
    for limit in scale["disk_limits"]:
        r = faults.full_disk_then_resume(corpus, workdir, limit, shard_size="10KB")
        message = r["stderr"].splitlines()[-1] if r["stderr"] else ""
        ok = (
            r["exit"] == 2
            and "File too large" in message
            and r["problems"] == []
            and r["resume_exit"] == 0
            and r["identical"]
        )
        rows.append(
            (
                "disk full (RLIMIT_FSIZE) during encode -o, then --resume",
                f"files capped at {limit:,} bytes, 5 MB corpus, 10 KB shards",
                f"exit {r['exit']}: {message[:90]}; {r['finished_shards']} finished shards "
                f"intact and listed (info problems: {len(r['problems'])}); resume "
                f"{'byte-identical' if r['identical'] else 'DIFFERENT'}",
                ok,
            )
        )
    return rows


def damage(scale: dict, workdir: Path, rng: random.Random) -> list[Row]:
    corpus = faults.write_lines_corpus(workdir / "corpus.txt", 2)
    whole = workdir / "whole"
    assert faults.encode_in_a_child(corpus, whole, "--shard-size", "200KB").returncode == 0
    results = faults.damage_shards(whole, workdir, scale["damage_trials"], rng)
    rows = []
    by_class = collections.defaultdict(list)
    for r in results:
        by_class[(r["class"], r["damage"])].append(r)
    for (kind, how), group in by_class.items():
        info = collections.Counter(r["info"] for r in group)
        reader = collections.Counter(r["reader"] for r in group)
        crashed = [r for r in group if "raised" in r["info"] or "other" in r["reader"]]
        quiet = info.get("silent", 0) + info.get("says something else", 0)
        ok = not crashed and (quiet == 0 or (kind == "manifest header" and how == "flip"))
        rows.append(
            (
                f"{how} in {kind}",
                f"{len(group)} random positions",
                f"info: {dict(info)}; IndexedDataset: {dict(reader)}",
                ok,
            )
        )
        for r in crashed:
            print(json.dumps(r), file=sys.stderr)
    return rows


def compressed(scale: dict, workdir: Path, rng: random.Random) -> list[Row]:
    tokenizer = bbpe.Tokenizer.from_pretrained("roberta-base")
    results = faults.damage_compressed_inputs(workdir, scale["compressed_trials"], rng, tokenizer)
    rows = []
    for (suffix, how), group in _group(results, "format", "damage").items():
        outcomes = collections.Counter((r["encode"][:40], r["train"][:40]) for r in group)
        ok = all(r["encode"] == r["train"] == "names the file" for r in group)
        rows.append(
            (
                f"{how} .jsonl{suffix} input",
                f"{len(group)} random positions",
                f"(encode, train): {dict(outcomes)}",
                ok,
            )
        )
    return rows


def degenerate(scale: dict, workdir: Path, rng: random.Random) -> list[Row]:
    plan = [(kind, scale["runs"]) for kind in faults.DEGENERATE_KINDS[1:]]
    plan.insert(0, (faults.DEGENERATE_KINDS[0], scale["one_line"]))
    rows = []
    for kind, sizes in plan:
        results = faults.degenerate_inputs(workdir, [kind], sizes, timeout=1800)
        small, large = results
        ok = True
        figures = []
        for job in ("encode", "train"):
            if large[f"{job}_exit"] != 0:
                figures.append(f"{job} FAILED: {large[f'{job}_error'][:100]}")
                ok = False
                continue
            growth = large[f"{job}_s"] / max(small[f"{job}_s"], 1e-3)
            ratio = large["bytes"] / small["bytes"]
            ok = ok and growth < 2.5 * ratio
            mb_s = large["bytes"] / 1e6 / max(large[f"{job}_s"], 1e-3)
            figures.append(
                f"{job} {large[f'{job}_s']:.2f} s ({mb_s:,.0f} MB/s; x{growth:.1f} time for "
                f"x{ratio:.0f} size), peak RSS {large[f'{job}_rss_mb']:,.0f} MB"
            )
        rows.append(
            (f"one document: {kind}", f"{large['bytes'] / 1e6:,.0f} MB", "; ".join(figures), ok)
        )
    return rows


def threads(scale: dict, workdir: Path, rng: random.Random) -> list[Row]:
    tokenizer = bbpe.Tokenizer.from_pretrained("roberta-base")
    r = faults.shared_tokenizer(tokenizer, 16, scale["thread_seconds"], seed=rng.randrange(1 << 30))
    ok = r["error_count"] == 0 and r["mismatch_count"] == 0
    return [
        (
            "16 Python threads share one Tokenizer",
            f"{scale['thread_seconds']} s of mixed calls, threads=None/1/2/cores/2*cores",
            f"calls {r['calls']}; mismatches {r['mismatch_count']}, errors {r['error_count']} "
            f"{r['errors'][:1]}",
            ok,
        )
    ]


def forks(scale: dict, workdir: Path, rng: random.Random) -> list[Row]:
    r = faults.fork_under_load(scale["forks"], busy_threads=4, timeout=1800)
    ok = r["exit"] == 0 and r["failed_children"] == 0
    return [
        (
            "os.fork() while 4 threads run encode_batch; child encodes",
            f"{r['forks']} forks",
            f"exit {r['exit']}, timed out {r['timed_out']}, failed children "
            f"{r['failed_children']}, {r['wall_s']} s {r['stderr'][-200:]}",
            ok,
        )
    ]


def training_memory(scale: dict, workdir: Path, rng: random.Random) -> list[Row]:
    rows = []
    for words in scale["distinct_words"]:
        r = faults.training_memory(workdir, words, timeout=3600)
        if "error" in r:
            rows.append(("train on distinct words", f"{words:,}", r["error"], False))
            continue
        rows.append(
            (
                "train, default settings (--max-words auto: half the memory)",
                f"{r['unique_words']:,} distinct words, {r['corpus_mb']} MB",
                f"peak RSS {r['peak_rss_mb']:,.0f} MB ({r['baseline_rss_mb']:.0f} MB on 1,000 "
                f"words): {r['bytes_per_word']:.0f} bytes per distinct word; "
                f"{r['seconds']:.1f} s (count {r['count_seconds']:.1f} s, "
                f"merges {r['merge_seconds']:.1f} s)",
                True,
            )
        )
    return rows


def _group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    groups = collections.defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row)
    return groups


PROBES = {
    "signals": signals,
    "disk": disk_full,
    "damage": damage,
    "compressed": compressed,
    "degenerate": degenerate,
    "threads": threads,
    "fork": forks,
    "memory": training_memory,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="scale", const="quick")
    size.add_argument("--full", action="store_const", dest="scale", const="full")
    parser.add_argument("--only", nargs="+", choices=list(PROBES), default=list(PROBES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scale = SCALES[args.scale or "quick"]
    rng = random.Random(args.seed)
    print("| probe | setting | result | ok | s |\n|---|---|---|---|---|", flush=True)
    failed = 0
    for name in args.only:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"bbpe-{name}-") as workdir:
            rows = PROBES[name](scale, Path(workdir), rng)
        seconds = time.perf_counter() - started
        for probe, setting, result, ok in rows:
            failed += not ok
            verdict = "ok" if ok else "FAIL"
            print(f"| {probe} | {setting} | {result} | {verdict} | {seconds:.0f} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
