"""Wall time of `bbpe.ray.encode` against single-machine `bbpe.shards.write`
on the same JSONL files, and a check that both wrote the same ids.

    PYTHONPATH=python python benches/ray_encode.py --mb 20 --files 8 --markdown

The first `--mb` MB of text of `../shared/corpus/en.jsonl.xz` (whole documents)
are written as `--files` plain JSONL files (Ray gives each file to one actor).
The cluster is local (`ray.init(num_cpus=2)`), started once and timed apart;
each Ray run is timed from the call to the manifest written, actor start-up
included, into a fresh directory; "rerun" is a second call on a finished
directory (every receipt checked, nothing encoded). Runs repeat in rounds and
the best of each is shown.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray
from common import CORPUS_DIR, MB, load_texts, machine_info, render

import bbpe.ray
from bbpe import shards

TOKENIZER = "gpt2"


def write_files(directory: Path, texts: list[str], count: int) -> list[Path]:
    per_file = -(-len(texts) // count)
    files = []
    for i in range(count):
        path = directory / f"part{i:02d}.jsonl"
        part = texts[i * per_file : (i + 1) * per_file]
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in part), encoding="utf-8")
        files.append(path)
    return files


def all_ids(directory: Path) -> bytes:
    """The .bin bytes of every shard in manifest order (same dtype for both)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    return b"".join((directory / f"{e['prefix']}.bin").read_bytes() for e in manifest["shards"])


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bbpe-ray-bench-") as scratch:
        scratch = Path(scratch)
        texts = load_texts(CORPUS_DIR / "en.jsonl.xz", args.mb)
        text_mb = sum(len(t.encode("utf-8")) for t in texts) / MB
        files = write_files(scratch, texts, args.files)
        init = timed(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        runs = {
            "shards.write, 1 thread": lambda out: shards.write(files, out, TOKENIZER, threads=1),
            "shards.write, 2 threads": lambda out: shards.write(files, out, TOKENIZER, threads=2),
            "ray, concurrency 1": lambda out: bbpe.ray.encode(files, out, TOKENIZER, concurrency=1),
            "ray, concurrency 2": lambda out: bbpe.ray.encode(files, out, TOKENIZER, concurrency=2),
        }
        best = {name: float("inf") for name in [*runs, "ray rerun (all skipped)"]}
        reference = None
        for round_ in range(args.repeats):
            for name, run in runs.items():
                out = scratch / f"out-{round_}-{name.replace(' ', '_').replace(',', '')}"
                best[name] = min(best[name], timed(lambda: run(out)))  # noqa: B023
                ids = all_ids(out)
                reference = reference or ids
                assert ids == reference, f"{name}: other ids than the first run"
                if name == "ray, concurrency 2":
                    rerun = timed(lambda: bbpe.ray.encode(files, out, TOKENIZER))  # noqa: B023
                    best["ray rerun (all skipped)"] = min(best["ray rerun (all skipped)"], rerun)
        ray.shutdown()

    print("\n".join(machine_info()))
    print(f"corpus: {text_mb:.1f} MB of en text in {len(texts):,} documents, {args.files} files")
    print(f"ray.init(num_cpus=2): {init:.2f} s (not in the times below)\n")
    rows = [[name, f"{seconds:.2f}", f"{text_mb / seconds:.1f}"] for name, seconds in best.items()]
    print(render(["run", "wall s (best)", "MB/s"], rows, args.markdown))


if __name__ == "__main__":
    main()
