"""One-line progress bars on stderr for the command line."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Redrawn at most every 0.2 s, shown only on a terminal (or when forced)
    so that logs and pipes stay clean. ``scale`` and ``unit`` say how to show
    amounts (1e6, "MB" for bytes); with a total there is a bar and an ETA."""

    def __init__(
        self, label: str, total: int | None, enabled: bool, scale: float = 1.0, unit: str = ""
    ):
        self.label = label
        self.total = total
        self.enabled = enabled
        self.scale = scale
        self.unit = unit
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.done = 0
        self.width = 0

    def update(
        self, done: int, extra: str = "", final: bool = False, total: int | None = None
    ) -> None:
        """Shows `done`; `total` replaces the total when the work learns it as it goes."""
        self.done = done
        if total is not None:
            self.total = total
        now = time.perf_counter()
        if not self.enabled or (not final and now - self.last_draw < 0.2):
            return
        self.last_draw = now
        rate = done / max(now - self.start, 1e-9)
        shown = f"{done:,}" if self.scale == 1 else f"{done / self.scale:,.1f}"
        amount = f"{shown} {self.unit}".rstrip()
        line = f"{self.label:<8} {amount:>12}  {rate / self.scale:8,.1f} {self.unit}/s"
        if self.total:
            fraction = min(done / self.total, 1.0)
            eta = max(self.total - done, 0) / rate if rate else 0.0
            line = f"{self.label:<8} [{'#' * int(fraction * 24):<24}] {fraction:6.1%} " + (
                f"{amount:>12}  {rate / self.scale:8,.1f} {self.unit}/s  ETA {eta:5.0f} s"
            )
        if extra:
            line += f"  {extra}"
        # Pad over the rest of a longer previous line.
        self.width = max(self.width, len(line))
        sys.stderr.write("\r" + line.ljust(self.width) + ("\n" if final else ""))
        sys.stderr.flush()

    def finish(self, extra: str = "") -> None:
        """Draws the last state and ends the line."""
        self.update(self.done, extra, final=True)
