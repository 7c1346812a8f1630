"""An in-process SFTP server (paramiko) that works properly — or stalls exactly where asked.

:class:`SFTPServer` serves a directory over SSH on loopback with password and/or public-key
authentication, a real SFTP implementation confined to that directory, and a generated Ed25519
host key whose fingerprint and ``known_hosts`` line it exposes. For the failure cases it can refuse
the ``sftp`` subsystem, deny listing chosen paths, or stall at one point of the session: the
userauth answer (``"auth"``), the subsystem reply (``"subsystem"``), the SFTP VERSION packet
(``"version"``), a directory listing (``"listdir"``) or the first write to a file (``"write"``:
the file is created, its data never acknowledged). Stalls end when the client goes away or the
server stops. Paramiko's logging from the lab's transports goes to ``preflight.lab.paramiko``,
which discards it, so nothing is printed to stderr.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import posixpath
import select
import socket
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)
from paramiko.server import InteractiveQuery
from paramiko.sftp import (
    SFTP_FAILURE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
)

from preflight.hostkeys import host_pattern
from preflight.lab.base import JOIN_TIMEOUT, POLL_INTERVAL, ThreadedServer
from preflight.lab.keys import fingerprint, generate_ed25519, generate_rsa

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

__all__ = ["DEFAULT_USERS", "LOG_CHANNEL", "SFTPServer", "Stall"]

Stall = Literal["auth", "subsystem", "version", "listdir", "write"]
STALLS: tuple[str, ...] = ("auth", "subsystem", "version", "listdir", "write")

LOG_CHANNEL = "preflight.lab.paramiko"
"""Logger name the lab's paramiko transports log to; it has a NullHandler and does not propagate."""

DEFAULT_USERS: Mapping[str, str] = {"lab": "lab"}
"""Users of a server created with neither ``users`` nor ``authorized_keys``."""

SAMPLE_FILES: Mapping[str, bytes] = {
    "hello.txt": b"hello from the preflight lab\n",
    "data.csv": b"id,name\n1,alpha\n2,beta\n",
}

log = logging.getLogger("preflight.lab")


def _quiet_paramiko_logger() -> None:
    logger = logging.getLogger(LOG_CHANNEL)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


_quiet_paramiko_logger()


def _peer_gone(sock: socket.socket) -> bool:
    """True if the peer has closed or reset the TCP connection (pending input notwithstanding)."""
    try:
        fd = sock.fileno()
    except OSError:
        return True
    if fd < 0:
        return True
    poller = select.poll()
    gone = select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL
    poller.register(fd, gone)
    return any(events & gone for _fd, events in poller.poll(0))


def _default_host_key() -> paramiko.PKey:
    """A fresh Ed25519 host key (RSA 2048 if this paramiko cannot load Ed25519 keys)."""
    try:
        return generate_ed25519()
    except (ImportError, paramiko.SSHException):
        return generate_rsa(2048)


def virtual_path(path: str) -> str:
    """Normalise a client path to an absolute one in the served tree (``..`` stops at ``/``)."""
    return posixpath.normpath("/" + path.lstrip("/")) if path else "/"


class _Denied(Exception):
    """The path resolves outside the served root."""


class _Session(paramiko.ServerInterface):
    """Authentication and channel policy for one connection."""

    def __init__(self, lab: SFTPServer, conn: socket.socket, transport: paramiko.Transport) -> None:
        self.lab = lab
        self.conn = conn
        self.transport = transport

    def stall(self) -> None:
        """Block until the server stops or this client goes away."""
        while not self.lab.stopping.wait(POLL_INTERVAL):
            if not self.transport.is_active() or _peer_gone(self.conn):
                return

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def get_allowed_auths(self, username: str) -> str:
        return ",".join(self.lab.allowed_auths(username))

    def check_auth_none(self, username: str) -> int:
        if self.lab.stall == "auth":
            self.stall()
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        if self.lab.stall == "auth":
            self.stall()
            return AUTH_FAILED
        expected = self.lab.users.get(username)
        if expected is not None and hmac.compare_digest(expected.encode(), password.encode()):
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        # Paramiko verifies the signature itself; this only says whether the key is authorised.
        if self.lab.stall == "auth":
            self.stall()
            return AUTH_FAILED
        blob = key.asbytes()
        for allowed in self.lab.authorized_keys.get(username, ()):
            if hmac.compare_digest(allowed.asbytes(), blob):
                return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_auth_interactive(self, username: str, submethods: str) -> int | InteractiveQuery:
        if self.lab.stall == "auth":
            self.stall()
        return AUTH_FAILED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        if self.lab.stall == "subsystem":
            self.stall()
            return False
        return super().check_channel_subsystem_request(channel, name)


