"""The tcp stage: open a TCP connection to one of the resolved addresses.

Each address gets its own socket and the full tcp timeout, and the stage moves on to the next
address after a timeout as well as after a refusal (paramiko only moves on after a refusal, so a
dropped IPv6 address hides a working IPv4 one). Every attempt is recorded in `facts["attempts"]`
so the report can say which address answered and what each other one did: a firewall team needs
"[2001:db8::1]:22 dropped after 3.0 s, 192.0.2.1:22 connected in 0.02 s", not just "failed".
The connect runs on the event loop, so a thousand dropped targets cost sockets, not threads.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from preflight.deadline import Budget
from preflight.errors import UNREACHABLE_ERRNOS, StageTimeout
from preflight.phases import At, Phase
from preflight.stages import Address, Connection, Passed


def outcome_of(exc: BaseException) -> str:
    """A one-word name for a failed attempt, for the attempts list."""
    if isinstance(exc, StageTimeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, OSError) and exc.errno in UNREACHABLE_ERRNOS:
        return "unreachable"
    return "error"


async def _connect(address: Address, budget: Budget) -> tuple[socket.socket, bool]:
    """A connected socket, and whether the server reset it before connect() returned."""
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    reset = False
    try:
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: in Python 3.11 wait_for wraps the connect in a
            # task of its own, and 10,000 targets make 10,000 of them at once.
            async with asyncio.timeout(budget.remaining()):
                await loop.sock_connect(sock, address.sockaddr)
        except ConnectionResetError:
            # The handshake completed (a refusal would be ECONNREFUSED) and the server reset
            # the connection at once, before connect() returned: TCP works, the service
            # turned us away. The banner stage reports it.
            reset = True
        except TimeoutError:
            raise StageTimeout(
                At(Phase.ANSWER, str(address)),
                budget.elapsed(),
                by_deadline=budget.cut_by_deadline,
            ) from None
    except BaseException:
        sock.close()
        raise
    return sock, reset


async def probe(conn: Connection, budget: Budget) -> Passed:
    conn.phase = At(Phase.CONNECT)
    attempts: list[dict[str, Any]] = []
    conn.facts["attempts"] = attempts
    last_error: BaseException | None = None
    for address in conn.addresses:
        # Each address gets the whole tcp timeout, but never past the target's deadline.
        attempt = Budget.start(budget.timeout, budget.deadline)
        if attempt.expired():
            break
        try:
            sock, conn.reset_on_connect = await _connect(address, attempt)
        except (OSError, StageTimeout) as exc:
            attempts.append(
                {
                    "address": str(address),
                    "result": outcome_of(exc),
                    "seconds": round(attempt.elapsed(), 3),
                    "error": _describe(exc),
                }
            )
            last_error = exc
            continue
        with conn._lock:
            conn.sock = sock
        conn.peer = address
        local = sock.getsockname()
        conn.local = (
            f"[{local[0]}]:{local[1]}"
            if sock.family == socket.AF_INET6
            else f"{local[0]}:{local[1]}"
        )
        attempts.append(
            {"address": str(address), "result": "connected", "seconds": round(attempt.elapsed(), 3)}
        )
        conn.facts.update(address=str(address), local_address=conn.local)
        elapsed_ms = attempt.elapsed() * 1000
        failed = "; ".join(_what_happened(a) for a in attempts[:-1])
        note = f", after {failed}" if failed else ""
        return Passed(f"connected to {address} from {conn.local} in {elapsed_ms:.0f} ms{note}")
    if last_error is None:
        raise StageTimeout(At(Phase.FREE_MOMENT), budget.elapsed(), by_deadline=True)
    raise last_error


def _what_happened(attempt: dict[str, Any]) -> str:
    """One failed attempt in words: "[2001:db8::1]:22 did not answer in 3.0s"."""
    address, result, error = attempt["address"], attempt["result"], attempt.get("error", "")
    if result == "timeout":
        return f"{address} did not answer in {attempt['seconds']:.1f}s"
    if result == "refused":
        return f"{address} refused the connection (TCP reset)"
    if result == "unreachable":
        return f"{address} was unreachable ({error})"
    return f"{address} failed ({error})"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StageTimeout):
        return f"no answer in {exc.waited:.1f}s"
    if isinstance(exc, OSError) and exc.errno:
        # Not exc.strerror: asyncio puts "Connect call failed (address)" there.
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__
