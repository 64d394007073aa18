"""Fault-injection and stress probes, at any scale: tests/test_faults.py runs
them small in CI, reliability/stress.py at full size and prints a table.

Each probe returns rows (dicts): what was done and what happened, measured,
never judged here; the callers decide what must hold. Commands run as
`python -m bbpe` children, so a crash, a kill or a deadlock hits the child,
and peak memory is the child's own (os.wait4)."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import bbpe
from bbpe import shards
from bbpe.sample import sample_texts
from bbpe.shards import pipeline

# The command-line helpers of the shard tests: a child `bbpe encode` (optionally
# with a file-size limit, as a full disk) and a byte-for-byte directory comparison.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_shards_pipeline import encode_in_a_child, same_files  # noqa: E402


def child_env() -> dict[str, str]:
    """The environment `encode_in_a_child` gives its children."""
    return {
        "PYTHONPATH": str(Path(bbpe.__file__).parent.parent),
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run_measured(args: list[str], timeout: float) -> dict:
    """Runs a child; its exit status, output, wall time and peak RSS (MB)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(args, stdout=out, stderr=err, env=child_env())
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.01)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        return {
            "exit": child.returncode,
            "timed_out": wall > timeout,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
            "wall_s": wall,
            "peak_rss_mb": usage.ru_maxrss / 1024,
        }


def bbpe_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "bbpe", *args]


def write_lines_corpus(path: Path, megabytes: float, seed: int = 0) -> Path:
    """Documents of the bundled sample, one per line, in random order."""
    rng = random.Random(seed)
    docs = [d.replace("\n", " ") + "\n" for d in sample_texts() if d.strip()]
    target, size = int(megabytes * 1e6), 0
    with open(path, "w", encoding="utf-8") as f:
        while size < target:
            doc = rng.choice(docs)
            f.write(doc)
            size += len(doc.encode())
    return path


# ---------------------------------------------------------------------------
# signals: SIGKILL and SIGINT at random moments, then --resume


