"""Encoding speed and conformance of bbpe against tiktoken, HF tokenizers and gigatoken.

Every engine encodes the same documents with the GPT-2 vocabulary as ordinary text
(no special tokens). Each measurement runs in a fresh worker process, so it times the
first pass over the text with cold caches: once pinned to one core with one thread,
once on all cores. The parent compares every engine's ids with tiktoken's, document by
document, outside the timed call. Beside each speed is how far the call took the
worker's resident memory (peak RSS, VmHWM) above what it held before: the result,
and whatever caches and scratch the engine keeps, at their peak. With --repeats, runs go
in rounds (every engine and thread count once per round) and the best run is reported;
each ratio also shows, in brackets and in the peer table, the median over rounds of the
ratio within a round, whose two runs were close in time: on a VM whose speed drifts,
the steadier figure.

With --utf8-ready, each worker has CPython make (and keep) every text's UTF-8 before
the timed call, so engines that take CPython's UTF-8 are timed without converting.
bbpe's flat batches make their own UTF-8 (and ignore CPython's), so they still pay
for it: this compares the rest of the work, or shows what conversion costs others.

The bbpe-portable engine is bbpe built with the `portable` feature, the plain Rust code
paths that processors other than x86-64 (Apple Silicon, Graviton) take, imported from
--portable-path: what such a machine gets, on this one. benches/build_portable.sh builds it.

    PYTHONPATH=python python benches/encode.py --max-mb 5
    python benches/encode.py --corpora en,ko --engines bbpe,tiktoken --markdown
    benches/build_portable.sh && PYTHONPATH=python python benches/encode.py \
        --engines tiktoken,bbpe,bbpe-portable
"""

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    CORPUS_DIR,
    MB,
    REPO,
    load_texts,
    machine_info,
    render,
    reset_peak_rss,
    rss_mb,
)

VOCAB_DIR = REPO / "python" / "bbpe" / "vocabularies" / "gpt2"
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
CORPORA = ("en", "ko", "multi", "code")
REFERENCE = "tiktoken"
PORTABLE = "bbpe-portable"
PORTABLE_DIR = REPO / "build" / "portable"


# ---------------------------------------------------------------------------
# Shared helpers


def byte_decoder() -> dict[str, int]:
    """GPT-2's printable alphabet back to bytes: vocab.json spells tokens in it."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = 256 + extra
            extra += 1
    return {chr(c): b for b, c in chars.items()}


def gpt2_token_bytes() -> dict[int, bytes]:
    """Token id -> the bytes it stands for, from the bundled vocab.json."""
    decode = byte_decoder()
    vocab = json.loads((VOCAB_DIR / "vocab.json").read_text(encoding="utf-8"))
    return {i: bytes(decode[c] for c in token) for token, i in vocab.items()}


# ---------------------------------------------------------------------------
# Engines. Each builder returns (encode, to_flat, version): only encode(texts) is
# timed; to_flat turns its result into (uint32 ids, int64 offsets) afterwards.


def flat_from_lists(rows) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    ids = np.fromiter((i for r in rows for i in r), dtype=np.uint32, count=int(offsets[-1]))
    return ids, offsets


def build_bbpe(threads: int, flat: bool = True):
    import hashlib

    import bbpe
    import bbpe._core

    tok = bbpe.Tokenizer.from_pretrained("gpt2")
    # The extension's hash tells builds apart, since it is rebuilt without a version bump.
    core = Path(bbpe._core.__file__)
    digest = hashlib.sha256(core.read_bytes()).hexdigest()[:12]
    version = f"{bbpe.__version__} ({core}, sha256 {digest})"
    if flat:
        return (
            lambda texts: tok.encode_batch_flat(texts, allowed_special="none", threads=threads),
            lambda result: result,
            version,
        )
    return (
        lambda texts: tok.encode_batch(
            texts, add_special_tokens=False, allowed_special="none", threads=threads
        ),
        flat_from_lists,
        version,
    )


def tiktoken_ranks() -> dict[bytes, int]:
    ranks = {t: i for i, t in gpt2_token_bytes().items()}
    del ranks[ENDOFTEXT.encode()]
    return ranks


def tiktoken_like(module, threads: int, version: str, batch_method: str):
    """An engine with tiktoken's constructor (tiktoken itself, TokenDagger); its
    batch call spreads documents over threads, the core releasing the GIL."""
    enc = module.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=tiktoken_ranks(),
        special_tokens={ENDOFTEXT: 50256},
    )
    batch = getattr(enc, batch_method)
    return (
        lambda texts: batch(texts, num_threads=threads),
        flat_from_lists,
        version,
    )


def build_tiktoken(threads: int):
    import tiktoken

    return tiktoken_like(tiktoken, threads, tiktoken.__version__, "encode_ordinary_batch")


def hf_tokenizer():
    """GPT-2 from the bundled files, with no added tokens and no post-processor."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    model = models.BPE.from_file(str(VOCAB_DIR / "vocab.json"), str(VOCAB_DIR / "merges.txt"))
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tok


