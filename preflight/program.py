"""One run of checks: the signals that cancel it, the event loop, the attempts, the report.

`run` checks the targets once (or `attempts` times, `interval` apart) under the run's deadline,
on one event loop, and returns a `Report` however the run ends: when SIGINT or SIGTERM arrives
(`Signals`), the run is cancelled and the report says what finished and what was cut short.
asyncio is imported only when a run starts, so `preflight --version` never pays for it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from preflight.model import Report, Target, TargetResult

__all__ = [
    "Progress",
    "Settings",
    "Signals",
    "descriptor_room",
    "few_collections",
    "raise_fd_limit",
    "run",
]


class Progress(Protocol):
    """What follows a run as it goes (`report.progress.ProgressLine` on a terminal)."""

    def attempt_started(self, number: int) -> None: ...

    def stage_done(self) -> None: ...

    def target_done(self, result: TargetResult) -> None: ...


@dataclass(frozen=True)
class Settings:
    """What the command line (or the demo) decides for a run."""

    deadline: float | None = None  # seconds for the whole run (--deadline)
    jobs: int | None = None  # targets in the SSH stages at once (None: the runner's default)
    attempts: int = 1
    interval: float = 1.0  # seconds between attempts
    in_flight: int | None = None  # targets at once (None: all; fewer past `descriptor_room`)
    spare_descriptors: int | None = None  # beyond one per target in flight (None: not known)


class Signals:
    """SIGINT and SIGTERM, caught for the whole of a command: the first one cancels the run
    (through `on_first`, set while the event loop runs); any later one is only recorded, so
    nothing can cut short the wind-down that records what finished or the writing of the
    reports — those are what an interrupted CI job still needs (DESIGN §5)."""

    WATCHED = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: list[int] = []
        self.on_first: Callable[[], object] | None = None

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        if len(self.received) == 1 and self.on_first is not None:
            self.on_first()

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None

    @contextlib.contextmanager
    def caught(self) -> Iterator[Signals]:
        try:
            previous = {signum: signal.signal(signum, self._handle) for signum in self.WATCHED}
        except ValueError:  # not the main thread (an embedding application): leave them be
            yield self
            return
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def run(
    targets: Sequence[Target],
    settings: Settings,
    signals: Signals,
    progress: Progress | None = None,
) -> Report:
    """Run the checks; the first signal in `signals` cancels them (a report still comes back,
    marked interrupted). `progress` is told of each attempt, stage and target as they finish."""
    import asyncio

    from preflight.runner import DEFAULT_JOBS, RunOptions, run_checks

    async def main() -> Report:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        # Signal handlers run between bytecodes of the main thread; call_soon_threadsafe wakes
        # the loop out of its select().
        signals.on_first = lambda: loop.call_soon_threadsafe(task.cancel)
        if signals.received:
            task.cancel()
        try:
            options = RunOptions(
                deadline=settings.deadline,
                jobs=settings.jobs or DEFAULT_JOBS,
                in_flight=settings.in_flight,
                spare_descriptors=settings.spare_descriptors,
            )
            if settings.attempts > 1:
                from preflight.attempts import run_attempts

                return await run_attempts(
                    targets,
                    options,
                    settings.attempts,
                    settings.interval,
                    on_target_done=progress.target_done if progress else None,
                    on_stage_done=progress.stage_done if progress else None,
                    on_attempt=progress.attempt_started if progress else None,
                )
            return await run_checks(
                targets,
                options,
                on_target_done=progress.target_done if progress else None,
                on_stage_done=progress.stage_done if progress else None,
            )
        finally:
            signals.on_first = None

    return asyncio.run(main())


# Descriptors a run needs besides one socket per target in flight: the files it imports and
# writes, the resolver's and the watchdog's own. (An SSH session adds none: measured.)
DESCRIPTOR_RESERVE = 128


def descriptor_room() -> tuple[int, int]:
    """How many targets this process can check at once, and its open-file limit (after
    `raise_fd_limit`, the hard one where it could): each target holds a socket from its tcp
    stage to its end."""
    import os
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30, soft
    try:
        already = len(os.listdir("/proc/self/fd"))
    except OSError:
        already = 16
    return max(1, soft - already - DESCRIPTOR_RESERVE), soft


# How many times rarer the collections of the two younger generations are during a run. At
# 10,000 targets a tenth as often still took 0.1 s of the 0.7 s in which the connections are
# opened (every pending task, socket and timer traversed again at each pass), and the middle
# generation's pass, which then came every ten of those, traversed the whole run's state (190 ms
# at 10,000 tarpits, finding nothing). A hundredth as often, and the middle one every hundred:
# the collector's time in such a run 0.26 -> 0.07 s. The cyclic garbage a run does make (a closed
# paramiko transport) still goes: the youngest pass comes every 70,000 allocations (Python's
# default threshold, 700, times this), a few SSH sessions' worth.
COLLECTION_SPACING = 100


@contextlib.contextmanager
def few_collections() -> Iterator[Callable[[], None]]:
    """Python's cycle collector, set for one command's run. A run of 10,000 targets makes
    millions of small objects that live until the reports are written, and with the default
    thresholds the collector traverses them again and again (1.4 s of 5 s of CPU in such a run)
    to find almost nothing: a target's objects are freed by reference counting. What exists
    before the run (modules, the configuration) is frozen out of its sight, and it runs
    `COLLECTION_SPACING` times less often; it is restored afterwards. The function it gives
    freezes what the run left (its results hold no cycles: `runner` drops the frames of every
    failure), so that writing the reports, which allocates as much again, does not traverse the
    run's objects either."""
    import gc

    previous = gc.get_threshold()
    # A caller that froze objects of its own keeps them frozen: unfreeze() would thaw all.
    freezing = gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
    gc.set_threshold(
        COLLECTION_SPACING * previous[0], COLLECTION_SPACING // 10 * previous[1], previous[2]
    )
    try:
        yield gc.freeze if freezing else lambda: None
    finally:
        gc.set_threshold(*previous)
        if freezing:
            gc.unfreeze()


def raise_fd_limit() -> None:
    """One socket per target in flight: lift the soft descriptor limit to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
