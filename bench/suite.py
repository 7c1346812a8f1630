"""Run the scenarios, summarise every contestant, and judge preflight against the issue's bars.

Contestants of a scenario run round-robin (run 1 of each, then run 2 of each…) while the
scenario's servers are up, so that preflight and its baselines see the same machine state; a
baseline that hangs runs once, until its cap. Each contestant is summarised by the medians of its
runs (wall, CPU, peak RSS), its worst timeout overshoot, and whether every target ended the way it
should (a benchmark of wrong answers would prove nothing). The bars are those of issue 5, with
the timeouts and sizes of this run.
"""

from __future__ import annotations

import compileall
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.measure import Run, rss_floor, run_program
from bench.scenarios import (
    ASYNCIO_FLOOR,
    SCENARIOS,
    Contestant,
    Params,
    Plan,
    Scenario,
    child_env,
    preflight_cmd,
    preflight_env,
    scenario_titles,
    sshd_reason,
    ten_thousand,
    write_config,
)
from bench.servers import REPO, DropFarm, TarpitFarm, raise_fd_limit

Log = Callable[[str], None]


@dataclass
class Row:
    """One contestant's runs in one scenario, and their summary."""

    name: str
    runs: list[Run] = field(default_factory=list)
    unavailable: str | None = None
    note: str = ""
    cap_s: float = 0.0

    @property
    def capped(self) -> bool:
        return any(r.capped for r in self.runs)

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.runs]
        return statistics.median(values) if values else None

    @property
    def wall(self) -> float | None:
        return self.median("wall_s")

    @property
    def cpu(self) -> float | None:
        return self.median("cpu_s")

    @property
    def rss(self) -> float | None:
        return self.median("maxrss_mib")

    @property
    def rss_max(self) -> float | None:
        return max((r.maxrss_mib for r in self.runs), default=None)

    def spread(self) -> tuple[float, float] | None:
        walls = [r.wall_s for r in self.runs]
        return (min(walls), max(walls)) if walls else None

    def verdicts(self) -> tuple[int, int] | None:
        """(targets that ended as expected, targets) in the worst run, if it reported any."""
        counted = [
            (r.extra["as_expected"], r.extra["targets"]) for r in self.runs if "targets" in r.extra
        ]
        if self.runs and not counted:
            return None
        return min(counted, default=None)

    def overshoot(self, expected: float | None) -> float | None:
        """The latest any target ended past the timeout that should have ended it, over all runs
        (for preflight also the whole run's duration, which counts a late start)."""
        if expected is None:
            return None
        worst: float | None = None
        for run in self.runs:
            elapsed = list(run.extra.get("elapsed", []))
            if "run_s" in run.extra:
                elapsed.append(run.extra["run_s"])
            if elapsed:
                value = max(elapsed) - expected
                worst = value if worst is None else max(worst, value)
        return worst

    def errors(self) -> list[str]:
        found: list[str] = []
        for run in self.runs:
            for text in [*run.extra.get("errors", []), run.extra.get("error", "")]:
                if text and text not in found:
                    found.append(text)
        return found[:3]

    def to_json(self, expected: float | None) -> dict[str, Any]:
        verdicts = self.verdicts()
        return {
            "program": self.name,
            "unavailable": self.unavailable,
            "note": self.note,
            "cap_s": self.cap_s,
            "capped": self.capped,
            "median_wall_s": self.wall,
            "median_cpu_s": self.cpu,
            "median_maxrss_mib": self.rss,
            "max_maxrss_mib": self.rss_max,
            "worst_overshoot_s": self.overshoot(expected),
            "as_expected": list(verdicts) if verdicts else None,
            "errors": self.errors(),
            "runs": [
                {
                    "wall_s": round(r.wall_s, 4),
                    "cpu_s": round(r.cpu_s, 4),
                    "maxrss_mib": round(r.maxrss_mib, 1),
                    "returncode": r.returncode,
                    "capped": r.capped,
                    **{k: v for k, v in r.extra.items() if k not in ("elapsed", "errors")},
                }
                for r in self.runs
            ],
        }


