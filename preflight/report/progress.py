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
    """Counts finished targets and stages (and, with ``--attempts``, which attempt is running)
    and redraws one line; `close()` erases it. It moves with every stage, so that one slow
    target, or one checked five times, does not leave the screen blank for the whole run."""

    MIN_INTERVAL = 0.1

    def __init__(
        self, stream: TextIO, total: int, attempts: int = 1, width: int | None = None
    ) -> None:
        self.stream = stream
        self.width = width  # the terminal's: a longer line would wrap, and each redraw leave one
        self.total = total
        self.attempts = attempts
        self.attempt = 1
        self.done = 0
        self.failing = 0
        self.stages = 0
        self._drawn_at = 0.0
        self._width = 0

    def attempt_started(self, number: int) -> None:
        self.attempt = number
        self._redraw(force=True)

    def stage_done(self) -> None:
        self.stages += 1
        self._redraw()

    def target_done(self, result: TargetResult) -> None:
        self.done += 1
        self.failing += 0 if result.ok else 1
        self._redraw(force=self.done == self.total)

    def _redraw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn_at < self.MIN_INTERVAL:
            return
        text = (
            f"preflight: {self.done}/{self.total} done, {self.failing} failing, "
            f"{self.total - self.done} running"
        )
        if self.attempts > 1:
            text += f"; attempt {self.attempt}/{self.attempts}"
        text += f"; {self.stages} stage{'' if self.stages == 1 else 's'} run"
        if self.width:
            text = text[: max(self.width - 1, 1)]
        self._draw(text)
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
