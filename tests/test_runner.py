"""The runner: concurrency, skip chaining, interruption, and leaving nothing behind."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
from typing import Any

from checking import FAST, make_target

from preflight import lab
from preflight.model import ALL_STAGES, Stage, Status, Timeouts
from preflight.runner import RunOptions, check, run_checks


def test_many_targets_behind_a_dropping_firewall_fail_in_about_one_tcp_timeout():
    # A pool of 32 threads would take targets/32 timeouts; the event loop takes one.
    with lab.DroppingPort() as dropping:
        targets = [make_target(dropping, name=f"t{i}", stages=ALL_STAGES[:2]) for i in range(200)]
        started = time.monotonic()
        report = check(targets)
        elapsed = time.monotonic() - started
    codes = {t.failure.diagnosis.code for t in report.targets if t.failure and t.failure.diagnosis}
    assert codes == {"tcp.timeout"}
    assert elapsed < FAST.tcp + 3.0, elapsed


def test_later_stages_are_skipped_with_the_reason():
    with lab.RefusedPort() as refused:
        result = check([make_target(refused)]).targets[0]
    assert [s.status for s in result.stages] == [
        Status.PASS,
        Status.FAIL,
        Status.SKIP,
        Status.SKIP,
        Status.SKIP,
    ]
    assert all("tcp failed" in s.detail for s in result.stages[2:])


def test_report_keeps_target_order_and_reports_each_target():
    with lab.RefusedPort() as refused, lab.Tarpit() as tarpit:
        targets = [make_target(tarpit, name="slow"), make_target(refused, name="fast")]
        report = check(targets)
    assert [t.target.name for t in report.targets] == ["slow", "fast"]
    assert not report.ok


def test_cancelled_run_still_returns_a_complete_report_marked_interrupted():
    async def cancel_soon() -> object:
        with lab.Tarpit() as tarpit:
            slow = Timeouts(dns=2, tcp=2, banner=30, auth=2, sftp=2)
            task = asyncio.create_task(run_checks([make_target(tarpit, timeouts=slow)]))
            await asyncio.sleep(0.5)
            task.cancel()
            return await task

    started = time.monotonic()
    report = asyncio.run(cancel_soon())
    assert time.monotonic() - started < 5
    assert report.interrupted and not report.ok
    result = report.targets[0]
    assert [s.status for s in result.stages[:2]] == [Status.PASS, Status.PASS]
    assert result.stages[2].stage is Stage.BANNER
    assert "interrupted" in result.stages[2].detail
    assert len(result.stages) == len(ALL_STAGES)


def test_jobs_limit_serialises_ssh_sessions_without_failing_them(sftp_server, key_auth):
    targets = [make_target(sftp_server, name=f"t{i}", auth=key_auth) for i in range(6)]
    report = asyncio.run(run_checks(targets, RunOptions(jobs=2)))
    assert report.ok, [(t.target.name, t.failure) for t in report.targets]


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_200_misbehaving_targets_leave_no_sockets_or_threads(client_key, key_auth):
    with (
        lab.DroppingPort() as dropping,
        lab.RefusedPort() as refused,
        lab.Tarpit() as tarpit,
        lab.KexStall() as kex,
        lab.SFTPServer(authorized_keys={"deploy": [client_key]}, stall="subsystem") as stall,
    ):
        servers = [dropping, refused, tarpit, kex, stall]
        targets = [
            make_target(s, name=f"{type(s).__name__}-{i}", auth=key_auth)
            for i in range(40)
            for s in servers
        ]
        check(targets[:5])  # warm up: imports, paramiko's first use
        time.sleep(0.5)
        fds, threads = _fd_count(), threading.active_count()
        report = check(targets)
        assert len(report.targets) == 200 and not report.ok
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
            _fd_count() > fds or threading.active_count() > threads
        ):
            time.sleep(0.1)
        assert _fd_count() <= fds
        assert threading.active_count() <= threads


def test_paramiko_is_not_imported_when_no_ssh_stage_runs():
    with lab.Greeter(b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        code = (
            "import sys\n"
            "from preflight.model import Target, ALL_STAGES\n"
            "from preflight.runner import check\n"
            f"r = check([Target(name='x', host='127.0.0.1', port={server.port}, "
            "stages=ALL_STAGES[:3])])\n"
            "assert r.ok, r\n"
            "print('paramiko' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
        )
    assert out.stdout.strip() == "False"


def test_a_run_interrupted_while_a_target_waits_for_an_ssh_slot_says_so():
    # --jobs 1: the holder's authentication never gets an answer, so the waiter is still
    # waiting for the one SSH slot when the run is cancelled. The waiter's server is 0.3 s
    # away, so the holder is sure to reach the slot first.
    async def cancel_while_waiting() -> object:
        with (
            lab.SFTPServer(stall="auth") as stalled,
            lab.SFTPServer() as healthy,
            lab.LatencyProxy((healthy.host, healthy.port), delay=0.3) as far,
        ):
            slow = Timeouts(dns=2, tcp=2, banner=2, auth=30, sftp=2)
            targets = [
                make_target(stalled, name="holder", timeouts=slow),
                make_target(far, name="waiter", timeouts=slow),
            ]
            task = asyncio.create_task(run_checks(targets, RunOptions(jobs=1)))
            await asyncio.sleep(1.5)
            task.cancel()
            return await task

    report = asyncio.run(cancel_while_waiting())
    waiter = report.targets[1]
    auth = next(s for s in waiter.stages if s.stage is Stage.AUTH)
    assert auth.status is Status.ERROR
    assert auth.detail.endswith(
        "s during the wait for a free SSH session slot, before the stage finished"
    )
    assert auth.facts == {"phase": "the wait for a free SSH session slot"}


def test_a_run_imports_its_probes_before_the_first_stage_starts():
    # An import in the middle of a run stalls every target's timers, and with every descriptor
    # held by a socket it cannot even open its file: it fails with EMFILE (seen at 10,000
    # tarpits as an internal error). So the probes a run needs are loaded before it starts,
    # and those it does not need are not.
    code = (
        "import sys\n"
        "from preflight import lab\n"
        "from preflight.model import Target, ALL_STAGES\n"
        "from preflight.runner import check\n"
        "from preflight.stages import tcp\n"
        "seen = []\n"
        "real = tcp.probe\n"
        "async def watching(conn, budget):\n"
        "    seen.append('preflight.stages.banner' in sys.modules)\n"
        "    return await real(conn, budget)\n"
        "tcp.probe = watching\n"
        "with lab.RefusedPort() as port:\n"
        "    check([Target(name='t', host=port.host, port=port.port, stages=ALL_STAGES[:3])])\n"
        "print(seen, 'preflight.stages.ssh' in sys.modules)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert found.stdout.split("\n")[0] == "[True] False", found.stdout + found.stderr


def test_failed_targets_leave_no_reference_cycles_behind():
    # A failure's traceback holds frames that hold the exception: unless the runner lets go of
    # them, every failed target is garbage only the cycle collector frees (its socket too), and
    # 10,000 of them cost a 0.4 s collection. (paramiko's transports make cycles of their own:
    # the SSH stages, at most `jobs` at a time, are left out.)
    with lab.DroppingPort() as dropping, lab.Tarpit() as tarpit:
        targets = [
            make_target(dropping, name="dropped"),
            make_target(tarpit, name="tarpit"),
            make_target(host="127.0.0.1", port=9, name="refused"),
        ]
        check(targets)  # what the first run imports and caches is not the runner's garbage
        gc.collect()
        gc.disable()
        try:
            report = check(targets)
            found = gc.collect()
        finally:
            gc.enable()
    assert [(t.failure.name if t.failure else None) for t in report.targets] == [
        "tcp",
        "banner",
        "tcp",
    ]
    assert found == 0


# --- the runner's backstop: a stage that ignores its budget is still cut off ----------------


def _ignoring_its_budget(stage: Stage, monkeypatch: Any, entered: list[float]) -> None:
    """Make `stage`'s probe wait an hour whatever its budget says (a bug the backstop is for)."""
    from preflight import runner

    usual = runner._probe_for

    async def deaf(conn: Any, budget: Any) -> Any:
        entered.append(time.monotonic())
        await asyncio.sleep(3600)

    monkeypatch.setattr(runner, "_probe_for", lambda s: deaf if s is stage else usual(s))