@dataclass
class ScenarioResult:
    key: str
    title: str
    reference: str
    expect: str
    expected_timeout: float | None
    targets: int
    rows: list[Row] = field(default_factory=list)
    skipped: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    imports: dict[str, bool] = field(default_factory=dict)  # label → paramiko imported

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

    def ratio(self, row: Row) -> float | None:
        ref = self.row(self.reference)
        if ref is None or ref.wall is None or row.wall is None or ref.wall <= 0:
            return None
        return row.wall / ref.wall

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "reference": self.reference,
            "expect": self.expect,
            "expected_timeout_s": self.expected_timeout,
            "targets": self.targets,
            "skipped": self.skipped,
            "facts": self.facts,
            "paramiko_imported": self.imports,
            "rows": [
                {**row.to_json(self.expected_timeout), "wall_ratio": self.ratio(row)}
                for row in self.rows
            ],
        }


@dataclass(frozen=True)
class Bar:
    scenario: str
    what: str
    limit: str
    measured: str
    met: bool | None  # None: could not be measured in this run

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "bar": self.what,
            "limit": self.limit,
            "measured": self.measured,
            "met": self.met,
        }


# -- running ---------------------------------------------------------------------------------


def _run_plan(plan: Plan, key: str, workdir: Path, log: Log) -> list[Row]:
    rows = [
        Row(c.name, unavailable=c.unavailable, note=c.note, cap_s=c.cap_s) for c in plan.contestants
    ]
    runnable = [
        (c, row) for c, row in zip(plan.contestants, rows, strict=True) if not c.unavailable
    ]
    for contestant, _row in zip(plan.contestants, rows, strict=True):
        if contestant.unavailable:
            log(f"  {key}: {contestant.name}: skipped, {contestant.unavailable}")
    rounds = max((c.reps for c, _ in runnable), default=0)
    for i in range(rounds):
        for contestant, row in runnable:
            if i >= contestant.reps:
                continue
            run = _run_one(contestant, i, workdir)
            row.runs.append(run)
            shown = f"> {contestant.cap_s:g} s (killed)" if run.capped else f"{run.wall_s:.3f} s"
            log(
                f"  {key}: {contestant.name} [{i + 1}/{contestant.reps}] {shown}, "
                f"CPU {run.cpu_s:.2f} s, {run.maxrss_mib:.0f} MiB"
            )
            plan.settle()
    return rows


def _run_one(contestant: Contestant, i: int, workdir: Path) -> Run:
    # The scenario's own directory is the children's cwd: no stray checks.yaml is picked up.
    run = run_program(
        contestant.argv(i), cap_s=contestant.cap_s, cwd=workdir, env=child_env(contestant.env)
    )
    if contestant.parse is not None:
        run.extra = contestant.parse(run, i)
    if run.returncode not in (0, 1, 255) and not run.capped:
        # Not a verdict but a crash: keep its last words for the JSON.
        run.extra.setdefault("stderr_tail", run.stderr.strip().splitlines()[-3:])
    return run


def paramiko_imported(argv: Sequence[str], env: dict[str, str], cwd: Path) -> bool:
    """Whether the program imports paramiko at all (`python -X importtime`)."""
    assert argv[0] == sys.executable
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=child_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return bool(re.search(r"\|\s+paramiko(\.|$)", proc.stderr, re.MULTILINE))


def _import_checks(p: Params, workdir: Path) -> dict[str, bool]:
    """paramiko must stay unloaded when no SSH stage runs: --version, a dns+tcp check, and a
    full five-stage check whose tcp stage fails."""
    found: dict[str, bool] = {}
    env = preflight_env()
    found["preflight --version"] = paramiko_imported(preflight_cmd("--version"), env, workdir)
    with TarpitFarm(1) as farm:
        host, port = farm.address(0)
        found["preflight check --stages dns,tcp"] = paramiko_imported(
            preflight_cmd("check", f"{host}:{port}", "--stages", "dns,tcp"), env, workdir
        )
    with DropFarm(1) as drop:
        config = write_config(workdir / "imports.yaml", drop.addresses(1), p)
        found["preflight check (5 stages, tcp dropped)"] = paramiko_imported(
            preflight_cmd("check", "-c", str(config)), env, workdir
        )
    return found


