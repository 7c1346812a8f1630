"""`report.stage_results`: one row per configured stage, in order, whatever the run left.

Every report format reads a target's stages through it, so its answer must not depend on
which way it takes: the usual rows as they are, or the general sorting and filling in."""

from __future__ import annotations

from checking import make_target

from preflight.model import Hop, Stage, StageResult, Status, TargetResult
from preflight.report import stage_results

DNS_TCP = (Stage.DNS, Stage.TCP)


def test_the_configured_stages_in_order_come_back_as_they_are():
    result = TargetResult(make_target(stages=DNS_TCP))
    result.stages = [StageResult(Stage.DNS, Status.PASS), StageResult(Stage.TCP, Status.FAIL)]
    assert stage_results(result) == result.stages
    assert stage_results(result) is not result.stages  # a list of its own


def test_rows_out_of_order_are_put_in_the_configured_order():
    result = TargetResult(make_target(stages=DNS_TCP))
    tcp, dns = StageResult(Stage.TCP, Status.FAIL), StageResult(Stage.DNS, Status.PASS)
    result.stages = [tcp, dns]
    assert stage_results(result) == [dns, tcp]


def test_a_jump_hosts_rows_alone_do_not_stand_for_the_targets_own_stages():
    # Interrupted behind the jump host: its dns and tcp ran, the target's own did not.
    result = TargetResult(make_target(stages=DNS_TCP, jump=(Hop("127.0.0.2"),)))
    hops = [StageResult(Stage.DNS, Status.PASS, hop=1), StageResult(Stage.TCP, Status.PASS, hop=1)]
    result.stages = list(hops)
    rows = stage_results(result, interrupted=True)
    assert rows[:2] == hops
    assert [(row.stage, row.hop, row.status, row.detail) for row in rows[2:]] == [
        (Stage.DNS, 0, Status.SKIP, "not run: interrupted"),
        (Stage.TCP, 0, Status.SKIP, "not run: interrupted"),
    ]


def test_a_stage_listed_twice_is_given_once_with_both_rows():
    result = TargetResult(make_target(stages=(Stage.DNS, Stage.TCP, Stage.DNS)))
    first, tcp, again = (
        StageResult(Stage.DNS, Status.PASS),
        StageResult(Stage.TCP, Status.PASS),
        StageResult(Stage.DNS, Status.PASS, detail="again"),
    )
    result.stages = [first, tcp, again]
    assert stage_results(result) == [first, again, tcp]
