"""The command line's grammar: subcommands, options and the types that check their values.

Only argparse and the values' own checks live here (a number of seconds in range, a stage list
in order, a shard `I/N`, a stage's timeout); what the options do is in
`preflight.cli.commands`. A bad argument is one line on stderr (`preflight check: --stages:
…`), not the whole usage block above it: the line is what the user needs to read.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from preflight import __version__

if TYPE_CHECKING:
    from preflight.model import Stage
    from preflight.shard import Shard

__all__ = ["build", "parse"]

_CHECK_EPILOG = """\
credentials for a TARGET typed here:
  key       the host's IdentityFile in ~/.ssh/config (the first that exists),
            else checks.yaml's defaults, else $SSH_PRIVATE_KEY (a file, or the
            key text); $SSH_KEY_PASSPHRASE decrypts it
  password  checks.yaml's defaults, else $SFTP_PASSWORD; offered after the key
  with neither, the first of ssh's default keys that exists (~/.ssh/id_rsa,
  id_ecdsa, id_ed25519), except under -F none; ssh-agent is not used.
  Host keys: $SSH_KNOWN_HOSTS (known_hosts lines, or a file), else
  ~/.ssh/known_hosts. ~ is ssh's: the home directory of the passwd database.

examples:
  preflight check sftp.example.com:2222 --stages tcp     # just the port
  preflight check ops@sftp.example.com --timeout tcp=10  # a slow link
  preflight check -c none 10.0.0.5          # no checks.yaml at all
  preflight check --only sftp-prod,sftp-dr  # two targets of checks.yaml

exit status: 0 every check passed, 1 a check failed, 2 usage or configuration
error (nothing probed), 3 internal error, 130/143 interrupted (SIGINT/SIGTERM)
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is said in one line: `preflight check: MESSAGE`, with
    where to find the usage, instead of the usage block followed by the message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed command line. TARGETs may come after options too (`check HOST --stages tcp
    HOST2`), as an on-call engineer adds one at the end: argparse alone would refuse the
    second. Exits (argparse's way) on a bad argument, --help and --version."""
    parser = build()
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    command = _COMMANDS.get(args.command)
    if args.command == "check" and not any(word.startswith("-") for word in extra):
        args.targets = [*args.targets, *extra]
        return args
    (command or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    raise AssertionError("error() exits")


_COMMANDS: dict[str, argparse.ArgumentParser] = {}


def build() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="preflight",
        description="Pre-flight network diagnostic for CI jobs that depend on an SSH/SFTP "
        "server: dns, tcp, banner, auth and sftp checks, each with its own timeout.",
    )
    parser.add_argument("--version", action="version", version=f"preflight {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="check the targets of checks.yaml (or TARGETs)",
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_option(check, none="'none' for no file: only the TARGETs, built-in defaults")
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
        help="host, host:port, user@host:port, [IPv6]:port, ssh://user@host:port or "
        "sftp://user@host:port/path (with the file's defaults); or a target of the file, "
        "NAME, user@NAME or NAME:PORT",
    )
    check.add_argument(
        "--junit", metavar="FILE", help="write a JUnit XML report (its directory is made)"
    )
    check.add_argument("--json", metavar="FILE", help="write a JSON report (likewise)")
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
        type=_name_list,
        action="extend",
        metavar="NAME[,NAME…]",
        default=[],
        help="check only the targets with these names (repeat it, or separate names by commas)",
    )
    check.add_argument(
        "--stages",
        type=_stage_list,
        metavar="STAGE",
        help="stop after this stage (dns, tcp, banner, auth, sftp): 'tcp' runs dns,tcp; "
        "or list them, from dns in order: 'dns,tcp'",
    )
    check.add_argument(
        "--timeout",
        type=_stage_timeouts,
        action="extend",
        default=[],
        metavar="[STAGE=]S",
        help="a stage's timeout in seconds ('tcp=10', 'tcp=10,banner=20'), or S for every "
        "stage; wins over checks.yaml and ssh_config, and the report says it came from here",
    )
    check.add_argument(
        "--trace",
        action="store_true",
        help="after a tcp.timeout, find the last hop on the path that answers (a TCP "
        "traceroute, up to 2 s within the deadline); like trace: true in checks.yaml",
    )
    upload = check.add_argument_group(
        "upload check",
        "in the sftp stage, for every target checked (in checks.yaml: sftp.write,\n"
        "sftp.list and sftp.min_free)",
    )
    upload.add_argument(
        "--write",
        action="store_true",
        help="create, write and remove a test file in the sftp path, as the job's upload would",
    )
    upload.add_argument(
        "--write-size",
        type=_upload_size,
        metavar="SIZE",
        help="upload SIZE bytes (1MiB, 10MB) and report the rate; implies --write",
    )
    upload.add_argument(
        "--no-list",
        action="store_true",
        help="do not list the sftp path, only check it is a directory: a drop box (mode 0733) "
        "may be written and not listed",
    )
    upload.add_argument(
        "--min-free",
        type=_free_size,
        metavar="SIZE",
        help="fail when the sftp path has less free space than SIZE (5GiB), as the server's "
        "statvfs@openssh.com says",
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
    _add_color_option(check)
    _add_verbose_option(check)

    merge = commands.add_parser(
        "merge", help="combine the JSON reports of several runs (shards) into one report"
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT.json", help="JSON reports to merge")
    merge.add_argument("--junit", metavar="FILE", help="write the merged JUnit XML report")
    merge.add_argument("--json", metavar="FILE", help="write the merged JSON report")
    _add_color_option(merge)
    _add_verbose_option(merge)

    validate = commands.add_parser("validate", help="check the configuration, probe nothing")
    _add_config_option(validate)

    demo = commands.add_parser("demo", help="start local lab servers and check them")
    demo.add_argument(
        "--junit",
        metavar="FILE",
        default="preflight-demo.xml",
        help="where to write the demo's JUnit report (default %(default)s)",
    )
    _add_color_option(demo)
    _COMMANDS.update(check=check, merge=merge, validate=validate, demo=demo)
    return parser


def _add_config_option(parser: argparse.ArgumentParser, none: str = "") -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="configuration file (default: $PREFLIGHT_CONFIG or ./checks.yaml)"
        + (f"; {none}" if none else ""),
    )


def _add_color_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the console report: auto (the default) only on a terminal, and not when "
        "NO_COLOR is set (FORCE_COLOR forces it); always; never",
    )