def start_encoding(corpus: Path, out: Path, *options: str) -> tuple[subprocess.Popen, float]:
    """`encode_in_a_child`'s command, started; returns once the child has
    created `out` (its work begins), with the time it did."""
    args = bbpe_args("encode", str(corpus), "-o", str(out), *options, "--format", "lines")
    child = subprocess.Popen(
        [*args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        # A shell's background job inherits SIGINT ignored, and so would Python.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    while not out.exists() and child.poll() is None:
        time.sleep(0.002)
    return child, time.perf_counter()


def interrupt_and_resume(
    corpus: Path,
    workdir: Path,
    sig: int,
    times: int,
    rng: random.Random,
    shard_size: str,
    resumes_killed: int = 0,
) -> list[dict]:
    """`bbpe encode -o` hit by `sig` at a random moment of its work (from
    when it creates the output directory to when an uninterrupted run
    exits), then `resumes_killed` resumed runs killed the same way (after
    their start-up), then resumed to the end; each row says how the first
    exited, what it left and whether the final shards equal an
    uninterrupted run's, byte for byte."""
    options = ("--shard-size", shard_size)
    workdir = workdir / signal.Signals(sig).name
    whole = workdir / "whole"
    launched = time.perf_counter()
    child, started = start_encoding(corpus, whole, *options)
    _, stderr = child.communicate()
    startup_s, work_s = started - launched, time.perf_counter() - started
    assert child.returncode == 0, stderr
    rows = []
    for attempt in range(times):
        cut = workdir / f"cut{attempt}"
        child, _ = start_encoding(corpus, cut, *options)
        after = rng.uniform(0, work_s)
        time.sleep(after)
        child.send_signal(sig)
        signalled = time.perf_counter()
        _, stderr = child.communicate(timeout=120)
        exit_s = time.perf_counter() - signalled
        left = sorted(p.name for p in cut.glob("*partial")) if cut.exists() else []
        manifest = cut / "manifest.json"
        finished = manifest.exists() and json.loads(manifest.read_text())["complete"] is True
        for _ in range(resumes_killed):
            again, _ = start_encoding(corpus, cut, *options, "--resume")
            time.sleep(startup_s + rng.uniform(0, work_s))
            again.send_signal(sig)
            again.communicate(timeout=120)
        resumed = encode_in_a_child(corpus, cut, *options, "--resume")
        rows.append(
            {
                "signal": signal.Signals(sig).name,
                "after_s": round(after, 3),
                "exit": child.returncode,
                "exit_s": round(exit_s, 3),
                "stderr": stderr.decode(errors="replace").strip()[-300:],
                "partial_files": left,
                # The signal came after the work was done (while exiting).
                "finished_first": finished,
                "resume_exit": resumed.returncode,
                "resume_stderr": resumed.stderr.decode(errors="replace")[-300:],
                "identical": same_files(whole, cut),
            }
        )
        shutil.rmtree(cut)
    return rows


# ---------------------------------------------------------------------------
# a full disk


def full_disk_then_resume(corpus: Path, workdir: Path, limit: int, shard_size: str) -> dict:
    """`bbpe encode -o` with every file capped at `limit` bytes (RLIMIT_FSIZE,
    as a full disk); then what `bbpe.shards.info` says of the directory, and
    a resume without the cap, against an uninterrupted run."""
    options = ("--shard-size", shard_size)
    whole, cut = workdir / f"whole{limit}", workdir / f"full{limit}"
    assert encode_in_a_child(corpus, whole, *options).returncode == 0
    full = encode_in_a_child(corpus, cut, *options, file_size_limit=limit)
    report = shards.info(cut) if (cut / "manifest.json").exists() else None
    manifest = json.loads((cut / "manifest.json").read_text()) if report else {"shards": []}
    listed = [entry["prefix"] for entry in manifest["shards"]]
    resumed = encode_in_a_child(corpus, cut, *options, "--resume")
    return {
        "limit": limit,
        "exit": full.returncode,
        "stderr": full.stderr.decode(errors="replace").strip(),
        "finished_shards": len(listed),
        "problems": report["problems"] if report else [],
        "unfinished": report["unfinished"] if report else [],
        "resume_exit": resumed.returncode,
        "identical": same_files(whole, cut),
    }


# ---------------------------------------------------------------------------
# damaged shards


def byte_classes(path: Path) -> dict[str, list[range]]:
    """Byte positions of a shard file or manifest by what they hold."""
    size = path.stat().st_size
    if path.suffix == ".idx":
        n, d = struct.unpack_from("<QQ", path.read_bytes(), 18)
        lengths, pointers = 34 + 4 * n, 34 + 12 * n
        return {
            "idx header": [range(0, 34)],
            "idx lengths": [range(34, lengths)],
            "idx pointers": [range(lengths, pointers)],
            "idx document indices": [range(pointers, min(pointers + 8 * d, size))],
        }
    if path.suffix == ".bin":
        return {"bin body": [range(0, size)]}
    # The shard list (pretty-printed, two spaces in) and the totals are
    # checked against the shards; the rest (tokenizer, settings, inputs) is
    # compared with the next run's when resuming.
    text = path.read_bytes()
    start = text.index(b'"shards"')
    end = text.index(b"\n  ]", start) + 4
    return {
        "manifest header": [range(0, start), range(end, size)],
        "manifest shard list": [range(start, end)],
    }


def read_everything(prefix: Path) -> str:
    """How `IndexedDataset` takes a shard: "read" (every document and
    sequence), "error naming the file", or "other error: ..." (a defect)."""
    try:
        with shards.IndexedDataset(prefix) as ds:
            for k in range(ds.documents):
                ds.document(k)
            for _ in ds:
                pass
    except (shards.ShardFormatError, FileNotFoundError) as e:
        return "error naming the file" if prefix.name in str(e) else f"other error: {e}"
    except Exception as e:  # noqa: BLE001 - any other exception is what the probe looks for
        return f"other error: {type(e).__name__}: {e}"
    return "read"


def damage_shards(whole: Path, workdir: Path, trials: int, rng: random.Random) -> list[dict]:
    """Flips a bit at, or truncates at, random positions of each byte class
    of one shard's .idx and .bin and of the manifest, then asks
    `bbpe.shards.info` and the reader. One row per damaged copy."""
    manifest = json.loads((whole / "manifest.json").read_text())
    prefix = manifest["shards"][min(1, len(manifest["shards"]) - 1)]["prefix"]
    rows = []
    for name in (f"{prefix}.idx", f"{prefix}.bin", "manifest.json"):
        for kind, ranges in byte_classes(whole / name).items():
            positions = [p for r in ranges for p in r]
            for trial in range(trials):
                copy = workdir / "damaged"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(whole, copy)
                data = bytearray((copy / name).read_bytes())
                position = rng.choice(positions)
                damage = "truncate" if trial % 4 == 0 else "flip"
                if damage == "flip":
                    bit = rng.randrange(8)
                    if name == "manifest.json" and chr(data[position]) in "abcdef":
                        bit = rng.choice([0, 1, 2, 3, 4, 6, 7])  # "B" is the same checksum as "b"
                    data[position] ^= 1 << bit
                else:
                    del data[position:]
                (copy / name).write_bytes(bytes(data))
                try:
                    report = shards.info(copy)
                    said = report["problems"] + report["unfinished"]
                    if any(name in line for line in said):
                        info = "names the file"
                    else:
                        info = "says something else" if said else "silent"
                except Exception as e:  # noqa: BLE001 - info must report, not raise
                    info, said = f"raised {type(e).__name__}: {e}", []
                rows.append(
                    {
                        "file": name,
                        "class": kind,
                        "damage": damage,
                        "position": position,
                        "info": info,
                        "info_said": said[:2],
                        "reader": read_everything(copy / prefix),
                    }
                )
    return rows


# ---------------------------------------------------------------------------
# damaged compressed inputs


def compressors() -> dict[str, callable]:
    """Suffix -> compress(bytes) for the formats this machine can write."""
    import gzip
    import lzma

    found = {".gz": gzip.compress, ".xz": lzma.compress}
    if shutil.which("zstd"):
        found[".zst"] = lambda data: (
            subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
        )
    return found


def damage_compressed_inputs(
    workdir: Path, trials: int, rng: random.Random, tokenizer: bbpe.Tokenizer
) -> list[dict]:
    """Truncates or flips a bit of gz / xz / zst corpus files at random
    positions; each is encoded (`pipeline.count`) and trained on. A row says
    what each did: an error naming the file is the expected outcome; reading
    damaged data to the end without a word is reported as "silent"."""
    text = "".join(json.dumps({"text": d}) + "\n" for d in sample_texts()[:40]).encode()
    rows = []
    for suffix, compress in compressors().items():
        packed = compress(text)
        for trial in range(trials):
            damage = "truncate" if trial % 2 == 0 else "flip"
            position = rng.randrange(len(packed) - 1 if damage == "truncate" else len(packed))
            data = bytearray(packed)
            if damage == "flip":
                data[position] ^= 1 << rng.randrange(8)
            else:
                del data[position:]
            path = workdir / f"damaged{trial}.jsonl{suffix}"
            path.write_bytes(bytes(data))
            outcome = {}
            for job, call in (
                ("encode", lambda p=path: pipeline.count(p, tokenizer)),
                ("train", lambda p=path: bbpe.train(p, vocab_size=300, holdout_every=0)),
            ):
                try:
                    call()
                    outcome[job] = "silent"
                except (ValueError, OSError) as e:
                    outcome[job] = "names the file" if path.name in str(e) else f"unnamed: {e}"
                except Exception as e:  # noqa: BLE001 - any other exception is a defect
                    outcome[job] = f"raised {type(e).__name__}: {e}"
            rows.append({"format": suffix, "damage": damage, "position": position, **outcome})
            path.unlink()
    return rows


# ---------------------------------------------------------------------------
# degenerate inputs: time and memory against size


def write_degenerate(path: Path, kind: str, size: int, seed: int = 0) -> Path:
    """`size` bytes of one kind of pathological document, without a newline
    (except "newlines", which is nothing but), written a megabyte at a time."""
    if kind == "one line of words":
        rng = random.Random(seed)
        words = [w for doc in sample_texts() for w in doc.split()]
        # Eight megabytes of the sample's words in different orders, repeated.
        chunks = [" ".join(rng.sample(words, len(words))).encode()[: 1 << 20] for _ in range(8)]
        joint = b" "
    else:
        unit = {
            "spaces": b" ",
            "newlines": b"\n",
            "carets": b"^",
            "one letter": b"a",
            "digits": b"0123456789",
        }[kind]
        chunks = [unit * ((1 << 20) // len(unit))]
        joint = unit
    with open(path, "wb") as f:
        written = 0
        for k in itertools.count():
            if written >= size:
                break
            # Whole characters only (a cut could split a Korean one), and a
            # space between chunks of words.
            chunk = chunks[k % len(chunks)][: size - written - 1]
            chunk = chunk.decode("utf-8", "ignore").encode() + joint
            f.write(chunk)
            written += len(chunk)
    return path


DEGENERATE_KINDS = ("one line of words", "spaces", "newlines", "carets", "one letter", "digits")


def encode_and_train_one_document(path: Path, workdir: Path, timeout: float) -> dict:
    """`bbpe encode` (counting) and `bbpe train` on one file: the commands'
    own timings (start-up excluded) and each child's peak RSS."""
    encode = run_measured(bbpe_args("encode", str(path), "--format", "lines", "--json"), timeout)
    train = run_measured(
        bbpe_args(
            "train",
            str(path),
            "--format",
            "lines",
            "-o",
            str(workdir / "vocab"),
            "--vocab-size",
            "1000",
            "--holdout-every",
            "0",
            "--json",
        ),
        timeout,
    )
    row = {"bytes": path.stat().st_size}
    for job, done in (("encode", encode), ("train", train)):
        ok = done["exit"] == 0 and not done["timed_out"]
        summary = json.loads(done["stdout"]) if ok else {}
        row[f"{job}_exit"] = done["exit"]
        row[f"{job}_error"] = "" if ok else (done["stderr"][-300:] or "timed out")
        row[f"{job}_s"] = summary.get("seconds")
        row[f"{job}_rss_mb"] = round(done["peak_rss_mb"], 1)
        if job == "encode":
            row["tokens"] = summary.get("tokens")
    return row


def degenerate_inputs(workdir: Path, kinds, sizes: list[int], timeout: float) -> list[dict]:
    rows = []
    for kind in kinds:
        for size in sizes:
            path = write_degenerate(workdir / "document.txt", kind, size)
            row = encode_and_train_one_document(path, workdir, timeout)
            rows.append({"kind": kind, **row})
            path.unlink()
    return rows


# ---------------------------------------------------------------------------
# one Tokenizer shared by many Python threads


def shared_tokenizer(
    tokenizer: bbpe.Tokenizer, threads: int, seconds: float, seed: int = 0
) -> dict:
    """`threads` Python threads make random mixed calls on one tokenizer for
    `seconds`; every result is compared with the single-threaded one."""
    rng = random.Random(seed)
    docs = [d for d in sample_texts() if d.strip()]
    texts = [rng.choice(docs)[: rng.randint(0, 3000)] for _ in range(64)]
    texts += ["", " ", "<s>", "좋은 날 😀 " * 50, "a" * 20000]
    single = {t: tokenizer.encode(t) for t in texts}
    plain = {
        t: tokenizer.encode(t, add_special_tokens=False, allowed_special="none") for t in texts
    }
    offsets = {t: tokenizer.encode_with_offsets(t) for t in texts}
    decoded = {t: tokenizer.decode(single[t]) for t in texts}

    def flat(batch, threads):
        ids, ends = tokenizer.encode_batch_flat(batch, threads=threads)
        return [ids[ends[i] : ends[i + 1]].tolist() for i in range(len(batch))]

    calls = {
        "encode": lambda b, n: [tokenizer.encode(t) for t in b] == [single[t] for t in b],
        "encode_batch": lambda b, n: tokenizer.encode_batch(b, threads=n) == [single[t] for t in b],
        "encode_batch_flat": lambda b, n: flat(b, n) == [plain[t] for t in b],
        "decode": lambda b, n: [tokenizer.decode(single[t]) for t in b] == [decoded[t] for t in b],
        "encode_with_offsets": lambda b, n: (
            [tokenizer.encode_with_offsets(t) for t in b] == [offsets[t] for t in b]
        ),
    }
    counts = {name: 0 for name in calls}
    failures: list[str] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def work(seed: int) -> None:
        local = random.Random(seed)
        cores = os.cpu_count() or 1
        while time.monotonic() < stop:
            name = local.choice(list(calls))
            batch = local.sample(texts, local.randint(1, len(texts)))
            threads = local.choice([None, 1, 2, cores, 2 * cores])
            try:
                if not calls[name](batch, threads):
                    failures.append(f"{name} threads={threads}")
            except Exception as e:  # noqa: BLE001 - any exception is what the probe looks for
                errors.append(f"{name}: {type(e).__name__}: {e}")
            counts[name] += 1

    workers = [threading.Thread(target=work, args=(seed + k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {
        "threads": threads,
        "seconds": seconds,
        "calls": dict(counts),
        "mismatches": failures[:5],
        "mismatch_count": len(failures),
        "errors": errors[:5],
        "error_count": len(errors),
    }


# ---------------------------------------------------------------------------
# fork while other threads encode

FORK_UNDER_LOAD = """
import os, sys, threading, time, bbpe
tok = bbpe.Tokenizer.from_pretrained("roberta-base")
texts = ["It was a great day. 좋은 날이었다. " * 20] * 400
expected = tok.encode_batch(texts)
running = True
def busy():
    while running:
        assert tok.encode_batch(texts[:200]) == expected[:200]
threads = [threading.Thread(target=busy) for _ in range({busy})]
for t in threads:
    t.start()
failed = 0
for round in range({forks}):
    time.sleep(0.01 * (round % 7))
    pid = os.fork()
    if pid == 0:
        ok = tok.encode_batch(texts) == expected
        ok = ok and tok.encode_batch_flat(texts[:50], threads=2)[0].size > 0
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    failed += os.waitstatus_to_exitcode(status) != 0
running = False
for t in threads:
    t.join()
print(failed)
"""


def fork_under_load(forks: int, busy_threads: int, timeout: float) -> dict:
    """`forks` bare os.fork() calls while `busy_threads` Python threads keep
    calling encode_batch; each child encodes on all cores. A deadlock shows
    as a time-out (the whole script runs in a child interpreter)."""
    code = textwrap.dedent(FORK_UNDER_LOAD).format(forks=forks, busy=busy_threads)
    done = run_measured([sys.executable, "-c", code], timeout)
    failed = int(done["stdout"].strip()) if done["exit"] == 0 else None
    return {
        "forks": forks,
        "busy_threads": busy_threads,
        "exit": done["exit"],
        "timed_out": done["timed_out"],
        "failed_children": failed,
        "wall_s": round(done["wall_s"], 1),
        "stderr": done["stderr"][-500:],
    }


# ---------------------------------------------------------------------------
# training memory per distinct word


def distinct_words_corpus(path: Path, words: int, per_line: int = 16) -> Path:
    """`words` distinct lowercase words, each once: "w" then the number in
    base 26, so every word is a different pretoken."""
    letters = "abcdefghijklmnopqrstuvwxyz"

    def word(i: int) -> str:
        out = []
        while True:
            i, r = divmod(i, 26)
            out.append(letters[r])
            if i == 0:
                return "w" + "".join(out)

    with open(path, "w") as f:
        for start in range(0, words, per_line):
            end = min(start + per_line, words)
            f.write(" ".join(word(i) for i in range(start, end)) + "\n")
    return path


def training_memory(workdir: Path, words: int, timeout: float) -> dict:
    """Peak RSS of `bbpe train` with the default settings (no word cap) on a
    corpus of `words` distinct words, and over a tiny corpus's, per word."""
    rows = {}
    for name, count in (("baseline", 1000), ("corpus", words)):
        corpus = distinct_words_corpus(workdir / f"{name}.txt", count)
        done = run_measured(
            bbpe_args("train", str(corpus), "-o", str(workdir / name), "--json"), timeout
        )
        if done["exit"] != 0 or done["timed_out"]:
            return {"words": words, "error": done["stderr"][-300:] or "timed out"}
        rows[name] = (json.loads(done["stdout"]), done["peak_rss_mb"], corpus.stat().st_size)
        corpus.unlink()
    summary, peak, size = rows["corpus"]
    base = rows["baseline"][1]
    return {
        "words": words,
        "corpus_mb": round(size / 1e6, 1),
        "unique_words": summary["unique_words"],
        "seconds": summary["seconds"],
        "count_seconds": summary["count_seconds"],
        "merge_seconds": summary["merge_seconds"],
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(base, 1),
        "bytes_per_word": round((peak - base) * 2**20 / summary["unique_words"], 1),
    }
