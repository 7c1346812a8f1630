"""The skeleton every lab server shares: a loopback listener with a clean start/stop life cycle.

:class:`LabServer` binds a loopback address (``127.0.0.1`` port 0 by default; ``::1`` works too),
exposes ``host``/``port``/``address`` and is a context manager. :class:`ThreadedServer` adds an
accept loop and one daemon thread per accepted connection; subclasses implement
:meth:`ThreadedServer.handle`. Every loop polls at least every :data:`POLL_INTERVAL` seconds, so
:meth:`LabServer.stop` closes the listener and every connection and joins every thread it started,
leaving no file descriptors or threads behind. The helpers (``send``, ``recv_line``, ``idle``,
``close_gracefully``, ``reset``) are what the misbehaving servers are built from. Lab servers never
talk to anything but loopback: a non-loopback bind address is refused.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import select
import socket
import struct
import threading
import time
from types import TracebackType
from typing import Self

__all__ = ["POLL_INTERVAL", "LabServer", "ThreadedServer", "check_loopback"]

POLL_INTERVAL = 0.2
"""Upper bound, in seconds, on how long any lab loop sleeps before it looks at the stop flag."""

JOIN_TIMEOUT = 5.0
"""How long :meth:`LabServer.stop` waits for each thread before giving up on it."""

log = logging.getLogger("preflight.lab")


def check_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback IP literal, else raise ``ValueError``."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"lab servers bind loopback IP literals only, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"lab servers bind loopback addresses only, not {host}")
    return host


def family_of(host: str) -> socket.AddressFamily:
    """Return the address family of an IP literal."""
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def new_socket(host: str) -> socket.socket:
    """Return a TCP socket of the right family for ``host``."""
    return socket.socket(family_of(host), socket.SOCK_STREAM)


class LabServer:
    """Base class: a loopback address, ``start()``/``stop()`` and the context-manager protocol.

    Subclasses implement :meth:`_open` (create sockets, set ``self._port``, start threads) and
    :meth:`_close` (undo all of it). ``stop()`` is idempotent; a stopped server may be started again
    (on a new port, unless a fixed port was requested).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = check_loopback(host)
        self._requested_port = port
        self._port: int | None = None
        self._stopping = threading.Event()
        self._running = False

    @property
    def host(self) -> str:
        """The IP literal the server is bound to."""
        return self._host

    @property
    def port(self) -> int:
        """The TCP port the server is bound to (only known once started)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, ready for ``socket.create_connection``."""
        return (self.host, self.port)

    @property
    def running(self) -> bool:
        """Whether the server has been started and not stopped since."""
        return self._running

    def start(self) -> Self:
        """Bind and start serving; returns ``self``. Starting a running server does nothing."""
        if self._running:
            return self
        self._stopping.clear()
        try:
            self._open()
        except BaseException:
            self._stopping.set()
            self._close()
            self._port = None
            raise
        self._running = True
        return self

    def stop(self) -> None:
        """Close the listener and every connection and join every thread. Idempotent."""
        if not self._running:
            return
        self._stopping.set()
        try:
            self._close()
        finally:
            self._running = False
            self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self._host}:{self._port}" if self._port is not None else "stopped"
        return f"<{type(self).__name__} {where}>"

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _bind(self) -> socket.socket:
        sock = new_socket(self._host)
        try:
            if sock.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if self._requested_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._requested_port))
        except BaseException:
            sock.close()
            raise
        self._port = int(sock.getsockname()[1])
        return sock


