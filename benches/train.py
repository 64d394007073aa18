"""Vocabulary training speed, memory and result of bbpe against HF tokenizers, rustbpe,
bpeasy and gigatoken.

Every engine learns a GPT-2-style byte-level BPE vocabulary of 50,257 tokens (256 bytes,
50,000 merges and `<|endoftext|>`) from the same documents, pre-tokenized with GPT-2's
pattern. Each engine runs in a fresh worker process that loads the corpus into a list of
str first, then times only the training call. The parent compares every engine's merges
with HF's, and measures how well each vocabulary compresses other corpora, encoding with
one common encoder (bbpe, loaded from the engine's merges) so that only the vocabulary
differs.

    PYTHONPATH=python python benches/train.py --max-mb 5
    PYTHONPATH=python python benches/train.py --engines hf,rustbpe,bpeasy,gigatoken --markdown

How each peer is called, and what it returns:

- hf: `Tokenizer(models.BPE())` with the ByteLevel pre-tokenizer (GPT-2's regex) and
  `BpeTrainer(vocab_size=50257, min_frequency=0, special_tokens=["<|endoftext|>"],
  initial_alphabet=ByteLevel.alphabet())`, `train_from_iterator(docs, length=len(docs))`.
  vocab_size counts the special token and the 256 bytes: 50,000 merges. Merges are read
  from the model's JSON (byte-alphabet strings).
- rustbpe: `Tokenizer().train_from_iterator(docs, vocab_size=50256, pattern=GPT2)`.
  vocab_size counts the 256 bytes and merges; it knows no special tokens, so ours is added
  afterwards (id 50256). Python sees only `get_mergeable_ranks()` (token bytes -> rank),
  not the merge pairs.
- bpeasy: `train_bpe(docs, GPT2, max_token_length, vocab_size=50256)`, returning
  {token bytes: rank}; vocab_size counts the 256 bytes and merges, no special tokens (ours
  is added afterwards). max_token_length is set far beyond any token, as HF has no limit.
- gigatoken: `train_bpe(bytes, 50257, ["<|endoftext|>"])` returns ({id: token bytes},
  [(left bytes, right bytes), ...]); vocab_size counts the 256 bytes and the special
  tokens. It takes one bytes object (or a file), split into documents at its separator
  (default b"<|endoftext|>"), so the documents are joined with `<|endoftext|>` (outside the
  timed call; the copy counts in its memory). Its pre-tokenizer is a hand-written state
  machine for GPT-2's pattern (`gigatoken.pretokenizer`): on the first 3,000 documents of
  en, ko and multi, and all of code, it splits exactly like the regex. Ties are broken as
  HF does (its default tie_breaking="huggingface").

For rustbpe and bpeasy the merge pairs are rebuilt from the ranks as tiktoken would read
them: token r's pair is what BPE with ranks below r makes of its bytes (bpeasy's own
HF converter does the same). A token that this leaves in more than two pieces cannot be
produced by tiktoken-style encoding; it is kept with its first split into two lower-ranked
tokens and counted as "unreachable".
"""

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import CORPUS_DIR, MB, load_texts, machine_info, render

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
VOCAB_SIZE = 50_257
REFERENCE = "hf"
EVAL_CORPORA = ("ko", "code")


# ---------------------------------------------------------------------------
# Shared helpers


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def token_bytes(token: str) -> bytes:
    """A token spelled in GPT-2's byte alphabet (vocab.json, merges.txt) to its bytes."""
    from bbpe.reference.byte_alphabet import token_string_to_bytes

    return token_string_to_bytes(token)


def token_string(data: bytes) -> str:
    from bbpe.reference.byte_alphabet import bytes_to_token_string

    return bytes_to_token_string(data)