def build_hf(threads: int):
    # Thread count comes from RAYON_NUM_THREADS, set by the parent before this process began.
    import tokenizers

    tok = hf_tokenizer()
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return (
        lambda texts: encode(texts, add_special_tokens=False),
        lambda encodings: flat_from_lists([e.ids for e in encodings]),
        tokenizers.__version__,
    )


def build_gigatoken(threads: int):
    from importlib.metadata import version

    import awkward as ak
    import gigatoken

    tok = gigatoken.Tokenizer(hf_tokenizer())
    # parallel=False is its calling-thread path; parallel=True uses rayon's global
    # pool, sized by RAYON_NUM_THREADS.
    parallel = threads > 1

    def to_flat(result):
        offsets = np.zeros(len(result) + 1, dtype=np.int64)
        np.cumsum(ak.to_numpy(ak.num(result)), out=offsets[1:])
        return ak.to_numpy(ak.flatten(result)).astype(np.uint32), offsets

    return (
        lambda texts: tok.encode_batch(texts, parallel=parallel),
        to_flat,
        version("gigatoken"),
    )


def build_tokendagger(threads: int):
    from importlib.metadata import version

    import tokendagger

    # Its encode_batch has no ordinary variant; with no special tokens allowed
    # or disallowed, special-token text is encoded as ordinary text.
    return tiktoken_like(tokendagger, threads, version("tokendagger"), "encode_batch")


ENGINES = {
    "tiktoken": build_tiktoken,
    "bbpe": build_bbpe,
    "bbpe-list": lambda threads: build_bbpe(threads, flat=False),
    # The same calls; the worker imports another build (see run_worker).
    PORTABLE: build_bbpe,
    "hf": build_hf,
    "gigatoken": build_gigatoken,
    "tokendagger": build_tokendagger,
}


# ---------------------------------------------------------------------------
# Worker: one engine, one corpus, one thread count, in a fresh process.


def make_utf8(texts: list[str]) -> None:
    """Has CPython convert each text to UTF-8 and keep it, as any engine's first call would."""
    as_utf8 = ctypes.pythonapi.PyUnicode_AsUTF8AndSize
    as_utf8.restype = ctypes.c_void_p
    as_utf8.argtypes = [ctypes.py_object, ctypes.c_void_p]
    for text in texts:
        if as_utf8(text, None) is None:
            raise ValueError("a text has no UTF-8 form")


def check_portable_import(portable_dir: Path) -> None:
    """Fails unless bbpe came from the portable build, not from another bbpe on the path."""
    import bbpe

    package = Path(bbpe.__file__).resolve()
    if not package.is_relative_to(portable_dir.resolve()):
        raise RuntimeError(f"{PORTABLE} imported bbpe from {package}, not from {portable_dir}")


