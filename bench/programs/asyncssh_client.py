"""asyncssh with `connect_timeout`: the asyncio SSH library, every target on one event loop.

All targets at once (`concurrency: null`) or at most `concurrency` at a time. With `login` it
authenticates with the key, checks the host key against known_hosts and lists the SFTP path.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import _common
import asyncssh


async def run(job: dict[str, Any]) -> list[dict[str, Any]]:
    login = job.get("login")
    limit = asyncio.Semaphore(job.get("concurrency") or len(job["targets"]) or 1)
    loop = asyncio.get_running_loop()

    async def check(host: str, port: int) -> None:
        async with asyncssh.connect(
            host,
            port,
            username=login["user"] if login else "bench",
            client_keys=[login["key_path"]] if login else [],
            known_hosts=login["known_hosts_path"] if login else None,
            agent_path=None,
            connect_timeout=job["connect_timeout"],
        ) as conn:
            if login:
                async with conn.start_sftp_client() as sftp:
                    await sftp.listdir(login["sftp_path"])

    async def one(host: str, port: int) -> dict[str, Any]:
        async with limit:
            begun = loop.time()
            try:
                await check(host, port)
            except Exception as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            else:
                ok, error = True, ""
            now = loop.time()
            return {
                "ok": ok,
                "elapsed": now - begun,
                "ended": time.monotonic() - _common.STARTED,
                "error": error[:200],
            }

    return list(await asyncio.gather(*(one(h, p) for h, p in job["targets"])))


def main() -> None:
    job = _common.load_job()
    _common.emit(asyncio.run(run(job)))


if __name__ == "__main__":
    main()
