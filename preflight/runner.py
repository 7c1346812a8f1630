"""The stage loop: run every target's stages in order, concurrently across targets, on time.

All targets run at once on one event loop: dns, tcp and banner are non-blocking socket work, so
a thousand targets behind a silent firewall cost a thousand sockets and finish in about one tcp
timeout. The SSH stages need paramiko's threads; at most `jobs` targets hold an SSH session at a
time (waiting for a slot counts against the target's deadline). Each stage gets a `Budget`: its
own timeout, capped by the target's deadline, itself capped by the run's deadline; a stage that
cannot start before the deadline is not started. A failed stage makes the later ones `skip` with
the reason. When the run is cancelled (SIGINT/SIGTERM) or its deadline passes, every target keeps
what it finished and the rest is marked, so the reports can still be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from preflight.deadline import Budget
from preflight.errors import StageTimeout
from preflight.model import (
    SSH_STAGES,
    Report,
    Stage,
    StageResult,
    Status,
    Target,
    TargetResult,
)
from preflight.phases import At, Phase
from preflight.stages import Address, Connection, Passed, Probe, jump
from preflight.stages.chain import ChainedConnection
from preflight.stages.jump import Step

if TYPE_CHECKING:
    from preflight import diagnose

# `diagnose` and `reproduce` are imported where a stage fails: a run where everything passes
# never needs them, and a quick dns,tcp check should not pay for loading them.

log = logging.getLogger(__name__)

DEFAULT_JOBS = 32
# How far past a stage's deadline the runner's own backstop fires; the stages enforce their
# budgets themselves, so this only catches a stage that failed to.
BACKSTOP_GRACE = 1.0


@dataclass(frozen=True)
class RunOptions:
    """What the command line (or a library caller) decides for the whole run."""

    deadline: float | None = None  # seconds for the whole run (--deadline)
    jobs: int = DEFAULT_JOBS  # targets in the SSH stages at once
    # Targets checked at once (each holds a socket from tcp to its end): None, all of them;
    # fewer when the process may not open that many files (`program.descriptor_room`).
    in_flight: int | None = None
    # Descriptors the process may open beyond one per target in flight, for the traces' probe
    # sockets (`stages.trace`: MAX_HOPS each); None: not known, and not counted.
    spare_descriptors: int | None = None


def _probe_for(stage: Stage) -> Probe:
    # Imported here so that paramiko is loaded only when an SSH stage actually runs.
    if stage is Stage.DNS:
        from preflight.stages import dns

        return dns.probe
    if stage is Stage.TCP:
        from preflight.stages import tcp

        return tcp.probe
    if stage is Stage.BANNER:
        from preflight.stages import banner

        return banner.probe
    from preflight.stages import ssh

    return ssh.probe_auth if stage is Stage.AUTH else ssh.probe_sftp


def _silent_address(conn: Connection) -> Address | None:
    """The address the tcp stage waited on in silence (every attempt timed out), if any."""
    attempts = conn.facts.get("attempts") or []
    if not attempts or any(attempt.get("result") != "timeout" for attempt in attempts):
        return None
    waited = attempts[-1].get("address")
    return next((address for address in conn.addresses if str(address) == waited), None)


def _stalled_in_key_exchange(exc: BaseException) -> bool:
    """The banner arrived and the key exchange then ran out of the auth stage's own time."""
    return (
        isinstance(exc, StageTimeout)
        and not exc.by_deadline
        and exc.phase is not None
        and exc.phase.is_(Phase.KEY_EXCHANGE)
    )


