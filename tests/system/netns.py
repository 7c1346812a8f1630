"""Throw-away Linux network namespaces with nftables rules, for system tests (root only).

DESIGN.md §9: tests may only talk to loopback or to namespaces they create. A
:class:`NetNamespace` is such a namespace: a fresh ``pfl-<random>`` namespace whose only
interface is its own ``lo`` (127.0.0.1 and ::1), so a rule such as ``tcp dport N drop``
produces a genuine silent DROP without affecting the host.

Three ways to put code inside the namespace:

* subprocesses — :meth:`NetNamespace.run`, :meth:`NetNamespace.popen` and
  :meth:`NetNamespace.python` prefix the command with ``ip netns exec NAME``; that is how the
  preflight CLI is run against the namespace (``ns.run([sys.executable, "-m", "preflight",
  "check", ...])``). ``ip netns exec`` also bind-mounts ``/etc/netns/NAME/*`` over ``/etc``,
  so files written with :meth:`NetNamespace.write_etc` (``hosts``, ``resolv.conf``) are what
  the resolver sees there.
* in-process — :meth:`NetNamespace.call` runs a function on a dedicated short-lived thread
  that has joined the namespace (``setns(CLONE_NEWNET)`` affects only the calling thread);
  sockets created there stay in the namespace for their whole life, wherever they are used
  afterwards. The thread still sees the host's ``/etc``, so name resolution there does
  *not* honour ``write_etc``.
* :meth:`NetNamespace.start_tcp_listener` / :meth:`NetNamespace.tcp_connect` — ready-made
  listener and connect probe built on the above.

Firewall rules live in one table, ``inet preflight_test``, rewritten atomically on every
change; :meth:`drop_tcp_port` and :meth:`reject_tcp_port` replace any earlier rule for the
same port, :meth:`allow_tcp_port` removes it. :meth:`add_nft_rules` loads arbitrary nft text.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

__all__ = [
    "NetNamespace",
    "TcpListener",
    "netns_available",
]

IP = shutil.which("ip") or "/usr/sbin/ip"
NFT = shutil.which("nft") or "/usr/sbin/nft"
NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")
CLONE_NEWNET = 0x40000000

TABLE = "preflight_test"

_T = TypeVar("_T")

# What ``reject with …`` may say (nft syntax): tcp reset, or an icmp/icmpv6/icmpx type.
_REJECT_WITH = re.compile(r"tcp reset|(icmp|icmpv6|icmpx) type [a-z0-9-]+")
_ETC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _run(
    argv: Sequence[str], *, timeout: float, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _setns(fd: int) -> None:
    """Join the network namespace *fd* on the calling thread."""
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@functools.cache
def netns_available() -> str | None:
    """Return None if network namespaces with nftables work here, else the reason.

    Creates and deletes one throw-away namespace (and loads an nft table in it) the first
    time; the answer is cached.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    for tool, package in ((IP, "iproute2"), (NFT, "nftables")):
        if not os.access(tool, os.X_OK):
            return f"{tool} not found (apt-get install {package})"
    name = f"pfl-probe-{secrets.token_hex(3)}"
    try:
        proc = _run([IP, "netns", "add", name], timeout=15)
        if proc.returncode != 0:
            return f"ip netns add failed: {proc.stderr.strip()}"
        try:
            proc = _run([IP, "-n", name, "link", "set", "lo", "up"], timeout=15)
            if proc.returncode != 0:
                return f"ip link set lo up in a namespace failed: {proc.stderr.strip()}"
            rules = (
                f"table inet {TABLE} {{ chain input {{ type filter hook input priority 0; }}; }}\n"
            )
            proc = _run([IP, "netns", "exec", name, NFT, "-f", "-"], timeout=15, input=rules)
            if proc.returncode != 0:
                return f"nft inside a namespace failed: {proc.stderr.strip()}"
        finally:
            _run([IP, "netns", "delete", name], timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"network namespace probe failed: {exc}"
    return None


class TcpListener:
    """A TCP listener running as a subprocess inside a namespace (see ``start_tcp_listener``).

    It accepts connections, sends ``send`` (if any) and closes them. ``port`` is the bound
    port; ``stop()`` (or leaving the ``with`` block) ends it.
    """

    def __init__(self, proc: subprocess.Popen[str], host: str, port: int) -> None:
        self.proc = proc
        self.host = host
        self.port = port

    def __enter__(self) -> TcpListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        _stop_process(self.proc)


_LISTENER_CODE = """
import socket, sys
host, port, send = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(64)
print(srv.getsockname()[1], flush=True)
while True:
    conn, _ = srv.accept()
    try:
        if send:
            conn.sendall(send)
    except OSError:
        pass
    conn.close()
"""


def _stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _connect_outcome(host: str, port: int, timeout: float) -> str:
    """Classify one TCP connect: connected | timeout | refused | unreachable | error:NAME."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except TimeoutError:
            return "timeout"
        except ConnectionRefusedError:
            return "refused"
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return "unreachable"
            return f"error:{errno.errorcode.get(exc.errno or 0, exc.errno)}"
        return "connected"


class NetNamespace:
    """A fresh network namespace ``pfl-<random>`` with ``lo`` up, deleted on exit (root only).

    The only addresses inside are its loopback's 127.0.0.1/8 and ::1 — there is no route
    anywhere else, so nothing run inside can reach a real network.
    """

    def __init__(self, prefix: str = "pfl-") -> None:
        self.name = f"{prefix}{secrets.token_hex(4)}"
        self._created = False
        self._etc_created = False
        self._procs: list[subprocess.Popen[Any]] = []
        self._cleanups: list[Callable[[], None]] = []
        self._port_rules: dict[int, str] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The namespace's handle, ``/run/netns/NAME``."""
        return NETNS_RUN_DIR / self.name

    @property
    def etc_dir(self) -> Path:
        """``/etc/netns/NAME``: files here replace /etc/* for commands run via ``ip netns exec``."""
        return NETNS_ETC_DIR / self.name

    def __enter__(self) -> NetNamespace:
        self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def create(self) -> None:
        if self._created:
            raise RuntimeError(f"namespace {self.name} already created")
        proc = _run([IP, "netns", "add", self.name], timeout=15)
        if proc.returncode != 0:
            raise RuntimeError(f"ip netns add {self.name} failed: {proc.stderr.strip()}")
        self._created = True
        try:
            proc = _run([IP, "-n", self.name, "link", "set", "lo", "up"], timeout=15)
            if proc.returncode != 0:
                raise RuntimeError(f"ip link set lo up failed: {proc.stderr.strip()}")
        except BaseException:
            self.close()
            raise

    def add_cleanup(self, fn: Callable[[], None]) -> None:
        """Call *fn* on close, before the namespace is deleted (last added, first called)."""
        self._cleanups.append(fn)

    def close(self) -> None:
        """Stop processes started here, run cleanups, delete the namespace and its /etc dir."""
        errors: list[str] = []
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as exc:  # keep tearing down
                errors.append(f"cleanup {fn!r}: {exc}")
        while self._procs:
            _stop_process(self._procs.pop())
        if self._created:
            proc = _run([IP, "netns", "delete", self.name], timeout=15)
            if proc.returncode != 0 and self.path.exists():
                errors.append(f"ip netns delete {self.name}: {proc.stderr.strip()}")
            self._created = False
        if self._etc_created:
            shutil.rmtree(self.etc_dir, ignore_errors=True)
            self._etc_created = False
        if errors:
            raise RuntimeError("; ".join(errors))

    # -- running things inside -----------------------------------------------------------

    def exec_prefix(self) -> list[str]:
        """``["ip", "netns", "exec", NAME]``: prepend to a command to run it inside."""
        return [IP, "netns", "exec", self.name]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        input: str | None = None,
        check: bool = False,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run *argv* inside the namespace and wait (bounded); output captured as text.

        Raises ``subprocess.TimeoutExpired`` after *timeout* (the child is killed) and
        ``subprocess.CalledProcessError`` on a non-zero exit if *check*.
        """
        return subprocess.run(
            [*self.exec_prefix(), *argv],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            env=env,
            cwd=cwd,
        )

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start *argv* inside the namespace; it is terminated when the namespace closes.

        Keyword arguments go to ``subprocess.Popen`` (``stdin`` defaults to DEVNULL).
        """
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc: subprocess.Popen[Any] = subprocess.Popen([*self.exec_prefix(), *argv], **kwargs)
        self._procs.append(proc)
        return proc

    def python(
        self,
        code: str,
        *args: str,
        timeout: float = 30.0,
        check: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -c CODE ARGS…`` (this interpreter) inside the namespace, bounded."""
        return self.run([sys.executable, "-c", code, *args], timeout=timeout, check=check, env=env)

    def call(self, fn: Callable[..., _T], *args: Any, timeout: float = 30.0, **kwargs: Any) -> _T:
        """Run ``fn(*args, **kwargs)`` in this process on a thread inside the namespace.

        Sockets *fn* creates belong to the namespace for good (they may be returned and used
        from any thread). Threads *fn* starts inherit the namespace. Name resolution on that
        thread still reads the host's /etc. Raises ``TimeoutError`` if *fn* has not returned
        after *timeout* seconds (the thread is left to finish on its own; it is a daemon).
        """
        result: list[_T] = []
        error: list[BaseException] = []

        def target() -> None:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _setns(fd)
                finally:
                    os.close(fd)
                result.append(fn(*args, **kwargs))
            except BaseException as exc:
                error.append(exc)

        thread = threading.Thread(target=target, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"{fn!r} did not return within {timeout:g} s in {self.name}")
        if error:
            raise error[0]
        return result[0]

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> socket.socket:
        """Create a socket that lives inside the namespace (usable from any thread)."""
        return self.call(socket.socket, family, type)

    # -- ready-made probes -----------------------------------------------------------------

    def start_tcp_listener(
        self, port: int = 0, *, host: str = "127.0.0.1", send: bytes = b""
    ) -> TcpListener:
        """Start a TCP listener subprocess inside the namespace on *host*:*port* (0: any).

        It accepts every connection, sends *send* and closes. Returns once it is listening.
        """
        proc: subprocess.Popen[str] = self.popen(
            [sys.executable, "-c", _LISTENER_CODE, host, str(port), send.hex()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = _readline_bounded(proc.stdout, timeout=10.0)
        if not line.strip().isdigit():
            _stop_process(proc)
            stderr = proc.stderr.read() if proc.stderr is not None else ""
            raise RuntimeError(f"listener in {self.name} failed to start: {line!r} {stderr}")
        return TcpListener(proc, host, int(line))

    def tcp_connect(self, host: str, port: int, timeout: float = 1.0) -> str:
        """Connect from inside the namespace; ``connected``/``timeout``/``refused``/
        ``unreachable``/``error:ENAME``."""
        return self.call(_connect_outcome, host, port, timeout, timeout=timeout + 10)

    # -- nftables ------------------------------------------------------------------------

    def add_nft_rules(self, text: str) -> None:
        """Load an nft ruleset (``nft -f -``) inside the namespace; raise with nft's stderr."""
        proc = self.run([NFT, "-f", "-"], input=text, timeout=15)
        if proc.returncode != 0:
            raise RuntimeError(f"nft -f failed in {self.name}: {proc.stderr.strip()}\n{text}")

    def nft_ruleset(self) -> str:
        """``nft list ruleset`` inside the namespace."""
        return self.run([NFT, "list", "ruleset"], timeout=15, check=True).stdout

    def drop_tcp_port(self, port: int) -> None:
        """Silently drop incoming TCP to *port* (no RST, no ICMP): connects time out."""
        self._set_port_rule(port, "drop")

    def reject_tcp_port(self, port: int, with_: str = "tcp reset") -> None:
        """Reject incoming TCP to *port*, e.g. ``"tcp reset"`` (refused),
        ``"icmp type port-unreachable"``, ``"icmpx type host-unreachable"``."""
        if not _REJECT_WITH.fullmatch(with_):
            raise ValueError(f"unsupported reject: {with_!r}")
        self._set_port_rule(port, f"reject with {with_}")

    def allow_tcp_port(self, port: int) -> None:
        """Remove the rule for *port* set by ``drop_tcp_port``/``reject_tcp_port``."""
        self._set_port_rule(port, None)

    def clear_port_rules(self) -> None:
        """Remove every rule set by ``drop_tcp_port``/``reject_tcp_port``."""
        with self._lock:
            self._port_rules.clear()
            self._sync_port_rules()

    def _set_port_rule(self, port: int, verdict: str | None) -> None:
        if not 0 < int(port) < 65536:
            raise ValueError(f"bad port {port!r}")
        with self._lock:
            if verdict is None:
                self._port_rules.pop(int(port), None)
            else:
                self._port_rules[int(port)] = verdict
            self._sync_port_rules()

    def _sync_port_rules(self) -> None:
        rules = "".join(
            f"    tcp dport {port} {verdict}\n"
            for port, verdict in sorted(self._port_rules.items())
        )
        # "add" then "delete" makes the delete safe when the table is absent; the whole file
        # is one atomic transaction, so there is no window without rules.
        self.add_nft_rules(
            f"add table inet {TABLE}\n"
            f"delete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n"
            f"  chain input {{\n"
            f"    type filter hook input priority 0; policy accept;\n"
            f"{rules}"
            f"  }}\n"
            f"}}\n"
        )

    # -- /etc overrides ------------------------------------------------------------------

    def write_etc(self, name: str, content: str) -> Path:
        """Write ``/etc/netns/NAME/<name>`` (e.g. ``hosts``, ``resolv.conf``).

        ``ip netns exec`` bind-mounts it over ``/etc/<name>`` for commands run inside
        (:meth:`run`, :meth:`popen`, :meth:`python`); the file must exist in /etc. Not seen
        by :meth:`call`.
        """
        if not _ETC_NAME.fullmatch(name):
            raise ValueError(f"bad /etc file name {name!r}")
        if not self._created:
            raise RuntimeError("namespace not created")
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        self._etc_created = True
        path = self.etc_dir / name
        path.write_text(content)
        return path


def _readline_bounded(stream: IO[str], timeout: float) -> str:
    """Read one line from a pipe, giving up after *timeout* seconds."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0] if line else ""