def worker(args: argparse.Namespace) -> None:
    # Build first, so that a missing engine is reported without reading the corpus.
    try:
        start = time.perf_counter()
        encode, to_flat, version = ENGINES[args.engine](args.threads)
        build_seconds = time.perf_counter() - start
    except ImportError as error:
        print(json.dumps({"unavailable": str(error)}))
        return
    if args.engine == PORTABLE:
        check_portable_import(Path(args.portable_path))
    texts = load_texts(Path(args.corpus_file), args.max_mb)
    size = sum(len(t.encode("utf-8")) for t in texts)
    if args.utf8_ready:
        make_utf8(texts)
    held = rss_mb("VmRSS")
    reset_peak_rss()
    start = time.perf_counter()
    result = encode(texts)
    seconds = time.perf_counter() - start
    # How far the call took the process's memory above what it held before (the
    # texts, the engine): its result, caches and scratch at their peak.
    rss_growth = rss_mb("VmHWM") - held
    ids, offsets = to_flat(result)
    np.save(args.out + ".ids.npy", np.asarray(ids, dtype=np.uint32))
    np.save(args.out + ".offsets.npy", np.asarray(offsets, dtype=np.int64))
    report = {
        "version": version,
        "docs": len(texts),
        "bytes": size,
        "tokens": int(len(ids)),
        "seconds": seconds,
        "build_seconds": build_seconds,
        "rss_growth_mb": rss_growth,
    }
    print(json.dumps(report))


# ---------------------------------------------------------------------------
# Parent: spawn the workers, compare ids, print the tables.


def run_worker(args, engine: str, corpus: str, threads: int, out: str) -> dict:
    """Runs one cold measurement; one thread means pinned to a single core too."""
    env = dict(os.environ)
    env["RAYON_NUM_THREADS"] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    command += ["--engine", engine, "--threads", str(threads), "--out", out]
    if engine == PORTABLE:
        # Ahead of any other bbpe: the worktree's (PYTHONPATH=python) or an installed one.
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [args.portable_path, env.get("PYTHONPATH")])
        )
        command += ["--portable-path", args.portable_path]
    command += ["--corpus-file", str(Path(args.corpus_dir) / f"{corpus}.jsonl.xz")]
    if args.max_mb is not None:
        command += ["--max-mb", str(args.max_mb)]
    if args.utf8_ready:
        command.append("--utf8-ready")
    if threads == 1:
        command = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{engine} on {corpus} ({threads} threads) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_ids(out: str) -> tuple[np.ndarray, np.ndarray]:
    return np.load(out + ".ids.npy"), np.load(out + ".offsets.npy")


def differing_docs(ref, got) -> list[int]:
    ref_ids, ref_off = ref
    ids, off = got
    if len(off) != len(ref_off):
        raise RuntimeError(f"{len(off) - 1} documents encoded, expected {len(ref_off) - 1}")
    return [
        d
        for d in range(len(ref_off) - 1)
        if not np.array_equal(ref_ids[ref_off[d] : ref_off[d + 1]], ids[off[d] : off[d + 1]])
    ]


def describe_difference(doc: int, ref, got, engine: str, token_bytes) -> str:
    """The first differing token of a document, with a few tokens of context each side."""
    a = ref[0][ref[1][doc] : ref[1][doc + 1]]
    b = got[0][got[1][doc] : got[1][doc + 1]]
    n = min(len(a), len(b))
    first = int(np.argmax(np.append(a[:n] != b[:n], True)))
    lo = max(0, first - 3)

    def show(ids):
        window = [int(i) for i in ids[lo : first + 5]]
        return f"{window} {b''.join(token_bytes.get(i, b'?') for i in window)!r}"

    return (
        f"doc {doc}, first difference at token {first} ({len(a)} vs {len(b)} tokens)\n"
        f"      {REFERENCE:>11}: {show(a)}\n"
        f"      {engine:>11}: {show(b)}"
    )


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def round_ratio(ours: list[float] | None, theirs: list[float] | None) -> str:
    """The median over rounds of our rate over theirs in the same round."""
    if not ours or not theirs or len(ours) != len(theirs):
        return "-"
    return f"{statistics.median(a / b for a, b in zip(ours, theirs, strict=True)):.2f}x"


def with_rounds(best: str, ours: list[float] | None, theirs: list[float] | None) -> str:
    """A best-against-best ratio, and the rounds' median beside it when there are rounds."""
    rounds = round_ratio(ours, theirs)
    return best if rounds == "-" or len(ours) < 2 else f"{best} ({rounds})"


