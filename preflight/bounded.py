"""paramiko objects that cannot hang: what the library hands out after connecting.

The stages bound every wait until the connection is made; after that the caller's code drives
paramiko, and several of paramiko's waits have no bound of their own (DESIGN §3): a channel
request (`invoke_subsystem`, `exec_command`) waits for ever, a read or a write on a channel
waits as long as its timeout, which is none by default, and a send into a full socket buffer is
retried for ever. So the transport the library returns gives every channel it opens
(`open_session`, and `SFTPClient.from_transport` through it) a bound for its opening, and the
caller's operation timeout for each wait after that — an answer, a read, room in the window, a
send the network takes no byte of — and a stalled one raises `OperationTimeout`: a
`TimeoutError` (`socket.timeout`), as paramiko's own would be, but naming the host, the
operation and the seconds. The bound is per wait, not per call: a `put` that makes progress
runs as long as it needs. The SFTP client of `open_sftp` (`SFTPSession`) names the SFTP request
("the SFTP write"), and closes its transport when it is closed.
"""

from __future__ import annotations

import select
import time
from typing import Any

import paramiko
from paramiko import sftp as sftp_protocol

__all__ = ["Answers", "OperationTimeout", "SFTPSession", "bound_channel", "bound_transport"]

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


class OperationTimeout(TimeoutError):
    """An operation on an open connection got no answer in time. A `TimeoutError`
    (`socket.timeout`: what paramiko raises, empty, for the same thing), saying which host,
    which operation and how long was waited: `where`, `operation`, `seconds`; `sending` when it
    was the server that took no more data (a full send buffer), not an answer that was late."""

    def __init__(
        self, where: str, operation: str, seconds: float, *, sending: bool = False
    ) -> None:
        if sending:
            message = f"{where} took no data for {seconds:g}s during {operation}"
        else:
            message = f"{where} did not answer {operation} in {seconds:g}s"
        super().__init__(message)
        self.where = where
        self.operation = operation
        self.seconds = seconds
        self.sending = sending

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.where, self.operation, self.seconds, self.sending))


def _rebuild(where: str, operation: str, seconds: float, sending: bool) -> OperationTimeout:
    return OperationTimeout(where, operation, seconds, sending=sending)


def peer(transport: paramiko.Transport) -> str:
    """`host:port` of the transport's peer, as an address (when no name was given)."""
    try:
        host, port = transport.getpeername()[:2]
    except (OSError, TypeError, ValueError):
        return "the server"
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _stalled_for(channel: paramiko.Channel) -> float | None:
    """How long a send on `channel`'s connection waited before it was given up, if it was."""
    transport = channel.get_transport()
    stalled = getattr(getattr(transport, "sock", None), "stalled_for", None)
    return stalled if isinstance(stalled, int | float) else None


def bound_channel(channel: paramiko.Channel, seconds: float, where: str) -> paramiko.Channel:
    """Give `channel` a bound: each read or write waits at most `seconds` (then
    `OperationTimeout`), and so does a request that waits for the server's answer
    (`invoke_subsystem`, `exec_command`…), whose wait paramiko never bounds. A write the
    connection does not take (a full send buffer) is given up after `seconds` too, and the
    connection closed: it cannot be used again. The methods are replaced on this instance:
    paramiko builds its channels itself, so no subclass can be slipped in."""
    channel.settimeout(seconds)
    event_wait = channel._wait_for_event  # type: ignore[attr-defined]

    def wait_for_answer() -> None:
        if not channel.event.wait(seconds):
            channel.close()
            raise OperationTimeout(where, "a channel request", seconds)
        event_wait()  # set: paramiko's own checks of the answer

    channel._wait_for_event = wait_for_answer  # type: ignore[attr-defined]
    for name in ("recv", "send", "sendall", "recv_stderr"):
        _raise_named_timeouts(channel, name, where, seconds)
    return channel


def _raise_named_timeouts(channel: paramiko.Channel, name: str, where: str, seconds: float) -> None:
    """Replace `channel.<name>` by one whose timeouts are `OperationTimeout`s naming it — and
    whose give-up on a stalled send (paramiko: EOFError or an SSHException once the socket
    refused to wait longer) is one too, after closing the connection it broke."""
    call = getattr(channel, name)

    def with_named_timeouts(*args: Any) -> Any:
        try:
            return call(*args)
        except TimeoutError:
            raise OperationTimeout(where, f"a channel {name}", seconds) from None
        except (EOFError, OSError, paramiko.SSHException):
            stalled = _stalled_for(channel)
            if stalled is None:
                raise
            transport = channel.get_transport()
            if transport is not None:
                transport.close()
            raise OperationTimeout(where, f"a channel {name}", stalled, sending=True) from None

    setattr(channel, name, with_named_timeouts)


