"""Repeated checks for an intermittent fault: `--attempts N [--interval S]`.

"Not every time, only sometimes": one check can pass while the fault is real. This runs the
whole set of targets N times, `interval` seconds apart, within the run's deadline, and folds the
rounds into one `Report`: per target, the stages of a representative attempt (the first that
failed, so the report shows the failure; else the last), each stage annotated in
`facts["rounds"]` with how often it passed and its latency (min / median / p95 / max), and the
target marked *flaky* when the attempts did not all end the same way. A flaky target fails, its
summary giving the pattern ("2 of 4 attempts failed (✓✗✓✗)"). `combine` is pure;
`run_attempts` does the waiting.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

from preflight.model import Diagnosis, Report, Status, Target, TargetResult
from preflight.runner import RunOptions, run_checks


def _signature(result: TargetResult) -> tuple[tuple[str, Status, str | None], ...]:
    return tuple(
        (s.name, s.status, s.diagnosis.code if s.diagnosis else None) for s in result.stages
    )


def _latency(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)
    p95 = (
        statistics.quantiles(ordered, n=20, method="inclusive")[18]
        if len(ordered) > 1
        else ordered[0]
    )
    return {
        "min": round(ordered[0], 4),
        "median": round(statistics.median(ordered), 4),
        "p95": round(p95, 4),
        "max": round(ordered[-1], 4),
    }


def _stage_statistics(name: str, rounds: list[TargetResult]) -> dict[str, object]:
    """Statistics of one row (`tcp`, or `jump1.tcp` for a jump host's) over the rounds."""
    ran = [s for r in rounds for s in r.stages if s.name == name and s.status is not Status.SKIP]
    codes = Counter(s.diagnosis.code for s in ran if s.diagnosis is not None)
    statistics_: dict[str, object] = {
        "passed": sum(s.status is Status.PASS for s in ran),
        "ran": len(ran),
        "of": len(rounds),
    }
    if ran:
        statistics_["latency_s"] = _latency([s.duration_s for s in ran])
    if codes:
        statistics_["codes"] = dict(codes)
    return statistics_


def _pattern(rounds: list[TargetResult]) -> str:
    return "".join("✓" if r.ok else "✗" for r in rounds)


def combine_target(rounds: list[TargetResult], planned: int | None = None) -> TargetResult:
    """Fold one target's attempts into one result (see the module docstring). An attempt cut
    short by an interruption counts for nothing: it neither failed nor disagreed with the
    others; the result is marked interrupted and the summary says so. `planned` is how many
    attempts were asked for."""
    finished = [r for r in rounds if not r.interrupted]
    if not finished:  # interrupted during the first attempt: that attempt is all there is
        return rounds[0]
    cut_short = len(finished) < len(rounds)
    planned = max(planned or len(rounds), len(rounds))
    failing = [r for r in finished if r.failure is not None]
    chosen = failing[0] if failing else finished[-1]
    flaky = len({_signature(r) for r in finished}) > 1
    failed_rounds = sum(not r.ok for r in finished)
    count = len(finished)
    stages = []
    for found in chosen.stages:
        facts = dict(found.facts)
        facts["rounds"] = _stage_statistics(found.name, finished)
        diagnosis = found.diagnosis
        if diagnosis is not None and (count > 1 or cut_short):
            told = f"{failed_rounds} of {count} attempt{'s' if count > 1 else ''} failed"
            told += f" ({_pattern(finished)})"
            if cut_short:
                told += f", then the run was interrupted during attempt {count + 1} of {planned}"
            lead = "the first failure" if flaky else "each time" if count > 1 else "the failure"
            hint = _intermittent_hint(diagnosis) if flaky else diagnosis.hint
            diagnosis = Diagnosis(diagnosis.code, f"{told}; {lead}: {diagnosis.summary}", hint)
        stages.append(
            replace(
                found,
                facts=facts,
                diagnosis=diagnosis,
                detail=diagnosis.summary if diagnosis else found.detail,
            )
        )
    return TargetResult(
        target=chosen.target,
        stages=stages,
        duration_s=sum(r.duration_s for r in rounds),
        interrupted=cut_short,
        attempts=count,
        flaky=flaky,
    )


def _intermittent_hint(diagnosis: Diagnosis) -> str:
    from preflight import diagnose

    return diagnose.intermittent_hint(diagnosis)


def combine(reports: list[Report], planned: int | None = None) -> Report:
    """One report from several rounds over the same targets (`planned` were asked for)."""
    first = reports[0]
    targets = [
        combine_target([report.targets[i] for report in reports], planned)
        for i in range(len(first.targets))
    ]
    return Report(
        targets,
        first.started_at,
        sum(report.duration_s for report in reports),
        interrupted=any(report.interrupted for report in reports),
    )


async def run_attempts(
    targets: Sequence[Target],
    options: RunOptions,
    attempts: int,
    interval: float,
    on_target_done: Callable[[TargetResult], None] | None = None,
    on_stage_done: Callable[[], None] | None = None,
    on_attempt: Callable[[int], None] | None = None,
) -> Report:
    """Run every target `attempts` times, `interval` s apart, all within `options.deadline`.
    `on_attempt` is told each attempt's number (from 1) as it starts; `on_stage_done` is called
    after every stage of every attempt, `on_target_done` with the targets of the last one."""
    started = time.monotonic()
    reports: list[Report] = []
    interrupted = False
    for round_number in range(attempts):
        remaining = (
            None if options.deadline is None else options.deadline - (time.monotonic() - started)
        )
        if remaining is not None and remaining <= 0:
            break
        if round_number:
            pause = interval if remaining is None else min(interval, remaining)
            try:
                await asyncio.sleep(pause)
            except asyncio.CancelledError:  # interrupted between rounds: report what ran
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                interrupted = True
                break
            if remaining is not None:
                remaining -= pause
                if remaining <= 0:
                    break
        last_round = round_number == attempts - 1
        if on_attempt is not None:
            on_attempt(round_number + 1)
        report = await run_checks(
            targets,
            replace(options, deadline=remaining),
            on_target_done=on_target_done if last_round else None,
            on_stage_done=on_stage_done,
        )
        reports.append(report)
        if report.interrupted:
            break
    combined = combine(reports, planned=attempts)
    combined.interrupted = combined.interrupted or interrupted
    # The run's time is the whole run's, the intervals between attempts included: the total
    # a report prints is what the job waited (each target's own time is its checking only).
    combined.duration_s = time.monotonic() - started
    return combined
