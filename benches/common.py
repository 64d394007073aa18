"""What the benchmark scripts share: the corpora, loading them, describing the
machine, and printing tables."""

import datetime
import json
import lzma
import os
import platform
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS_DIR = REPO.parent / "shared" / "corpus"
MB = 1_000_000


def load_texts(path: Path, max_mb: float | None) -> list[str]:
    """Whole documents from an xz JSONL corpus, stopping once max_mb of UTF-8 is read."""
    limit = None if max_mb is None else max_mb * MB
    texts, size = [], 0
    with lzma.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            text = json.loads(line)["text"]
            texts.append(text)
            size += len(text.encode("utf-8"))
            if limit is not None and size >= limit:
                break
    return texts


def machine_info() -> list[str]:
    """Date, cores, CPU and Python, for the head of a results table."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine: {len(os.sched_getaffinity(0))} cores (nproc), CPU {cpu}, {platform.machine()}",
        f"python: {platform.python_version()}",
    ]


def render(headers: list[str], rows: list[list[str]], markdown: bool, text_columns: int = 1) -> str:
    """A table as Markdown or aligned text; the first `text_columns` columns are
    left-aligned, the rest (numbers) right-aligned."""
    if markdown:
        align = ["---" if i < text_columns else "---:" for i in range(len(headers))]
        lines = [headers, align, *rows]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i < text_columns else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [headers, *rows]
    )


def reset_peak_rss() -> None:
    """Start the process's peak RSS (VmHWM) afresh from what it holds now (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (the peak) of this process, in MB."""
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    return kb / 1024