def bound_transport(
    transport: paramiko.Transport,
    seconds: float,
    *,
    where: str | None = None,
    open_timeout: float | None = None,
) -> paramiko.Transport:
    """Bound every channel `transport` opens from now on (see `bound_channel`), the open
    itself included (paramiko's own default waits an hour): `open_timeout` (paramiko's
    `channel_timeout`; default `seconds`). A send the connection takes no byte of for
    `seconds` gives the connection up. `where` names the server in messages (default: its
    address)."""
    opening = open_timeout or seconds
    transport.channel_timeout = opening
    sock = transport.sock
    if hasattr(sock, "send_stall_limit"):
        sock.send_stall_limit = seconds
    open_channel = transport.open_channel
    where = where or peer(transport)

    def open_bounded(
        kind: str,
        dest_addr: Any = None,
        src_addr: Any = None,
        window_size: int | None = None,
        max_packet_size: int | None = None,
        timeout: float | None = None,
    ) -> paramiko.Channel:
        wait = timeout or opening  # open_session() passes None, paramiko's "the default"
        started = time.monotonic()
        try:
            channel = open_channel(kind, dest_addr, src_addr, window_size, max_packet_size, wait)
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


class Answers:
    """Where paramiko puts the answers to pipelined requests, by request number, as they come."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, kind: int, message: paramiko.Message, number: int) -> None:
        self.got[number] = (kind, message)


def _extension_pairs(data: bytes) -> dict[str, str]:
    """The (name, data) string pairs after the version number; what cannot be read, dropped."""
    pairs: dict[str, str] = {}
    message = paramiko.Message(data)
    try:
        while message.get_remainder():
            name = message.get_text()
            pairs[name] = message.get_text()
    except Exception:  # a truncated pair: keep what was read
        pass
    return pairs


class SFTPSession(paramiko.SFTPClient):
    """An SFTP client that owns its connection: closing it closes the SSH transport too, so a
    caller of `preflight.open_sftp` has one thing to close (or one `with` block). A request
    the server does not answer in time, or a write it takes no data of, raises
    `OperationTimeout` naming the SFTP request ("the SFTP write")."""

    operation_timeout: float | None = None
    where: str = "the server"
    _last_request: str = "request"
    # The extensions the server named in its VERSION packet ("statvfs@openssh.com": "2"),
    # which paramiko reads past: what may be asked of it beyond SFTP version 3.
    extensions: dict[str, str]
    _hearing_version = False

    def request(self, kind: int, *args: Any) -> tuple[int, paramiko.Message]:
        """Send one request and wait for its answer; an error status raises `OSError`."""
        answer: tuple[int, paramiko.Message] = self._request(kind, *args)  # type: ignore[attr-defined]
        return answer

    def send_request(self, answers: Answers, kind: int, *args: Any) -> int:
        """Send one request without waiting (pipelining); its number, whose answer `answer`
        finds in `answers`."""
        number: int = self._async_request(answers, kind, *args)
        return number

    def answer(self, answers: Answers, number: int) -> tuple[int, paramiko.Message]:
        """Wait for the answer to pipelined request `number`, keeping others that come first
        (a server may answer in any order); an error status raises `OSError`."""
        while number not in answers.got:
            self._read_response(None)  # one packet, handed to its request's `answers`
        kind, message = answers.got.pop(number)
        if kind == sftp_protocol.CMD_STATUS:
            self._convert_status(message)  # type: ignore[attr-defined]
        return kind, message

    def readable(self, seconds: float) -> bool:
        """Whether an answer starts arriving within `seconds` (nothing is read)."""
        channel = self.get_channel()
        assert channel is not None
        if channel.recv_ready():
            return True
        ready, _, _ = select.select([channel], [], [], max(0.0, seconds))
        return bool(ready)

    def _send_version(self) -> int:
        self.extensions = {}
        self._hearing_version = True
        try:
            return int(super()._send_version())  # type: ignore[misc]
        finally:
            self._hearing_version = False

    def _read_packet(self) -> tuple[int, bytes]:
        kind, data = super()._read_packet()  # type: ignore[misc]
        if self._hearing_version and kind == sftp_protocol.CMD_VERSION:
            self.extensions = _extension_pairs(data[4:])
        return kind, data

    def bound(self, seconds: float, where: str | None = None) -> SFTPSession:
        """From now on, no wait for the server is longer than `seconds`."""
        self.operation_timeout = seconds
        channel = self.get_channel()
        assert channel is not None
        transport = channel.get_transport()
        self.where = where or (peer(transport) if transport is not None else "the server")
        bound_channel(channel, seconds, self.where)
        return self

    def _async_request(self, fileobj: Any, t: int, *args: Any) -> Any:
        # Every request, the pipelined writes of put() too, is sent here; the last one sent is
        # the one a stalled answer is most likely for.
        self._last_request = _REQUESTS.get(t, "request")
        try:
            return super()._async_request(fileobj, t, *args)  # type: ignore[misc]
        except OperationTimeout as exc:
            raise self._named(exc) from None

    def _read_response(self, waitfor: int | None = None) -> Any:
        try:
            return super()._read_response(waitfor)  # type: ignore[misc]
        except OperationTimeout as exc:
            raise self._named(exc) from None
        except TimeoutError:
            raise OperationTimeout(
                self.where, f"the SFTP {self._last_request}", self.operation_timeout or 0
            ) from None

    def _named(self, exc: OperationTimeout) -> OperationTimeout:
        return OperationTimeout(
            self.where, f"the SFTP {self._last_request}", exc.seconds, sending=exc.sending
        )

    def close(self) -> None:
        transport = self.sock.get_transport()
        super().close()
        transport.close()
