"""The floor of the many-target scenarios: what an asyncio program pays to do only the network
part, and nothing a diagnostic tool does around it.

Every target at once on one event loop: a non-blocking socket, `sock_connect` bounded by the tcp
timeout, then (if it connected) one `sock_recv` bounded by the banner timeout, and close. No
configuration file to read, no diagnosis, no reproduce command, no report but the bench's own
JSON line. Against a fleet it says how much of preflight's time is the machine's (sockets, the
event loop, the interpreter) and how much is preflight's own.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import _common


async def run(job: dict[str, Any]) -> list[dict[str, Any]]:
    timeouts = job["timeouts"]
    loop = asyncio.get_running_loop()

    async def one(host: str, port: int) -> dict[str, Any]:
        begun = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        ok, error = False, ""
        try:
            async with asyncio.timeout(timeouts["tcp"]):
                await loop.sock_connect(sock, (host, port))
            async with asyncio.timeout(timeouts["banner"]):
                ok = bool(await loop.sock_recv(sock, 256))
        except (OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            sock.close()
        return _common.result(begun, ok, error)

    return list(await asyncio.gather(*(one(h, p) for h, p in job["targets"])))


def main() -> None:
    job = _common.load_job()
    _common.emit(asyncio.run(run(job)))


if __name__ == "__main__":
    main()
