"""End-to-end speed of `bbpe encode -o` (read JSONL, encode on all cores, write
Megatron shards) against the raw batch-encode speed of the same tokenizer in
the same run, against a Megatron `preprocess_data.py`-style pipeline built
on Hugging Face tokenizers, and against datatrove and dolma when given.

    PYTHONPATH=python python benches/encode_shards.py
    PYTHONPATH=python python benches/encode_shards.py --max-mb 20 --markdown \
        --datatrove-python /tmp/peers-venv/bin/python --dolma-python /tmp/dolma-venv/bin/python

datatrove 0.10.1 needs numpy>=2 and dolma 1.2.1 numpy<2, so each has its own venv:

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install datatrove==0.10.1 orjson tokenizers
    python3 -m venv /tmp/dolma-venv
    /tmp/dolma-venv/bin/pip install dolma==1.2.1 "numpy<2" tokenizers \
        boto3==1.26.76 botocore==1.29.76 aiobotocore==2.5.0  # else pip backtracks for ages

The corpus (`../shared/corpus/en.jsonl.xz`) is decompressed to plain JSONL
first, so that no engine pays for xz. Each measurement runs in a fresh
process and is timed from its start to its last byte written:

- raw: the documents already in a Python list, one `encode_batch_flat` call
  (no reading, no parsing, no writing): the ceiling for the pipeline; timed
  alone, and with `Tokenizer.from_pretrained` before it, since the command's
  own time includes loading the tokenizer.
- bbpe encode: `python -m bbpe encode FILE -o DIR --tokenizer gpt2
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
import gzip
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
TOKENIZER = "gpt2"
EOS = "<|endoftext|>"


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


RAW_LOADED = "raw batch encode, loading the tokenizer included"
BBPE_REPORTED = "bbpe encode -o (as it reports: tokenizer loading included, no interpreter start)"


def worker_raw(path: str) -> dict:
    import bbpe

    loading = time.perf_counter()
    tok = bbpe.Tokenizer.from_pretrained(TOKENIZER)
    load_seconds = time.perf_counter() - loading
    with open(path, encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f]
    start = time.perf_counter()
    ids, _ = tok.encode_batch_flat(docs)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "load_seconds": load_seconds, "tokens": int(len(ids))}


_hf = None


def _hf_encode(line: str) -> list[int]:
    return _hf.encode(json.loads(line)["text"], add_special_tokens=False).ids


def _hf_init(tokenizer_json: str) -> None:
    global _hf
    from tokenizers import Tokenizer

    _hf = Tokenizer.from_str(tokenizer_json)


def worker_megatron(path: str, out: str) -> dict:
    """Megatron's preprocess_data.py shape: pool.imap over lines (chunksize 25),
    the main process appending each document (plus <|endoftext|>) to the shard."""
    import bbpe
    from bbpe import shards

    start = time.perf_counter()
    tok = bbpe.Tokenizer.from_pretrained(TOKENIZER)
    eos = tok.token_to_id(EOS)
    lengths = []
    with (
        open(path, encoding="utf-8") as lines,
        multiprocessing.Pool(os.cpu_count(), _hf_init, (tok.to_json(),)) as pool,
        open(out + ".bin", "wb") as bin_file,
    ):
        for ids in pool.imap(_hf_encode, lines, 25):
            if ids:
                ids.append(eos)
                bin_file.write(np.array(ids, dtype=np.uint16).tobytes())
                lengths.append(len(ids))
    shards.write_index(out + ".idx", lengths, range(len(lengths) + 1), np.uint16)
    return {"seconds": time.perf_counter() - start, "tokens": sum(lengths)}


def worker_datatrove(inputs: str, out: str, tokenizer_json: str) -> dict:
    """datatrove as its README runs it: a LocalPipelineExecutor over a JsonlReader
    (one task per input file) and its MegatronDocumentTokenizer (tokenizers'
    `encode_batch`, eos appended by a post-processor, one .bin/.idx per task)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens.megatron_tokenizer import MegatronDocumentTokenizer

    tasks = len(os.listdir(inputs))
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(inputs),
            MegatronDocumentTokenizer(out, tokenizer_name_or_path=tokenizer_json, eos_token=EOS),
        ],
        tasks=tasks,
        workers=os.cpu_count(),
        logging_dir=out + "-logs",
    ).run()
    return {"tasks": tasks}


