"""Which entries the console shows a report as: each target on its own, or what repeats as one.

Nobody reads 10,000 blocks of ten lines, and CI log viewers choke on them. Up to
`GROUP_THRESHOLD` targets (or when every target is asked for, ``--verbose``) each target is an
entry of its own, as it always was. Past it, the targets that failed the same way — the same
stage, the same diagnosis code, flaky or not, behind jump hosts or not — become one entry when
there are two or more of them; a failure of its own kind keeps its full block, since it is the
one a reader looks for; the targets that passed become one entry at the end, and so do those an
interruption left unfinished. Entries keep the order in which their first target appears.
This module only decides; `console` renders, and the GitLab sections and GitHub groups follow
the same entries. JSON and JUnit always carry every target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from preflight.model import Report, TargetResult

__all__ = ["GROUP_THRESHOLD", "Entry", "entries"]

GROUP_THRESHOLD = 50

Kind = Literal["target", "failed", "passed", "unfinished"]


@dataclass(frozen=True)
class Entry:
    """One block of the console report: a single target (`kind` "target"), or targets that
    failed alike (`stage` and `code` say how), that passed, or that did not finish."""

    kind: Kind
    results: tuple[TargetResult, ...]
    stage: str = ""
    code: str = ""
    flaky: bool = False

    @property
    def first(self) -> TargetResult:
        return self.results[0]


def entries(report: Report, *, every_target: bool = False) -> list[Entry]:
    """The entries of `report`'s console output (see the module docstring)."""
    results = report.targets
    if every_target or len(results) <= GROUP_THRESHOLD:
        return [Entry("target", (result,)) for result in results]
    failed: dict[tuple[str, str, bool, bool], list[TargetResult]] = {}
    passed: list[TargetResult] = []
    unfinished: list[TargetResult] = []
    order: list[tuple[str, str, bool, bool]] = []
    for result in results:
        failure = result.failure
        if failure is not None:
            code = failure.diagnosis.code if failure.diagnosis is not None else ""
            # Behind jump hosts or not: the same code means another path, another fix.
            key = (failure.name, code, result.flaky, bool(result.target.jump))
            if key not in failed:
                failed[key] = []
                order.append(key)
            failed[key].append(result)
        elif result.ok:
            passed.append(result)
        else:
            unfinished.append(result)
    made: list[Entry] = []
    for key in order:
        members = failed[key]
        if len(members) == 1:
            made.append(Entry("target", (members[0],)))
        else:
            stage, code, flaky, _ = key
            made.append(Entry("failed", tuple(members), stage=stage, code=code, flaky=flaky))
    made += _one_entry("unfinished", unfinished)
    made += _one_entry("passed", passed)
    return made


def _one_entry(kind: Kind, results: Sequence[TargetResult]) -> list[Entry]:
    if not results:
        return []
    if len(results) == 1:
        return [Entry("target", (results[0],))]
    return [Entry(kind, tuple(results))]
