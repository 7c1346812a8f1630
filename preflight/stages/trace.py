"""Where on the path the SYNs die: a TCP traceroute read from the socket error queue.

After a `tcp.timeout` the firewall team's first question is "which hop?". So, when asked
(`trace: true`, `--trace`), the target's port is sent one SYN per hop limit, 1 to `MAX_HOPS`,
all at once, from ordinary non-blocking sockets: a router where the hop limit runs out answers
with ICMP time exceeded, which Linux hands back to the socket with `IP_RECVERR` /
`IPV6_RECVERR` (the offender's address in the error queue) — no root, no raw socket. A hop that
answers shows the SYN got that far; the first hop limit with no answer within the budget marks
where answers stop. A SYN-ACK or a reset means that hop limit reached a host that answers TCP.
Where the error queue gives nothing (not Linux), the trace says so and changes no verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import sys
import time
from dataclasses import dataclass

from preflight.stages import Address

__all__ = ["MAX_HOPS", "TRACE_SECONDS", "HopAnswer", "Trace", "trace"]

MAX_HOPS = 20
TRACE_SECONDS = 2.0  # at most, and never past the target's deadline

# <linux/in.h>, <linux/in6.h>, <linux/errqueue.h>: not all in Python's socket module.
_IP_RECVERR = 11
_IPV6_RECVERR = 25
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
_ORIGIN_ICMP, _ORIGIN_ICMP6 = 2, 3
_TIME_EXCEEDED = {_ORIGIN_ICMP: 11, _ORIGIN_ICMP6: 3}  # ICMP type, ICMPv6 type
_EXTENDED_ERROR = struct.Struct("=IBBBBII")  # struct sock_extended_err


@dataclass(frozen=True)
class HopAnswer:
    """What came back for the SYN sent with hop limit `ttl`: `kind` is "time exceeded" (a
    router at that hop), "unreachable" (an ICMP unreachable, `address` its sender),
    "connected" or "refused" (a host answering TCP at that distance)."""

    ttl: int
    kind: str
    address: str
    rtt_ms: float


@dataclass(frozen=True)
class Trace:
    """The answers, by hop limit; `seconds` the trace took; `unavailable` why there is none."""

    destination: str
    answers: tuple[HopAnswer, ...] = ()
    max_hops: int = MAX_HOPS
    seconds: float = 0.0
    unavailable: str | None = None

    @property
    def last(self) -> HopAnswer | None:
        """The farthest hop that answered before the first silent one."""
        farthest = None
        by_ttl = {answer.ttl: answer for answer in self.answers}
        for ttl in range(1, self.max_hops + 1):
            if ttl not in by_ttl:
                break
            farthest = by_ttl[ttl]
        return farthest

    def as_fact(self) -> dict[str, object]:
        fact: dict[str, object] = {"destination": self.destination, "seconds": self.seconds}
        if self.unavailable:
            fact["unavailable"] = self.unavailable
            return fact
        fact["hops"] = [
            {"hop": a.ttl, "answer": a.kind, "address": a.address, "rtt_ms": a.rtt_ms}
            for a in sorted(self.answers, key=lambda answer: answer.ttl)
        ]
        last = self.last
        fact["last_answering_hop"] = last.ttl if last else 0
        fact["max_hops"] = self.max_hops
        return fact


async def trace(address: Address, seconds: float, max_hops: int = MAX_HOPS) -> Trace:
    """Trace the path to `address` for at most `seconds`."""
    started = time.monotonic()
    if not sys.platform.startswith("linux"):
        return Trace(address.ip, unavailable="the socket error queue (IP_RECVERR) is Linux's")
    if seconds <= 0:
        return Trace(address.ip, unavailable="no time was left before the target's deadline")
    found: list[HopAnswer] = []
    tasks = [asyncio.ensure_future(_hop(address, ttl, found)) for ttl in range(1, max_hops + 1)]
    try:
        await asyncio.wait(tasks, timeout=seconds)
    finally:
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = round(time.monotonic() - started, 3)
    failed = next((o for o in outcomes if isinstance(o, OSError)), None)
    if failed is not None:
        # A SYN never sent is not a hop that stayed silent: no conclusion at all.
        reason = f"a probe socket could not be used ({failed.strerror or failed})"
        return Trace(address.ip, max_hops=max_hops, seconds=elapsed, unavailable=reason)
    return Trace(address.ip, tuple(found), max_hops, elapsed)


async def _hop(address: Address, ttl: int, found: list[HopAnswer]) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if address.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
        started = time.monotonic()
        try:
            await loop.sock_connect(sock, address.sockaddr)
        except ConnectionRefusedError:
            found.append(HopAnswer(ttl, "refused", address.ip, _ms(started)))
            return
        except OSError as exc:
            answer = _from_error_queue(sock, ttl, _ms(started))
            if answer is not None:
                found.append(answer)
            elif exc.errno is not None and exc.errno != errno.ETIMEDOUT:
                found.append(HopAnswer(ttl, "unreachable", "", _ms(started)))
            return
        found.append(HopAnswer(ttl, "connected", address.ip, _ms(started)))
    finally:
        sock.close()


def _from_error_queue(sock: socket.socket, ttl: int, rtt_ms: float) -> HopAnswer | None:
    """The ICMP error the kernel queued for this socket: who sent it, and what it was."""
    with contextlib.suppress(OSError):
        _, ancillary, _, _ = sock.recvmsg(512, 512, _MSG_ERRQUEUE)
        for _level, _kind, data in ancillary:
            if len(data) < _EXTENDED_ERROR.size + 8:
                continue
            _errno, origin, kind, _code, _pad, _info, _data = _EXTENDED_ERROR.unpack_from(data)
            if origin not in _TIME_EXCEEDED:
                continue
            offender = data[_EXTENDED_ERROR.size :]
            family = struct.unpack_from("=H", offender)[0]
            if family == socket.AF_INET and len(offender) >= 8:
                sender = socket.inet_ntop(socket.AF_INET, offender[4:8])
            elif family == socket.AF_INET6 and len(offender) >= 24:
                sender = socket.inet_ntop(socket.AF_INET6, offender[8:24])
            else:
                continue
            what = "time exceeded" if kind == _TIME_EXCEEDED[origin] else "unreachable"
            return HopAnswer(ttl, what, sender, rtt_ms)
    return None


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
