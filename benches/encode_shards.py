"""End-to-end speed of `bbpe encode -o` (read JSONL, encode on all cores, write
Megatron shards) against the raw batch-encode speed of the same tokenizer in
the same run, and against a Megatron `preprocess_data.py`-style pipeline built
on Hugging Face tokenizers.

    PYTHONPATH=python python benches/encode_shards.py
    PYTHONPATH=python python benches/encode_shards.py --max-mb 20 --markdown

The corpus (`../shared/corpus/en.jsonl.xz`) is decompressed to plain JSONL
first, so that no engine pays for xz. Each measurement runs in a fresh
process and is timed from its start to its last byte written:

- raw: the documents already in a Python list, one `encode_batch_flat` call
  (no reading, no parsing, no writing): the ceiling for the pipeline.
- bbpe encode: `python -m bbpe encode FILE -o DIR --tokenizer roberta-base
  --append-eos` as a command: its wall clock, everything included (Python's
  start too), and the time it reports itself (from loading the tokenizer to
  the last shard written).
- megatron-style: what Megatron-LM's `tools/preprocess_data.py` does, with a
  `tokenizers.Tokenizer` (Rust) as its tokenizer: a multiprocessing pool (one
  worker per core, chunks of 25 lines) parses each JSON line and encodes the
  document; the main process appends the ids to `.bin` and writes the `.idx`.

All three produce the same ids; the script checks that the shards agree.
"""

import argparse
import datetime
import json
import lzma
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CORPUS_DIR, REPO, render

CORPUS = CORPUS_DIR / "en.jsonl.xz"


def plain_jsonl(max_mb: float | None, directory: Path) -> tuple[Path, int, int]:
    """The corpus as plain JSONL (first `max_mb` MB of text); its path, text bytes, documents."""
    path = directory / "en.jsonl"
    text_bytes = documents = 0
    with lzma.open(CORPUS, "rt", encoding="utf-8") as source, open(path, "w") as out:
        for line in source:
            text = json.loads(line)["text"]
            out.write(line)
            text_bytes += len(text.encode())
            documents += 1
            if max_mb and text_bytes >= max_mb * 1e6:
                break
    return path, text_bytes, documents


def worker_raw(path: str) -> dict:
    import bbpe

    tok = bbpe.Tokenizer.from_pretrained("roberta-base")
    with open(path, encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f]
    start = time.perf_counter()
    ids, _ = tok.encode_batch_flat(docs)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": int(len(ids))}


_hf = None


def _hf_encode(line: str) -> list[int]:
    return _hf.encode(json.loads(line)["text"], add_special_tokens=False).ids


def _hf_init(tokenizer_json: str) -> None:
    global _hf
    from tokenizers import Tokenizer

    _hf = Tokenizer.from_str(tokenizer_json)


def worker_megatron(path: str, out: str) -> dict:
    """Megatron's preprocess_data.py shape: pool.imap over lines (chunksize 25),
    the main process appending each document (plus </s>) to the shard."""
    import bbpe
    from bbpe import shards

    start = time.perf_counter()
    roberta = bbpe.Tokenizer.from_pretrained("roberta-base")
    eos = roberta.token_to_id("</s>")
    lengths = []
    with (
        open(path, encoding="utf-8") as lines,
        multiprocessing.Pool(os.cpu_count(), _hf_init, (roberta.to_json(),)) as pool,
        open(out + ".bin", "wb") as bin_file,
    ):
        for ids in pool.imap(_hf_encode, lines, 25):
            if ids:
                ids.append(eos)
                bin_file.write(np.array(ids, dtype=np.uint16).tobytes())
                lengths.append(len(ids))
    shards.write_index(out + ".idx", lengths, range(len(lengths) + 1), np.uint16)
    return {"seconds": time.perf_counter() - start, "tokens": sum(lengths)}


def run(args: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-mb", type=float, default=None, help="cap the corpus (MB of text)")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        result = worker_raw(*rest) if kind == "raw" else worker_megatron(*rest)
        print(json.dumps(result))
        return

    print(
        "command: PYTHONPATH=python python "
        + shlex.join(["benches/encode_shards.py", *sys.argv[1:]])
    )
    with tempfile.TemporaryDirectory(prefix="bbpe-shards-bench-") as tmp:
        tmp = Path(tmp)
        path, text_bytes, documents = plain_jsonl(args.max_mb, tmp)
        print(
            f"corpus: {path.stat().st_size / 1e6:.1f} MB of JSONL, {text_bytes / 1e6:.1f} MB "
            f"of text, {documents} documents; {os.cpu_count()} cores"
        )
        best: dict[str, float] = {}
        tokens: dict[str, int] = {}
        for repeat in range(args.repeats):
            raw = run(["--worker", "raw", str(path)])
            out = tmp / f"bbpe{repeat}"
            start = time.perf_counter()
            command = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bbpe",
                    "encode",
                    str(path),
                    "-o",
                    str(out),
                    "--tokenizer",
                    "roberta-base",
                    "--append-eos",
                    "--json",
                ],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO / "python")},
            )
            bbpe_seconds = time.perf_counter() - start
            # What the command itself reports: from loading the tokenizer to the
            # last shard written, without the interpreter's start and imports.
            reported = json.loads(command.stdout.strip().splitlines()[-1])["seconds"]
            manifest = json.loads((out / "manifest.json").read_text())
            mega = run(["--worker", "megatron", str(path), str(tmp / f"megatron{repeat}")])
            for name, seconds in [
                ("raw batch encode", raw["seconds"]),
                ("bbpe encode -o (command, wall clock)", bbpe_seconds),
                ("bbpe encode -o (as it reports, no interpreter start)", reported),
                ("megatron-style (HF tokenizers)", mega["seconds"]),
            ]:
                best[name] = min(best.get(name, float("inf")), seconds)
            tokens = {"raw": raw["tokens"], "bbpe": manifest["tokens"], "megatron": mega["tokens"]}

        # The shards agree: same ids per document (bbpe and megatron-style both end with </s>).
        from bbpe import shards

        ours = [shards.IndexedDataset(out / s["prefix"]) for s in manifest["shards"]]
        theirs = shards.IndexedDataset(tmp / f"megatron{args.repeats - 1}")
        ours_sequences = [sequence for ds in ours for sequence in ds]
        same = len(ours_sequences) == len(theirs) and all(
            np.array_equal(sequence, theirs[i]) for i, sequence in enumerate(ours_sequences)
        )
    raw_seconds = best["raw batch encode"]
    rows = [
        [
            name,
            f"{seconds:.2f}",
            f"{text_bytes / 1e6 / seconds:.1f}",
            f"{raw_seconds / seconds:.2f}x",
        ]
        for name, seconds in best.items()
    ]
    headers = ["pipeline", "seconds", "MB/s of text", "vs raw batch encode"]
    print(render(headers, rows, args.markdown))
    print(f"tokens: {tokens}; bbpe shards equal the megatron-style shards: {same}")
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"python {platform.python_version()}, best of {args.repeats}"
    )


if __name__ == "__main__":
    main()
