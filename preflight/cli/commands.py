"""The subcommands: `check`, `merge`, `validate`, `demo`. Each takes the parsed arguments and
the process's streams and environment, hands plain values to the modules that do the work
(`selection`, `program`, `report.outputs`, `shard`, `readiness`, `demo`) and returns the exit
status. A usage or configuration problem is raised (`UsageError`, `ConfigError`) for `cli.run`
to report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from preflight.status import ExitStatus, UsageError, exit_for, finish

if TYPE_CHECKING:
    from preflight.report.outputs import Outputs

__all__ = ["check", "demo", "merge", "validate"]


def _check_report_paths(stderr: TextIO, args: argparse.Namespace) -> None:
    """Before probing: refuse a report path that cannot be written, and say which directories
    writing one will create (a typo in a directory name would otherwise go unseen)."""
    from preflight.report.files import missing_directory, unwritable_reason

    said = set()
    for option, path in (("--junit", args.junit), ("--json", args.json)):
        if not path:
            continue
        reason = unwritable_reason(path)
        if reason:
            raise UsageError(f"cannot write a report to {path}: {reason}")
        missing = missing_directory(path)
        directory = os.path.dirname(path)
        if missing is not None and directory not in said:
            said.add(directory)
            stderr.write(
                f"preflight: {option} {path}: the directory {directory}/ does not exist; "
                "it will be created\n"
            )


def _outputs(
    args: argparse.Namespace,
    stdout: TextIO,
    stderr: TextIO,
    environ: Mapping[str, str],
    vantage_line: str | None,
) -> Outputs:
    """What check and merge write, from the options they share (report files, colour,
    --verbose) and the terminal's width."""
    from preflight.report.console import color_enabled, terminal_width
    from preflight.report.outputs import Outputs

    return Outputs(
        stdout=stdout,
        color=color_enabled(stdout, args.color, environ),
        junit=args.junit,
        json=args.json,
        environ=environ,
        stderr=stderr,
        vantage_line=vantage_line,
        width=terminal_width(stdout, environ),
        every_target=args.verbose,
    )


def check(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> ExitStatus:
    from preflight import program, selection, vantage
    from preflight.report import outputs
    from preflight.report.console import terminal_width
    from preflight.report.progress import ProgressLine
    from preflight.report.progress import wanted as progress_wanted

    asked = selection.Selection(
        config=args.config,
        targets=args.targets,
        only=args.only,
        stages=args.stages,
        ssh_config=args.ssh_config,
        timeouts=args.timeout,
        trace=args.trace,
        upload=selection.UploadOptions(
            write=bool(args.write) or args.write_size is not None,
            size=args.write_size,
            list_path=False if args.no_list else None,
            min_free=args.min_free,
        ),
    )
    targets = selection.select(
        asked, environ, warn=lambda text: stderr.write(f"preflight: warning: {text}\n")
    )
    if not targets:
        raise UsageError("nothing to check: the selection is empty")
    shard = selection.shard_for(args.shard, environ)
    if shard is not None:
        selected = len(targets)
        from preflight.shard import select as shard_select

        targets = shard_select(targets, shard)
        if not targets:
            stdout.write(
                f"shard {shard}: no targets ({selected} target{'s' if selected != 1 else ''} "
                f"dealt to {shard.total} shards); nothing to check\n"
            )
    _check_report_paths(stderr, args)
    program.raise_fd_limit()
    room, limit = program.descriptor_room()
    if len(targets) > room:
        # Said before probing: those past the room would otherwise fail for want of a socket.
        stderr.write(
            f"preflight: {len(targets)} targets, but this process may open only {limit} files "
            f"(the most the system allows it): {room} are checked at once and the others wait "
            "for a free socket, their own deadlines starting when they get one; an open-file "
            f"limit of {len(targets) + limit - room} (ulimit -n, a container's nofile) checks "
            "them all at once\n"
        )
    settings = program.Settings(
        deadline=args.deadline,
        jobs=args.jobs,
        attempts=args.attempts,
        interval=args.interval,
        in_flight=room if len(targets) > room else None,
        spare_descriptors=max(0, room - len(targets)),
    )
    with program.Signals().caught() as signals, program.few_collections() as run_done:
        progress = (
            ProgressLine(
                stderr, len(targets), attempts=args.attempts, width=terminal_width(stderr, environ)
            )
            if progress_wanted(stderr, environ)
            else None
        )
        try:
            report = program.run(targets, settings, signals, progress=progress)
        finally:
            if progress:
                progress.close()
        run_done()
        here = vantage.detect(environ, shard=str(shard) if shard else None)
        vantage.stamp(report, here)
        problems = outputs.write(
            report, _outputs(args, stdout, stderr, environ, vantage.describe(report, here))
        )
    return finish(exit_for(report, signals.first), problems, stderr)


def merge(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> ExitStatus:
    from preflight import vantage
    from preflight.report import outputs
    from preflight.report.json_reader import ReportFormatError, read_json

    reports = []
    for path in args.reports:
        try:
            reports.append(read_json(path))
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror or exc}") from None
        except ReportFormatError as exc:
            raise UsageError(f"{path}: not a preflight JSON report: {exc}") from None
    _check_report_paths(stderr, args)
    from preflight.shard import (
        checked_by_unsharded_runs,
        given_twice,
        merge_reports,
        missing_shards_warning,
    )

    twice = given_twice(list(zip(args.reports, reports, strict=True)))
    if twice is not None:
        raise UsageError(twice)
    merged = merge_reports(reports)
    missing = missing_shards_warning(reports)
    if missing is not None:
        stderr.write(f"preflight merge: {missing.words}\n")
    repeated = checked_by_unsharded_runs(reports)
    if repeated is not None:
        stderr.write(f"preflight merge: {repeated}\n")
    problems = outputs.write(
        merged, _outputs(args, stdout, stderr, environ, vantage.describe(merged))
    )
    # Shards certainly missing: their targets were never reported, so the merge must not pass.
    fails = missing is not None and missing.certain
    status = ExitStatus.OK if merged.ok and not fails else ExitStatus.CHECK_FAILED
    return finish(status, problems, stderr)


def validate(args: argparse.Namespace, stdout: TextIO, environ: Mapping[str, str]) -> ExitStatus:
    from preflight import config, readiness, selection

    path, named = selection.config_path(args.config, environ)
    if named and path.strip().lower() == selection.NO_FILE:
        raise UsageError(f"-c {selection.NO_FILE}: no file, nothing to validate")
    if not named and not os.path.exists(path):
        raise UsageError(
            "no checks.yaml here: pass -c FILE or set PREFLIGHT_CONFIG to say which file to check"
        )
    loaded = config.load_config(path, environ)
    # The file is valid once it loaded: a reader that stops early (`validate | head`) chose
    # to, and changes nothing (as for the console report of a check).
    with contextlib.suppress(BrokenPipeError):
        stdout.writelines(f"{line}\n" for line in readiness.validation(path, loaded.targets))
    return ExitStatus.OK


def demo(args: argparse.Namespace, stdout: TextIO, environ: Mapping[str, str]) -> ExitStatus:
    from preflight import demo as lab_demo
    from preflight.report.console import color_enabled, terminal_width

    return ExitStatus(
        lab_demo.run_demo(
            stdout,
            junit_path=args.junit,
            color=color_enabled(stdout, args.color, environ),
            width=terminal_width(stdout, environ),
        )
    )
