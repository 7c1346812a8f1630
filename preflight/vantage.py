"""Where the checks ran from: the vantage point every report names.

"Dropped" only helps a firewall team when they also know *from where*: which runner, which local
source address, which CI job. `detect` reads that from the machine and the CI environment (GitLab
``CI_JOB_URL``; GitHub ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID``;
the runner's name; the ``--shard``), and `stamp` records it on each target as the stage fact
``vantage`` — on the stage that failed (so the JUnit failure body GitLab shows carries it) or else
on the target's first stage — together with the local source address: the one the tcp stage
connected from, or, for a target that never connected (a dropped SYN), the one the routing table
picks for the address that was tried (a UDP ``connect()``, which sends nothing). Because it is a
stage fact, it reaches the JSON and JUnit reports unchanged and survives a round trip through JSON,
so a report merged from several runners (`shard.merge_reports`) still says where each target was
checked from. `describe` turns it into the one line the console prints.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from preflight.model import Report, Stage, Status, TargetResult

__all__ = [
    "FACT",
    "Vantage",
    "describe",
    "detect",
    "job_url",
    "of_target",
    "route_source",
    "source_address",
    "stamp",
]

FACT = "vantage"

Route = Callable[[str, int], str | None]


@dataclass(frozen=True)
class Vantage:
    """The machine and CI job a run happens on; every field is optional but `runner`."""

    runner: str
    runner_name: str | None = None  # the CI's name for the runner, when it differs
    ci: str | None = None  # "gitlab" or "github"
    job_url: str | None = None
    shard: str | None = None  # "2/3"

    def as_fact(self) -> dict[str, str]:
        fact = {"runner": self.runner}
        for key in ("runner_name", "ci", "job_url", "shard"):
            value = getattr(self, key)
            if value:
                fact[key] = value
        return fact


def detect(
    environ: Mapping[str, str], *, shard: str | None = None, hostname: str | None = None
) -> Vantage:
    """The vantage point of this process, from its host name and the CI variables."""
    if hostname is None:
        try:
            hostname = socket.gethostname()
        except OSError:
            hostname = ""
    ci = None
    if environ.get("GITLAB_CI", "").lower() == "true":
        ci = "gitlab"
    elif environ.get("GITHUB_ACTIONS", "").lower() == "true":
        ci = "github"
    runner_name = environ.get("CI_RUNNER_DESCRIPTION") or environ.get("RUNNER_NAME") or None
    if runner_name == hostname:
        runner_name = None
    return Vantage(
        runner=hostname or "unknown host",
        runner_name=runner_name,
        ci=ci,
        job_url=job_url(environ),
        shard=shard,
    )


def job_url(environ: Mapping[str, str]) -> str | None:
    """The web page of the running CI job, when the environment says which one."""
    if environ.get("CI_JOB_URL"):
        return environ["CI_JOB_URL"]
    parts = [
        environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    ]
    if all(parts):
        server, repository, run_id = parts
        return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
    return None


def route_source(host: str, port: int) -> str | None:
    """The local address the kernel would send from to reach the IP literal `host`.

    A connected UDP socket asks the routing table without sending a packet. Names are never
    resolved here: anything but an IP literal gives None.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port or 9))
            return str(probe.getsockname()[0])
    except OSError:
        return None


def source_address(result: TargetResult, route: Route = route_source) -> str | None:
    """The local address this target was checked from (see the module docstring)."""
    attempted: list[str] = []
    for stage in result.stages:
        if stage.stage is not Stage.TCP:
            continue
        local = stage.facts.get("local_address")
        if isinstance(local, str) and local:
            return local
        for attempt in stage.facts.get("attempts") or ():
            if isinstance(attempt, Mapping) and isinstance(attempt.get("address"), str):
                attempted.append(attempt["address"])
    for address in attempted:
        host, port = _split(address)
        if host:
            found = route(host, port)
            if found:
                return found
    return None


def stamp(report: Report, vantage: Vantage, *, route: Route = route_source) -> None:
    """Record `vantage` for the run (`Report.vantage`) and, with each target's source
    address, as the ``vantage`` stage fact."""
    report.vantage = vantage.as_fact()
    # The route to an address does not change within a run: ask the kernel once per address,
    # not once per target (a thousand targets behind one firewall share a few addresses).
    answers: dict[tuple[str, int], str | None] = {}

    def route_once(host: str, port: int) -> str | None:
        if (host, port) not in answers:
            answers[host, port] = route(host, port)
        return answers[host, port]

    for result in report.targets:
        if not result.stages:
            continue
        failed = next((s for s in result.stages if s.status is Status.FAIL), None)
        holder = failed or result.stages[0]
        fact: dict[str, Any] = vantage.as_fact()
        source = source_address(result, route_once)
        if source:
            fact["source_address"] = source
        holder.facts[FACT] = fact


def of_target(result: TargetResult) -> dict[str, Any]:
    """The ``vantage`` fact of a target (empty when it has none, e.g. an old report)."""
    for stage in result.stages:
        found = stage.facts.get(FACT)
        if isinstance(found, Mapping):
            return dict(found)
    return {}


def describe(report: Report, current: Vantage | None = None) -> str | None:
    """One line naming where the report's targets were checked from.

    Read from the targets' facts (so it is right for a merged report); `current` is used when
    no target carries one, e.g. a shard that had no targets.
    """
    facts = [fact for fact in map(of_target, report.targets) if fact]
    if not facts and current is not None:
        facts = [current.as_fact()]
    if not facts:
        return None
    places = list(dict.fromkeys(_place(fact) for fact in facts))
    sources = {_host_of(str(f["source_address"])) for f in facts if f.get("source_address")}
    if len(places) == 1:
        line = f"checked from {places[0]}"
    else:
        line = f"checked from {len(places)} places: " + "; ".join(places)
    if len(sources) == 1:
        line += f"; source address {sources.pop()}"
    elif sources:
        line += f"; source addresses {', '.join(sorted(sources))}"
    return line


def _place(fact: Mapping[str, Any]) -> str:
    runner = str(fact.get("runner") or "unknown host")
    if fact.get("runner_name"):
        runner += f" ({fact['runner_name']})"
    extras = []
    if fact.get("shard"):
        extras.append(f"shard {fact['shard']}")
    if fact.get("job_url"):
        extras.append(f"job {fact['job_url']}")
    return f"{runner}, {', '.join(extras)}" if extras else runner


def _split(address: str) -> tuple[str, int]:
    """``"[::1]:22"`` → ``("::1", 22)``; ``"192.0.2.1:22"`` → ``("192.0.2.1", 22)``."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = address.rpartition(":")
        if not host:
            host, port_text = address, ""
    port = int(port_text) if port_text.isdigit() and int(port_text) < 65536 else 0
    return host, port


def _host_of(address: str) -> str:
    """The address without its port: what a firewall rule is written for."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(address))
    host, _ = _split(address)
    return host or address
