"""Bounding every wait of a blocking library: the work runs in a thread, the event loop watches.

paramiko is synchronous and several of its waits have no usable bound (DESIGN §3): the handshake
timeout is cancelled once KEXINIT arrives, `invoke_subsystem` waits forever. So a stage that
drives it runs its calls in a daemon thread (`run_guarded`) while the event loop watches the
clock; when the budget runs out the watchdog shuts the connection's socket down (`shutdown`: the
one real socket at the bottom of a jump host chain), which makes every wait on it return within
a tenth of a second, and the stage reports a timeout for the phase it was in. `close` ends a
connection without blocking the event loop. Every paramiko-driven stage (auth, sftp, a jump
host's channel and banner) goes through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from preflight.deadline import Budget
from preflight.errors import StageTimeout
from preflight.stages import Connection
from preflight.stages.chain import carrier
from preflight.threads import in_daemon_thread

__all__ = ["CLEANUP_GRACE", "UNBLOCK_GRACE", "close", "run_guarded", "shutdown"]

T = TypeVar("T")

# How long the stage waits for its thread to come back after the watchdog shut the socket.
UNBLOCK_GRACE = 2.0
# How long an interrupted upload check gets to remove its test file before the socket is shut.
CLEANUP_GRACE = 2.0


def shutdown(conn: Connection) -> None:
    """Unblock every paramiko call on this connection without blocking the caller. Behind jump
    hosts that is the first jump host's socket: every transport and channel rides on it."""
    sock = carrier(conn).sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


async def run_guarded(
    conn: Connection, budget: Budget, work: Callable[[], T], *, grace: float = 0.0
) -> T:
    """Run `work` in a daemon thread; when the budget runs out (or the task is cancelled),
    shut the connection down so the thread ends, and raise `StageTimeout` for `conn.phase`.
    `grace` lets work that bounds its own waits by the budget report its own verdict first."""
    future = in_daemon_thread(f"preflight-{conn.target.name}", work)
    try:
        return await asyncio.wait_for(asyncio.shield(future), budget.remaining() + grace)
    except TimeoutError:
        if future.done() and not future.cancelled() and future.exception() is not None:
            # The work failed on its own (e.g. a socket timeout), not stopped by the watchdog.
            raise future.exception() from None  # type: ignore[misc]
        phase, waited = conn.phase, budget.elapsed()
        shutdown(conn)
        # Give the thread a moment to come back, for the record; an interruption still wins.
        await asyncio.wait([future], timeout=UNBLOCK_GRACE)
        cause = future.exception() if future.done() and not future.cancelled() else None
        raise StageTimeout(phase, waited, by_deadline=budget.cut_by_deadline, cause=cause) from None
    except asyncio.CancelledError:
        if conn.test_file is not None:
            await _let_the_upload_clean_up(conn, future, budget)
        shutdown(conn)
        raise


async def _let_the_upload_clean_up(
    conn: Connection, future: asyncio.Future[T], budget: Budget
) -> None:
    """The run was interrupted while the upload check's test file is on the server: ask the
    thread to stop and remove it, and wait for that at most `CLEANUP_GRACE` (a CI job that is
    cancelled again and again must not leave a file on the server each time), and never past
    the deadline (the run's cut-off there would take the interruption for the deadline). The
    phase the interruption found is kept for the record (`Connection.interrupted_phase`)."""
    conn.interrupted_phase = conn.phase
    conn.interrupted_at = now = time.monotonic()
    conn.stop_requested = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait([future], timeout=max(0.0, min(CLEANUP_GRACE, budget.deadline - now)))


async def close(conn: Connection) -> None:
    """Close the transport and socket. `Transport.close` joins paramiko's thread, so it runs in
    a worker thread, after a socket shutdown has made sure there is nothing to wait for (the
    shutdown too: under load even that syscall waited milliseconds for the GIL)."""

    def shut_and_close() -> None:
        shutdown(conn)
        conn.close()

    closing = in_daemon_thread("preflight-close", shut_and_close)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing, UNBLOCK_GRACE)
