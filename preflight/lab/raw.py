"""Misbehaving plain-socket servers: every way a TCP port can fail to be a usable SSH server.

Each class reproduces one failure preflight must diagnose, on loopback and without root:
:class:`DroppingPort` (SYNs silently dropped → connect timeout), :class:`RefusedPort` (RST),
:class:`Tarpit` (accepts, never speaks), :class:`Trickle` (a banner one byte per interval),
:class:`Greeter` (a fixed greeting — HTTP, SMTP, SSH-1.5, garbage — then silence, FIN or RST),
:class:`CloseOnAccept` (EOF or RST before any banner) and :class:`KexStall` (a real SSH banner and
KEXINIT, then nothing). :func:`kexinit_packet` builds the RFC 4253 packet KexStall sends.
"""

from __future__ import annotations

import os
import select
import socket
import struct
from collections.abc import Sequence
from typing import Literal

from preflight.lab.base import LabServer, ThreadedServer, new_socket

__all__ = [
    "CloseOnAccept",
    "DroppingPort",
    "Greeter",
    "KexStall",
    "RefusedPort",
    "Tarpit",
    "Trickle",
    "kexinit_packet",
]

SSH_BANNER = b"SSH-2.0-OpenSSH_9.6 preflight-lab\r\n"

GreeterThen = Literal["silence", "close", "reset"]


class DroppingPort(LabServer):
    """A port whose SYNs are silently dropped, like a firewall DROP rule, without root.

    The listener has ``listen(0)`` and its accept queue is filled with connections the server makes
    to itself and never accepts; Linux (``net.ipv4.tcp_abort_on_overflow=0``) then drops further
    SYNs, so a client's ``connect()`` times out. ``start()`` verifies the queue is full: it keeps
    adding fillers until a probe connection no longer completes within 0.1 s.
    """

    max_fillers = 8
    probe_seconds = 0.1

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._listener: socket.socket | None = None
        self.fillers: list[socket.socket] = []
        """The self-connections occupying the accept queue."""

    def _open(self) -> None:
        self._listener = self._bind()
        self._listener.listen(0)
        for _ in range(self.max_fillers):
            if not self._try_fill():
                if not self.fillers:
                    raise RuntimeError("DroppingPort: the listener took no connection at all")
                return
        raise RuntimeError(
            f"DroppingPort: accept queue still open after {self.max_fillers} connections "
            "(is net.ipv4.tcp_abort_on_overflow or syncookies changing the behaviour?)"
        )

    def _try_fill(self) -> bool:
        """Connect to ourselves; keep the socket and return True if the connection completed."""
        sock = new_socket(self.host)
        try:
            sock.setblocking(False)
            sock.connect_ex(self.address)
            _r, writable, _x = select.select([], [sock], [], self.probe_seconds)
            if writable and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                self.fillers.append(sock)
                return True
        except BaseException:
            sock.close()
            raise
        sock.close()
        return False

    def _close(self) -> None:
        for sock in self.fillers:
            sock.close()
        self.fillers.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None


