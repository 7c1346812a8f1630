"""Time budgets: a stage's own timeout intersected with its target's (and the run's) deadline.

Every stage gets a `Budget` before it starts. Stages ask it how long they may still wait
(`remaining()`), never compute timeouts themselves, so one rule holds everywhere: a wait ends at
the earlier of the stage timeout and the deadline, and when it was the deadline that cut the wait
short, the failure is reported as `deadline.exceeded` rather than as a stage timeout
(`cut_by_deadline`). All times are `time.monotonic()` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """The time one stage may take: its own timeout, cut short by the deadline above it."""

    timeout: float  # the configured stage timeout, for messages
    started: float
    deadline: float  # absolute: the target's deadline, already capped by the run's

    @classmethod
    def start(cls, timeout: float, deadline: float, now: float | None = None) -> Budget:
        return cls(
            timeout=timeout, started=time.monotonic() if now is None else now, deadline=deadline
        )

    @property
    def stage_end(self) -> float:
        return self.started + self.timeout

    @property
    def end(self) -> float:
        """The absolute moment the stage must be over."""
        return min(self.stage_end, self.deadline)

    @property
    def cut_by_deadline(self) -> bool:
        """True when the deadline, not the stage's own timeout, is what limits this stage."""
        return self.deadline < self.stage_end

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.end - (time.monotonic() if now is None else now))

    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started

    def expired(self, now: float | None = None) -> bool:
        return self.remaining(now) <= 0.0