def mbps(value: float | None) -> str:
    return f"{value:.1f}" if value else "-"


def measure(args, tmp: str) -> tuple[dict, dict, dict, dict]:
    """speed[corpus][engine][threads], MB/s of each repeat in order, memory[corpus][engine]
    [threads] (the call's peak RSS growth in MB, most of the repeats), diffs[corpus][engine]
    (documents differing from tiktoken in any run), versions[engine] (a set)."""
    token_bytes = gpt2_token_bytes()
    speed, memory, diffs, versions = {}, {}, {}, {}
    thread_counts = [1, args.threads] if args.threads > 1 else [1]
    # tiktoken first: its ids are what the others are checked against.
    engines = sorted(args.engines, key=lambda e: e != REFERENCE)
    unavailable: set[str] = set()
    for corpus in args.corpora:
        speed[corpus], memory[corpus], diffs[corpus] = {}, {}, {}
        reference = None
        bad: dict[str, set[int]] = {}
        # Every repeat is another cold process; the best one is the least disturbed by
        # other load. Rounds go through every engine and thread count in turn, so that a
        # slow spell of the machine falls on all of them rather than on one.
        for repeat in range(args.repeats):
            for engine, threads in [(e, t) for e in engines for t in thread_counts]:
                if engine in unavailable:
                    continue
                out = os.path.join(tmp, f"{corpus}-{engine}-{threads}-{repeat}")
                run = run_worker(args, engine, corpus, threads, out)
                if "unavailable" in run:
                    print(f"skipping {engine}: {run['unavailable']}", file=sys.stderr)
                    unavailable.add(engine)
                    continue
                versions.setdefault(engine, set()).add(run["version"])
                rate = run["bytes"] / MB / run["seconds"]
                speed[corpus].setdefault(engine, {}).setdefault(threads, []).append(rate)
                growths = memory[corpus].setdefault(engine, {})
                growths[threads] = max(run["rss_growth_mb"], growths.get(threads, 0.0))
                print(
                    f"{corpus:>5} {engine:>11} {threads} thread(s): {rate:7.1f} MB/s "
                    f"({run['bytes'] / MB:.1f} MB, {run['docs']} docs, {run['tokens']} tokens, "
                    f"{run['seconds']:.2f} s; build {run['build_seconds']:.2f} s; "
                    f"peak RSS +{run['rss_growth_mb']:.0f} MB)",
                    file=sys.stderr,
                )
                got = load_ids(out)
                if reference is None and engine == REFERENCE:
                    reference = got
                    continue
                if reference is not None:
                    found = differing_docs(reference, got)
                    engine_bad = bad.setdefault(engine, set())
                    if found and not engine_bad:
                        print(
                            f"  {corpus}/{engine} differs from {REFERENCE}: "
                            + describe_difference(found[0], reference, got, engine, token_bytes),
                            file=sys.stderr,
                        )
                    engine_bad.update(found)
                for suffix in (".ids.npy", ".offsets.npy"):
                    os.remove(out + suffix)
        for engine in speed[corpus]:
            diffs[corpus][engine] = len(bad.get(engine, ())) if reference is not None else None
    return speed, memory, diffs, versions


