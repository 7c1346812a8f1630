"""Which reports a run writes, and writing them: the one table of output formats.

A run asks for its outputs once (`Outputs`): the console stream (folded for the CI system in
the environment, GitLab sections or GitHub groups, and closed by the vantage line), the JUnit and
JSON files, and under GitHub Actions the annotations and the step summary. `write` goes down the
table `FORMATS` and writes each one that was asked for. The files come first: they are what an
interrupted or failing CI job still needs. A format that cannot be written does not stop the
others; each problem comes back as one line for the caller to print and to count against the
exit status. Nor does a bug in one renderer stop the others: every format is still written,
then the bug is raised (exit 3), so a broken console cannot cost the files, nor a broken JUnit
writer the JSON and the console.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from preflight.model import Report

__all__ = ["FORMATS", "Format", "Outputs", "write"]


@dataclass(frozen=True)
class Outputs:
    """What a run writes. `environ` is the CI job's environment (None: a plain console report,
    as `preflight demo` writes); `vantage_line` closes the console report when given."""

    stdout: TextIO
    color: bool
    junit: str | None = None
    json: str | None = None
    environ: Mapping[str, str] | None = None
    stderr: TextIO | None = None
    vantage_line: str | None = None
    width: int | None = None  # a terminal's: the console report wraps its long texts there
    every_target: bool = False  # the console shows each target, however many (--verbose)


def _write_junit(report: Report, outputs: Outputs) -> None:
    from preflight.report import junit

    assert outputs.junit
    junit.write_junit(report, outputs.junit)


def _write_json(report: Report, outputs: Outputs) -> None:
    from preflight.report import json_report

    assert outputs.json
    json_report.write_json(report, outputs.json)


def _write_console(report: Report, outputs: Outputs) -> None:
    from preflight.report import ci, console

    with contextlib.suppress(BrokenPipeError):  # `preflight check | head`: the reader's choice
        if outputs.environ is None:
            console.write_console(
                report,
                outputs.stdout,
                color=outputs.color,
                width=outputs.width,
                every_target=outputs.every_target,
            )
        else:
            ci.write_console(
                report,
                outputs.stdout,
                color=outputs.color,
                environ=outputs.environ,
                vantage_line=outputs.vantage_line,
                width=outputs.width,
                every_target=outputs.every_target,
            )


def _publish(report: Report, outputs: Outputs) -> None:
    from preflight.report import ci

    assert outputs.environ is not None
    with contextlib.suppress(BrokenPipeError):  # the reader stopped early: its choice
        ci.publish(report, outputs.stdout, outputs.stderr or sys.stderr, outputs.environ)


@dataclass(frozen=True)
class Format:
    """One output: whether a run asked for it, how to write it, and how a failure is told."""

    wanted: Callable[[Outputs], bool]
    write: Callable[[Report, Outputs], None]
    problem: Callable[[Outputs, OSError], str]


FORMATS: tuple[Format, ...] = (
    Format(
        lambda o: bool(o.junit),  # `--junit ""` (an unset variable): no file, as before
        _write_junit,
        lambda o, e: f"could not write the JUnit report to {o.junit}: {e.strerror or e}",
    ),
    Format(
        lambda o: bool(o.json),
        _write_json,
        lambda o, e: f"could not write the JSON report to {o.json}: {e.strerror or e}",
    ),
    Format(lambda o: True, _write_console, lambda o, e: f"could not write the console report: {e}"),
    Format(
        lambda o: o.environ is not None,
        _publish,
        lambda o, e: f"could not publish the annotations and step summary: {e}",
    ),
)


def write(report: Report, outputs: Outputs) -> list[str]:
    """Write every output `outputs` asks for, in the order of `FORMATS`; the problems, one line
    each (none: everything was written)."""
    problems: list[str] = []
    bug: Exception | None = None
    for output in FORMATS:
        if not output.wanted(outputs):
            continue
        try:
            output.write(report, outputs)
        except OSError as exc:
            problems.append(output.problem(outputs, exc))
        except Exception as exc:  # a renderer's bug: write the other formats, then raise it
            bug = bug or exc
    if bug is not None:
        for problem in problems:
            bug.add_note(problem)
        raise bug
    return problems
