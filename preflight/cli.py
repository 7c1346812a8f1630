"""The command line: parse arguments, load the targets, run them, write reports, pick the exit.

The program (`run`) is separate from error handling (`main`), and the streams and environment are
injected, so tests call `run([...], stdout=..., stderr=..., environ=...)` without a subprocess.
Exit statuses (DESIGN §5) are an `ExitStatus`; reports are written on success, on failure and on
interruption alike. SIGINT and SIGTERM (how CI cancels a job) cancel the run, which still returns
a report of what finished; the exit is then 130 or 143. ``check --shard I/N`` checks one shard
of the targets (`shard`), ``merge`` combines the shards' JSON reports into one; under GitLab CI
or GitHub Actions the reports are folded and published for that system (`report.ci`), and every
run names its vantage point (`vantage`). Nothing here probes or formats itself.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import enum
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from preflight import __version__

# Everything else is imported where it is used: `preflight --version` and a dns/tcp check must
# start fast (asyncio alone costs about as much as the interpreter's own start-up).
if TYPE_CHECKING:
    from preflight.model import Report, Stage, Target, TargetResult
    from preflight.shard import Shard


class ExitStatus(enum.IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    INTERNAL = 3
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


class UsageError(Exception):
    """Bad arguments or configuration: exit 2 with this message, nothing probed."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="preflight",
        description="Pre-flight network diagnostic for CI jobs that depend on an SSH/SFTP "
        "server: dns, tcp, banner, auth and sftp checks, each with its own timeout.",
    )
    parser.add_argument("--version", action="version", version=f"preflight {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser("check", help="check the targets of checks.yaml (or TARGETs)")
    _add_config_option(check)
    check.add_argument(
        "-F",
        "--ssh-config",
        metavar="FILE",
        help="OpenSSH client config for TARGETs given here (default: ~/.ssh/config and "
        "/etc/ssh/ssh_config, as ssh reads them; 'none' for none); with -F it also applies to "
        "the targets of checks.yaml",
    )
    check.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="host, host:port, user@host:port or sftp://user@host:port/path "
        "(uses the file's defaults); or the name of a target in the file",
    )
    check.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    check.add_argument("--json", metavar="FILE", help="write a JSON report")
    check.add_argument(
        "--deadline",
        type=_deadline_seconds,
        metavar="S",
        help="hard limit for the whole run, in seconds",
    )
    check.add_argument(
        "--jobs",
        type=_job_count,
        metavar="N",
        help="targets in the SSH stages at once (default 32)",
    )
    check.add_argument(
        "--only",
        nargs="+",
        action="extend",
        metavar="NAME",
        default=[],
        help="check only the targets with these names",
    )
    check.add_argument(
        "--stages",
        type=_stage_list,
        metavar="dns,tcp,...",
        help="run only these stages (from dns, in order)",
    )
    check.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="check only shard I of N (targets sorted by name, dealt out round-robin); "
        "under GitLab parallel: it defaults to $CI_NODE_INDEX/$CI_NODE_TOTAL",
    )
    check.add_argument(
        "--attempts",
        type=_attempt_count,
        default=1,
        metavar="N",
        help="check every target N times and report per stage how often it passed, its "
        "latency, and targets whose results differ (flaky)",
    )
    check.add_argument(
        "--interval",
        type=_interval,
        default=1.0,
        metavar="S",
        help="seconds between attempts (default 1)",
    )
    check.add_argument("--color", choices=("auto", "always", "never"), default="auto")

    merge = commands.add_parser(
        "merge", help="combine the JSON reports of several runs (shards) into one report"
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT.json", help="JSON reports to merge")
    merge.add_argument("--junit", metavar="FILE", help="write the merged JUnit XML report")
    merge.add_argument("--json", metavar="FILE", help="write the merged JSON report")
    merge.add_argument("--color", choices=("auto", "always", "never"), default="auto")

    validate = commands.add_parser("validate", help="check the configuration, probe nothing")
    _add_config_option(validate)

    demo = commands.add_parser("demo", help="start local lab servers and check them")
    demo.add_argument(
        "--junit",
        metavar="FILE",
        default="preflight-demo.xml",
        help="where to write the demo's JUnit report (default %(default)s)",
    )
    demo.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    return parser


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="configuration file (default: $PREFLIGHT_CONFIG or ./checks.yaml)",
    )


