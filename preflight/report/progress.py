"""A live progress line for long runs in a terminal: done / failing / running.

An on-call engineer checking 300 targets wants to see the run move; a CI log must not fill with
carriage returns. So the line is drawn only on a terminal (`isatty`) outside CI (`CI` unset),
on stderr (stdout carries the report), at most ten times a second, and erased before the report
is printed. The line holds counts only, never a host name: nothing to sanitise.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TextIO

from preflight.model import TargetResult


def wanted(stream: TextIO, environ: Mapping[str, str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("CI") and environ.get("TERM") != "dumb"


class ProgressLine:
    """Counts finished targets and redraws one line; `close()` erases it."""

    MIN_INTERVAL = 0.1

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.failing = 0
        self._drawn_at = 0.0
        self._width = 0

    def target_done(self, result: TargetResult) -> None:
        self.done += 1
        self.failing += 0 if result.ok else 1
        now = time.monotonic()
        if now - self._drawn_at >= self.MIN_INTERVAL or self.done == self.total:
            self._draw(
                f"preflight: {self.done}/{self.total} done, {self.failing} failing, "
                f"{self.total - self.done} running"
            )
            self._drawn_at = now

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
