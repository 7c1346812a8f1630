"""Blocking work off the event loop, in daemon threads that can be abandoned.

`asyncio.to_thread` uses the loop's default executor, whose threads are joined when the loop
shuts down and again at interpreter exit: a `getaddrinfo` that never returns would hold the
process for its full 10 s or more after the verdict is in. preflight's blocking calls (the
resolver, paramiko) are instead run in daemon threads whose result is delivered to a future on the
loop; a caller that stops waiting simply leaves, and the process can always exit on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def in_daemon_thread(name: str, work: Callable[[], T]) -> asyncio.Future[T]:
    """Run `work` in a daemon thread and return a future on the running loop for its result.
    An exception that nobody waits for any more is dropped, not logged as "never retrieved"."""
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

    def thread_main() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = work()
        except BaseException as exc:  # delivered to the awaiting coroutine
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=thread_main, name=name, daemon=True).start()
    return future