def _ranged(
    kind: type[int] | type[float], low: float, high: float, *, above: bool = False
) -> Callable[[str], Any]:
    """An argparse type: a `kind` number from `low` (excluded when `above`) to `high`."""
    what, unit = ("a whole number", "") if kind is int else ("a number of seconds", " seconds")

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ((low < value) if above else (low <= value)) or not value <= high:
            lowest = f"more than {low:g}" if above else f"at least {low:g}"
            raise argparse.ArgumentTypeError(
                f"must be {lowest} and at most {high:g}{unit}, got {text}"
            )
        return value

    return parse


_deadline_seconds = _ranged(float, 0, 86400, above=True)
_job_count = _ranged(int, 1, 10000)
_attempt_count = _ranged(int, 1, 1000)
_interval = _ranged(float, 0, 3600)


def _shard(text: str) -> Shard:
    from preflight.shard import ShardError, parse_shard

    try:
        return parse_shard(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stage_list(text: str) -> tuple[Stage, ...]:
    import difflib

    from preflight.model import ALL_STAGES, Stage

    names = [name.strip() for name in text.split(",") if name.strip()]
    stages = []
    for name in names:
        try:
            stages.append(Stage(name))
        except ValueError:
            hint = difflib.get_close_matches(name, [s.value for s in Stage], n=1)
            also = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise argparse.ArgumentTypeError(f"unknown stage {name!r}{also}") from None
    if tuple(stages) != ALL_STAGES[: len(stages)] or not stages:
        raise argparse.ArgumentTypeError(
            "stages must start at dns and follow the order dns,tcp,banner,auth,sftp without "
            f"gaps (each needs the one before), got {text!r}"
        )
    return tuple(stages)


def _config_path(given: str | None, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The config file to read, and whether the user named it (then it must exist)."""
    if given:
        return given, True
    if environ.get("PREFLIGHT_CONFIG"):
        return environ["PREFLIGHT_CONFIG"], True
    return "checks.yaml", False


def _select_targets(args: argparse.Namespace, environ: Mapping[str, str]) -> list[Target]:
    import difflib
    from dataclasses import replace

    from preflight import config

    path, named = _config_path(args.config, environ)
    loaded = None
    if named or os.path.exists(path) or not args.targets:
        if not named and not os.path.exists(path):
            raise UsageError(
                "no checks.yaml here and no TARGET given: pass -c FILE, set "
                "PREFLIGHT_CONFIG, or name a host (preflight check HOST)"
            )
        # -F applies OpenSSH client config to the file's targets too; without it, only those
        # with `ssh_config:` get it, so CI runs do not depend on a runner's ~/.ssh/config.
        loaded = config.load_config(path, environ, ssh_config=args.ssh_config)
    defaults = loaded.defaults if loaded else config.builtin_defaults(environ)
    by_name = {t.name: t for t in loaded.targets} if loaded else {}
    if args.targets:
        for spec in args.targets:
            _refuse_a_misspelt_name(spec, by_name, path)
        # A TARGET typed here is what `ssh TARGET` would reach: OpenSSH client config applies.
        ssh = config.open_ssh_config(args.ssh_config, environ)
        defaults_set = loaded.defaults_set if loaded else frozenset()
        targets = [
            by_name[spec]
            if spec in by_name
            else config.target_from_spec(spec, defaults, ssh, defaults_set=defaults_set)
            for spec in args.targets
        ]
    else:
        targets = list(loaded.targets) if loaded else []
    if args.only:
        known = {t.name for t in targets}
        for name in args.only:
            if name not in known:
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                also = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise UsageError(f"--only {name}: no target of that name{also}")
        targets = [t for t in targets if t.name in args.only]
    if args.stages:
        targets = [replace(t, stages=args.stages) for t in targets]
    return targets


def _refuse_a_misspelt_name(spec: str, names: Mapping[str, object], path: str) -> None:
    """A TARGET that is no target's name is checked as a host; but a bare word one slip of the
    keyboard away from a name in the file is far more likely a typo of it than a host: say so
    rather than send a lookup for it. `host:port`, `ssh://host` (or any form with `.`, `:`, `@`,
    `/`) is always a host."""
    if spec in names or any(mark in spec for mark in ".:@/[]"):
        return
    for name in names:
        if _a_typo_of(spec, name):
            raise UsageError(
                f"'{spec}' is not a target in {path} (did you mean '{name}'?); "
                f"to check a host of that name, write it as ssh://{spec}"
            )


def _a_typo_of(typed: str, name: str) -> bool:
    """One slip: a character added, dropped or changed, or two neighbours swapped. A different
    number is not a slip (`sftp2` next to `sftp1` is another host), nor is anything in a name
    too short to tell."""
    digits = [c for c in typed if c.isdigit()], [c for c in name if c.isdigit()]
    if len(name) < 4 or typed == name or digits[0] != digits[1]:
        return False
    if len(typed) == len(name):
        wrong = [i for i, (a, b) in enumerate(zip(typed, name, strict=True)) if a != b]
        return len(wrong) == 1 or (
            len(wrong) == 2
            and wrong[1] == wrong[0] + 1
            and (typed[wrong[0]], typed[wrong[1]]) == (name[wrong[1]], name[wrong[0]])
        )
    longer, shorter = (typed, name) if len(typed) > len(name) else (name, typed)
    if len(longer) - len(shorter) != 1:
        return False
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def _raise_fd_limit() -> None:
    """One socket per target in flight: lift the soft descriptor limit to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _quiet_libraries() -> None:
    """paramiko logs tracebacks through Python's last-resort handler unless its logger is
    configured (DESIGN §3); failures reach the user as diagnoses instead."""
    import logging

    for name in ("paramiko", "preflight"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        logger.propagate = False


class Signals:
    """SIGINT and SIGTERM, caught for the whole of a command: the first one cancels the run
    (through `on_first`, set while the event loop runs); any later one is only recorded, so
    nothing can cut short the wind-down that records what finished or the writing of the
    reports — those are what an interrupted CI job still needs (DESIGN §5)."""

    WATCHED = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: list[int] = []
        self.on_first: Callable[[], object] | None = None

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        if len(self.received) == 1 and self.on_first is not None:
            self.on_first()

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None

    @contextlib.contextmanager
    def caught(self) -> Iterator[Signals]:
        try:
            previous = {signum: signal.signal(signum, self._handle) for signum in self.WATCHED}
        except ValueError:  # not the main thread (an embedding application): leave them be
            yield self
            return
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def run_with_signals(
    targets: Sequence[Target],
    deadline: float | None,
    jobs: int | None,
    signals: Signals,
    on_target_done: Callable[[TargetResult], None] | None = None,
    attempts: int = 1,
    interval: float = 1.0,
) -> Report:
    """Run the checks; the first signal in `signals` cancels them (a report still comes back,
    marked interrupted)."""
    import asyncio

    from preflight.runner import DEFAULT_JOBS, RunOptions, run_checks

    async def main() -> Report:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        # Signal handlers run between bytecodes of the main thread; call_soon_threadsafe wakes
        # the loop out of its select().
        signals.on_first = lambda: loop.call_soon_threadsafe(task.cancel)
        if signals.received:
            task.cancel()
        try:
            options = RunOptions(deadline=deadline, jobs=jobs or DEFAULT_JOBS)
            if attempts > 1:
                from preflight.attempts import run_attempts

                return await run_attempts(
                    targets, options, attempts, interval, on_target_done=on_target_done
                )
            return await run_checks(targets, options, on_target_done=on_target_done)
        finally:
            signals.on_first = None

    return asyncio.run(main())


def write_reports(
    report: Report,
    *,
    junit: str | None,
    json_path: str | None,
    stdout: TextIO,
    color: bool,
    environ: Mapping[str, str] | None = None,
    stderr: TextIO | None = None,
    vantage_line: str | None = None,
) -> list[str]:
    """Write the console report and the requested files (`report.outputs`); the problems."""
    from preflight.report import outputs

    return outputs.write(
        report,
        outputs.Outputs(
            stdout=stdout,
            color=color,
            junit=junit,
            json=json_path,
            environ=environ,
            stderr=stderr,
            vantage_line=vantage_line,
        ),
    )


def _check_report_paths(*paths: str | None) -> None:
    """Refuse before probing a report path that cannot be written."""
    from preflight.report.files import unwritable_reason

    for path in paths:
        reason = unwritable_reason(path) if path else None
        if reason:
            raise UsageError(f"cannot write a report to {path}: {reason}")


def _finish(status: ExitStatus, problems: list[str], stderr: TextIO) -> ExitStatus:
    """A run whose report could not be written must not look green."""
    for problem in problems:
        stderr.write(f"preflight: {problem}\n")
    if problems and status is ExitStatus.OK:
        return ExitStatus.CHECK_FAILED
    return status


def _exit_for(report: Report, signum: int | None) -> ExitStatus:
    if signum == signal.SIGTERM:
        return ExitStatus.TERMINATED
    if signum is not None or report.interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if report.ok else ExitStatus.CHECK_FAILED


def _command_check(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> ExitStatus:
    from preflight import vantage
    from preflight.report.console import color_enabled
    from preflight.report.progress import ProgressLine
    from preflight.report.progress import wanted as progress_wanted

    targets = _select_targets(args, environ)
    if not targets:
        raise UsageError("nothing to check: the selection is empty")
    shard = _shard_for(args, environ)
    if shard is not None:
        selected = len(targets)
        from preflight.shard import select as shard_select

        targets = shard_select(targets, shard)
        if not targets:
            stdout.write(
                f"shard {shard}: no targets ({selected} target{'s' if selected != 1 else ''} "
                f"dealt to {shard.total} shards); nothing to check\n"
            )
    _check_report_paths(args.junit, args.json)
    _raise_fd_limit()
    with Signals().caught() as signals:
        progress = ProgressLine(stderr, len(targets)) if progress_wanted(stderr, environ) else None
        try:
            report = run_with_signals(
                targets,
                args.deadline,
                args.jobs,
                signals,
                on_target_done=progress.target_done if progress else None,
                attempts=args.attempts,
                interval=args.interval,
            )
        finally:
            if progress:
                progress.close()
        here = vantage.detect(environ, shard=str(shard) if shard else None)
        vantage.stamp(report, here)
        problems = write_reports(
            report,
            junit=args.junit,
            json_path=args.json,
            stdout=stdout,
            color=color_enabled(stdout, args.color, environ),
            environ=environ,
            stderr=stderr,
            vantage_line=vantage.describe(report, here),
        )
    return _finish(_exit_for(report, signals.first), problems, stderr)


def _shard_for(args: argparse.Namespace, environ: Mapping[str, str]) -> Shard | None:
    """--shard, or under GitLab parallel: the job's CI_NODE_INDEX/CI_NODE_TOTAL."""
    from preflight.shard import ShardError, shard_from_environ

    if args.shard is not None:
        return args.shard if args.shard.total > 1 else None
    try:
        shard = shard_from_environ(environ)
    except ShardError as exc:
        raise UsageError(str(exc)) from None
    return shard if shard is not None and shard.total > 1 else None


def _command_merge(
    args: argparse.Namespace, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]
) -> ExitStatus:
    from preflight import vantage
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
    _check_report_paths(args.junit, args.json)
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
    problems = write_reports(
        merged,
        junit=args.junit,
        json_path=args.json,
        stdout=stdout,
        color=color_enabled(stdout, args.color, environ),
        environ=environ,
        stderr=stderr,
        vantage_line=vantage.describe(merged),
    )
    status = ExitStatus.OK if merged.ok and not (missing and certain) else ExitStatus.CHECK_FAILED
    return _finish(status, problems, stderr)


def _command_validate(
    args: argparse.Namespace, stdout: TextIO, environ: Mapping[str, str]
) -> ExitStatus:
    from preflight import config, readiness
    from preflight.model import endpoint

    path, named = _config_path(args.config, environ)
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


def _command_demo(
    args: argparse.Namespace, stdout: TextIO, environ: Mapping[str, str]
) -> ExitStatus:
    from preflight import demo
    from preflight.report.console import color_enabled

    return ExitStatus(
        demo.run_demo(
            stdout, junit_path=args.junit, color=color_enabled(stdout, args.color, environ)
        )
    )


def run(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """The program. Returns the exit status; never raises for bad input."""
    # A process started with stdout or stderr closed (`>&-`) has None there: its output goes
    # nowhere, as with `> /dev/null`, and the report files are still written.
    stdout = stdout or sys.stdout or _discard()
    stderr = stderr or sys.stderr or _discard()
    environ = os.environ if environ is None else environ
    parser = _parser()
    if argv is not None and any("\x00" in arg for arg in argv):
        # Only possible in-process: a real command line cannot hold one (execve).
        stderr.write("preflight: an argument contains a NUL character\n")
        return ExitStatus.USAGE
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage, --help or --version
        return int(exc.code or 0)
    _quiet_libraries()
    from preflight.config import ConfigError

    try:
        if args.command == "check":
            return _command_check(args, stdout, stderr, environ)
        if args.command == "merge":
            return _command_merge(args, stdout, stderr, environ)
        if args.command == "validate":
            return _command_validate(args, stdout, environ)
        if args.command == "demo":
            return _command_demo(args, stdout, environ)
        parser.print_help(stderr)
        return ExitStatus.USAGE
    except ConfigError as exc:
        stderr.write(f"{exc}\n")
        return ExitStatus.USAGE
    except UsageError as exc:
        stderr.write(f"preflight: {exc}\n")
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        stderr.write("preflight: interrupted\n")
        return ExitStatus.INTERRUPTED
    except Exception:
        import traceback

        stderr.write(
            "preflight: internal error (a bug in preflight; please report it with "
            "the lines below)\n"
        )
        stderr.write(traceback.format_exc())
        return ExitStatus.INTERNAL


@functools.cache
def _discard() -> TextIO:
    """/dev/null, opened once and kept for the life of the process."""
    return open(os.devnull, "w", encoding="utf-8")


def main() -> None:
    status = run()
    # The reports are written: a late Ctrl-C or SIGTERM must not turn this exit status into
    # a death by signal.
    for signum in Signals.WATCHED:
        signal.signal(signum, signal.SIG_IGN)
    _leave(_flushed(status))


def _flushed(status: int) -> int:
    """Flush what Python still buffers for stdout and stderr. A console that cannot take the
    rest of the report (a full disk, an I/O error) must not leave a green exit status; a reader
    that stopped early (`preflight check | head`) chose to, and changes nothing."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with the descriptor closed
            continue
        try:
            stream.flush()
        except BrokenPipeError:
            pass
        except (OSError, ValueError) as exc:
            if status != ExitStatus.OK:
                continue  # already not green: the status says enough
            status = ExitStatus.CHECK_FAILED
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.write(f"preflight: could not write the console report: {exc}\n")
                sys.stderr.flush()
    return status


def _leave(status: int) -> NoReturn:
    """Exit without the interpreter's teardown, which frees every object and module one by one
    (15 ms of a 130 ms dns,tcp check) with nothing left to do for preflight: every report file
    is written and closed, the console flushed, and every thread of ours is a daemon. Exit hooks
    still run (a coverage tool's, paramiko's); under a tracer or profiler (coverage, cProfile, a
    debugger) or `-X dev` the interpreter shuts down as usual, so their output is not lost."""
    if _watched() or sys.flags.dev_mode:
        sys.exit(status)
    atexit._run_exitfuncs()
    os._exit(status)


def _watched() -> bool:
    """Whether a tracer, profiler or debugger is attached: through sys.settrace/setprofile, or
    (Python 3.12+, where cProfile and coverage may use it instead) through sys.monitoring."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring: Any = getattr(sys, "monitoring", None)
    return monitoring is not None and any(
        monitoring.get_tool(tool) is not None for tool in range(6)
    )
