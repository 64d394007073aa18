"""Encoding time of inputs that are one huge pretoken or whitespace run, at growing
sizes: does each engine stay near-linear? A byte-pair merge that rescans the piece
after every merge is quadratic on these; bbpe merges long pieces with a heap.

Each engine encodes each text once, as a batch of one, on one thread: a second run
would time a cache (gigatoken keeps even multi-megabyte pretokens). An engine whose
run takes over --budget seconds, or fails, is not given the larger sizes. Ids are checked
against tiktoken's wherever tiktoken finished, else against HF tokenizers'.

    python benches/pathological.py --engines bbpe,tiktoken,hf --markdown
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode import ENGINES  # noqa: E402  (the engines of benches/encode.py)

KINDS = {
    "letters": lambda n: "a" * n,
    "digits": lambda n: "9" * n,
    "hangul": lambda n: "가" * (n // 3),
    "cjk": lambda n: "".join(chr(0x4E00 + i % 20000) for i in range(n // 3)),
    "spaces": lambda n: " " * (n - 1) + "x",
    "mixed-space": lambda n: "\n\t " * (n // 3),
}
SIZES = [1 << 16, 1 << 18, 1 << 20, 1 << 22]


def timed(encode, to_flat, text: str) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = encode([text])
    return time.perf_counter() - start, to_flat(result)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="bbpe,tiktoken,hf")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    engines = {name: ENGINES[name](1)[:2] for name in args.engines.split(",")}
    rows = []
    for kind in args.kinds.split(","):
        texts = {size: KINDS[kind](size) for size in SIZES}
        reference: dict[int, np.ndarray] = {}
        order = {"tiktoken": 0, "hf": 1}
        for name, (encode, to_flat) in sorted(engines.items(), key=lambda e: order.get(e[0], 2)):
            for size, text in texts.items():
                nbytes = len(text.encode())
                try:
                    seconds, ids = timed(encode, to_flat, text)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as error:  # noqa: BLE001  (a Rust panic is a BaseException)
                    message = str(error).splitlines()[0][:80]
                    rows.append((kind, name, nbytes, None, f"failed: {message}"))
                    print(f"{kind:12} {name:9} {nbytes:>9} B failed: {message}", file=sys.stderr)
                    break
                same = "" if size not in reference else str(np.array_equal(ids, reference[size]))
                reference.setdefault(size, ids)
                rows.append((kind, name, nbytes, seconds, same))
                print(
                    f"{kind:12} {name:9} {nbytes:>9} B {seconds:8.3f} s "
                    f"{seconds / nbytes * 1e9:8.1f} ns/B {same}",
                    file=sys.stderr,
                )
                if seconds > args.budget:
                    break
    if args.markdown:
        print("| input | engine | bytes | seconds | ns per byte | same ids as the reference |")
        print("| --- | --- | ---: | ---: | ---: | --- |")
        for kind, name, nbytes, seconds, same in rows:
            timing = "- | -" if seconds is None else f"{seconds:.4f} | {seconds / nbytes * 1e9:.1f}"
            print(f"| {kind} | {name} | {nbytes:,} | {timing} | {same or '-'} |")


if __name__ == "__main__":
    main()
