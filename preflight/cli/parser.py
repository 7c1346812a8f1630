"""The command line's grammar: subcommands, options and the types that check their values.

Only argparse and the values' own checks live here (a number of seconds in range, a stage list
in order, a shard `I/N`); what the options do is in `preflight.cli.commands`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from preflight import __version__

if TYPE_CHECKING:
    from preflight.model import Stage
    from preflight.shard import Shard

__all__ = ["build"]


def build() -> argparse.ArgumentParser:
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
