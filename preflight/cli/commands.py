"""The subcommands: `check`, `merge`, `validate`, `demo`. Each takes the parsed arguments and
the process's streams and environment, hands plain values to the modules that do the work
(`selection`, `program`, `report.outputs`, `shard`, `readiness`, `demo`) and returns the exit
status. A usage or configuration problem is raised (`UsageError`, `ConfigError`) for `cli.run`
to report.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TextIO

from preflight.status import ExitStatus, UsageError, exit_for, finish

__all__ = ["check", "demo", "merge", "validate"]


def _refuse_unwritable(*paths: str | None) -> None:
    """Refuse before probing a report path that cannot be written."""
    from preflight.report.files import unwritable_reason

    for path in paths:
        reason = unwritable_reason(path) if path else None
        if reason:
            raise UsageError(f"cannot write a report to {path}: {reason}")


def check(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> ExitStatus:
    from preflight import program, selection, vantage
    from preflight.report import outputs
    from preflight.report.console import color_enabled
    from preflight.report.progress import ProgressLine
    from preflight.report.progress import wanted as progress_wanted

    asked = selection.Selection(
        config=args.config,
        targets=args.targets,
        only=args.only,
        stages=args.stages,
        ssh_config=args.ssh_config,
    )
    targets = selection.select(asked, environ)
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
    _refuse_unwritable(args.junit, args.json)
    program.raise_fd_limit()
    settings = program.Settings(
        deadline=args.deadline, jobs=args.jobs, attempts=args.attempts, interval=args.interval
    )
    with program.Signals().caught() as signals:
        progress = ProgressLine(stderr, len(targets)) if progress_wanted(stderr, environ) else None
        try:
            report = program.run(
                targets,
                settings,
                signals,
                on_target_done=progress.target_done if progress else None,
            )
        finally:
            if progress:
                progress.close()
        here = vantage.detect(environ, shard=str(shard) if shard else None)
        vantage.stamp(report, here)
        problems = outputs.write(
            report,
            outputs.Outputs(
                stdout=stdout,
                color=color_enabled(stdout, args.color, environ),
                junit=args.junit,
                json=args.json,
                environ=environ,
                stderr=stderr,
                vantage_line=vantage.describe(report, here),
            ),
        )
    return finish(exit_for(report, signals.first), problems, stderr)


def merge(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> ExitStatus:
    from preflight import vantage
    from preflight.report import outputs
    from preflight.report.console import color_enabled
    from preflight.report.json_reader import ReportFormatError, read_json

    reports = []
    for path in args.reports:
        try:
            reports.append(read_json(path))
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror or exc}") from None
        except ReportFormatError as exc:
            raise UsageError(f"{path}: not a preflight JSON report: {exc}") from None
    _refuse_unwritable(args.junit, args.json)
    from preflight.shard import merge_reports, missing_shards, same_run

    first_seen: dict[tuple[object, ...], str] = {}
    for path, report in zip(args.reports, reports, strict=True):
        run = same_run(report)
        if run is not None and run in first_seen:
            raise UsageError(f"{path}: the same run as {first_seen[run]} (a report given twice?)")
        if run is not None:
            first_seen[run] = path
    merged = merge_reports(reports)
    missing, certain = missing_shards(reports)
    shards = ", ".join(str(shard) for shard in missing)
    if missing and certain:
        # Those shards' targets were never reported: the merge must not look green.
        stderr.write(
            f"preflight merge: no report from shard {shards}: "
            f"{'its' if len(missing) == 1 else 'their'} targets are missing from this merge\n"
        )
    elif missing:
        stderr.write(
            f"preflight merge: no targets from shard {shards} among the reports: if "
            f"{'it' if len(missing) == 1 else 'they'} had targets, they are missing here\n"
        )
    problems = outputs.write(
        merged,
        outputs.Outputs(
            stdout=stdout,
            color=color_enabled(stdout, args.color, environ),
            junit=args.junit,
            json=args.json,
            environ=environ,
            stderr=stderr,
            vantage_line=vantage.describe(merged),
        ),
    )
    status = ExitStatus.OK if merged.ok and not (missing and certain) else ExitStatus.CHECK_FAILED
    return finish(status, problems, stderr)


def validate(args: argparse.Namespace, stdout: TextIO, environ: Mapping[str, str]) -> ExitStatus:
    from preflight import config, readiness, selection
    from preflight.model import endpoint

    path, named = selection.config_path(args.config, environ)
    if not named and not os.path.exists(path):
        raise UsageError(
            "no checks.yaml here: pass -c FILE or set PREFLIGHT_CONFIG to say which file to check"
        )
    loaded = config.load_config(path, environ)
    stdout.write(
        f"{path}: OK, {len(loaded.targets)} target{'s' if len(loaded.targets) != 1 else ''}\n"
    )
    for target in loaded.targets:
        stages = ",".join(target.stages)
        via = "".join(f" via {hop.endpoint}" for hop in target.jump)
        stdout.write(
            f"  {target.name}: {endpoint(target.host, target.port)}{via} [{stages}] "
            f"deadline {target.deadline:g}s\n"
        )
    # Valid, but what `check` will not find here: said, not an error (CI sets its own). A
    # warning shared by many targets is said once, with who it concerns.
    concerned: dict[str, list[str]] = {}
    for target in loaded.targets:
        for warning in readiness.warnings(target):
            concerned.setdefault(warning, []).append(target.name)
    if concerned:
        stdout.write("warnings (what a check here will not find):\n")
    for warning, names in concerned.items():
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        stdout.write(f"  ! {warning} ({', '.join(names[:3])}{more})\n")
    return ExitStatus.OK


def demo(args: argparse.Namespace, stdout: TextIO, environ: Mapping[str, str]) -> ExitStatus:
    from preflight import demo as lab_demo
    from preflight.report.console import color_enabled

    return ExitStatus(
        lab_demo.run_demo(
            stdout, junit_path=args.junit, color=color_enabled(stdout, args.color, environ)
        )
    )
