"""The dns stage: resolve the target's host with the system resolver, under a deadline.

`getaddrinfo` honours /etc/hosts, nsswitch and resolv.conf, which is what the CI job's own code
will use, but it has no timeout of its own (10 s and more with a silent resolver). So it runs in a
daemon thread that preflight simply stops waiting for: a stuck lookup can neither delay the
verdict nor keep the process alive at exit. IP literals never reach a thread. Lookups of the same
name and port share one thread, and at most `MAX_LOOKUPS` run at once so a thousand targets cannot
start a thousand threads; time spent waiting for a slot counts against the stage's budget.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import threading
from typing import Any

from preflight.deadline import Budget
from preflight.errors import StageTimeout
from preflight.phases import At, Phase
from preflight.stages import Address, Connection, Passed
from preflight.threads import in_daemon_thread

MAX_LOOKUPS = 32
SLOT_POLL = 0.05

_slots = threading.BoundedSemaphore(MAX_LOOKUPS)
_pending: dict[tuple[str, int], asyncio.Future[list[Address]]] = {}


@functools.lru_cache(maxsize=4096)
def literal_address(host: str, port: int) -> Address | None:
    """The address for an IP literal (`[::1]` brackets allowed), or None for a name."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if ip.version == 6:
        return Address(socket.AF_INET6, (str(ip), port, 0, 0))
    return Address(socket.AF_INET, (str(ip), port))


def _getaddrinfo(host: str, port: int) -> list[Address]:
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    seen: set[tuple[Any, ...]] = set()
    addresses = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6) or sockaddr in seen:
            continue
        seen.add(sockaddr)
        addresses.append(Address(family, tuple(sockaddr)))
    return addresses


def _lookup(host: str, port: int) -> list[Address]:
    try:
        return _getaddrinfo(host, port)
    finally:
        _slots.release()  # taken by _start_lookup before this thread started


async def _start_lookup(host: str, port: int, budget: Budget) -> asyncio.Future[list[Address]]:
    """Start a lookup thread once a slot is free. Slots are taken here, before any thread
    exists, so the cap is real; a lookup that hangs keeps its slot until getaddrinfo gives
    up, and a target that cannot get one in time says so rather than blaming the resolver."""
    while not _slots.acquire(blocking=False):
        if budget.expired():
            raise StageTimeout(
                At(Phase.RESOLVER_SLOT, str(MAX_LOOKUPS)),
                budget.elapsed(),
                by_deadline=budget.cut_by_deadline,
            )
        await asyncio.sleep(min(SLOT_POLL, budget.remaining()))
    try:
        return in_daemon_thread(f"preflight-dns-{host}", lambda: _lookup(host, port))
    except BaseException:
        _slots.release()
        raise


async def resolve(host: str, port: int, budget: Budget) -> list[Address]:
    literal = literal_address(host, port)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    key = (host, port)
    future = _pending.get(key)
    if future is None or future.get_loop() is not loop:
        future = await _start_lookup(host, port, budget)
        _pending[key] = future
        future.add_done_callback(lambda f: _pending.get(key) is f and _pending.pop(key))
    try:
        # shield: one target giving up must not cancel the lookup others share.
        return await asyncio.wait_for(asyncio.shield(future), budget.remaining())
    except TimeoutError:
        raise StageTimeout(
            At(Phase.RESOLVER), budget.elapsed(), by_deadline=budget.cut_by_deadline
        ) from None


async def probe(conn: Connection, budget: Budget) -> Passed:
    conn.phase = At(Phase.RESOLVE)
    try:
        addresses = await resolve(conn.target.host, conn.target.port, budget)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN and budget.remaining() > 0:
            # "Try again" says nothing of why: ask the resolver's servers (`dnsprobe`).
            from preflight.stages import dnsprobe

            conn.facts["resolver"] = await dnsprobe.ask_servers(
                conn.target.host, budget.remaining()
            )
        raise
    conn.addresses = addresses
    conn.facts["addresses"] = [a.ip for a in addresses]
    if not addresses:
        raise socket.gaierror(socket.EAI_NODATA, "No address associated with hostname")
    if literal_address(conn.target.host, conn.target.port) is not None:
        return Passed(f"{addresses[0].ip} is an IP address, nothing to resolve")
    shown = ", ".join(a.ip for a in addresses[:4])
    more = f" (+{len(addresses) - 4} more)" if len(addresses) > 4 else ""
    return Passed(f"{conn.target.host} → {shown}{more}")