def report(args, speed: dict, memory: dict, diffs: dict, versions: dict) -> None:
    n = args.threads
    headers = [
        "corpus",
        "engine",
        "1-core MB/s",
        f"{n}-core MB/s",
        f"vs {REFERENCE} (1 core)",
        f"{n}-core / 1-core",
        f"peak RSS growth, MB (1 / {n} cores)" if n > 1 else "peak RSS growth, MB",
        "differing docs",
    ]
    best = {
        corpus: {engine: {t: max(r) for t, r in runs.items()} for engine, runs in engines.items()}
        for corpus, engines in speed.items()
    }
    rows = []
    for corpus, engines in best.items():
        base = engines.get(REFERENCE, {}).get(1)
        for engine, rates in engines.items():
            one, all_ = rates.get(1), rates.get(n)
            runs, reference_runs = speed[corpus][engine], speed[corpus].get(REFERENCE, {}).get(1)
            differing = diffs[corpus].get(engine)
            growth = memory[corpus][engine]
            rss = " / ".join(f"{growth[t]:.0f}" for t in sorted(growth))
            rows.append(
                [
                    corpus,
                    engine,
                    mbps(one),
                    mbps(all_),
                    ratio(one, base)
                    if engine == REFERENCE
                    else with_rounds(ratio(one, base), runs.get(1), reference_runs),
                    with_rounds(ratio(all_, one), runs.get(n), runs.get(1)) if n > 1 else "-",
                    rss,
                    "-" if differing is None else str(differing),
                ]
            )
    thread_counts = [1, n] if n > 1 else [1]
    peer_rows = [
        [corpus, peer]
        + [ratio(e["bbpe"].get(t), e[peer].get(t)) for t in thread_counts]
        + [
            round_ratio(speed[corpus]["bbpe"].get(t), speed[corpus][peer].get(t))
            for t in thread_counts
        ]
        for corpus, e in best.items()
        if "bbpe" in e
        for peer in e
        if peer != "bbpe"
    ]
    print()
    timed = "encoding only, UTF-8 made first" if args.utf8_ready else "UTF-8 conversion, encoding"
    for line in [*machine_info(), f"numpy: {np.__version__}", f"timed: {timed}"]:
        print(f"- {line}" if args.markdown else line)
    # More than one version of an engine means it was rebuilt during the run.
    for engine, seen in versions.items():
        line = f"{engine}: {' / '.join(sorted(seen))}"
        print(f"- {line}" if args.markdown else line)
    print()
    print(render(headers, rows, args.markdown, text_columns=2))
    if peer_rows:
        print()
        print(
            "bbpe speed relative to each peer (higher is faster): best against best, and the"
            " median of the rounds' ratios (each round runs every engine once, close in time):"
        )
        print()
        cores = [f"{t} core{'s' if t > 1 else ''}" for t in thread_counts]
        headers = [
            "corpus",
            "peer",
            *(f"{c}, best" for c in cores),
            *(f"{c}, rounds" for c in cores),
        ]
        print(render(headers, peer_rows, args.markdown, 2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus-dir",
        default=str(CORPUS_DIR),
        help="directory of {name}.jsonl.xz corpora (default: ../shared/corpus from the repo)",
    )
    parser.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated names")
    parser.add_argument(
        "--engines",
        default="tiktoken,bbpe,bbpe-list,hf,gigatoken,tokendagger",
        help=f"comma-separated, from {', '.join(ENGINES)}",
    )
    parser.add_argument("--max-mb", type=float, help="read at most this many MB per corpus")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="threads for the all-core run (default: every core this process may use)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="cold runs per measurement; the best is reported"
    )
    parser.add_argument(
        "--portable-path",
        default=str(PORTABLE_DIR),
        help=f"where {PORTABLE}'s package is, as benches/build_portable.sh DIR makes it "
        "(default: build/portable in the repo)",
    )
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument(
        "--utf8-ready",
        action="store_true",
        help="make each text's UTF-8 before the timed call (compares the engines' own work)",
    )
    # Worker mode, used by the parent only.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--corpus-file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.worker:
        args.corpora = args.corpora.split(",")
        args.engines = args.engines.split(",")
        unknown = set(args.engines) - set(ENGINES)
        if unknown:
            parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
        args.portable_path = str(Path(args.portable_path).resolve())
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        portable_core = Path(args.portable_path) / "bbpe" / f"_core{suffix}"
        if PORTABLE in args.engines and not portable_core.is_file():
            parser.error(
                f"{PORTABLE} needs bbpe built with the portable feature, and there is no "
                f"{portable_core}; make it with: benches/build_portable.sh {args.portable_path}"
            )
        if shutil.which("taskset") is None:
            parser.error("taskset (util-linux) is needed to pin the 1-core runs")
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="bbpe-bench-") as tmp:
        speed, memory, diffs, versions = measure(args, tmp)
    report(args, speed, memory, diffs, versions)


if __name__ == "__main__":
    main()
