"""What compression costs `bbpe encode -o`: the same English text as plain
JSONL, as one compressed file and as the same text cut into several
compressed files, each encoded to shards by the command on all cores.

bbpe reads as many files at once as it has threads (each on a thread of its
own, documents handed on in file order), so several .xz files decompress in
parallel where one .xz file is read at one decompressor's pace. The script
makes the inputs from `../shared/corpus/en.jsonl.xz` in a temporary
directory (xz preset 6 and gzip level 6 by Python's modules, zstd level 3 by
the `zstd` command when it is installed), then times each as a fresh command,
wall clock, best of `--repeats`, and checks that every input gives shards
with the same bytes.

    PYTHONPATH=python python benches/compressed_inputs.py --max-mb 40
    PYTHONPATH=python python benches/compressed_inputs.py --parts 8 --repeats 2 --markdown
"""

import argparse
import datetime
import gzip
import hashlib
import json
import lzma
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CORPUS_DIR, REPO, render

CORPUS = CORPUS_DIR / "en.jsonl.xz"


def plain_lines(max_mb: float | None) -> tuple[list[bytes], int]:
    """The corpus's JSON lines (whole documents until `max_mb` MB of text) and their text bytes."""
    lines, text_bytes = [], 0
    with lzma.open(CORPUS, "rb") as source:
        for line in source:
            lines.append(line)
            text_bytes += len(json.loads(line)["text"].encode())
            if max_mb and text_bytes >= max_mb * 1e6:
                break
    return lines, text_bytes


def write_inputs(lines: list[bytes], parts: int, directory: Path) -> dict[str, list[Path]]:
    """Each input form: its name and its files."""
    whole = b"".join(lines)
    cut = [
        b"".join(lines[k * len(lines) // parts : (k + 1) * len(lines) // parts])
        for k in range(parts)
    ]
    forms: dict[str, list[Path]] = {}

    def write(name: str, chunks: list[bytes], suffix: str, compress) -> None:
        paths = []
        for k, chunk in enumerate(chunks):
            path = directory / name / f"part{k:02d}.jsonl{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(compress(chunk))
            paths.append(path)
        forms[f"{name} ({len(chunks)} file{'s' if len(chunks) > 1 else ''})"] = paths

    write("plain", [whole], "", bytes)
    write("xz", [whole], ".xz", lambda data: lzma.compress(data, preset=6))
    write("xz-parts", cut, ".xz", lambda data: lzma.compress(data, preset=6))
    write("gzip", [whole], ".gz", lambda data: gzip.compress(data, compresslevel=6))
    write("gzip-parts", cut, ".gz", lambda data: gzip.compress(data, compresslevel=6))
    if shutil.which("zstd"):

        def zstd(data: bytes) -> bytes:
            return subprocess.run(
                ["zstd", "-q", "-3", "-c"], input=data, capture_output=True, check=True
            ).stdout

        write("zstd", [whole], ".zst", zstd)
    return forms


def encode(files: list[Path], output: Path, threads: int | None, package: str) -> float:
    """Wall-clock seconds of `bbpe encode FILES -o OUTPUT` as a fresh command,
    bbpe imported from the directory `package`."""
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, "-m", "bbpe", "encode", *map(str, files), "-o", str(output)]
    command += ["--tokenizer", "gpt2", "--append-eos"]
    if threads:
        command += ["--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": package}
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def shards_digest(directory: Path) -> str:
    """SHA-256 of the shards' .bin and .idx files, in name order."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.bin")) + sorted(directory.glob("*.idx")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--max-mb", type=float, help="MB of text to use (default: the whole corpus)"
    )
    parser.add_argument("--parts", type=int, default=8, help="files the text is cut into")
    parser.add_argument("--threads", type=int, help="bbpe's threads (default: every core)")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument(
        "--builds",
        default=str(REPO / "python"),
        help="comma-separated directories to import bbpe from, each timed on the same inputs "
        "(default: this checkout's python/)",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    builds = args.builds.split(",")
    print(
        "command: PYTHONPATH=python python "
        + shlex.join(["benches/compressed_inputs.py", *sys.argv[1:]])
    )

    lines, text_bytes = plain_lines(args.max_mb)
    with tempfile.TemporaryDirectory(prefix="bbpe-compressed-") as tmp:
        root = Path(tmp)
        forms = write_inputs(lines, args.parts, root)
        runs = [(name, build) for name in forms for build in builds]
        best = dict.fromkeys(runs, float("inf"))
        digests = {}
        for _ in range(args.repeats):  # rounds: a slow spell falls on every run alike
            for name, build in runs:
                seconds = encode(forms[name], root / "out", args.threads, build)
                best[name, build] = min(best[name, build], seconds)
                digests[name, build] = shards_digest(root / "out")
        reference = runs[0]
        rows = []
        for name, files in forms.items():
            size = sum(path.stat().st_size for path in files)
            row = [name, f"{size / 1e6:.1f}"]
            for build in builds:
                seconds = best[name, build]
                row += [f"{seconds:.2f}", f"{text_bytes / seconds / 1e6:.1f}"]
                row.append(f"{best[reference] / seconds:.2f}x")
            same = all(digests[name, build] == digests[reference] for build in builds)
            rows.append([*row, "yes" if same else "NO"])
    print(
        f"\n{len(lines):,} documents, {text_bytes / 1e6:.1f} MB of text, "
        f"threads {args.threads or os.cpu_count()}, best of {args.repeats}, wall clock per command"
    )
    headers = ["input", "MB on disk"]
    for k in range(len(builds)):
        label = f" ({chr(ord('A') + k)})" if len(builds) > 1 else ""
        headers += [f"seconds{label}", f"MB/s of text{label}", f"vs plain{' (A)' if label else ''}"]
    headers.append("same shards")
    if len(builds) > 1:
        print("builds: " + ", ".join(f"{chr(ord('A') + k)} = {b}" for k, b in enumerate(builds)))
    print(render(headers, rows, args.markdown))
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"python {platform.python_version()}, {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
