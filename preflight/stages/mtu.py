"""Is a stalled key exchange an MTU black hole? One more try with small packets tells.

The banner arrived and the key exchange then stalled (`auth.kex_timeout`): more often than not a
link on the path (a tunnel, a VPN, a cloud overlay) carries smaller packets than the ends use,
and the ICMP "fragmentation needed" / "packet too big" that path-MTU discovery relies on is
filtered. Small packets (the banner) pass; the server's KEXINIT or key exchange reply, sent as a
full-size segment, never arrives. So the key exchange is tried once more on a new connection
whose SYN announces a maximum segment size of `SMALL_MSS` bytes (`TCP_MAXSEG` before connect):
the server then sends no packet larger than 576 bytes (596 over IPv6). If that key exchange
completes, packet size is what stops the first one; if it stalls too, there is no sign that it
is. The second connection authenticates nothing and sends no secret, and its time is bounded by
`PROBE_SECONDS` and the target's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass

import paramiko

from preflight.stages import Address, segment_size
from preflight.stages.ssh import LOG_CHANNEL, PARAMIKO_SLACK
from preflight.threads import in_daemon_thread

__all__ = ["PROBE_SECONDS", "SMALL_MSS", "SmallPacketTry", "try_small_packets"]

SMALL_MSS = 536  # the segment every IPv4 host must accept (RFC 1122: 576-byte datagrams)
PROBE_SECONDS = 3.0  # at most, and never past the target's deadline
# Less than this before the deadline is no fair chance for a connection and a key exchange.
MIN_SECONDS = 0.5
# IP and TCP headers around a segment (TCP_MAXSEG excludes the 12-byte timestamp option).
_TCP_HEADER = 20 + 12
_IP_HEADER = {int(socket.AF_INET): 20, int(socket.AF_INET6): 40}


@dataclass(frozen=True)
class SmallPacketTry:
    """What the retry with small segments found. `outcome`: "completed" (the key exchange
    finished), "stalled" (it did not, in `seconds`), "failed" (the connection broke: `detail`),
    or "not tried" (`detail` says why). `mss` and `first_mss` are the segment sizes (TCP_MAXSEG)
    of the retry and of the stalled connection; `packet_bytes` and `first_packet_bytes` the
    whole IP packets that carry a full segment of each."""

    outcome: str
    seconds: float = 0.0
    mss: int = SMALL_MSS
    packet_bytes: int | None = None
    first_mss: int | None = None
    first_packet_bytes: int | None = None
    detail: str = ""

    def as_fact(self) -> dict[str, object]:
        fact: dict[str, object] = {"outcome": self.outcome, "mss": self.mss}
        if self.outcome != "not tried":
            fact["seconds"] = self.seconds
        if self.packet_bytes is not None:
            fact["packet_bytes"] = self.packet_bytes
        if self.first_mss is not None:
            fact["first_mss"] = self.first_mss
        if self.first_packet_bytes is not None:
            fact["first_packet_bytes"] = self.first_packet_bytes
        if self.detail:
            fact["detail"] = self.detail
        return fact


def packet_bytes(family: int, segment: int) -> int:
    """The IP packet that carries a full segment of `segment` bytes."""
    return segment + _TCP_HEADER + _IP_HEADER.get(int(family), 20)


async def try_small_packets(
    address: Address, first_segment: int | None, seconds: float
) -> SmallPacketTry:
    """Run a key exchange with `address` on a connection limited to `SMALL_MSS`-byte segments,
    for at most `seconds`. `first_segment` is the stalled connection's segment size."""
    first = packet_bytes(address.family, first_segment) if first_segment else None
    if seconds < MIN_SECONDS:
        left = f"only {seconds:.1f}s was" if seconds >= 0.05 else "no time was"
        return SmallPacketTry(
            "not tried",
            first_mss=first_segment,
            first_packet_bytes=first,
            detail=f"{left} left before the target's deadline",
        )
    started = time.monotonic()
    deadline = started + seconds
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SMALL_MSS)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(seconds):
            await loop.sock_connect(sock, address.sockaddr)
    except BaseException as exc:
        sock.close()
        if not isinstance(exc, OSError):  # an interruption: the run is being cancelled
            raise
        what = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return SmallPacketTry(
            "failed",
            round(time.monotonic() - started, 3),
            first_mss=first_segment,
            first_packet_bytes=first,
            detail=f"connect: {what}",
        )
    segment = segment_size(sock) or SMALL_MSS
    work = in_daemon_thread("preflight-mtu", lambda: _key_exchange(sock, deadline))
    try:
        # The work bounds its own wait by the deadline; the margin is for closing.
        outcome, detail = await asyncio.wait_for(
            asyncio.shield(work), max(0.0, deadline - time.monotonic()) + 1.0
        )
    except TimeoutError:
        outcome, detail = "stalled", ""
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    return SmallPacketTry(
        outcome,
        round(time.monotonic() - started, 3),
        mss=segment,
        packet_bytes=packet_bytes(address.family, segment),
        first_mss=first_segment,
        first_packet_bytes=first,
        detail=detail,
    )


def _key_exchange(sock: socket.socket, deadline: float) -> tuple[str, str]:
    """Start SSH on `sock` and wait for the key exchange until `deadline` (blocking)."""
    sock.setblocking(True)
    transport = paramiko.Transport(sock)
    transport.set_log_channel(LOG_CHANNEL)
    # paramiko's own timers never fire first: the wait below decides.
    patience = max(0.0, deadline - time.monotonic()) + PARAMIKO_SLACK
    transport.banner_timeout = transport.handshake_timeout = patience
    done = threading.Event()
    try:
        transport.start_client(event=done)
        while not done.wait(0.05):
            if time.monotonic() >= deadline or not transport.is_active():
                break
        if transport.is_active() and done.is_set():
            return "completed", ""
        if not transport.is_active():
            error = transport.get_exception()
            return "failed", str(error) if error else "the server closed the connection"
        return "stalled", ""
    except (OSError, EOFError, paramiko.SSHException) as exc:
        return "failed", str(exc) or type(exc).__name__
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        transport.close()
