"""The probes, one module per stage, all with one signature: `async probe(conn, budget) -> Passed`.

A probe either returns `Passed` (a one-line detail, optional warnings) or raises: its own
`errors.ProbeError` for what it recognised, or the socket/resolver/paramiko exception untouched;
`diagnose` turns those into codes. Whatever a probe learns along the way (addresses tried, the
banner, the host key) goes into `conn.facts` as soon as it is known, so that a failure report
carries the facts gathered before it. `Connection` is the state one target's stages hand on to
the next: resolved addresses, the open socket, the bytes read past the banner, the SSH transport.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from preflight.deadline import Budget
from preflight.model import Target
from preflight.phases import At

if TYPE_CHECKING:
    import paramiko


@dataclass
class Passed:
    """A stage that passed: the one line the report shows, and anything worth a warning."""

    detail: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Address:
    """One resolved address of a target, ready for `socket.connect`."""

    family: int
    sockaddr: tuple[Any, ...]

    @property
    def ip(self) -> str:
        return str(self.sockaddr[0])

    def __str__(self) -> str:
        host, port = self.sockaddr[0], self.sockaddr[1]
        return f"[{host}]:{port}" if self.family == socket.AF_INET6 else f"{host}:{port}"


@dataclass
class Connection:
    """One target's connection as it is built up, stage after stage."""

    target: Target
    addresses: list[Address] = field(default_factory=list)
    sock: socket.socket | None = None
    peer: Address | None = None
    local: str | None = None
    # The identification line and whatever arrived after it: paramiko reads these first.
    handover: bytes = b""
    banner: str | None = None
    transport: paramiko.Transport | None = None
    sftp: paramiko.SFTPClient | None = None
    # What the running stage has learned so far; the runner gives each stage a fresh dict.
    facts: dict[str, Any] = field(default_factory=dict)
    # The server reset the connection before connect() returned (seen on loopback): the
    # banner stage then reports a reset, not a plain close.
    reset_on_connect: bool = False
    # Which step the running stage is in (`phases.At`), for timeout diagnoses.
    phase: At | None = None
    # The largest segment the socket carries (TCP_MAXSEG), read when SSH starts on it: a
    # stalled key exchange compares it with a retry in small packets (`stages.mtu`).
    segment_size: int | None = None
    # The upload check's test file while it is on the server (`stages.upload`), and the
    # request, made from the event loop when the run is interrupted, to stop writing and
    # remove it before the watchdog shuts the socket (`watchdog.run_guarded`).
    test_file: str | None = None
    stop_requested: bool = False
    interrupted_at: float | None = None  # time.monotonic() of that request
    interrupted_phase: At | None = None  # and where the stage was then
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def close(self) -> None:
        """Close the transport and socket; safe to call from any thread, more than once.
        Closing is also how a hung paramiko call is unblocked (DESIGN §3)."""
        with self._lock:
            transport, sock, sftp = self.transport, self.sock, self.sftp
        if sftp is not None:
            sftp.close()
        if transport is not None:
            transport.close()
        if sock is not None:
            sock.close()


Probe = Callable[[Connection, Budget], Awaitable[Passed]]


def segment_size(sock: socket.socket) -> int | None:
    """The largest segment `sock`'s connection carries (TCP_MAXSEG), if the socket can say."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    except OSError:
        return None