class ThreadedServer(LabServer):
    """A listener with an accept thread and one daemon thread per connection.

    Subclasses implement :meth:`handle`; the connection is closed (and forgotten) when it returns.
    Handlers must return soon after :attr:`stopping` is set; the helpers below all do.
    """

    backlog = 16

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self.accepted = 0
        """How many connections have been accepted since the server was created."""

    @property
    def stopping(self) -> threading.Event:
        """Set when :meth:`stop` has been called; handlers poll it."""
        return self._stopping

    # -- life cycle -----------------------------------------------------------------------------

    def _open(self) -> None:
        listener = self._bind()
        self._listener = listener
        listener.listen(self.backlog)
        listener.settimeout(POLL_INTERVAL)
        thread = threading.Thread(
            target=self._accept_loop,
            args=(listener,),
            name=f"lab-{type(self).__name__}-accept",
            daemon=True,
        )
        self._accept_thread = thread
        thread.start()

    def _close(self) -> None:
        if self._accept_thread is not None:
            self._accept_thread.join(JOIN_TIMEOUT)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._before_join()
        self.join_threads()
        with self._lock:
            leftovers = list(self._connections)
            self._connections.clear()
        for conn in leftovers:
            conn.close()
        self._after_close()

    def _before_join(self) -> None:
        """Hook: unblock handlers beyond the stop flag (e.g. close paramiko transports)."""

    def _after_close(self) -> None:
        """Hook: release whatever else the server holds (temporary directories…)."""

    def track_thread(self, thread: threading.Thread) -> None:
        """Have :meth:`stop` join ``thread`` too (for threads started by libraries)."""
        with self._lock:
            self._threads = {t for t in self._threads if t.is_alive() or t.ident is None}
            self._threads.add(thread)

    def join_threads(self) -> None:
        """Join every tracked thread (each for at most :data:`JOIN_TIMEOUT` seconds)."""
        deadline = time.monotonic() + JOIN_TIMEOUT
        while True:
            with self._lock:
                pending = [t for t in self._threads if t.is_alive()]
            if not pending:
                break
            for thread in pending:
                if thread is not threading.current_thread():
                    thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                stuck = [t.name for t in pending if t.is_alive()]
                if stuck:
                    log.warning("lab threads did not stop: %s", ", ".join(stuck))
                break
        with self._lock:
            self._threads = {t for t in self._threads if t.is_alive()}

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    break
                log.debug("accept failed", exc_info=True)
                self._stopping.wait(POLL_INTERVAL)
                continue
            conn.settimeout(None)
            thread = threading.Thread(
                target=self._serve,
                args=(conn,),
                name=f"lab-{type(self).__name__}-conn",
                daemon=True,
            )
            with self._lock:
                if self._stopping.is_set():
                    conn.close()
                    break
                self._connections.add(conn)
                self.accepted += 1
            self.track_thread(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except Exception:
            log.debug("%s handler failed", type(self).__name__, exc_info=True)
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def handle(self, conn: socket.socket) -> None:
        """Serve one accepted connection; return when done or when :attr:`stopping` is set."""
        raise NotImplementedError

    # -- helpers for handlers -------------------------------------------------------------------

    def send(self, conn: socket.socket, data: bytes) -> bool:
        """Send all of ``data`` without ever blocking past the poll interval.

        Returns ``False`` if the server is stopping or the peer went away first.
        """
        view = memoryview(data)
        while view:
            if self._stopping.is_set():
                return False
            try:
                _r, writable, _x = select.select([], [conn], [], POLL_INTERVAL)
                if not writable:
                    continue
                sent = conn.send(view, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                return False
            view = view[sent:]
        return True

    def recv_line(self, conn: socket.socket, limit: int = 8192) -> bytes | None:
        """Read one ``\\n``-terminated line (at most ``limit`` bytes) and nothing beyond it.

        Returns ``None`` if the server is stopping or the peer closed or reset first.
        """
        while not self._stopping.is_set():
            try:
                readable, _w, _x = select.select([conn], [], [], POLL_INTERVAL)
                if not readable:
                    continue
                peek = conn.recv(limit, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                return None
            if not peek:
                return None
            end = peek.find(b"\n")
            if end >= 0:
                return self._recv_exactly(conn, end + 1)
            if len(peek) >= limit:
                return self._recv_exactly(conn, limit)
            # An incomplete line: wait for more to arrive (select returns at once otherwise).
            self._stopping.wait(0.01)
        return None

    def _recv_exactly(self, conn: socket.socket, n: int) -> bytes | None:
        chunks: list[bytes] = []
        while n > 0:
            try:
                chunk = conn.recv(n, socket.MSG_DONTWAIT)
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def idle(self, conn: socket.socket, max_seconds: float | None = None) -> None:
        """Stay silent, discarding input, until stop, the peer leaves, or ``max_seconds`` pass."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while not self._stopping.is_set():
            timeout = POLL_INTERVAL
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    return
            try:
                readable, _w, _x = select.select([conn], [], [], timeout)
                if readable and not conn.recv(65536, socket.MSG_DONTWAIT):
                    return
            except BlockingIOError:
                continue
            except OSError:
                return

    def close_gracefully(self, conn: socket.socket) -> None:
        """Send FIN now (the peer sees EOF), then drain briefly so ``close()`` does not RST."""
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            return
        self.idle(conn, max_seconds=1.0)

    @staticmethod
    def reset(conn: socket.socket) -> None:
        """Abort the connection: ``SO_LINGER`` 0 makes ``close()`` send RST instead of FIN."""
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