class RefusedPort(LabServer):
    """A port that is bound (so nothing else takes it) but not listening: connect gets RST."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._sock: socket.socket | None = None

    def _open(self) -> None:
        self._sock = self._bind()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Tarpit(ThreadedServer):
    """Accepts connections and never sends a byte; holds them until stop (or the peer leaves)."""

    def handle(self, conn: socket.socket) -> None:
        self.idle(conn)


class Trickle(ThreadedServer):
    """Sends ``data`` one byte every ``interval`` seconds, then stays silent.

    The default is a valid SSH banner, so a client that restarts its timeout on every ``recv``
    (paramiko's ``banner_timeout``) never gives up.
    """

    def __init__(
        self,
        data: bytes = b"SSH-2.0-OpenSSH_9.6\r\n",
        interval: float = 1.0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.data = data
        self.interval = interval

    def handle(self, conn: socket.socket) -> None:
        for i in range(len(self.data)):
            if i and self.stopping.wait(self.interval):
                return
            if not self.send(conn, self.data[i : i + 1]):
                return
        self.idle(conn)


class Greeter(ThreadedServer):
    """Sends ``greeting`` at once, then stays silent (``"silence"``), closes (``"close"``: FIN,
    the client reads EOF) or aborts (``"reset"``: RST via ``SO_LINGER`` 0).

    Covers not-SSH services (``b"HTTP/1.1 400 Bad Request\\r\\n\\r\\n"``, an SMTP ``220`` line),
    ``b"SSH-1.5-OldServer\\r\\n"``, banner-then-silence, banner-then-RST, chatter lines before the
    banner, control characters / ANSI escapes / invalid UTF-8, or a 64 KiB line with no newline.
    """

    def __init__(
        self,
        greeting: bytes,
        then: GreeterThen = "silence",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        if then not in ("silence", "close", "reset"):
            raise ValueError(f"then must be 'silence', 'close' or 'reset', not {then!r}")
        self.greeting = greeting
        self.then: GreeterThen = then

    def handle(self, conn: socket.socket) -> None:
        if not self.send(conn, self.greeting):
            return
        if self.then == "close":
            self.close_gracefully(conn)
        elif self.then == "reset":
            # Let the greeting land first: on loopback an immediate RST can overtake the
            # client's connect() and discard the greeting, which is a different failure.
            self.stopping.wait(0.2)
            self.reset(conn)
        else:
            self.idle(conn)


class CloseOnAccept(ThreadedServer):
    """Accepts and immediately closes (FIN) or, with ``reset=True``, aborts (RST) the connection:
    the client sees EOF / ECONNRESET before any banner (MaxStartups, tcp_wrappers, fail2ban)."""

    def __init__(self, reset: bool = False, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.reset_connections = reset

    def handle(self, conn: socket.socket) -> None:
        if self.reset_connections:
            self.reset(conn)
        else:
            self.close_gracefully(conn)


def _name_list(names: Sequence[str]) -> bytes:
    encoded = ",".join(names).encode("ascii")
    return struct.pack(">I", len(encoded)) + encoded


def kexinit_packet(
    kex: Sequence[str] = ("curve25519-sha256", "curve25519-sha256@libssh.org"),
    host_key: Sequence[str] = ("ssh-ed25519",),
    ciphers: Sequence[str] = ("aes128-ctr",),
    macs: Sequence[str] = ("hmac-sha2-256",),
    compression: Sequence[str] = ("none",),
) -> bytes:
    """Return an unencrypted SSH_MSG_KEXINIT binary packet (RFC 4253 §6 and §7.1).

    Layout: uint32 packet_length, byte padding_length, payload, ≥4 bytes of random padding, the
    whole a multiple of 8 bytes; no MAC (none is negotiated yet).
    """
    payload = b"".join(
        [
            bytes([20]),  # SSH_MSG_KEXINIT
            os.urandom(16),  # cookie
            _name_list(kex),
            _name_list(host_key),
            _name_list(ciphers),  # client to server
            _name_list(ciphers),  # server to client
            _name_list(macs),
            _name_list(macs),
            _name_list(compression),
            _name_list(compression),
            _name_list(()),  # languages client to server
            _name_list(()),  # languages server to client
            b"\x00",  # first_kex_packet_follows
            struct.pack(">I", 0),  # reserved
        ]
    )
    padding = 8 - (5 + len(payload)) % 8
    if padding < 4:
        padding += 8
    header = struct.pack(">IB", 1 + len(payload) + padding, padding)
    return header + payload + os.urandom(padding)


class KexStall(ThreadedServer):
    """Speaks just enough SSH to get past the banner stage, then stalls key exchange.

    Sends a valid ``SSH-2.0-…`` banner, reads the client's banner, sends a valid KEXINIT and then
    goes silent (``then="silence"``; the client's ``handshake_timeout`` is already cancelled) or
    closes the connection (``then="close"``) in the middle of key exchange.
    """

    def __init__(
        self,
        then: Literal["silence", "close"] = "silence",
        *,
        banner: bytes = SSH_BANNER,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        if then not in ("silence", "close"):
            raise ValueError(f"then must be 'silence' or 'close', not {then!r}")
        self.then = then
        self.banner = banner
        self.client_banners: list[bytes] = []
        """The identification lines received from clients, in order."""

    def handle(self, conn: socket.socket) -> None:
        if not self.send(conn, self.banner):
            return
        for _ in range(100):  # a client may send other lines first; give up after 100
            line = self.recv_line(conn)
            if line is None:
                return
            if line.startswith(b"SSH-"):
                self.client_banners.append(line.rstrip(b"\r\n"))
                break
        if not self.send(conn, kexinit_packet()):
            return
        if self.then == "close":
            self.close_gracefully(conn)
        else:
            self.idle(conn)
