"""paramiko objects that cannot hang: what the library hands out after connecting.

The stages bound every wait until the connection is made; after that the caller's code drives
paramiko, and several of paramiko's waits have no bound of their own (DESIGN §3): a channel
request (`invoke_subsystem`, `exec_command`) waits for ever, and a read or a write on a channel
waits as long as its timeout, which is none by default. So the transport the library returns
gives every channel it opens (`open_session`, and `SFTPClient.from_transport` through it) the
caller's operation timeout for reads, writes and requests, and a stalled one raises
`OperationTimeout` — a `TimeoutError` (`socket.timeout`), as paramiko's own would be, but naming
the host, the operation and the seconds. The SFTP client of `open_sftp` (`SFTPSession`) names
the SFTP request too, and closes its transport when it is closed.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import paramiko
from paramiko import sftp as sftp_protocol

__all__ = ["OperationTimeout", "SFTPSession", "bound_channel", "bound_transport"]

# paramiko's SFTP request types, as `sftp` commands name them.
_REQUESTS = {
    sftp_protocol.CMD_OPEN: "open",
    sftp_protocol.CMD_CLOSE: "close",
    sftp_protocol.CMD_READ: "read",
    sftp_protocol.CMD_WRITE: "write",
    sftp_protocol.CMD_LSTAT: "lstat",
    sftp_protocol.CMD_FSTAT: "fstat",
    sftp_protocol.CMD_SETSTAT: "setstat",
    sftp_protocol.CMD_FSETSTAT: "fsetstat",
    sftp_protocol.CMD_OPENDIR: "opendir",
    sftp_protocol.CMD_READDIR: "readdir",
    sftp_protocol.CMD_REMOVE: "remove",
    sftp_protocol.CMD_MKDIR: "mkdir",
    sftp_protocol.CMD_RMDIR: "rmdir",
    sftp_protocol.CMD_REALPATH: "realpath",
    sftp_protocol.CMD_STAT: "stat",
    sftp_protocol.CMD_RENAME: "rename",
    sftp_protocol.CMD_READLINK: "readlink",
    sftp_protocol.CMD_SYMLINK: "symlink",
    sftp_protocol.CMD_EXTENDED: "extended",
}


class OperationTimeout(socket.timeout):
    """An operation on an open connection got no answer in time. A `TimeoutError` (what
    paramiko raises, empty, for the same thing), saying which host, which operation and how
    long was waited: `where`, `operation`, `seconds`."""

    def __init__(self, where: str, operation: str, seconds: float) -> None:
        super().__init__(f"{where} did not answer {operation} in {seconds:g}s")
        self.where = where
        self.operation = operation
        self.seconds = seconds


def _where(transport: paramiko.Transport) -> str:
    try:
        host, port = transport.getpeername()[:2]
    except (OSError, TypeError, ValueError):
        return "the server"
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def bound_channel(channel: paramiko.Channel, seconds: float, where: str) -> paramiko.Channel:
    """Give `channel` a bound: reads and writes time out after `seconds` (raising
    `OperationTimeout`), and so does a request that waits for the server's answer
    (`invoke_subsystem`, `exec_command`…), whose wait paramiko never bounds. The methods are
    replaced on this instance: paramiko builds its channels itself, so no subclass can be
    slipped in."""
    channel.settimeout(seconds)
    event_wait = channel._wait_for_event  # type: ignore[attr-defined]

    def wait_for_answer() -> None:
        if not channel.event.wait(seconds):
            channel.close()
            raise OperationTimeout(where, "a channel request", seconds)
        event_wait()  # set: paramiko's own checks of the answer

    channel._wait_for_event = wait_for_answer  # type: ignore[attr-defined]
    for name in ("recv", "send", "sendall", "recv_stderr"):
        _name_timeouts(channel, name, where, seconds)
    return channel


def _name_timeouts(channel: paramiko.Channel, name: str, where: str, seconds: float) -> None:
    call = getattr(channel, name)

    def bounded(*args: Any) -> Any:
        try:
            return call(*args)
        except TimeoutError:
            raise OperationTimeout(where, f"a channel {name}", seconds) from None

    setattr(channel, name, bounded)


def bound_transport(transport: paramiko.Transport, seconds: float) -> paramiko.Transport:
    """Bound every channel `transport` opens from now on (see `bound_channel`), the open
    itself included (paramiko's own default waits an hour)."""
    transport.channel_timeout = seconds
    open_channel = transport.open_channel
    where = _where(transport)

    def open_bounded(*args: Any, **kwargs: Any) -> paramiko.Channel:
        # open_session() passes timeout=None, which paramiko reads as channel_timeout.
        wait = kwargs.get("timeout") or seconds
        kwargs["timeout"] = wait
        started = time.monotonic()
        try:
            channel = open_channel(*args, **kwargs)
        except paramiko.ChannelException:
            raise  # the server answered: it refused the channel
        except paramiko.SSHException:
            # paramiko says "Timeout opening channel." when its wait ran out with the
            # connection still up; a connection that died raises its own error instead.
            if transport.is_active() and time.monotonic() - started >= wait:
                raise OperationTimeout(where, "a channel open", wait) from None
            raise
        return bound_channel(channel, seconds, where)

    transport.open_channel = open_bounded  # type: ignore[method-assign]
    return transport


class SFTPSession(paramiko.SFTPClient):
    """An SFTP client that owns its connection: closing it closes the SSH transport too, so a
    caller of `preflight.open_sftp` has one thing to close (or one `with` block). A request the
    server does not answer in the channel's timeout raises `OperationTimeout` naming it."""

    operation_timeout: float | None = None
    where: str = "the server"

    def bound(self, seconds: float) -> SFTPSession:
        """From now on, no request waits longer than `seconds` for its answer."""
        self.operation_timeout = seconds
        self.where = _where(self.sock.get_transport())
        channel = self.get_channel()
        assert channel is not None
        bound_channel(channel, seconds, self.where)
        return self

    def _request(self, t: int, *args: Any) -> Any:
        started = time.monotonic()
        try:
            return super()._request(t, *args)  # type: ignore[misc]
        except TimeoutError:
            waited = self.operation_timeout or time.monotonic() - started
            raise OperationTimeout(
                self.where, f"the SFTP {_REQUESTS.get(t, 'request')}", waited
            ) from None

    def close(self) -> None:
        transport = self.sock.get_transport()
        super().close()
        transport.close()
