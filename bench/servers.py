"""The loopback servers the scenarios run against; nothing here ever leaves 127.0.0.1.

- `DropFarm`: a few `preflight.lab.DroppingPort`s (full accept queue, so the kernel silently
  drops every further SYN, no root needed); any number of targets share them.
- `TarpitFarm`: listeners with a big backlog and one selector thread that accepts every
  connection, discards what the client sends and never says a word; a client that gives up is
  closed. A thousand tarpit connections cost one thread and a thousand sockets, so the server
  does not compete with the contestants for the machine's two cores.
- `sshd`: a real OpenSSH `sshd` on a loopback high port, from the system tests'
  `tests/system/sshd.py` (loaded by path), with a client key and a known_hosts file written for
  the contestants. It needs root and `openssh-server`; `sshd_unavailable()` says why not.
"""

from __future__ import annotations

import contextlib
import importlib.util
import resource
import selectors
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Self

from preflight.lab import DroppingPort

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def raise_fd_limit(wanted: int = 65536) -> int:
    """Lift the soft descriptor limit towards `wanted` (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class DropFarm:
    """`ports` DroppingPorts on 127.0.0.1; `address(i)` spreads targets over them."""

    def __init__(self, ports: int) -> None:
        self._servers = [DroppingPort(LOOPBACK) for _ in range(max(1, ports))]

    def __enter__(self) -> Self:
        try:
            for server in self._servers:
                server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for server in self._servers:
            server.stop()

    def address(self, i: int) -> tuple[str, int]:
        return self._servers[i % len(self._servers)].address

    def addresses(self, n: int) -> list[tuple[str, int]]:
        return [self.address(i) for i in range(n)]


class TarpitFarm:
    """Listeners that accept and never speak, served by one selector thread."""

    def __init__(self, ports: int, backlog: int = 4096) -> None:
        self._count = max(1, ports)
        self._backlog = backlog
        self._listeners: list[socket.socket] = []
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self.accepted = 0

    def __enter__(self) -> Self:
        try:
            for _ in range(self._count):
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._listeners.append(listener)
                listener.bind((LOOPBACK, 0))
                listener.listen(self._backlog)
                listener.setblocking(False)
                self._selector.register(listener, selectors.EVENT_READ, "listener")
            self._wake_r.setblocking(False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            self._thread = threading.Thread(target=self._serve, name="bench-tarpit", daemon=True)
            self._thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def address(self, i: int) -> tuple[str, int]:
        port: int = self._listeners[i % len(self._listeners)].getsockname()[1]
        return (LOOPBACK, port)

    def addresses(self, n: int) -> list[tuple[str, int]]:
        return [self.address(i) for i in range(n)]

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _events in self._selector.select(timeout=0.5):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if key.data == "wake":
                    return
                if key.data == "listener":
                    self._accept_all(sock)
                else:
                    self._drain(sock)

    def _accept_all(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and the like: leave it queued, try again later
                return
            conn.setblocking(False)
            self._open.add(conn)
            self.accepted += 1
            self._selector.register(conn, selectors.EVENT_READ, "conn")

    def _drain(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client gave up: let it go
            self._selector.unregister(conn)
            self._open.discard(conn)
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for sock in [*self._open, *self._listeners]:
            sock.close()
        self._open.clear()
        self._listeners.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _sshd_module() -> ModuleType:
    """tests/system/sshd.py, loaded by path (tests/ is not a package to import from)."""
    name = "_bench_sshd_fixture"
    if name in sys.modules:
        return sys.modules[name]
    path = REPO / "tests" / "system" / "sshd.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def sshd_unavailable() -> str | None:
    """None if a real sshd can run here, else why not."""
    try:
        module = _sshd_module()
    except Exception as exc:  # a missing file, an import error: say so, skip the scenarios
        return f"cannot load tests/system/sshd.py: {exc}"
    reason: str | None = module.sshd_available()
    return reason


@dataclass(frozen=True)
class SSHDTarget:
    """What a contestant needs to log in to the bench's sshd and list a directory."""

    host: str
    port: int
    user: str
    key_path: str
    known_hosts_path: str
    sftp_path: str
    openssh_version: str


@contextlib.contextmanager
def sshd(workdir: Path, extra_config: Sequence[str] = ()) -> Iterator[SSHDTarget]:
    """Start an OpenSSH sshd on 127.0.0.1 with a fresh client key authorised for root."""
    module = _sshd_module()
    key_path, key_line = module.generate_client_key(workdir / "client-key")
    server: Any = module.OpenSSHServer(authorized_keys=[key_line], extra_config=extra_config)
    with server:
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text("".join(f"{line}\n" for line in server.known_hosts_lines()))
        listed = workdir / "listed"
        listed.mkdir(exist_ok=True)
        for i in range(5):
            (listed / f"file-{i}.txt").write_text("bench\n")
        version = module.openssh_version()
        yield SSHDTarget(
            host=server.host,
            port=server.port,
            user="root",
            key_path=str(key_path),
            known_hosts_path=str(known_hosts),
            sftp_path=str(listed),
            openssh_version=".".join(map(str, version)) if version else "unknown",
        )


__all__ = [
    "LOOPBACK",
    "REPO",
    "DropFarm",
    "SSHDTarget",
    "TarpitFarm",
    "raise_fd_limit",
    "sshd",
    "sshd_unavailable",
]
