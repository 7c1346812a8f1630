"""The scenarios: what each one sets up, which programs it races, and what counts as a verdict.

Each scenario is a context manager that starts its loopback servers, writes the job files and
preflight configs into the work directory and yields a `Plan`: the contestants (preflight first,
then the baselines), the outcome every target should end with, and the timeout that should end a
failing target. The runner (`bench.suite`) runs the contestants round-robin, several times each,
while the servers are up. Every contestant gets the same timeouts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.measure import Run
from bench.servers import REPO, DropFarm, SSHDTarget, TarpitFarm, sshd, sshd_unavailable

PROGRAMS = Path(__file__).resolve().parent / "programs"
Expect = Literal["fail", "ok"]
Parser = Callable[[Run, int], dict[str, Any]]  # what one run left → verdicts and timings

# Credentials and config the children must not pick up from whoever runs the suite.
_SCRUBBED_ENV = (
    "SFTP_PASSWORD",
    "SSH_PRIVATE_KEY",
    "SSH_KEY_PASSPHRASE",
    "SSH_KNOWN_HOSTS",
    "PREFLIGHT_CONFIG",
    "SSH_AUTH_SOCK",
    "PYTHONPATH",
)


@dataclass(frozen=True)
class Params:
    """The sizes and timeouts of one suite run (`--quick` shrinks them)."""

    quick: bool
    many: int  # targets in the DROP and tarpit scenarios
    healthy_many: int  # targets against the one sshd
    jobs: int  # SSH concurrency for preflight and the pools
    reps: int  # repetitions of the short scenarios
    reps_many: int  # repetitions of the many-target scenarios
    reps_startup: int
    tcp: float
    banner: float
    auth: float
    sftp: float
    cap: float  # how long a baseline known to hang is given before it is killed
    safety_cap: float  # every other program: a limit that only a bug would reach
    ports: int  # listening ports the many targets are spread over

    @property
    def timeouts(self) -> dict[str, float]:
        return {
            "dns": self.tcp,
            "tcp": self.tcp,
            "banner": self.banner,
            "auth": self.auth,
            "sftp": self.sftp,
        }


def params(
    quick: bool, targets: int | None = None, reps: int | None = None, cap: float | None = None
) -> Params:
    if quick:
        base = Params(
            quick=True,
            many=100,
            healthy_many=40,
            jobs=32,
            reps=2,
            reps_many=2,
            reps_startup=5,
            tcp=1.0,
            banner=2.0,
            auth=10.0,
            sftp=10.0,
            cap=4.0,
            safety_cap=60.0,
            ports=10,
        )
    else:
        base = Params(
            quick=False,
            many=1000,
            healthy_many=200,
            jobs=32,
            reps=5,
            reps_many=3,
            reps_startup=30,
            tcp=3.0,
            banner=5.0,
            auth=10.0,
            sftp=10.0,
            cap=30.0,
            safety_cap=120.0,
            ports=20,
        )
    changes: dict[str, Any] = {}
    if targets is not None:
        changes.update(many=targets, healthy_many=targets, ports=min(base.ports, targets))
    if reps is not None:
        changes.update(reps=reps, reps_many=reps, reps_startup=reps)
    if cap is not None:
        changes.update(cap=cap)
    if changes:
        from dataclasses import replace

        base = replace(base, **changes)
    return base


@dataclass
class Contestant:
    """One program in a scenario. `argv(i)` builds the command line of run `i`; `parse` reads
    what that run left (stdout, a report file) into per-target outcomes."""

    name: str
    argv: Callable[[int], list[str]]
    cap_s: float
    reps: int
    parse: Parser | None = None
    env: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None  # why it cannot run here (then it is listed, not run)
    note: str = ""


@dataclass
class Plan:
    contestants: list[Contestant]
    expect: Expect
    expected_timeout: float | None  # the timeout that should end a failing target
    targets: int
    reference: str  # the contestant the wall-time ratios divide by
    settle: Callable[[], None] = lambda: None  # between runs: let the servers catch up
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    plan: Callable[[Params, Path], contextlib.AbstractContextManager[Plan]]
    needs_sshd: bool = False


# -- helpers --------------------------------------------------------------------------------


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(extra or {})
    return env


def preflight_env() -> dict[str, str]:
    # The working tree's preflight, whatever is installed; cwd stays the scenario's directory
    # so that the repository's checks.yaml is not picked up.
    return {"PYTHONPATH": str(REPO)}


def preflight_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "preflight", *args]


def _yaml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


def write_config(
    path: Path,
    addresses: list[tuple[str, int]],
    p: Params,
    login: SSHDTarget | None = None,
) -> Path:
    """A checks.yaml with one target per address and the scenario's timeouts."""
    t = p.timeouts
    lines = [
        "version: 1",
        "defaults:",
        f"  user: {login.user if login else 'bench'}",
        "  stages: [dns, tcp, banner, auth, sftp]",
        "  timeouts: {" + ", ".join(f"{stage}: {seconds:g}" for stage, seconds in t.items()) + "}",
        "  deadline: 60",
    ]
    if login:
        lines += [
            f"  auth: {{key: {_yaml_str(login.key_path)}, password: null, passphrase: null}}",
            f"  host_key: {{known_hosts: {_yaml_str(login.known_hosts_path)}, policy: strict}}",
            f"  sftp: {{path: {_yaml_str(login.sftp_path)}}}",
        ]
    else:
        lines += [
            "  auth: {key: null, password: null, passphrase: null}",
            "  host_key: {known_hosts: null, policy: off}",
        ]
    lines.append("targets:")
    lines += [
        f"  - {{name: t{i}, host: {host}, port: {port}}}"
        for i, (host, port) in enumerate(addresses)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_job(path: Path, addresses: list[tuple[str, int]], **job: Any) -> str:
    path.write_text(json.dumps({"targets": addresses, **job}))
    return str(path)


def program(name: str, job: str) -> Callable[[int], list[str]]:
    return lambda _i: [sys.executable, str(PROGRAMS / name), job]


def _floor(p: Params, job: str) -> Contestant:
    """The many-target scenarios' floor: `programs/asyncio_floor.py` on the same job."""
    return Contestant(
        "bare asyncio: connect and read, nothing else (the floor)",
        program("asyncio_floor.py", job),
        cap_s=p.safety_cap,
        reps=p.reps_many,
        parse=parse_program("fail"),
    )


def _asyncssh_missing() -> str | None:
    try:
        import importlib.util

        if importlib.util.find_spec("asyncssh") is None:
            return "asyncssh is not installed (pip install '.[bench]')"
    except (ImportError, ValueError):
        return "asyncssh is not installed (pip install '.[bench]')"
    return None


def _tool_missing(tool: str, package: str) -> str | None:
    return None if shutil.which(tool) else f"{tool} not found (apt-get install {package})"


# -- parsing what the programs left ----------------------------------------------------------


def parse_preflight(report_path: Callable[[int], Path], expect: Expect, code: str | None) -> Parser:
    """Read preflight's --json report: per-target verdicts and how late the slowest one ended."""

    def parse(run: Run, i: int) -> dict[str, Any]:
        path = report_path(i)
        if not path.exists():
            return {"error": f"no report (exit {run.returncode})"}
        report = json.loads(path.read_text())
        path.unlink()
        targets = report["targets"]
        if expect == "ok":
            good = sum(1 for t in targets if t["ok"])
        else:
            good = sum(
                1
                for t in targets
                if not t["ok"] and t["failure"] and (code is None or t["failure"]["code"] == code)
            )
        return {
            "targets": len(targets),
            "as_expected": good,
            "elapsed": [t["duration_s"] for t in targets],
            "run_s": report["duration_s"],
        }

    return parse


def parse_program(expect: Expect) -> Parser:
    """Read a baseline program's JSON line."""

    def parse(run: Run, _i: int) -> dict[str, Any]:
        try:
            data = json.loads(run.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            return {"error": "no result" + (" (killed at the cap)" if run.capped else "")}
        results = data["results"]
        good = sum(1 for r in results if r["ok"] == (expect == "ok"))
        errors = sorted({r["error"] for r in results if r["error"]})
        return {
            "targets": len(results),
            "as_expected": good,
            "elapsed": [r["elapsed"] for r in results],
            "errors": errors[:3],
        }

    return parse


def parse_exit(expect: Expect) -> Parser:
    """A command-line tool (ssh, sftp, nc): its exit status is its verdict."""

    def parse(run: Run, _i: int) -> dict[str, Any]:
        ok = run.returncode == 0
        return {
            "targets": 1,
            "as_expected": int(ok == (expect == "ok") and not run.capped),
            "elapsed": [run.wall_s],
        }

    return parse


# -- the scenarios ---------------------------------------------------------------------------


def _preflight_contestant(
    name: str,
    workdir: Path,
    config: Path,
    reps: int,
    cap: float,
    expect: Expect,
    code: str | None,
    extra: tuple[str, ...] = (),
) -> Contestant:
    def report(i: int) -> Path:
        return workdir / f"preflight-report-{i}.json"

    return Contestant(
        name=name,
        argv=lambda i: preflight_cmd(
            "check", "-c", str(config), "--json", str(report(i)), "--color", "never", *extra
        ),
        cap_s=cap,
        reps=reps,
        parse=parse_preflight(report, expect, code),
        env=preflight_env(),
    )


def _timeouts_job(p: Params) -> dict[str, Any]:
    return {"timeouts": p.timeouts}


@contextlib.contextmanager
def drop_one(p: Params, workdir: Path) -> Iterator[Plan]:
    with DropFarm(1) as farm:
        addresses = farm.addresses(1)
        host, port = addresses[0]
        config = write_config(workdir / "drop-1.yaml", addresses, p)
        job = write_job(
            workdir / "drop-1.json", addresses, connect_timeout=p.tcp, **_timeouts_job(p)
        )
        tcp = f"{p.tcp:g}"
        contestants = [
            _preflight_contestant(
                "preflight", workdir, config, p.reps, p.safety_cap, "fail", "tcp.timeout"
            ),
            Contestant(
                "paramiko Transport((host, port)) (naive)",
                program("naive_paramiko.py", job),
                cap_s=p.cap,
                reps=1,
                parse=parse_program("fail"),
                note="no timeout parameter; killed at the cap",
            ),
            Contestant(
                "paramiko SSHClient.connect(timeout=…)",
                program("sshclient.py", job),
                cap_s=p.safety_cap,
                reps=p.reps,
                parse=parse_program("fail"),
            ),
            Contestant(
                f"ssh -o ConnectTimeout={tcp} -o BatchMode=yes",
                lambda _i: [
                    "ssh",
                    "-F",
                    "/dev/null",
                    "-o",
                    f"ConnectTimeout={tcp}",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-p",
                    str(port),
                    f"bench@{host}",
                    "true",
                ],
                cap_s=p.safety_cap,
                reps=p.reps,
                parse=parse_exit("fail"),
                unavailable=_tool_missing("ssh", "openssh-client"),
            ),
            Contestant(
                f"nc -z -w {tcp}",
                lambda _i: ["nc", "-z", "-w", tcp, host, str(port)],
                cap_s=p.safety_cap,
                reps=p.reps,
                parse=parse_exit("fail"),
                unavailable=_tool_missing("nc", "netcat-openbsd"),
            ),
            Contestant(
                f"asyncssh connect_timeout={tcp}",
                program("asyncssh_client.py", job),
                cap_s=p.safety_cap,
                reps=p.reps,
                parse=parse_program("fail"),
                unavailable=_asyncssh_missing(),
            ),
        ]
        yield Plan(contestants, "fail", p.tcp, 1, "preflight")


@contextlib.contextmanager
def drop_many(p: Params, workdir: Path, *, reports: tuple[str, ...] = ()) -> Iterator[Plan]:
    with DropFarm(p.ports) as farm:
        addresses = farm.addresses(p.many)
        config = write_config(workdir / "drop-many.yaml", addresses, p)
        threads = write_job(
            workdir / "drop-many.json", addresses, connect_timeout=p.tcp, **_timeouts_job(p)
        )
        pool = write_job(
            workdir / "drop-many-pool.json",
            addresses,
            concurrency=p.jobs,
            connect_timeout=p.tcp,
            **_timeouts_job(p),
        )
        contestants = [
            _preflight_contestant(
                "preflight",
                workdir,
                config,
                p.reps_many,
                p.safety_cap,
                "fail",
                "tcp.timeout",
                extra=reports,
            ),
            Contestant(
                "paramiko SSHClient, a thread per target",
                program("sshclient.py", threads),
                cap_s=p.safety_cap,
                reps=p.reps_many,
                parse=parse_program("fail"),
            ),
            Contestant(
                f"paramiko SSHClient, {p.jobs}-thread pool",
                program("sshclient.py", pool),
                cap_s=p.cap,
                reps=1,
                parse=parse_program("fail"),
                note=f"{p.many} targets / {p.jobs} workers × {p.tcp:g} s; killed at the cap",
            ),
            _floor(p, threads),
            Contestant(
                f"asyncssh connect_timeout={p.tcp:g}, all at once",
                program("asyncssh_client.py", threads),
                cap_s=p.safety_cap,
                reps=p.reps_many,
                parse=parse_program("fail"),
                unavailable=_asyncssh_missing(),
            ),
        ]
        yield Plan(contestants, "fail", p.tcp, p.many, "preflight", facts={"ports": p.ports})


@contextlib.contextmanager
def tarpit_many(p: Params, workdir: Path, *, reports: tuple[str, ...] = ()) -> Iterator[Plan]:
    with TarpitFarm(p.ports) as farm:
        addresses = farm.addresses(p.many)
        config = write_config(workdir / "tarpit-many.yaml", addresses, p)
        job = write_job(
            workdir / "tarpit-many.json", addresses, connect_timeout=p.banner, **_timeouts_job(p)
        )

        def settle() -> None:
            deadline = time.monotonic() + 10
            while farm.open_connections and time.monotonic() < deadline:
                time.sleep(0.05)

        contestants = [
            _preflight_contestant(
                "preflight",
                workdir,
                config,
                p.reps_many,
                p.safety_cap,
                "fail",
                "banner.timeout",
                extra=reports,
            ),
            Contestant(
                "paramiko SSHClient, a thread per target",
                program("sshclient.py", job),
                cap_s=p.safety_cap,
                reps=p.reps_many,
                parse=parse_program("fail"),
                note=f"connect(timeout={p.tcp:g}) also bounds start_client: it gives up after "
                f"{p.tcp:g} s, before banner_timeout={p.banner:g}",
            ),
            _floor(p, job),
            Contestant(
                f"asyncssh connect_timeout={p.banner:g}, all at once",
                program("asyncssh_client.py", job),
                cap_s=p.safety_cap,
                reps=p.reps_many,
                parse=parse_program("fail"),
                unavailable=_asyncssh_missing(),
            ),
        ]
        yield Plan(
            contestants,
            "fail",
            p.banner,
            p.many,
            "preflight",
            settle=settle,
            facts={"ports": p.ports},
        )


def _sftp_batch(workdir: Path, login: SSHDTarget) -> Path:
    batch = workdir / "sftp-batch"
    batch.write_text(f"ls {login.sftp_path}\n")
    return batch


def _openssh_login_options(p: Params, login: SSHDTarget) -> list[str]:
    return [
        "-F",
        "/dev/null",
        "-o",
        f"ConnectTimeout={p.tcp:g}",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={login.known_hosts_path}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-i",
        login.key_path,
    ]


def _sshd_settle() -> None:
    time.sleep(0.25)  # let sshd's per-connection processes finish before the next run


@contextlib.contextmanager
def healthy_one(p: Params, workdir: Path) -> Iterator[Plan]:
    with sshd(workdir) as login:
        addresses = [(login.host, login.port)]
        config = write_config(workdir / "healthy-1.yaml", addresses, p, login)
        login_job = {
            "user": login.user,
            "key_path": login.key_path,
            "known_hosts_path": login.known_hosts_path,
            "sftp_path": login.sftp_path,
        }
        job = write_job(
            workdir / "healthy-1.json",
            addresses,
            login=login_job,
            connect_timeout=p.tcp + p.banner + p.auth,
            **_timeouts_job(p),
        )
        batch = _sftp_batch(workdir, login)
        reps = p.reps * 2
        contestants = [
            _preflight_contestant("preflight", workdir, config, reps, p.safety_cap, "ok", None),
            Contestant(
                "minimal paramiko five-stage script",
                program("minimal_paramiko.py", job),
                cap_s=p.safety_cap,
                reps=reps,
                parse=parse_program("ok"),
            ),
            Contestant(
                "paramiko SSHClient.connect + open_sftp",
                program("sshclient.py", job),
                cap_s=p.safety_cap,
                reps=reps,
                parse=parse_program("ok"),
            ),
            Contestant(
                "OpenSSH sftp -b (ls)",
                lambda _i: [
                    "sftp",
                    "-q",
                    "-b",
                    str(batch),
                    *_openssh_login_options(p, login),
                    "-P",
                    str(login.port),
                    f"{login.user}@{login.host}",
                ],
                cap_s=p.safety_cap,
                reps=reps,
                parse=parse_exit("ok"),
                unavailable=_tool_missing("sftp", "openssh-client"),
            ),
            Contestant(
                "asyncssh + SFTP listdir",
                program("asyncssh_client.py", job),
                cap_s=p.safety_cap,
                reps=reps,
                parse=parse_program("ok"),
                unavailable=_asyncssh_missing(),
            ),
        ]
        yield Plan(
            contestants,
            "ok",
            None,
            1,
            "preflight",
            settle=_sshd_settle,
            facts={"openssh": login.openssh_version},
        )


@contextlib.contextmanager
def healthy_many(p: Params, workdir: Path) -> Iterator[Plan]:
    n = p.healthy_many
    extra = [f"MaxStartups {4 * n + 100}:30:{8 * n + 200}", "MaxSessions 100"]
    with sshd(workdir, extra_config=extra) as login:
        addresses = [(login.host, login.port)] * n
        config = write_config(workdir / "healthy-many.yaml", addresses, p, login)
        login_job = {
            "user": login.user,
            "key_path": login.key_path,
            "known_hosts_path": login.known_hosts_path,
            "sftp_path": login.sftp_path,
        }
        job = write_job(
            workdir / "healthy-many.json",
            addresses,
            login=login_job,
            concurrency=p.jobs,
            connect_timeout=p.tcp + p.banner + p.auth,
            **_timeouts_job(p),
        )
        contestants = [
            _preflight_contestant(
                f"preflight --jobs {p.jobs}",
                workdir,
                config,
                p.reps_many,
                p.safety_cap,
                "ok",
                None,
                extra=("--jobs", str(p.jobs)),
            ),
            Contestant(
                f"minimal paramiko script, {p.jobs}-thread pool",
                program("minimal_paramiko.py", job),
                cap_s=p.safety_cap,
                reps=p.reps_many,
                parse=parse_program("ok"),
            ),
            Contestant(
                f"paramiko SSHClient, {p.jobs}-thread pool",
                program("sshclient.py", job),
                cap_s=p.safety_cap,
                reps=p.reps_many,
                parse=parse_program("ok"),
            ),
            Contestant(
                f"asyncssh, {p.jobs} at a time",
                program("asyncssh_client.py", job),
                cap_s=p.safety_cap,
                reps=p.reps_many,
                parse=parse_program("ok"),
                unavailable=_asyncssh_missing(),
            ),
        ]
        yield Plan(
            contestants,
            "ok",
            None,
            n,
            f"preflight --jobs {p.jobs}",
            settle=_sshd_settle,
            facts={"openssh": login.openssh_version, "sshd_extra_config": extra},
        )


# preflight's network stages run on asyncio, whose import alone costs about as much as the
# interpreter's start-up: the dns,tcp start-up bar is judged with that floor taken out.
ASYNCIO_FLOOR = "python -c 'import asyncio' (the event loop's floor)"


@contextlib.contextmanager
def startup(p: Params, workdir: Path) -> Iterator[Plan]:
    with TarpitFarm(1) as farm:
        host, port = farm.address(0)
        contestants = [
            Contestant(
                "python -c pass",
                lambda _i: [sys.executable, "-c", "pass"],
                cap_s=p.safety_cap,
                reps=p.reps_startup,
            ),
            Contestant(
                "preflight --version",
                lambda _i: preflight_cmd("--version"),
                cap_s=p.safety_cap,
                reps=p.reps_startup,
                env=preflight_env(),
            ),
            Contestant(
                "preflight check HOST:PORT --stages dns,tcp",
                lambda _i: preflight_cmd(
                    "check", f"{host}:{port}", "--stages", "dns,tcp", "--color", "never"
                ),
                cap_s=p.safety_cap,
                reps=p.reps_startup,
                parse=parse_exit("ok"),
                env=preflight_env(),
            ),
            Contestant(
                f"nc -z -w {p.tcp:g} HOST PORT",
                lambda _i: ["nc", "-z", "-w", f"{p.tcp:g}", host, str(port)],
                cap_s=p.safety_cap,
                reps=p.reps_startup,
                parse=parse_exit("ok"),
                unavailable=_tool_missing("nc", "netcat-openbsd"),
            ),
            Contestant(
                ASYNCIO_FLOOR,
                lambda _i: [sys.executable, "-c", "import asyncio"],
                cap_s=p.safety_cap,
                reps=p.reps_startup,
            ),
            Contestant(
                "python -c 'import paramiko' (for scale)",
                lambda _i: [sys.executable, "-c", "import paramiko"],
                cap_s=p.safety_cap,
                reps=p.reps_startup,
            ),
        ]
        yield Plan(
            contestants,
            "ok",
            None,
            1,
            "python -c pass",
            facts={"tcp_target": f"{host}:{port}"},
        )


def ten_thousand(p: Params) -> Params:
    """The fleet scenarios' sizes: ten times the many-target ones (10,000 targets over 200
    ports in a full run), two runs of each program."""
    from dataclasses import replace

    return replace(p, many=10 * p.many, ports=10 * p.ports, reps_many=min(p.reps_many, 2))


def _with_reports(workdir: Path) -> tuple[str, ...]:
    # The fleet bars are for a run that writes what a CI job keeps: JUnit and JSON (the JSON
    # path is the contestant's own, read back for the verdicts).
    return ("--junit", str(workdir / "fleet-report.xml"))


@contextlib.contextmanager
def drop_fleet(p: Params, workdir: Path) -> Iterator[Plan]:
    with drop_many(ten_thousand(p), workdir, reports=_with_reports(workdir)) as plan:
        yield plan


@contextlib.contextmanager
def tarpit_fleet(p: Params, workdir: Path) -> Iterator[Plan]:
    with tarpit_many(ten_thousand(p), workdir, reports=_with_reports(workdir)) as plan:
        yield plan


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("drop-1", "1 target behind a silent DROP", drop_one),
    Scenario("drop-many", "many targets behind a silent DROP", drop_many),
    Scenario("tarpit-many", "many tarpits (accept, never speak)", tarpit_many),
    Scenario("drop-fleet", "a fleet behind a silent DROP, with JUnit and JSON", drop_fleet),
    Scenario("tarpit-fleet", "a fleet of tarpits, with JUnit and JSON", tarpit_fleet),
    Scenario("healthy-1", "1 healthy target, all five stages, local OpenSSH", healthy_one, True),
    Scenario("healthy-many", "many healthy targets, one local sshd", healthy_many, True),
    Scenario("startup", "start-up: whole process, nothing slow to wait for", startup),
)


def scenario_titles(p: Params) -> dict[str, str]:
    """Titles with this run's sizes and timeouts."""
    return {
        "drop-1": f"1 target behind a silent DROP, tcp {p.tcp:g} s",
        "drop-many": f"{p.many:,} targets behind a silent DROP, tcp {p.tcp:g} s",
        "tarpit-many": f"{p.many:,} tarpits (accept, never speak), banner {p.banner:g} s",
        "drop-fleet": f"{ten_thousand(p).many:,} targets behind a silent DROP, tcp {p.tcp:g} s, "
        "with JUnit and JSON",
        "tarpit-fleet": f"{ten_thousand(p).many:,} tarpits, banner {p.banner:g} s, with JUnit "
        "and JSON",
        "healthy-1": "1 healthy target, all five stages, local OpenSSH",
        "healthy-many": f"{p.healthy_many:,} healthy targets, one local sshd, {p.jobs} at a time",
        "startup": "start-up, whole process",
    }


def sshd_reason() -> str | None:
    return sshd_unavailable()