def _errno_code(e: OSError) -> int:
    if e.errno is None:
        return SFTP_FAILURE
    return paramiko.SFTPServer.convert_errno(e.errno)


class _Handle(paramiko.SFTPHandle):
    """An open file of the served tree."""

    def __init__(
        self,
        flags: int,
        file: Any,
        path: str,
        lab: SFTPServer | None = None,
        stall: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(flags)
        self.readfile = file
        self.writefile = file
        self.path = path
        self.flags = flags
        self._lab = lab
        self._stall = stall

    def close(self) -> None:
        super().close()
        lab = self._lab
        if lab is not None and lab.takes_uploads and self.flags & (os.O_WRONLY | os.O_RDWR):
            # An ingest server: what was uploaded is moved on for processing once closed.
            with contextlib.suppress(OSError):
                os.remove(self.path)

    def write(self, offset: int, data: Buffer) -> int:
        if self._stall is not None:
            self._stall()
            return SFTP_FAILURE
        lab = self._lab
        if lab is not None and lab.write_delay and lab.stopping.wait(lab.write_delay):
            return SFTP_FAILURE
        if lab is not None and lab.short_writes:
            data = bytes(data)[: len(bytes(data)) // 2]
        result: int = super().write(offset, data)
        return result

    def stat(self) -> int | paramiko.SFTPAttributes:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as e:
            return _errno_code(e)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        try:
            paramiko.SFTPServer.set_file_attr(self.path, attr)
        except OSError as e:
            return _errno_code(e)
        return SFTP_OK


class _FileSystem(paramiko.SFTPServerInterface):
    """The SFTP operations, confined to the lab's root directory."""

    def __init__(self, server: paramiko.ServerInterface, *, lab: SFTPServer) -> None:
        super().__init__(server)
        self.session = server if isinstance(server, _Session) else None
        self.lab = lab
        self.root = os.path.realpath(lab.root)

    def _real(self, path: str, *, follow: bool = True) -> str:
        """Map a client path to a real path inside the root; raise _Denied if it escapes.

        With ``follow=False`` the last component is not resolved (lstat, remove, rename).
        """
        virtual = virtual_path(path)
        real = os.path.join(self.root, virtual.lstrip("/")) if virtual != "/" else self.root
        if follow or real == self.root:
            resolved = os.path.realpath(real)
        else:
            parent, name = os.path.split(real)
            resolved = os.path.join(os.path.realpath(parent), name)
        if resolved != self.root and not resolved.startswith(self.root + os.sep):
            raise _Denied(path)
        return resolved

    def canonicalize(self, path: str) -> str:
        return virtual_path(path)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        if self.lab.stall == "listdir" or virtual_path(path) in self.lab.stalling:
            if self.session is not None:
                self.session.stall()
            return SFTP_FAILURE
        if virtual_path(path) in self.lab.unlistable:
            return SFTP_PERMISSION_DENIED
        try:
            real = self._real(path)
            entries = []
            for name in sorted(os.listdir(real)):
                attr = paramiko.SFTPAttributes.from_stat(os.lstat(os.path.join(real, name)))
                attr.filename = name
                entries.append(attr)
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)
        return entries

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(self._real(path)))
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)

    def lstat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.lstat(self._real(path, follow=False)))
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)

    def open(
        self, path: str, flags: int, attr: paramiko.SFTPAttributes
    ) -> paramiko.SFTPHandle | int:
        try:
            real = self._real(path)
            mode = getattr(attr, "st_mode", None)
            fd = os.open(real, flags | os.O_NOFOLLOW, 0o666 if mode is None else mode & 0o7777)
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)
        if flags & os.O_WRONLY:
            fmode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            fmode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            fmode = "rb"
        stall = None
        if self.lab.stall == "write" and self.session is not None:
            stall = self.session.stall
        return _Handle(flags, os.fdopen(fd, fmode), real, self.lab, stall)

    def remove(self, path: str) -> int:
        if self.lab.keep_files:
            return SFTP_PERMISSION_DENIED
        try:
            os.remove(self._real(path, follow=False))
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        # SFTP v3 rename must not overwrite (posix_rename does).
        try:
            old = self._real(oldpath, follow=False)
            new = self._real(newpath, follow=False)
            if os.path.lexists(new):
                return SFTP_FAILURE
            os.rename(old, new)
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)
        return SFTP_OK

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        try:
            os.replace(self._real(oldpath, follow=False), self._real(newpath, follow=False))
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)
        return SFTP_OK

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        try:
            mode = getattr(attr, "st_mode", None)
            os.mkdir(self._real(path, follow=False), 0o777 if mode is None else mode & 0o7777)
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)
        return SFTP_OK

    def rmdir(self, path: str) -> int:
        try:
            real = self._real(path, follow=False)
            if real == self.root:
                return SFTP_PERMISSION_DENIED
            os.rmdir(real)
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)
        return SFTP_OK

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        try:
            paramiko.SFTPServer.set_file_attr(self._real(path), attr)
        except _Denied:
            return SFTP_PERMISSION_DENIED
        except OSError as e:
            return _errno_code(e)
        return SFTP_OK


