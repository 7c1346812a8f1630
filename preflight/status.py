"""The exit statuses of preflight (DESIGN §5) and how a run's outcome maps to one.

`0` every check passed · `1` a check failed, or a report could not be written · `2` usage or
configuration error (nothing probed) · `3` internal error · `130`/`143` interrupted by SIGINT /
SIGTERM. Two exceptions mean "exit 2 with this message": `UsageError` (bad arguments) and
`config.ConfigError` (a bad checks.yaml, its message starting `FILE:LINE:`).
"""

from __future__ import annotations

import enum
import signal
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from preflight.model import Report

__all__ = ["ExitStatus", "UsageError", "exit_for", "finish"]


class ExitStatus(enum.IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    INTERNAL = 3
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


class UsageError(Exception):
    """Bad arguments or configuration: exit 2 with this message, nothing probed."""


def finish(status: ExitStatus, problems: list[str], stderr: TextIO) -> ExitStatus:
    """A run whose report could not be written must not look green."""
    for problem in problems:
        stderr.write(f"preflight: {problem}\n")
    if problems and status is ExitStatus.OK:
        return ExitStatus.CHECK_FAILED
    return status


def exit_for(report: Report, signum: int | None) -> ExitStatus:
    """The status of a check run that ended with `report`, `signum` the first signal caught."""
    if signum == signal.SIGTERM:
        return ExitStatus.TERMINATED
    if signum is not None or report.interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if report.ok else ExitStatus.CHECK_FAILED
