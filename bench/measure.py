"""Run one program and measure it: wall time, CPU time and peak memory of the whole process.

Every contestant of the suite — preflight and each baseline — is a separate program, started
through `bench/launcher.py` (a bare interpreter that forks it, reaps it with `os.wait4` and
reports that child's own `rusage`; see its docstring for why the bench cannot fork it itself):
user + system CPU time, including whatever the program reaped (the `ssh` under `sftp`), and the
peak resident set size (`ru_maxrss`). Wall time runs from the fork to the reap, so interpreter
start-up and imports count, as they do for a CI job. A program still running at its cap is
killed with its process group and reported as capped ("> cap"). Output goes to files, not
pipes, so a chatty program never blocks on a full pipe.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAUNCHER = Path(__file__).resolve().parent / "launcher.py"


@dataclass
class Run:
    """One execution of one program."""

    wall_s: float
    cpu_s: float
    maxrss_mib: float
    returncode: int
    capped: bool
    stdout: str
    stderr: str
    extra: dict[str, Any] = field(default_factory=dict)
    """What the scenario parsed from the program's own report (verdicts, per-target times)."""


class LaunchError(RuntimeError):
    """The launcher itself failed (not the program under test)."""


def run_program(
    argv: Sequence[str],
    *,
    cap_s: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Run:
    """Run `argv` to completion (killed after `cap_s` seconds) and return its measurements."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as scratch:
        out_path = Path(scratch) / "stdout"
        err_path = Path(scratch) / "stderr"
        result_path = Path(scratch) / "result"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    str(LAUNCHER),
                    f"{cap_s:g}",
                    str(result_path),
                    *argv,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                timeout=cap_s + 60,
                check=False,
            )
        stderr = err_path.read_text(errors="replace")
        try:
            fields = result_path.read_text().split()
            wall, status, user, system, maxrss, capped = fields
        except (OSError, ValueError):
            raise LaunchError(
                f"the launcher failed (exit {proc.returncode}) for {list(argv)}: {stderr[-2000:]}"
            ) from None
        return Run(
            wall_s=float(wall),
            cpu_s=float(user) + float(system),
            maxrss_mib=int(maxrss) / 1024,  # KiB on Linux
            returncode=int(status),
            capped=capped == "1",
            stdout=out_path.read_text(errors="replace"),
            stderr=stderr,
        )


def rss_floor() -> float:
    """The peak RSS a trivial program shows through the launcher: the measurement's floor."""
    return run_program(["true"], cap_s=10).maxrss_mib