def split_inputs(path: Path, directory: Path, parts: int, gzipped: bool) -> None:
    """The plain JSONL cut into `parts` files of consecutive documents (peers
    parallelise over files), with an `id` (the line number) for dolma."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    directory.mkdir()
    step = -(-len(lines) // parts)
    for part in range(parts):
        chunk = lines[part * step : (part + 1) * step]
        if gzipped:
            chunk = [
                json.dumps({"id": str(part * step + i), "text": json.loads(line)["text"]}) + "\n"
                for i, line in enumerate(chunk)
            ]
            with gzip.open(directory / f"part-{part}.jsonl.gz", "wt", encoding="utf-8") as f:
                f.writelines(chunk)
        else:
            (directory / f"part-{part}.jsonl").write_text("".join(chunk), encoding="utf-8")


def read_dolma(out: Path) -> dict[int, np.ndarray]:
    """dolma's output: part-*.npy (a raw uint16 memmap, no header) beside
    part-*.csv.gz rows of start,end,id,src,loc; documents are shuffled across
    files by its ring, so map them back by id."""
    import csv

    sequences = {}
    for memmap in sorted(out.glob("*.npy")):
        tokens = np.fromfile(memmap, dtype=np.uint16)
        meta = memmap.with_name(memmap.name[: -len(".npy")] + ".csv.gz")
        with gzip.open(meta, "rt") as rows:
            for start, end, doc_id, *_ in csv.reader(rows):
                sequences[int(doc_id)] = tokens[int(start) : int(end)]
    return sequences


def run(args: list[str], python: str = sys.executable) -> dict:
    result = subprocess.run([python, __file__, *args], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{python} {shlex.join(args)} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-mb", type=float, default=None, help="cap the corpus (MB of text)")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--datatrove-python", help="python of a venv with datatrove, numpy (else skipped)"
    )
    parser.add_argument("--dolma-python", help="python of a venv with dolma (else skipped)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        workers = {"raw": worker_raw, "megatron": worker_megatron, "datatrove": worker_datatrove}
        result = workers[kind](*rest)
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
        # The peers' inputs, prepared outside the timings: a file per core (they
        # parallelise over files), gzipped with an `id` for dolma; GPT-2 as a
        # local tokenizer.json (no Hub here).
        import bbpe

        bbpe.Tokenizer.from_pretrained(TOKENIZER).save_pretrained(str(tmp / "tokenizer"))
        tokenizer_json = str(tmp / "tokenizer" / "tokenizer.json")
        eos_id = bbpe.Tokenizer.from_pretrained(TOKENIZER).token_to_id(EOS)
        dt_python, dt_in, dolma_in = args.datatrove_python, tmp / "datatrove-in", tmp / "dolma-in"
        if dt_python:
            split_inputs(path, dt_in, os.cpu_count(), gzipped=False)
        else:
            print("datatrove: not installed (skipped; give --datatrove-python)")
        if args.dolma_python:
            split_inputs(path, dolma_in, os.cpu_count(), gzipped=True)
        else:
            print("dolma: not installed (skipped; give --dolma-python)")
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
                    TOKENIZER,
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
            timings = [
                ("raw batch encode", raw["seconds"]),
                (RAW_LOADED, raw["load_seconds"] + raw["seconds"]),
                ("bbpe encode -o (command, wall clock)", bbpe_seconds),
                (BBPE_REPORTED, reported),
                ("megatron-style (HF tokenizers)", mega["seconds"]),
            ]
            tokens = {"raw": raw["tokens"], "bbpe": manifest["tokens"], "megatron": mega["tokens"]}
            if args.datatrove_python:
                dt_out = tmp / f"datatrove{repeat}"
                start = time.perf_counter()
                run(["--worker", "datatrove", str(dt_in), str(dt_out), tokenizer_json], dt_python)
                timings.append(("datatrove (command, wall clock)", time.perf_counter() - start))
            if args.dolma_python:
                dolma_out = tmp / f"dolma{repeat}"
                dolma = str(Path(args.dolma_python).parent / "dolma")
                start = time.perf_counter()
                subprocess.run(
                    [dolma, "tokens", "--documents", str(dolma_in / "*.jsonl.gz")]
                    + ["--destination", str(dolma_out)]
                    + ["--tokenizer.name_or_path", tokenizer_json]
                    + ["--tokenizer.eos_token_id", str(eos_id)]
                    + ["--processes", str(os.cpu_count()), "--dtype", "uint16"]
                    + ["--work_dir.input", str(tmp / f"dolma-work-in{repeat}")]
                    + ["--work_dir.output", str(tmp / f"dolma-work-out{repeat}")],
                    check=True,
                    capture_output=True,
                )
                timings.append(("dolma tokens (command, wall clock)", time.perf_counter() - start))
            for name, seconds in timings:
                best[name] = min(best.get(name, float("inf")), seconds)

        # The shards agree: same ids per document (all end with <|endoftext|>, no BOS).
        from bbpe import shards

        ours = [shards.IndexedDataset(out / s["prefix"]) for s in manifest["shards"]]
        ours_sequences = [sequence for ds in ours for sequence in ds]

        def same_as_ours(theirs) -> bool:
            return len(theirs) == len(ours_sequences) and all(
                np.array_equal(sequence, theirs[i]) for i, sequence in enumerate(ours_sequences)
            )

        same = {"megatron": same_as_ours(shards.IndexedDataset(tmp / f"megatron{repeat}"))}
        if args.datatrove_python:
            parts = [shards.IndexedDataset(p.with_suffix("")) for p in sorted(dt_out.glob("*.idx"))]
            theirs = [sequence for ds in parts for sequence in ds]
            tokens["datatrove"] = int(sum(len(x) for x in theirs))
            same["datatrove"] = same_as_ours(theirs)
        if args.dolma_python:
            theirs = read_dolma(dolma_out)
            tokens["dolma"] = int(sum(len(x) for x in theirs.values()))
            same["dolma"] = same_as_ours(theirs)
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
    print(f"tokens: {tokens}")
    print(f"ids identical to bbpe's, document by document: {same}")
    # The command's own time includes loading the tokenizer; against raw
    # encoding with its loading timed too, both pay that fixed cost once.
    print(
        "bbpe encode -o as it reports, against raw batch encode with the tokenizer's loading "
        f"in both: {best[RAW_LOADED] / best[BBPE_REPORTED]:.2f}x"
    )
    bbpe_seconds = best["bbpe encode -o (command, wall clock)"]
    for name, seconds in best.items():
        if not name.startswith(("raw", "bbpe")):
            print(f"bbpe encode -o is {seconds / bbpe_seconds:.1f}x faster than {name}")
    print(
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"python {platform.python_version()}, best of {args.repeats}"
    )


if __name__ == "__main__":
    main()
