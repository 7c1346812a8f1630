"""Helpers for checking lab servers: short timeouts, one-target checks, verdict assertions.

Every network test talks to servers from `preflight.lab` on 127.0.0.1 (DESIGN §9). Timeouts are
short so the suite is quick, and time bounds are asserted with a generous margin (timeout + 1 s)
because CI machines are noisy: a bound proves "does not hang", not "is fast".
"""

from __future__ import annotations

from dataclasses import replace

from preflight import lab
from preflight.model import (
    ALL_STAGES,
    HostKeyConfig,
    Stage,
    StageResult,
    Status,
    Target,
    TargetResult,
    Timeouts,
)
from preflight.runner import check

FAST = Timeouts(dns=2, tcp=1, banner=1, auth=2, sftp=2)
MARGIN = 1.0  # DESIGN: no stage may take longer than its timeout + 1 s


def make_target(server: lab.LabServer | None = None, **changes: object) -> Target:
    base = Target(
        name="lab",
        host=server.host if server else "127.0.0.1",
        port=server.port if server else 22,
        user="deploy",
        stages=ALL_STAGES,
        timeouts=FAST,
        deadline=20.0,
        host_key=HostKeyConfig(known_hosts=None, policy="off"),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def check_one(target: Target, deadline: float | None = None) -> TargetResult:
    return check([target], deadline=deadline).targets[0]


def failed_stage(result: TargetResult) -> StageResult:
    failure = result.failure
    assert failure is not None, (
        f"expected a failure, got {[(s.stage, s.status) for s in result.stages]}"
    )
    return failure


def assert_fails(result: TargetResult, stage: Stage, code: str) -> StageResult:
    failure = failed_stage(result)
    assert failure.diagnosis is not None
    assert (failure.stage, failure.diagnosis.code) == (stage, code), failure.diagnosis
    timeout = result.target.timeouts.for_stage(stage)
    assert failure.duration_s <= timeout + MARGIN, f"{stage} took {failure.duration_s:.2f}s"
    later = [s for s in result.stages if ALL_STAGES.index(s.stage) > ALL_STAGES.index(stage)]
    assert all(s.status is Status.SKIP for s in later)
    return failure


def assert_passes(result: TargetResult) -> None:
    bad = [(s.stage, s.diagnosis) for s in result.stages if s.status is not Status.PASS]
    assert not bad, bad
    assert [s.stage for s in result.stages] == list(result.target.stages)