def test_a_stage_that_ignores_its_budget_fails_at_the_deadline_plus_the_backstops_grace(
    monkeypatch: Any, caplog: Any
) -> None:
    from preflight.runner import BACKSTOP_GRACE

    entered: list[float] = []
    _ignoring_its_budget(Stage.TCP, monkeypatch, entered)
    target = make_target(host="127.0.0.1", port=9, stages=ALL_STAGES[:3], deadline=1.0)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="preflight.runner"):
        report = check([target])
    took = time.monotonic() - started
    result = report.targets[0]
    assert [s.status for s in result.stages] == [Status.PASS, Status.FAIL, Status.SKIP]
    tcp = result.stages[1]
    assert tcp.diagnosis is not None and tcp.diagnosis.code == "deadline.exceeded"
    assert 1.0 + BACKSTOP_GRACE - 0.1 <= tcp.duration_s < 1.0 + BACKSTOP_GRACE + 1.5
    assert took < 1.0 + BACKSTOP_GRACE + 2.0, took
    assert not report.interrupted and not result.interrupted
    assert "the runner's backstop fired" in caplog.text


def test_the_backstop_cuts_a_later_stage_as_it_cuts_the_first(monkeypatch: Any) -> None:
    # dns and tcp pass; the stage that hangs is the third, and the backstop (the target's
    # deadline plus its grace) finds it there, not in a stage already over.
    from preflight.runner import BACKSTOP_GRACE

    entered: list[float] = []
    _ignoring_its_budget(Stage.BANNER, monkeypatch, entered)
    with lab.Tarpit() as tarpit:
        target = make_target(tarpit, stages=ALL_STAGES[:4], deadline=1.0)
        result = check([target]).targets[0]
    assert [s.status for s in result.stages] == [
        Status.PASS,
        Status.PASS,
        Status.FAIL,
        Status.SKIP,
    ]
    assert len(entered) == 1
    banner = result.stages[2]
    assert banner.diagnosis is not None and banner.diagnosis.code == "deadline.exceeded"
    assert result.duration_s < 1.0 + BACKSTOP_GRACE + 1.5, result.duration_s


