"""Blocking work off the event loop, in daemon threads that can be abandoned.

`asyncio.to_thread` uses the loop's default executor, whose threads are joined when the loop
shuts down and again at interpreter exit: a `getaddrinfo` that never returns would hold the
process for its full 10 s or more after the verdict is in. preflight's blocking calls (the
resolver, paramiko) are instead run by daemon worker threads whose result is delivered to a future
on the loop; a caller that stops waiting simply leaves, and the process can always exit on time.

The workers are kept for a moment after their work and reused: `Thread.start()` waits until the
new thread runs, and on a busy machine that wait (milliseconds, three times per SSH target) was
the event loop's largest cost. A worker is started only when none is idle, so work never queues
behind a hung call, and one idle for `IDLE_SECONDS` exits, so none outlive a run for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

IDLE_SECONDS = 1.0


class _Workers:
    """Daemon threads taking callables from one queue; grows on demand, shrinks when idle."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, name: str, job: Callable[[], None]) -> None:
        # The put happens under the lock so that an idle worker deciding to exit always sees
        # a job handed to it (see _run).
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._queue.put(job)
                return
            self._queue.put(job)
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._idle -= 1
                        return
                continue
            job()
            with self._lock:
                self._idle += 1


_workers = _Workers()


def in_daemon_thread(name: str, work: Callable[[], T]) -> asyncio.Future[T]:
    """Run `work` in a daemon worker thread and return a future on the running loop for its
    result. An exception that nobody waits for any more is dropped, not logged as "never
    retrieved"."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def job() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = work()
        except BaseException as exc:  # delivered to the awaiting coroutine
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, result, error)

    _workers.submit(name, job)
    return future
