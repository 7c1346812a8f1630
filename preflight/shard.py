"""Split the targets across parallel CI jobs (``--shard I/N``) and join the shards' reports again.

A fleet of targets can be checked by several runners at once: GitLab's ``parallel: N`` or a GitHub
``matrix`` starts N copies of the job, and each one checks its shard. The partition is computed
independently by every job, so it must depend on nothing but the set of target names: the targets
are sorted by name and dealt out like cards (shard 1 gets the 1st, (N+1)th, … name), which puts
every target in exactly one shard, keeps the shard sizes within one of each other and leaves the
file order of the targets inside a shard unchanged. Under GitLab ``parallel:`` the shard defaults
from ``CI_NODE_INDEX``/``CI_NODE_TOTAL``. `merge_reports` is the other half: it combines the
shards' reports (read back with `report.json_reader`) into one `Report`, in file order, as if one
runner had checked everything — except that each target keeps the vantage point it was checked
from (see `vantage`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from preflight import vantage
from preflight.model import Report, Target, TargetResult

__all__ = [
    "MAX_SHARDS",
    "MissingShards",
    "Shard",
    "ShardError",
    "checked_by_unsharded_runs",
    "given_twice",
    "merge_reports",
    "missing_shards",
    "missing_shards_warning",
    "parse_shard",
    "partition",
    "same_run",
    "select",
    "shard_from_environ",
]

MAX_SHARDS = 10000
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class ShardError(ValueError):
    """A shard specification that is not ``I/N`` with ``1 <= I <= N``."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `total`, counted from 1 like GitLab's ``CI_NODE_INDEX``."""

    index: int
    total: int

    def __post_init__(self) -> None:
        if not 1 <= self.total <= MAX_SHARDS:
            raise ShardError(f"the number of shards must be 1..{MAX_SHARDS}, got {self.total}")
        if not 1 <= self.index <= self.total:
            raise ShardError(f"the shard must be 1..{self.total}, got {self.index}")

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """``"2/3"`` → ``Shard(2, 3)``; anything else raises `ShardError`."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ShardError(f"expected I/N (shard I of N, counted from 1, e.g. 2/3), got {text!r}")
    return Shard(int(match[1]), int(match[2]))


def shard_from_environ(environ: Mapping[str, str]) -> Shard | None:
    """The shard GitLab assigned to this job with ``parallel:``, or None outside of one.

    GitLab sets ``CI_NODE_INDEX`` (from 1) only in jobs created by ``parallel:`` and
    ``CI_NODE_TOTAL`` in every job (1 without ``parallel:``). Other CI systems are not consulted:
    a ``CI_NODE_INDEX`` of some other meaning must not silently drop targets.
    """
    if environ.get("GITLAB_CI", "").lower() != "true":
        return None
    index, total = environ.get("CI_NODE_INDEX", ""), environ.get("CI_NODE_TOTAL", "")
    if not index.strip():
        return None
    try:
        return parse_shard(f"{index}/{total}")
    except ShardError as exc:
        raise ShardError(
            f"CI_NODE_INDEX={index!r} and CI_NODE_TOTAL={total!r} do not name a shard: {exc}"
        ) from None


def _deal(targets: Sequence[Target], total: int) -> list[int]:
    """The shard number (from 1) of each target: sorted by name, dealt out round-robin."""
    order = sorted(range(len(targets)), key=lambda i: (targets[i].name, i))
    shard_of = [0] * len(targets)
    for rank, position in enumerate(order):
        shard_of[position] = rank % total + 1
    return shard_of


def select(targets: Sequence[Target], shard: Shard) -> list[Target]:
    """The targets of `shard`, in their original order."""
    shard_of = _deal(targets, shard.total)
    return [t for t, number in zip(targets, shard_of, strict=True) if number == shard.index]


def partition(targets: Sequence[Target], total: int) -> list[list[Target]]:
    """All `total` shards at once (shard 1 first): every target lands in exactly one."""
    return [select(targets, Shard(index, total)) for index in range(1, total + 1)]


def merge_reports(reports: Sequence[Report]) -> Report:
    """One report from several runs (the shards of one pipeline, or several vantage points).

    - Targets are ordered by where they are defined (``origin`` file, then line), which restores
      the order of checks.yaml; targets without an origin follow in input order.
    - The run started when the first input started and ended when the last one ended.
    - It is interrupted if any input was.
    - A name checked by more than one input (the same target from two runners) is kept once per
      input, suffixed with the runner (``sftp-prod @ runner-2``), so no verdict is lost and the
      JUnit names stay unique.
    """
    if not reports:
        return Report(targets=[], started_at=datetime.now(UTC))
    indexed = [(n, result) for report in reports for n, result in enumerate(report.targets)]
    keyed = sorted(
        range(len(indexed)),
        key=lambda i: (*_origin_key(indexed[i][1].target.origin), i),
    )
    results = [indexed[i][1] for i in keyed]
    counts = Counter(result.target.name for result in results)
    used: set[str] = set()
    merged: list[TargetResult] = []
    for result in results:
        name = result.target.name
        if counts[name] > 1:
            where = vantage.of_target(result).get("runner") or "unknown runner"
            name = f"{name} @ {where}"
        unique, number = name, 2
        while unique in used:
            unique, number = f"{name} #{number}", number + 1
        used.add(unique)
        if unique != result.target.name:
            result = replace(result, target=replace(result.target, name=unique))
        merged.append(result)
    starts = [_aware(report.started_at) for report in reports]
    ends = [
        start + timedelta(seconds=_finite(report.duration_s))
        for start, report in zip(starts, reports, strict=True)
    ]
    started_at = min(starts)
    return Report(
        targets=merged,
        started_at=started_at,
        duration_s=(max(ends) - started_at).total_seconds(),
        interrupted=any(report.interrupted for report in reports),
    )


def shards_of(report: Report) -> set[Shard]:
    """The shard(s) a report's run checked: its own record, else its targets' (older reports)."""
    if report.vantage is not None:
        texts = [report.vantage.get("shard", "")]
    else:
        texts = [str(vantage.of_target(result).get("shard", "")) for result in report.targets]
    found = set()
    for text in texts:
        try:
            found.add(parse_shard(text))
        except ShardError:
            continue
    return found


def missing_shards(reports: Sequence[Report]) -> tuple[list[Shard], bool]:
    """The shards of every `I/N` seen among `reports` that none of them came from, and whether
    that is certain: a report from before runs recorded their own shard names it only through
    its targets, so a shard that had no targets cannot be told from one that is missing."""
    seen: dict[int, set[int]] = {}
    for report in reports:
        for shard in shards_of(report):
            seen.setdefault(shard.total, set()).add(shard.index)
    missing = [
        Shard(index, total)
        for total, indexes in sorted(seen.items())
        for index in range(1, total + 1)
        if index not in indexes
    ]
    return missing, all(report.vantage is not None for report in reports)


@dataclass(frozen=True)
class MissingShards:
    """Shards no report came from: `words` for the merge to say, and whether they are
    `certain`ly missing (then their targets were never reported, and the merge fails)."""

    words: str
    certain: bool


def missing_shards_warning(reports: Sequence[Report]) -> MissingShards | None:
    """What to say about the shards `missing_shards` finds; None when none is missing."""
    missing, certain = missing_shards(reports)
    if not missing:
        return None
    shards = ", ".join(str(shard) for shard in missing)
    one = len(missing) == 1
    if certain:
        return MissingShards(
            f"no report from shard {shards}: "
            f"{'its' if one else 'their'} targets are missing from this merge",
            certain=True,
        )
    return MissingShards(
        f"no targets from shard {shards} among the reports: if "
        f"{'it' if one else 'they'} had targets, they are missing here",
        certain=False,
    )


def checked_by_unsharded_runs(reports: Sequence[Report]) -> str | None:
    """What to say when a target came from more than one run that was not a shard (no
    ``--shard``, or ``1/1``): checking from several vantage points does that on purpose, but so
    do N parallel jobs whose split did not happen, and then every target is checked N times.
    None when no target did."""
    unsharded = [
        report
        for report in reports
        if all(shard.total == 1 for shard in shards_of(report)) and report.targets
    ]
    runs_of: Counter[str] = Counter()
    for report in unsharded:
        runs_of.update({result.target.name for result in report.targets})
    twice = sorted(name for name, runs in runs_of.items() if runs > 1)
    if not twice:
        return None
    repeated = set(twice)
    runners = sorted(
        {
            str((report.vantage or {}).get("runner") or "unknown runner")
            for report in unsharded
            if any(result.target.name in repeated for result in report.targets)
        }
    )
    shown = ", ".join(twice[:3]) + (f" and {len(twice) - 3} more" if len(twice) > 3 else "")
    where = f"runner {runners[0]}" if len(runners) == 1 else f"runners {', '.join(runners)}"
    return (
        f"{len(twice)} target{'s' if len(twice) > 1 else ''} ({shown}) came from more than one "
        f"run that checked every target ({where}); each verdict is kept, named "
        "`TARGET @ RUNNER` (`#2`… when the runner repeats). If those runs were meant to split "
        "the targets, give each one --shard I/N (the GitLab template passes "
        "CI_NODE_INDEX/CI_NODE_TOTAL)"
    )


def given_twice(named: Sequence[tuple[str, Report]]) -> str | None:
    """`PATH: the same run as EARLIER (a report given twice?)` for the first report (with its
    path) that comes from the same run as an earlier one (`same_run`); None if none does."""
    first_seen: dict[tuple[object, ...], str] = {}
    for path, report in named:
        run = same_run(report)
        if run is None:
            continue
        if run in first_seen:
            return f"{path}: the same run as {first_seen[run]} (a report given twice?)"
        first_seen[run] = path
    return None


def same_run(report: Report) -> tuple[object, ...] | None:
    """What identifies the run a report came from (where, which job and shard, when): two
    inputs that agree on it are one report given twice. None when the report does not say."""
    if report.vantage is None:
        return None
    where = report.vantage
    return (where.get("runner"), where.get("job_url"), where.get("shard"), report.started_at)


def _origin_key(origin: str | None) -> tuple[int, str, int]:
    """Sort key for ``checks.yaml:12``: defined targets first, by file and line."""
    if origin:
        path, _, line = origin.rpartition(":")
        if path and line.isdigit():
            return (0, path, int(line))
    return (1, "", 0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _finite(seconds: float) -> float:
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