async def _look_closer(step: Step, exc: BaseException, deadline: float, run: _Run) -> None:
    """After a failure that a second look can explain, take it, into the failed stage's facts,
    within the target's deadline: where on the path the SYNs die after a silent tcp stage
    (`stages.trace`, when asked for), whether small packets get through a stalled key exchange
    (`stages.mtu`). Only on a direct connection: behind jump hosts the path is theirs."""
    stage, conn, target = step.stage, step.conn, step.conn.target
    if target.jump or step.hop != 0:
        return
    if stage is Stage.TCP and target.trace:
        silent = _silent_address(conn)
        if silent is not None:
            from preflight.stages import trace

            spare = run.options.spare_descriptors
            if spare is not None and (run.traces_under_way + 1) * trace.MAX_HOPS > spare:
                # Not waited for: a fleet of silent targets would wait out its deadline in
                # turns. Nor tried: a trace's sockets taken from the open-file limit would
                # fail another target's own connect (EMFILE) for a reason not its own.
                conn.facts["trace"] = trace.Trace(silent.ip, unavailable=_NO_ROOM).as_fact()
                return
            run.traces_under_way += 1
            try:
                seconds = min(trace.TRACE_SECONDS, deadline - time.monotonic())
                conn.facts["trace"] = (await trace.trace(silent, seconds)).as_fact()
            finally:
                run.traces_under_way -= 1
    elif stage is Stage.AUTH and conn.peer is not None and _stalled_in_key_exchange(exc):
        from preflight.stages import mtu

        seconds = min(mtu.PROBE_SECONDS, deadline - time.monotonic())
        found = await mtu.try_small_packets(conn.peer, conn.segment_size, seconds)
        conn.facts["small_packets"] = found.as_fact()


_NO_ROOM = (
    "the open-file limit leaves no room for its probe sockets beside the targets' own and the "
    "traces already under way (ulimit -n)"
)


def _load_probes(targets: Sequence[Target]) -> None:
    """Import the network probes this run needs before it starts: an import in the middle of
    a run stalls every target's timers while it reads files, and with every descriptor held
    by a socket it cannot open its file at all (EMFILE). The SSH probes stay lazy: they load
    paramiko (0.4 s), which a run whose targets all fail before auth never needs."""
    needed = {stage for target in targets for stage in target.stages}
    for stage in (Stage.DNS, Stage.TCP, Stage.BANNER):
        if stage in needed:
            _probe_for(stage)