def run_suite(p: Params, only: Sequence[str], log: Log) -> list[ScenarioResult]:
    raise_fd_limit()
    # `pip install` compiles the package. In a working tree run with PYTHONDONTWRITEBYTECODE
    # set, a module edited since it was last compiled would be recompiled by every run timed.
    if not compileall.compile_dir(REPO / "preflight", quiet=1):
        raise SystemExit("bench: the preflight package does not compile")
    titles = scenario_titles(p)
    no_sshd = sshd_reason()
    results: list[ScenarioResult] = []
    chosen: list[Scenario] = [s for s in SCENARIOS if not only or s.key in only]
    with tempfile.TemporaryDirectory(prefix="preflight-bench-") as tmp:
        for scenario in chosen:
            workdir = Path(tmp) / scenario.key
            workdir.mkdir()
            result = ScenarioResult(scenario.key, titles[scenario.key], "", "", None, 0)
            results.append(result)
            if scenario.needs_sshd and no_sshd:
                result.skipped = no_sshd
                log(f"{scenario.key}: skipped, {no_sshd}")
                continue
            log(f"{scenario.key}: {result.title}")
            started = time.monotonic()
            with scenario.plan(p, workdir) as plan:
                result.reference = plan.reference
                result.expect = plan.expect
                result.expected_timeout = plan.expected_timeout
                result.targets = plan.targets
                result.facts = plan.facts
                result.rows = _run_plan(plan, scenario.key, workdir, log)
            if scenario.key == "startup":
                result.imports = _import_checks(p, workdir)
            log(f"{scenario.key}: done in {time.monotonic() - started:.0f} s")
    return results


# -- the bars --------------------------------------------------------------------------------


