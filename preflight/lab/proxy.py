"""A TCP relay on loopback that delays every byte, standing in for a slow, distant network.

`LatencyProxy(upstream, delay=0.3)` listens on 127.0.0.1 and forwards each connection to
`upstream`, holding every chunk `delay` seconds in each direction (so a round trip costs twice
the delay), like a long-haul link. It exists because this kernel has no `netem` queueing
discipline: the delay is added in user space, per chunk, which is what matters for a protocol
that waits for each answer (the TCP handshake to the proxy itself stays fast, the SSH exchange
behind it is slow).
"""

from __future__ import annotations

import contextlib
import heapq
import select
import socket
import threading
import time

from preflight.lab.base import POLL_INTERVAL, ThreadedServer


class LatencyProxy(ThreadedServer):
    """Forward connections to `upstream`, delaying each chunk by `delay` seconds per direction."""

    def __init__(
        self,
        upstream: tuple[str, int],
        delay: float = 0.3,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        if delay < 0:
            raise ValueError("delay must not be negative")
        self.upstream = upstream
        self.delay = delay

    def handle(self, conn: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            return
        with server:
            pumps = [
                threading.Thread(target=self._pump, args=(conn, server), daemon=True),
                threading.Thread(target=self._pump, args=(server, conn), daemon=True),
            ]
            for pump in pumps:
                self.track_thread(pump)
                pump.start()
            for pump in pumps:
                pump.join()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Read from `source`, deliver to `sink` once each chunk is `delay` seconds old."""
        pending: list[tuple[float, int, bytes]] = []
        sequence = 0
        source_open = True
        while not self.stopping.is_set() and (source_open or pending):
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, _, due = heapq.heappop(pending)
                if not self.send(sink, due):
                    return
            wait = min(POLL_INTERVAL, pending[0][0] - now) if pending else POLL_INTERVAL
            if not source_open:
                time.sleep(max(0.0, wait))
                continue
            try:
                readable, _, _ = select.select([source], [], [], max(0.0, wait))
                data = source.recv(65536) if readable else None
            except OSError:
                data = b""
            if data is None:
                continue
            if not data:
                source_open = False
                continue
            heapq.heappush(pending, (time.monotonic() + self.delay, sequence, data))
            sequence += 1
        # Pass the end of the stream on, once everything before it has been delivered.
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class Intermittent(LatencyProxy):
    """Forward to `upstream`, except every `every`-th connection, which goes silent (or is
    closed, with `failure="close"`): the fault that happens "only sometimes"."""

    def __init__(
        self,
        upstream: tuple[str, int],
        every: int = 2,
        failure: str = "silence",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(upstream, delay=0.0, host=host, port=port)
        if every < 1 or failure not in ("silence", "close"):
            raise ValueError("every must be >= 1 and failure 'silence' or 'close'")
        self.every = every
        self.failure = failure
        self._count = 0
        self._count_lock = threading.Lock()

    def handle(self, conn: socket.socket) -> None:
        with self._count_lock:
            self._count += 1
            failing = self._count % self.every == 0
        if not failing:
            super().handle(conn)
        elif self.failure == "silence":
            self.stopping.wait()  # hold the connection open and say nothing until stop