class _Run:
    """State shared by the targets of one run."""

    def __init__(
        self,
        options: RunOptions,
        started: float,
        on_stage_done: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self.deadline = started + options.deadline if options.deadline else float("inf")
        self.ssh_slots = asyncio.Semaphore(max(1, options.jobs))
        self.deadline_passed = False
        self.on_stage_done = on_stage_done
        # A target waits here before it starts (its own deadline starts when it gets in).
        self.in_flight = asyncio.Semaphore(max(1, options.in_flight)) if options.in_flight else None
        self.traces_under_way = 0  # each holds up to `trace.MAX_HOPS` sockets


class _Limit(NamedTuple):
    """The deadline that bounds a target's stages: when it passes (monotonic), and whose it is
    (the run's `--deadline`, or the target's own), for the diagnosis."""

    at: float
    seconds: float
    the_runs: bool


def _context(
    stage: Stage,
    target: Target,
    timeout: float,
    elapsed: float,
    limit: _Limit,
    conn: Connection | None = None,
    step: Step | None = None,
) -> diagnose.Context:
    """The one place a diagnosis context is made: the facts of a failed stage, no words."""
    from preflight import diagnose

    return diagnose.Context(
        stage=stage,
        host=target.host,
        port=target.port,
        timeout=timeout,
        elapsed=elapsed,
        phase=conn.phase if conn is not None else None,
        address=str(conn.peer) if conn is not None and conn.peer else None,
        facts=conn.facts if conn is not None else {},
        deadline=limit.seconds,
        deadline_is_the_runs=limit.the_runs,
        ssh_config=target.ssh_config,
        hop_label=step.hop_label if step is not None else "",
        via=step.via if step is not None else "",
    )


async def _run_stage(step: Step, limit: _Limit, run: _Run) -> StageResult:
    """Run one stage under its budget. `step.probe` replaces the stage's usual probe (a jump
    host's channel); `step.hop`, `hop_label` and `via` say which jump host the row belongs to
    or goes through, for the result and the diagnosis."""
    stage, conn, hop = step.stage, step.conn, step.hop
    target = conn.target
    deadline = limit.at
    budget = Budget.start(target.timeouts.for_stage(stage), deadline)
    conn.facts = {}
    conn.phase = None

    def failed(exc: BaseException, elapsed: float | None = None) -> StageResult:
        from preflight import diagnose

        elapsed = budget.elapsed() if elapsed is None else elapsed
        ctx = _context(stage, target, budget.timeout, elapsed, limit, conn, step)
        diagnosis = diagnose.diagnose(exc, ctx)
        _drop_frames(exc)
        if conn.phase is not None:
            conn.facts.setdefault("phase", str(conn.phase))
        return StageResult(
            stage,
            Status.FAIL,
            elapsed,
            diagnosis.summary,
            diagnosis,
            dict(conn.facts),
            hop=hop,
        )

    if budget.expired():
        return failed(StageTimeout(At(Phase.START), 0.0, by_deadline=True))
    probe = step.probe or _probe_for(stage)
    backstop = asyncio.timeout(max(0.0, deadline - time.monotonic()) + BACKSTOP_GRACE)
    try:
        async with backstop:
            passed: Passed = await probe(conn, budget)
    except TimeoutError as exc:
        if not backstop.expired():
            return failed(exc)  # raised by the probe itself, not the backstop
        log.warning(
            "%s %s: the runner's backstop fired; the stage ignored its budget", target.name, stage
        )
        return failed(
            StageTimeout(
                conn.phase or At(Phase.STAGE, str(stage)),
                budget.elapsed(),
                by_deadline=budget.cut_by_deadline,
            )
        )
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        log.debug("%s %s failed", target.name, stage, exc_info=True)
        # The stage's own time stays what it took; a closer look says its own.
        took = budget.elapsed()
        try:
            await _look_closer(step, exc, limit.at, run)
        except asyncio.CancelledError:
            # Interrupted during the closer look: the stage's verdict was already found and
            # stands (without the look's fact), not "cut short". What follows is skipped for
            # its failure, with no wait, and the target ends as soon as it has closed.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
        return failed(exc, took)
    return StageResult(
        stage,
        Status.PASS,
        budget.elapsed(),
        passed.detail,
        None,
        dict(conn.facts),
        list(passed.warnings),
        hop=hop,
    )


def _drop_frames(exc: BaseException) -> None:
    """Let go of the frames a failure's exceptions hold, once it is diagnosed. A traceback
    holds the frames the exception passed through, and those frames hold the exception (a
    local such as the tcp stage's `last_error`, the task that raised it): a reference cycle
    per failed target, which reference counting cannot free. At 10,000 failed targets that
    was 60 MiB and sockets kept until the cycle collector's next full pass, a 0.4 s pause."""
    pending, seen = [exc], set()
    while pending:
        found = pending.pop()
        if id(found) in seen:
            continue
        seen.add(id(found))
        found.__traceback__ = None
        pending.extend(e for e in (found.__cause__, found.__context__) if e is not None)
        cause = getattr(found, "cause", None)  # StageTimeout's: what the blocked call raised
        if isinstance(cause, BaseException):
            pending.append(cause)


async def _check_target(
    target: Target, result: TargetResult, run: _Run, *, keep_open: bool = False
) -> Connection | None:
    """Run `target`'s stages into `result`. With `keep_open`, a target that passed keeps its
    connection (transport, SFTP session), which is returned for the library's callers."""
    started = time.monotonic()
    own_deadline = started + target.deadline
    deadline = min(own_deadline, run.deadline)
    limit = (
        _Limit(run.deadline, run.options.deadline or 0.0, True)
        if run.deadline < own_deadline
        else _Limit(own_deadline, target.deadline, False)
    )
    # A target behind jump hosts has their stages first (`stages.jump`); else one connection.
    steps, conns = jump.plan(target)
    holding_slot = False
    failure: StageResult | None = None
    # The stage under way and when it started, for the record if the run is interrupted.
    running: tuple[Step, float] | None = None

    def record(row: StageResult) -> None:
        result.stages.append(row)
        if run.on_stage_done is not None and row.status is not Status.SKIP:
            run.on_stage_done()  # a progress line moves with the stages, not only the targets

    try:
        for step in steps:
            stage, conn = step.stage, step.conn
            running = (step, time.monotonic())
            conn.phase = None
            if failure is not None:
                from preflight.diagnose import skipped_after

                skipped = skipped_after(failure.name)
                record(StageResult(stage, Status.SKIP, 0.0, skipped, hop=step.hop))
                continue
            if step.skip is not None:
                record(StageResult(stage, Status.SKIP, 0.0, step.skip, hop=step.hop))
                continue
            if stage in SSH_STAGES and not holding_slot:
                conn.phase = At(Phase.SSH_SLOT)
                holding_slot = await _take_slot(run, deadline)
                if not holding_slot:
                    from preflight import diagnose

                    timeout = conn.target.timeouts.for_stage(stage)
                    elapsed = time.monotonic() - started
                    ctx = _context(stage, conn.target, timeout, elapsed, limit, step=step)
                    diagnosis = diagnose.deadline_exceeded(ctx, At(Phase.SSH_SLOT))
                    failure = StageResult(
                        stage, Status.FAIL, 0.0, diagnosis.summary, diagnosis, hop=step.hop
                    )
                    record(failure)
                    continue
            stage_result = await _run_stage(step, limit, run)
            running = None
            record(stage_result)
            if stage_result.status is Status.FAIL:
                failure = stage_result
                from preflight import reproduce

                # What this connection's stages found (the method that logged in, the host
                # key a pin verified), the failed stage's own facts last.
                found = {
                    key: value
                    for row in result.stages
                    if row.hop == step.hop
                    for key, value in row.facts.items()
                }
                # A jump host's own stage is reproduced through the jump hosts before it.
                checked = (
                    replace(conn.target, jump=target.jump[: step.hop - 1])
                    if step.hop
                    else conn.target
                )
                stage_result.facts["reproduce"] = reproduce.commands(
                    checked, stage, stage_result.diagnosis, found
                )
    except asyncio.CancelledError:
        if running is not None and not run.deadline_passed:
            _record_cut_short(result, *running)
        _mark_unfinished(result, run, [(step.hop, step.stage) for step in steps])
        raise
    finally:
        result.duration_s = time.monotonic() - started
        if holding_slot:
            run.ssh_slots.release()
        if not (keep_open and result.ok):
            # The target first, then the jump hosts under it.
            for conn in reversed(conns):
                await _close(conn)
    return conns[-1] if keep_open and result.ok else None


async def _take_slot(run: _Run, deadline: float) -> bool:
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            await run.ssh_slots.acquire()
    except TimeoutError:
        return False
    return True


async def _close(conn: Connection) -> None:
    if conn.transport is not None or isinstance(conn, ChainedConnection):
        from preflight.stages import watchdog

        with contextlib.suppress(Exception):
            await watchdog.close(conn)
    else:
        conn.close()


def _record_cut_short(result: TargetResult, step: Step, started: float) -> None:
    """The stage that was running when the run was interrupted: an error with its time, so
    that no report reads it as skipped (a cancelled CI job must not look green)."""
    if any((s.hop, s.stage) == (step.hop, step.stage) for s in result.stages):
        return
    from preflight import diagnose

    conn = step.conn
    # Where the interruption found the stage, not where an upload's cleanup got to since.
    phase = conn.interrupted_phase or conn.phase
    now = time.monotonic()
    facts: dict[str, Any] = {"phase": str(phase)} if phase is not None else {}
    upload = conn.facts.get("upload")
    cleanup = None
    if conn.interrupted_at is not None and upload and upload.get("created"):
        # The upload check was given its moment to remove its test file (`watchdog`).
        removed = conn.test_file is None
        facts["upload"] = {**upload, "removed": removed}
        cleanup = diagnose.Cleanup(
            upload["file"], now - conn.interrupted_at, removed, upload.get("remove_error")
        )
    interrupted = (conn.interrupted_at or now) - started
    result.stages.append(
        StageResult(
            step.stage,
            Status.ERROR,
            now - started,
            diagnose.cut_short(interrupted, phase, cleanup),
            facts=facts,
            hop=step.hop,
        )
    )


def _never_got_a_socket(
    result: TargetResult, run: _Run, waited: float, past_deadline: bool
) -> None:
    """A target that waited for a share of the open-file limit and never started: the run's
    deadline came first (its first stage then says so, and how long it waited), or an
    interruption (its stages are marked never started)."""
    steps, _ = jump.plan(result.target)
    result.duration_s = waited
    _mark_unfinished(
        result,
        run,
        [(step.hop, step.stage) for step in steps],
        waited=waited,
        waiting_for=At(Phase.SOCKET_SLOT),
        past_deadline=past_deadline,
    )


def _mark_unfinished(
    result: TargetResult,
    run: _Run,
    planned: list[tuple[int, Stage]] | None = None,
    *,
    waited: float = 0.0,
    waiting_for: At | None = None,
    past_deadline: bool | None = None,
) -> None:
    """Record what an interruption or the run's deadline cut short, so reports stay complete.
    `planned` lists the (hop, stage) rows of a target with jump hosts; a target the deadline
    found still waiting to start says for what (`waiting_for`) and how long (`waited`)."""
    done = {(s.hop, s.stage) for s in result.stages}
    rows = planned if planned is not None else [(0, stage) for stage in result.target.stages]
    pending = [(hop, stage) for hop, stage in rows if (hop, stage) not in done]
    if run.deadline_passed if past_deadline is None else past_deadline:
        from preflight import diagnose

        for i, (hop, stage) in enumerate(pending):
            if i == 0:
                limit = _Limit(run.deadline, run.options.deadline or 0.0, True)
                timeout = result.target.timeouts.for_stage(stage)
                ctx = _context(stage, result.target, timeout, waited, limit)
                diagnosis = diagnose.deadline_exceeded(ctx, waiting_for)
                result.stages.append(
                    StageResult(stage, Status.FAIL, waited, diagnosis.summary, diagnosis, hop=hop)
                )
            else:
                result.stages.append(
                    StageResult(stage, Status.SKIP, 0.0, diagnose.SKIPPED_PAST_DEADLINE, hop=hop)
                )
        return
    from preflight import diagnose

    result.interrupted = True
    never_started = diagnose.NEVER_STARTED_BEFORE_INTERRUPTION
    for hop, stage in pending:
        result.stages.append(StageResult(stage, Status.SKIP, 0.0, never_started, hop=hop))


async def run_checks(
    targets: Sequence[Target],
    options: RunOptions | None = None,
    *,
    on_target_done: Callable[[TargetResult], None] | None = None,
    on_stage_done: Callable[[], None] | None = None,
) -> Report:
    """Check every target; returns a complete report even when cancelled (then `interrupted`).
    `on_target_done` is called with each finished target, `on_stage_done` after each stage."""
    options = options or RunOptions()
    _load_probes(targets)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    run = _Run(options, started, on_stage_done)
    results = [TargetResult(target) for target in targets]

    async def one(target: Target, result: TargetResult) -> None:
        if run.in_flight is None:
            await _check_target(target, result, run)
        else:
            waiting_since = time.monotonic()
            try:
                async with run.in_flight:
                    if time.monotonic() < run.deadline:
                        await _check_target(target, result, run)
                    else:  # its turn came when the run's time was up
                        _never_got_a_socket(result, run, time.monotonic() - waiting_since, True)
            except asyncio.CancelledError:
                if not result.stages:  # cancelled while it waited: it never started
                    waited = time.monotonic() - waiting_since
                    _never_got_a_socket(result, run, waited, run.deadline_passed)
                raise
        if on_target_done is not None:
            on_target_done(result)

    tasks = [
        asyncio.create_task(one(t, r), name=f"preflight:{t.name}")
        for t, r in zip(targets, results, strict=True)
    ]
    interrupted = False
    loop = asyncio.get_running_loop()
    backstop = None
    if options.deadline:

        def cut_off() -> None:
            run.deadline_passed = True
            for task in tasks:
                task.cancel()

        backstop = loop.call_at(loop.time() + options.deadline + BACKSTOP_GRACE, cut_off)
    try:
        await asyncio.gather(*tasks, return_exceptions=True)
    except asyncio.CancelledError:
        interrupted = True
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()  # we handle it: the report is what the caller wants now
        for task in tasks:
            task.cancel()
        # Let every target record what was cut short and close its connection.
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if backstop is not None:
            backstop.cancel()
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]  # a bug in preflight: exit 3
    return Report(
        results,
        started_at,
        time.monotonic() - started,
        interrupted=interrupted or any(r.interrupted for r in results),
    )


async def open_connection(
    target: Target, *, deadline: float | None = None
) -> tuple[TargetResult, Connection | None]:
    """Check one target and, if every stage passed, also return its live connection."""
    run = _Run(RunOptions(deadline=deadline, jobs=1), time.monotonic())
    result = TargetResult(target)
    conn = await _check_target(target, result, run, keep_open=True)
    return result, conn


def check(
    targets: Sequence[Target], *, deadline: float | None = None, jobs: int = DEFAULT_JOBS
) -> Report:
    """Check `targets` and return the report: the synchronous entry point of the library."""
    return asyncio.run(run_checks(targets, RunOptions(deadline=deadline, jobs=jobs)))