def _fmt_s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def evaluate_bars(p: Params, results: list[ScenarioResult]) -> list[Bar]:
    by_key = {r.key: r for r in results}
    bars: list[Bar] = []

    def preflight_row(key: str) -> tuple[ScenarioResult, Row] | None:
        result = by_key.get(key)
        if result is None or result.skipped or not result.rows:
            return None
        row = result.row(result.reference) if result.reference.startswith("preflight") else None
        row = row or next((r for r in result.rows if r.name.startswith("preflight")), None)
        return (result, row) if row is not None and row.runs else None

    def limit_bar(
        key: str, what: str, value: float | None, limit: float, unit: str, capped: bool = False
    ) -> None:
        met = None if value is None else value <= limit and not capped
        shown = "–" if value is None else f"{value:.2f}{unit}"
        if capped:
            shown = f"killed at {shown}"
        bars.append(Bar(key, what, f"≤ {limit:g}{unit}", shown, met))

    def verdict_bar(key: str) -> None:
        found = preflight_row(key)
        if found is None:
            return
        verdicts = found[1].verdicts()
        if verdicts is not None and verdicts[0] != verdicts[1]:
            bars.append(
                Bar(
                    key,
                    "preflight's verdicts",
                    "all as expected",
                    f"{verdicts[0]}/{verdicts[1]}",
                    False,
                )
            )

    # 1 target behind a DROP: the timeout plus start-up.
    if found := preflight_row("drop-1"):
        row = found[1]
        limit_bar("drop-1", "wall, whole process", row.wall, p.tcp + 0.5, " s", row.capped)
        verdict_bar("drop-1")
    # Many targets behind a DROP and many tarpits; the fleets (issue 15) are ten times as many,
    # with the reports a CI job keeps: (scenario, wall limit, CPU limit, peak RSS limit).
    fleet = ten_thousand(p)
    for key, wall, cpu, rss in (
        ("drop-many", p.tcp + 0.8, 1.5, None),
        ("tarpit-many", p.banner + 1.5, 3.0, None),
        ("drop-fleet", p.tcp + 1.0, 3.0, 300),
        ("tarpit-fleet", p.banner + 1.5, 3.5, None),
    ):
        if found := preflight_row(key):
            row = found[1]
            limit_bar(key, "wall", row.wall, wall, " s", row.capped)
            limit_bar(key, "CPU", row.cpu, cpu, " s", row.capped)
            if rss is not None:
                limit_bar(key, f"peak RSS, {fleet.many:,} targets", row.rss_max, rss, " MiB")
            verdict_bar(key)
    # Healthy: against the minimal script.
    for key, baseline in (
        ("healthy-1", "minimal paramiko five-stage script"),
        ("healthy-many", f"minimal paramiko script, {p.jobs}-thread pool"),
    ):
        result = by_key.get(key)
        if result is None:
            continue
        if result.skipped:
            bars.append(Bar(key, f"wall ÷ {baseline}", "≤ 1.10", "skipped", None))
            continue
        found = preflight_row(key)
        base = result.row(baseline)
        ratio = None
        if found and base and found[1].wall and base.wall:
            ratio = found[1].wall / base.wall
        limit_bar(key, f"wall ÷ {baseline}", ratio, 1.10, "×", bool(found and found[1].capped))
        verdict_bar(key)
    # Start-up.
    startup = by_key.get("startup")
    if startup is not None and startup.rows:
        python = startup.row("python -c pass")
        floor = startup.row(ASYNCIO_FLOOR)
        version = startup.row("preflight --version")
        ratio = None
        if python and version and python.wall and version.wall:
            ratio = version.wall / python.wall
        limit_bar(
            "startup",
            "preflight --version ÷ python -c pass",
            ratio,
            2.0,
            "×",
            bool(version and version.capped),
        )
        # The check's bar is 2 × python -c pass once asyncio's own import cost (floor − pass,
        # measured in the same run) is taken out: docs/benchmarks.md says why.
        check = startup.row("preflight check HOST:PORT --stages dns,tcp")
        ratio = None
        if python and floor and check and python.wall and floor.wall and check.wall:
            ratio = (check.wall - (floor.wall - python.wall)) / python.wall
        limit_bar(
            "startup",
            "(dns,tcp check − asyncio's import) ÷ python -c pass",
            ratio,
            2.0,
            "×",
            bool(check and check.capped),
        )
        for label, imported in startup.imports.items():
            bars.append(
                Bar(
                    "startup",
                    f"paramiko not imported: {label}",
                    "not imported",
                    "imported" if imported else "not imported",
                    not imported,
                )
            )
    # Memory and timeouts under load: the many-target scenarios.
    many = [preflight_row(k) for k in ("drop-many", "tarpit-many")]
    many_found = [f for f in many if f is not None]
    if many_found:
        peak = max((row.rss_max or 0.0) for _r, row in many_found)
        limit_bar("drop/tarpit-many", f"peak RSS, {p.many:,} targets", peak, 150, " MiB")
        worst = max((row.overshoot(result.expected_timeout) or 0.0) for result, row in many_found)
        limit_bar("drop/tarpit-many", "worst timeout overshoot", worst, 1.0, " s")
    return bars


# -- the machine -----------------------------------------------------------------------------


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_state() -> str | None:
    """The commit measured, and whether preflight/ had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "preflight"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}{' + uncommitted changes in preflight/' if dirty else ''}"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    openssh = None
    try:
        proc = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=10)
        openssh = (proc.stderr or proc.stdout).strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "git": _git_state(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "kernel": platform.release(),
        "system": platform.system(),
        "python": platform.python_version(),
        "paramiko": _version("paramiko"),
        "asyncssh": _version("asyncssh"),
        "openssh": openssh,
        "preflight": _version("preflight"),
        "rss_floor_mib": round(rss_floor(), 1),
    }
