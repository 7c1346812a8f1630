"""The command line: parse the arguments, run the subcommand, turn what went wrong into an exit
status, and leave the process.

`run` is the command line as a function, separate from the process (`main`), with its streams
and environment injected, so tests call `run([...], stdout=..., stderr=..., environ=...)`
without a subprocess. It never raises for bad input: a usage or configuration error is exit 2
with one line, a bug exit 3 with its traceback (DESIGN §5). The grammar is `cli.parser`, the
subcommands `cli.commands`; what a run is lives below (`selection`, `program`, `report.outputs`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TextIO

from preflight.status import ExitStatus, UsageError

__all__ = ["main", "run"]


def _quiet_libraries() -> None:
    """paramiko logs tracebacks through Python's last-resort handler unless its logger is
    configured (DESIGN §3); failures reach the user as diagnoses instead."""
    import logging

    for name in ("paramiko", "preflight"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        logger.propagate = False


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
    from preflight.cli import parser as grammar

    if argv is not None and any("\x00" in arg for arg in argv):
        # Only possible in-process: a real command line cannot hold one (execve).
        stderr.write("preflight: an argument contains a NUL character\n")
        return ExitStatus.USAGE
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = grammar.parse(argv)
    except SystemExit as exc:  # argparse has printed usage, --help or --version
        return int(exc.code or 0)
    _quiet_libraries()
    from preflight.cli import commands
    from preflight.config import ConfigError

    try:
        if args.command == "check":
            return commands.check(args, stdout, stderr, environ)
        if args.command == "merge":
            return commands.merge(args, stdout, stderr, environ)
        if args.command == "validate":
            return commands.validate(args, stdout, environ)
        if args.command == "demo":
            return commands.demo(args, stdout, environ)
        grammar.build().print_help(stderr)  # no command: what there is
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
    from preflight.program import Signals

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