class _SFTPSubsystem(paramiko.SFTPServer):
    """Paramiko's SFTP subsystem thread, made a daemon and joined by the lab on stop."""

    def __init__(
        self,
        channel: paramiko.Channel,
        name: str,
        server: paramiko.ServerInterface,
        sftp_si: type[paramiko.SFTPServerInterface],
        *,
        lab: SFTPServer,
    ) -> None:
        super().__init__(channel, name, server, sftp_si, lab=lab)
        self.daemon = True
        self.name = "lab-SFTPServer-sftp"
        lab.track_thread(self)


class _VersionStall(paramiko.SubsystemHandler):
    """Accepts the ``sftp`` subsystem and then never sends the SFTP VERSION packet."""

    def __init__(
        self,
        channel: paramiko.Channel,
        name: str,
        server: paramiko.ServerInterface,
        *,
        lab: SFTPServer,
    ) -> None:
        super().__init__(channel, name, server)
        self.daemon = True
        self.name = "lab-SFTPServer-version-stall"
        lab.track_thread(self)

    def start_subsystem(
        self, name: str, transport: paramiko.Transport, channel: paramiko.Channel
    ) -> None:
        server = self.get_server()
        if isinstance(server, _Session):
            server.stall()


class SFTPServer(ThreadedServer):
    """A paramiko SSH server on loopback serving ``root`` over SFTP.

    ``root``: directory to serve; by default a fresh temporary directory holding ``hello.txt``,
    ``data.csv`` and an empty ``upload/``, removed on stop. ``users`` maps user → password and
    ``authorized_keys`` user → public keys; with neither given the server accepts
    :data:`DEFAULT_USERS` (``lab``/``lab``). ``host_key`` defaults to a generated Ed25519 key;
    ``extra_host_keys`` (of other types) are offered too, as OpenSSH offers all of its own.
    ``subsystem=False`` refuses the ``sftp`` subsystem; ``stall`` picks a point where the server
    stops answering; ``unlistable`` paths (as the client names them, e.g. ``"/private"``) cannot be
    listed (SFTP permission denied); listing a ``stalling`` path never gets an answer. For the
    upload check: ``write_delay`` seconds before each write is answered (a slow disk or link),
    ``short_writes`` stores half of each write and says it stored all, ``keep_files`` refuses
    every remove, ``takes_uploads`` moves a written file away as soon as it is closed.
    """

    def __init__(
        self,
        root: str | None = None,
        users: Mapping[str, str] | None = None,
        authorized_keys: Mapping[str, Sequence[paramiko.PKey]] | None = None,
        host_key: paramiko.PKey | None = None,
        *,
        extra_host_keys: Sequence[paramiko.PKey] = (),
        subsystem: bool = True,
        stall: Stall | None = None,
        unlistable: Collection[str] = (),
        stalling: Collection[str] = (),
        write_delay: float = 0.0,
        short_writes: bool = False,
        keep_files: bool = False,
        takes_uploads: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        if stall is not None and stall not in STALLS:
            raise ValueError(f"stall must be one of {', '.join(STALLS)} or None, not {stall!r}")
        if users is None and authorized_keys is None:
            users = DEFAULT_USERS
        self.users: dict[str, str] = dict(users or {})
        self.authorized_keys: dict[str, list[paramiko.PKey]] = {
            user: list(keys) for user, keys in (authorized_keys or {}).items()
        }
        self.host_key: paramiko.PKey = host_key if host_key is not None else _default_host_key()
        self.fingerprint: str = fingerprint(self.host_key)
        """OpenSSH-style ``SHA256:…`` fingerprint of the host key."""
        self.extra_host_keys = list(extra_host_keys)
        self.subsystem = subsystem
        self.stall: Stall | None = stall
        self.unlistable: frozenset[str] = frozenset(virtual_path(p) for p in unlistable)
        self.stalling: frozenset[str] = frozenset(virtual_path(p) for p in stalling)
        self.write_delay = write_delay
        self.short_writes = short_writes
        self.keep_files = keep_files
        self.takes_uploads = takes_uploads
        self._root = root
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._transports: set[paramiko.Transport] = set()

    @property
    def root(self) -> str:
        """The directory being served."""
        if self._root is not None:
            return self._root
        if self._tempdir is None:
            raise RuntimeError("SFTPServer is not started (its temporary root does not exist yet)")
        return self._tempdir.name

    def allowed_auths(self, username: str) -> list[str]:
        """Methods configured for ``username`` (for unknown users: every configured method)."""
        methods: list[str] = []
        known = username in self.users or username in self.authorized_keys
        if username in self.users or (not known and self.users):
            methods.append("password")
        if username in self.authorized_keys or (not known and self.authorized_keys):
            methods.append("publickey")
        return methods or ["publickey"]

    def known_hosts_line(self, host: str | None = None, port: int | None = None) -> str:
        """This server's host key as a ``known_hosts`` line: ``[127.0.0.1]:PORT ssh-ed25519 AAAA…``.

        ``host``/``port`` default to the server's own; port 22 gives the plain host form.
        """
        host = self.host if host is None else host
        port = self.port if port is None else port
        return f"{host_pattern(host, port)} {self.host_key.get_name()} {self.host_key.get_base64()}"

    # -- life cycle -----------------------------------------------------------------------------

    def _open(self) -> None:
        if self._root is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="preflight-lab-")
            for name, content in SAMPLE_FILES.items():
                with open(os.path.join(self._tempdir.name, name), "wb") as f:
                    f.write(content)
            os.mkdir(os.path.join(self._tempdir.name, "upload"))
        elif not os.path.isdir(self._root):
            raise NotADirectoryError(self._root)
        super()._open()

    def _before_join(self) -> None:
        with self._lock:
            transports = list(self._transports)
        for transport in transports:
            transport.close()

    def _after_close(self) -> None:
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def handle(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.set_log_channel(LOG_CHANNEL)
        transport.add_server_key(self.host_key)
        for key in self.extra_host_keys:  # of other types: a client picks one by its preference
            transport.add_server_key(key)
        if self.stall == "version":
            transport.set_subsystem_handler("sftp", _VersionStall, lab=self)
        elif self.subsystem:
            transport.set_subsystem_handler("sftp", _SFTPSubsystem, _FileSystem, lab=self)
        with self._lock:
            if self.stopping.is_set():
                return
            self._transports.add(transport)
        try:
            transport.start_server(server=_Session(self, conn, transport))
            while transport.is_active() and not self.stopping.wait(POLL_INTERVAL):
                pass
        except (paramiko.SSHException, EOFError, OSError) as e:
            log.debug("lab SFTP connection ended: %r", e)
        finally:
            transport.close()
            if transport.ident is not None and transport is not threading.current_thread():
                transport.join(JOIN_TIMEOUT)
            with self._lock:
                self._transports.discard(transport)
