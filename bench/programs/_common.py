"""What every baseline program shares: read the job, raise the descriptor limit, time each target.

A baseline is a standalone script (`python bench/programs/NAME.py JOB.json`) so that it pays its
own interpreter start-up and imports, like a user's script would. The job file says which
targets to check, with which timeouts and concurrency, and how to log in (healthy scenarios).
The program prints one JSON document: per target whether it succeeded, when it ended (seconds
from the program's start) and why it failed.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

STARTED = time.monotonic()


def load_job() -> dict[str, Any]:
    with open(sys.argv[1], encoding="utf-8") as handle:
        job: dict[str, Any] = json.load(handle)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return job


def timed(check: Callable[[], Any]) -> dict[str, Any]:
    """Run one target's check; record whether it passed and how long it took."""
    begun = time.monotonic()
    try:
        check()
    except BaseException as exc:  # a baseline reports every failure, it never crashes
        return result(begun, False, f"{type(exc).__name__}: {exc}")
    return result(begun, True, "")


def result(begun: float, ok: bool, error: str) -> dict[str, Any]:
    """One target's line: `begun` is its start, in `time.monotonic()` seconds."""
    now = time.monotonic()
    return {"ok": ok, "elapsed": now - begun, "ended": now - STARTED, "error": error[:200]}


def emit(results: list[dict[str, Any]]) -> None:
    json.dump({"results": results, "total": time.monotonic() - STARTED}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