def bpe_pieces(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's encoding of token with only the ranks below max_rank: repeatedly join
    the adjacent pair whose result has the lowest rank."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 1:
        best, best_rank = None, max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best is None:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    return parts


def merges_from_ranks(ranked: list[tuple[bytes, int]]) -> tuple[list, list[str]]:
    """Merge pairs, in rank order, from (token bytes, rank) entries; and notes on
    anything that does not fit a BPE vocabulary."""
    notes = []
    ranks: dict[bytes, int] = {}
    duplicates = 0
    for data, rank in sorted(ranked, key=lambda e: e[1]):
        if data in ranks:
            duplicates += 1
        else:
            ranks[data] = rank
    if duplicates:
        notes.append(f"{duplicates} tokens repeat an earlier token's bytes (dropped)")
    shared = len(ranked) - len({rank for _, rank in ranked})
    if shared:
        notes.append(f"{shared} ranks are shared by two tokens")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        notes.append(f"{len(missing)} single bytes missing (first {missing[0]})")
    merges, unreachable, broken = [], 0, 0
    for data, rank in sorted(ranks.items(), key=lambda e: e[1]):
        if len(data) < 2:
            continue
        parts = bpe_pieces(ranks, data, rank)
        if len(parts) != 2:
            unreachable += 1
            splits = [
                (data[:k], data[k:])
                for k in range(1, len(data))
                if ranks.get(data[:k], rank) < rank and ranks.get(data[k:], rank) < rank
            ]
            if not splits:
                broken += 1
                continue
            parts = list(splits[0])
        merges.append((parts[0], parts[1]))
    if unreachable:
        notes.append(f"{unreachable} tokens unreachable by tiktoken-style encoding")
    if broken:
        notes.append(f"{broken} tokens are no two lower-ranked tokens (dropped)")
    return merges, notes


# ---------------------------------------------------------------------------
# Engines. Each builder returns (prepare, train, result, version), or raises
# ImportError when the engine is not installed. prepare(docs) turns the documents
# into the engine's input (not timed), train(input) is the timed call, and
# result(output) gives (merges as (bytes, bytes) pairs in rank order, vocab size
# the engine reports, notes).


def build_hf(threads: int):
    # Thread count comes from RAYON_NUM_THREADS, set by the parent before this process began.
    import tokenizers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    def train(docs):
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        trainer = trainers.BpeTrainer(
            vocab_size=VOCAB_SIZE,
            min_frequency=0,
            special_tokens=[ENDOFTEXT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(docs, trainer, length=len(docs))
        return tok

    def result(tok):
        model = json.loads(tok.to_str())["model"]
        merges = [
            tuple(token_bytes(t) for t in (m.split(" ") if isinstance(m, str) else m))
            for m in model["merges"]
        ]
        return merges, tok.get_vocab_size(), []

    return (lambda docs: docs), train, result, tokenizers.__version__


def build_bbpe(threads: int):
    import hashlib

    import bbpe
    import bbpe._core

    if not hasattr(bbpe, "train"):
        raise ImportError(f"bbpe {bbpe.__version__} at {bbpe.__file__} has no bbpe.train")
    core = Path(bbpe._core.__file__)
    digest = hashlib.sha256(core.read_bytes()).hexdigest()[:12]
    version = f"{bbpe.__version__} ({core}, sha256 {digest})"
    options = {
        "vocab_size": VOCAB_SIZE,
        "min_frequency": 0,
        "special_tokens": [ENDOFTEXT],
        "max_token_length": None,  # as HF: no limit
        "threads": threads,
    }

    def result(tok):
        with tempfile.TemporaryDirectory(prefix="bbpe-train-") as out:
            tok.save(out, format="gpt2")
            lines = (Path(out) / "merges.txt").read_text(encoding="utf-8").splitlines()
        merges = [
            tuple(token_bytes(t) for t in line.split(" "))
            for n, line in enumerate(lines)
            if line.strip() and not (n == 0 and line.startswith("#version"))
        ]
        return merges, tok.vocab_size, []

    return (lambda docs: docs), (lambda docs: bbpe.train(texts=docs, **options)), result, version


def build_rustbpe(threads: int):
    from importlib.metadata import version

    import rustbpe

    def train(docs):
        tok = rustbpe.Tokenizer()
        # vocab_size is 256 bytes + merges; it has no special tokens.
        tok.train_from_iterator(docs, vocab_size=VOCAB_SIZE - 1, pattern=GPT2_PATTERN)
        return tok

    def result(tok):
        ranked = [(bytes(t), rank) for t, rank in tok.get_mergeable_ranks()]
        merges, notes = merges_from_ranks(ranked)
        return merges, tok.vocab_size + 1, notes

    return (lambda docs: docs), train, result, version("rustbpe")


def build_bpeasy(threads: int):
    import bpeasy

    def train(docs):
        # vocab_size is 256 bytes + merges; it has no special tokens. Tokens must be
        # shorter than max_token_length: no limit in effect, as in HF.
        return bpeasy.train_bpe(
            iter(docs), GPT2_PATTERN, max_token_length=1 << 30, vocab_size=VOCAB_SIZE - 1
        )

    def result(ranks):
        merges, notes = merges_from_ranks(list(ranks.items()))
        return merges, len(ranks) + 1, notes

    return (lambda docs: docs), train, result, bpeasy.__version__


def build_gigatoken(threads: int):
    from importlib.metadata import version

    import gigatoken

    # Its merge loop is slow when the corpus is small for the vocabulary: 15 s on 5 MB of
    # en, 3.2 s on all 114 MB (2 cores), so --max-mb runs overstate its time.

    def prepare(docs):
        # One buffer, documents split again at the default separator <|endoftext|>.
        return ENDOFTEXT.join(docs).encode("utf-8")

    def result(output):
        vocab, merges = output
        return [(bytes(a), bytes(b)) for a, b in merges], len(vocab), []

    return (
        prepare,
        lambda data: gigatoken.train_bpe(data, VOCAB_SIZE, [ENDOFTEXT]),
        result,
        version("gigatoken"),
    )


ENGINES = {
    "bbpe": build_bbpe,
    "hf": build_hf,
    "rustbpe": build_rustbpe,
    "bpeasy": build_bpeasy,
    "gigatoken": build_gigatoken,
}


# ---------------------------------------------------------------------------
# Worker: one engine in a fresh process. Writes its report, merges included, as JSON
# to --out (stdout is left to the engines, some of which print progress).


def worker(args: argparse.Namespace) -> None:
    # Build first, so that a missing engine is reported without reading the corpus.
    try:
        prepare, train, result, version = ENGINES[args.worker](args.threads)
    except ImportError as error:
        Path(args.out).write_text(json.dumps({"unavailable": str(error)}))
        return
    docs = load_texts(Path(args.corpus_file), args.max_mb)
    size = sum(len(t.encode("utf-8")) for t in docs)
    rss_text = rss_mb()
    start = time.perf_counter()
    data = prepare(docs)
    prepare_seconds = time.perf_counter() - start
    start = time.perf_counter()
    output = train(data)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    merges, vocab_size, notes = result(output)
    report = {
        "version": version,
        "docs": len(docs),
        "bytes": size,
        "seconds": seconds,
        "prepare_seconds": prepare_seconds,
        "rss_text_mb": rss_text,
        "peak_rss_mb": peak,
        "vocab_size": vocab_size,
        "notes": notes,
        "merges": [[a.hex(), b.hex()] for a, b in merges],
    }
    Path(args.out).write_text(json.dumps(report))


# ---------------------------------------------------------------------------
# Parent: spawn the workers, compare merges, measure compression, print the table.


def run_worker(args, engine: str, out: str) -> dict:
    env = dict(os.environ)
    env["RAYON_NUM_THREADS"] = str(args.threads)
    env["TOKENIZERS_PARALLELISM"] = "true" if args.threads > 1 else "false"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", engine]
    command += ["--threads", str(args.threads), "--out", out]
    command += ["--corpus-file", str(Path(args.corpus_dir) / f"{args.corpus}.jsonl.xz")]
    if args.max_mb is not None:
        command += ["--max-mb", str(args.max_mb)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(out):
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        return {"failed": f"exit status {done.returncode}\n{tail}"}
    report = json.loads(Path(out).read_text())
    os.remove(out)
    return report


def merges_of(run: dict) -> list[tuple[bytes, bytes]]:
    return [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in run["merges"]]


def compare_merges(reference: list, merges: list) -> dict:
    """First index where the lists differ (None: identical), merges equal at the same
    index, and merges present in both lists at any index."""
    first = next(
        (i for i, (a, b) in enumerate(zip(reference, merges, strict=False)) if a != b),
        None if len(reference) == len(merges) else min(len(reference), len(merges)),
    )
    same_place = sum(a == b for a, b in zip(reference, merges, strict=False))
    shared = len(set(reference) & set(merges))
    return {"first": first, "same_place": same_place, "shared": shared}


def write_gpt2_files(merges: list, directory: Path) -> tuple[Path, Path]:
    """vocab.json + merges.txt for a merge list: bytes first, then each merge's result
    in merge order, then <|endoftext|>. The ids are arbitrary; the merges decide."""
    vocab: dict[str, int] = {token_string(bytes([b])): b for b in range(256)}
    lines = ["#version: 0.2"]
    for left, right in merges:
        lines.append(f"{token_string(left)} {token_string(right)}")
        vocab.setdefault(token_string(left + right), len(vocab))
    vocab.setdefault(ENDOFTEXT, len(vocab))
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "vocab.json", directory / "merges.txt"
    paths[0].write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def bytes_per_token(merges: list, texts: dict[str, list[str]], directory: Path, threads: int):
    """{corpus: bytes per token} with bbpe's encoder loaded from the merges, or the
    error that loading raised."""
    import bbpe

    vocab_path, merges_path = write_gpt2_files(merges, directory)
    try:
        tok = bbpe.Tokenizer.from_files(vocab_path, merges_path, special_tokens=[ENDOFTEXT])
    except Exception as error:  # any loading failure is reported, not raised
        return {"error": f"{type(error).__name__}: {error}"}
    out = {}
    for corpus, docs in texts.items():
        ids, _offsets = tok.encode_batch_flat(docs, allowed_special="none", threads=threads)
        size = sum(len(t.encode("utf-8")) for t in docs)
        out[corpus] = size / len(ids)
    return out


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(args, tmp: str) -> dict:
    """{engine: best run}, each run with its merges; failures and missing engines
    are recorded as {"unavailable": ...} or {"failed": ...}."""
    runs: dict[str, dict] = {}
    for engine in args.engines:
        for repeat in range(args.repeats):
            run = run_worker(args, engine, os.path.join(tmp, f"{engine}-{repeat}.json"))
            if "unavailable" in run or "failed" in run:
                reason = run.get("unavailable") or run["failed"]
                log(f"{engine}: {'not available' if 'unavailable' in run else 'failed'}: {reason}")
                runs.setdefault(engine, run)
                break
            log(
                f"{engine:>10}: {run['seconds']:6.2f} s, peak RSS {run['peak_rss_mb']:6.0f} MB "
                f"(text loaded: {run['rss_text_mb']:.0f} MB), {len(run['merges'])} merges, "
                f"vocab {run['vocab_size']}; {run['bytes'] / MB:.1f} MB, {run['docs']} docs; "
                f"input prepared in {run['prepare_seconds']:.2f} s"
                + "".join(f"; {note}" for note in run["notes"])
            )
            best = runs.get(engine)
            if best is None or "seconds" not in best or run["seconds"] < best["seconds"]:
                runs[engine] = run
    return runs


def report(args, runs: dict, tmp: str) -> None:
    done = {e: r for e, r in runs.items() if "seconds" in r}
    reference = merges_of(done[REFERENCE]) if REFERENCE in done else None
    comparisons = {}
    for engine, run in done.items():
        if reference is not None and engine != REFERENCE:
            comparisons[engine] = compare_merges(reference, merges_of(run))
            c = comparisons[engine]
            log(
                f"{engine} vs {REFERENCE}: first difference at "
                f"{'none' if c['first'] is None else c['first']}, {c['same_place']} merges "
                f"equal at the same index, {c['shared']} in both lists"
            )
            if c["first"] is not None:
                mine, theirs = merges_of(run), reference
                i = c["first"]
                log(
                    f"  merge {i}: {REFERENCE} {theirs[i] if i < len(theirs) else None}, "
                    f"{engine} {mine[i] if i < len(mine) else None}"
                )

    compression = {}
    if done and not args.no_compression:
        texts = {
            corpus: load_texts(Path(args.corpus_dir) / f"{corpus}.jsonl.xz", args.eval_mb)
            for corpus in EVAL_CORPORA
        }
        sizes = ", ".join(
            f"{c} {sum(len(t.encode()) for t in docs) / MB:.1f} MB" for c, docs in texts.items()
        )
        log(f"compression measured on {sizes}")
        for engine, run in done.items():
            try:
                compression[engine] = bytes_per_token(
                    merges_of(run), texts, Path(tmp) / f"vocab-{engine}", args.threads
                )
            except ImportError as error:
                compression[engine] = {"error": f"bbpe not importable: {error}"}
            if "error" in compression[engine]:
                log(f"{engine}: its merges do not load: {compression[engine]['error']}")

    base = done.get(REFERENCE, {}).get("seconds")
    headers = [
        "engine",
        "time s",
        "peak RSS MB",
        "RSS above text MB",
        f"speed vs {REFERENCE}",
        "vocab",
        f"merges vs {REFERENCE}",
        *(f"{c} bytes/token" for c in EVAL_CORPORA),
    ]
    rows = []
    for engine, run in runs.items():
        if engine not in done:
            status = "not available" if "unavailable" in run else "failed"
            rows.append([engine, status, *["-"] * (len(headers) - 2)])
            continue
        if engine == REFERENCE:
            merges = f"(reference, {len(run['merges'])})"
        elif engine in comparisons:
            c = comparisons[engine]
            if c["first"] is None:
                merges = f"identical ({c['shared']})"
            elif c["shared"] == len(run["merges"]) == len(reference):
                merges = f"same set, order differs at {c['first']}"
            else:
                merges = f"differ at {c['first']}; {c['shared']} shared"
        else:
            merges = "-"
        ratios = compression.get(engine, {})
        rows.append(
            [
                engine,
                f"{run['seconds']:.2f}",
                f"{run['peak_rss_mb']:.0f}",
                f"{run['peak_rss_mb'] - run['rss_text_mb']:.0f}",
                f"{base / run['seconds']:.2f}x" if base else "-",
                str(run["vocab_size"]),
                merges,
                *(
                    "invalid" if "error" in ratios else f"{ratios[c]:.3f}" if c in ratios else "-"
                    for c in EVAL_CORPORA
                ),
            ]
        )

    bullet = "- " if args.markdown else ""
    print()
    for line in machine_info():
        print(f"{bullet}{line}")
    if done:
        any_run = next(iter(done.values()))
        print(
            f"{bullet}training corpus: {args.corpus} ({any_run['bytes'] / MB:.1f} MB, "
            f"{any_run['docs']} docs), vocab {VOCAB_SIZE}, {args.threads} threads, "
            f"best of {args.repeats}"
        )
    for engine, run in done.items():
        notes = "".join(f"; {n}" for n in run["notes"])
        print(f"{bullet}{engine}: {run['version']}{notes}")
    print()
    print(render(headers, rows, args.markdown))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus-dir",
        default=str(CORPUS_DIR),
        help="directory of {name}.jsonl.xz corpora (default: ../shared/corpus from the repo)",
    )
    parser.add_argument("--corpus", default="en", help="training corpus name (default: en)")
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated, from {', '.join(ENGINES)}",
    )
    parser.add_argument(
        "--max-mb", type=float, help="train on at most this many MB of text (default: all)"
    )
    parser.add_argument(
        "--eval-mb",
        type=float,
        default=20.0,
        help="MB of each of ko and code to measure compression on (default: 20)",
    )
    parser.add_argument(
        "--no-compression", action="store_true", help="skip the bytes/token measurement"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="training threads (default: every core this process may use)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per engine; the fastest is reported"
    )
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    # Worker mode, used by the parent only.
    parser.add_argument("--worker", choices=list(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--corpus-file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.worker:
        args.engines = args.engines.split(",")
        unknown = set(args.engines) - set(ENGINES)
        if unknown:
            parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
        # The reference first: the others are compared with its merges.
        args.engines.sort(key=lambda e: e != REFERENCE)
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    pythonpath = os.environ.get("PYTHONPATH")
    prefix = f"PYTHONPATH={shlex.quote(pythonpath)} " if pythonpath else ""
    print(f"command: {prefix}python {shlex.join(sys.argv)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bbpe-train-bench-") as tmp:
        runs = measure(args, tmp)
        report(args, runs, tmp)


if __name__ == "__main__":
    main()
