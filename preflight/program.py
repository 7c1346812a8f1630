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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from preflight.model import Report, Target, TargetResult

__all__ = ["Settings", "Signals", "raise_fd_limit", "run"]


@dataclass(frozen=True)
class Settings:
    """What the command line (or the demo) decides for a run."""

    deadline: float | None = None  # seconds for the whole run (--deadline)
    jobs: int | None = None  # targets in the SSH stages at once (None: the runner's default)
    attempts: int = 1
    interval: float = 1.0  # seconds between attempts


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
    on_target_done: Callable[[TargetResult], None] | None = None,
) -> Report:
    """Run the checks; the first signal in `signals` cancels them (a report still comes back,
    marked interrupted)."""
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
            options = RunOptions(deadline=settings.deadline, jobs=settings.jobs or DEFAULT_JOBS)
            if settings.attempts > 1:
                from preflight.attempts import run_attempts

                return await run_attempts(
                    targets,
                    options,
                    settings.attempts,
                    settings.interval,
                    on_target_done=on_target_done,
                )
            return await run_checks(targets, options, on_target_done=on_target_done)
        finally:
            signals.on_first = None

    return asyncio.run(main())


def raise_fd_limit() -> None:
    """One socket per target in flight: lift the soft descriptor limit to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