def test_an_interruption_during_a_stage_is_still_an_interruption_not_the_backstop(
    monkeypatch: Any,
) -> None:
    entered: list[float] = []
    _ignoring_its_budget(Stage.TCP, monkeypatch, entered)

    async def cancel_soon() -> Any:
        target = make_target(host="127.0.0.1", port=9, stages=ALL_STAGES[:3], deadline=30.0)
        task = asyncio.create_task(run_checks([target]))
        await asyncio.sleep(0.3)
        task.cancel()
        return await task

    report = asyncio.run(cancel_soon())
    result = report.targets[0]
    assert report.interrupted
    assert [s.status for s in result.stages] == [Status.PASS, Status.ERROR, Status.SKIP]


def test_an_interruption_during_a_closer_look_keeps_the_verdict_already_found():
    # The tcp stage has timed out (its verdict is known) and the trace that follows it is
    # under way when the run is interrupted: the stage is the failure it was, not "cut short".
    async def cancel_during_the_trace() -> Any:
        with lab.DroppingPort() as dropping:
            target = make_target(dropping, stages=ALL_STAGES[:3], trace=True)
            task = asyncio.create_task(run_checks([target]))
            await asyncio.sleep(FAST.tcp + 0.8)  # the trace waits up to 2 s for its hops
            task.cancel()
            return await task

    started = time.monotonic()
    report = asyncio.run(cancel_during_the_trace())
    # Cancelled at tcp + 0.8 s, over before the trace's 2 s would have been: not waited out.
    assert time.monotonic() - started < FAST.tcp + 1.7
    result = report.targets[0]
    assert report.interrupted
    assert [s.status for s in result.stages] == [Status.PASS, Status.FAIL, Status.SKIP]
    tcp = result.stages[1]
    assert tcp.diagnosis is not None and tcp.diagnosis.code == "tcp.timeout"
    assert FAST.tcp - 0.1 <= tcp.duration_s < FAST.tcp + 0.5
    assert "trace" not in tcp.facts  # the look that was cut short says nothing
    assert result.stages[2].detail == "skipped: tcp failed"  # as it would have been anyway


def test_traces_take_only_the_descriptors_the_open_file_limit_leaves_spare():
    # Each trace holds up to MAX_HOPS sockets at once. Past what the limit leaves beside the
    # targets' own sockets, a trace is not tried (its sockets would make another target's own
    # connect fail with EMFILE), and not waited for: the report says why there is none.
    from preflight.stages.trace import MAX_HOPS

    with lab.DroppingPort() as dropping:
        targets = [
            make_target(dropping, name=f"t{i}", stages=ALL_STAGES[:2], trace=True) for i in range(3)
        ]
        one_room = RunOptions(spare_descriptors=MAX_HOPS)
        report = asyncio.run(run_checks(targets, one_room))
        no_room = asyncio.run(run_checks(targets[:1], RunOptions(spare_descriptors=0)))
    traces = [t.stages[1].facts["trace"] for t in report.targets]
    assert sum("unavailable" not in trace for trace in traces) == 1
    left = [trace for trace in traces if "unavailable" in trace]
    assert len(left) == 2 and all("open-file limit" in t["unavailable"] for t in left)
    assert all(t.failure and t.failure.diagnosis for t in report.targets)
    summaries = [t.failure.diagnosis.summary for t in report.targets if t.failure]
    assert sum("the path could not be traced: the open-file limit" in s for s in summaries) == 2
    assert "unavailable" in no_room.targets[0].stages[1].facts["trace"]
    assert no_room.duration_s < FAST.tcp + 1.0  # not waited for