def _add_verbose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show every target on the console: of many targets, those that failed alike "
        "(or passed) are otherwise shown once, with a count (JSON and JUnit list every target)",
    )


def _ranged(
    kind: type[int] | type[float], low: float, high: float, *, above: bool = False
) -> Callable[[str], Any]:
    """An argparse type: a `kind` number from `low` (excluded when `above`) to `high`."""
    what, unit = ("a whole number", "") if kind is int else ("a number of seconds", " seconds")

    def parse(text: str) -> Any:
        number = text.strip()
        if kind is float and number.endswith("s"):
            number = number[:-1]  # `3s`, as `timeout 3s` takes it: seconds all the same
        try:
            value = kind(number)
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


def _stage(name: str) -> Stage:
    import difflib

    from preflight.model import Stage

    try:
        return Stage(name.lower())
    except ValueError:
        hint = difflib.get_close_matches(name, [s.value for s in Stage], n=1)
        also = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise argparse.ArgumentTypeError(f"unknown stage {name!r}{also}") from None


def _stage_list(text: str) -> tuple[Stage, ...]:
    from preflight.model import ALL_STAGES, Stage

    if " " in text.strip() and "," not in text:
        raise argparse.ArgumentTypeError(f"separate the stages with commas, got {text!r}")
    stages = [_stage(name.strip()) for name in text.split(",") if name.strip()]
    if len(stages) == 1:  # one stage: every stage up to it (each needs the one before)
        return ALL_STAGES[: ALL_STAGES.index(stages[0]) + 1]
    if tuple(stages) != ALL_STAGES[: len(stages)] or not stages:
        last = max(stages, key=ALL_STAGES.index) if stages else Stage.DNS
        raise argparse.ArgumentTypeError(
            "stages must start at dns and follow the order dns,tcp,banner,auth,sftp without "
            f"gaps (each needs the one before), got {text!r}; or name the last one: "
            f"--stages {last}"
        )
    return tuple(stages)


def _name_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected NAME or NAME,NAME…, got {text!r}")
    return names


_timeout_seconds = _ranged(float, 0, 3600, above=True)


def _size_type(limit_key: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        from preflight import config, units

        limit = getattr(config, limit_key)
        try:
            size = units.parse_size(text)
        except units.SizeError as exc:
            message = f"expected a size like 1MiB, got {text!r} ({exc})"
            raise argparse.ArgumentTypeError(message) from None
        if not 0 < size <= limit:
            raise argparse.ArgumentTypeError(
                f"a size must be above 0 and at most {units.format_size(limit)}, got {text!r}"
            )
        return size

    return parse


_upload_size = _size_type("MAX_WRITE")
_free_size = _size_type("MAX_MIN_FREE")


def _stage_timeouts(text: str) -> list[tuple[Stage | None, float]]:
    """`10` (every stage), `tcp=10`, `tcp=10,banner=20`: (stage or None for all, seconds)."""
    timeouts: list[tuple[Stage | None, float]] = []
    for part in text.split(","):
        name, equals, seconds = part.strip().rpartition("=")
        if equals and not name.strip():
            raise argparse.ArgumentTypeError(f"expected STAGE=SECONDS, got {part.strip()!r}")
        timeouts.append((_stage(name.strip()) if equals else None, _timeout_seconds(seconds)))
    return timeouts
