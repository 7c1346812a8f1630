"""The auth and sftp stages: paramiko on the socket the tcp stage opened, under a watchdog.

paramiko is synchronous and several of its waits have no usable bound (DESIGN §3), so each stage
runs its paramiko calls under `watchdog.run_guarded`: in a daemon thread, with the socket shut
down when the budget runs out, and a timeout reported for the phase it was in (`conn.phase`).
paramiko's own timeouts are set a little past the budget so that the watchdog, not a paramiko
timer with its own notion of time, decides. The transport reads the identification line that the
banner stage already consumed from `HandoverSocket`, as if it had come from the network. Behind a
jump host (`stages.jump`) the transport runs over the jump host's `direct-tcpip` channel instead
of a socket, and the watchdog shuts down the socket at the bottom of that chain.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import posixpath
import socket
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import paramiko

from preflight import credentials, hostkeys
from preflight.bounded import SFTPSession
from preflight.deadline import Budget
from preflight.errors import (
    AuthDenied,
    AuthMethodNotAllowed,
    HostKeyMismatch,
    HostKeyRevoked,
    HostKeyUnknown,
    NoCommonAlgorithm,
    NoCredentials,
    SFTPNotADirectory,
    SFTPUnavailable,
    StageTimeout,
)
from preflight.model import AuthConfig
from preflight.phases import At, Phase
from preflight.stages import Connection, Passed, segment_size, upload
from preflight.stages.chain import ChainedConnection, hops_below
from preflight.stages.watchdog import run_guarded

T = TypeVar("T")

# paramiko's own timers sit this far past our budget so that they never fire first.
PARAMIKO_SLACK = 5.0
POLL = 0.05

LOG_CHANNEL = "preflight.paramiko"
# paramiko logs socket errors and tracebacks; failures reach the user as diagnoses instead.
# A NullHandler keeps Python's last-resort handler from printing them to stderr in library
# use too; an application that wants them attaches its own handler to "preflight".
logging.getLogger(LOG_CHANNEL).addHandler(logging.NullHandler())

# known_hosts key types → the host key algorithms that produce them.
_ALGORITHMS_FOR_KEY_TYPE = {
    "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
}


class _Stream(Protocol):
    """What paramiko needs of a socket; a socket and a paramiko `Channel` both have it."""

    def recv(self, size: int, /) -> bytes: ...
    def send(self, data: bytes, /) -> int: ...
    def sendall(self, data: bytes, /) -> None: ...
    def settimeout(self, timeout: float | None, /) -> None: ...
    def close(self) -> None: ...
    def fileno(self) -> int: ...
    def getpeername(self) -> Any: ...


class HandoverSocket:
    """A socket that first returns bytes already read from it (the identification line and
    whatever followed), then reads from the real socket — or from a jump host's channel. Has
    what paramiko needs of a socket, and passes anything else (`setsockopt`, `getsockname`…)
    to the socket under it. `also_close` runs when paramiko closes it: behind jump hosts,
    closing the target's transport closes theirs too.

    `send_stall_limit` (set by the library, `bounded`) bounds a send that makes no progress:
    paramiko retries a timed-out send for ever (`Packetizer.write_all`), so once the peer has
    taken no byte for that long, `send` gives the connection up (ECONNABORTED; paramiko then
    raises EOFError) and `stalled_for` says how long it waited."""

    send_stall_limit: float | None = None
    stalled_for: float | None = None

    def __init__(
        self,
        sock: _Stream,
        pending: bytes,
        also_close: Sequence[Callable[[], None]] = (),
    ) -> None:
        self._sock = sock
        self._pending = pending
        self._also_close = list(also_close)
        self._send_stalled_since: float | None = None

    def __getattr__(self, name: str) -> Any:
        # Only called for what this class lacks: the rest of the socket's interface.
        if name.startswith("__") or name == "_sock":
            raise AttributeError(name)
        return getattr(self._sock, name)

    def recv(self, size: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self._sock.recv(size)

    def send(self, data: bytes) -> int:
        try:
            sent = self._sock.send(data)
        except TimeoutError:
            limit = self.send_stall_limit
            if limit is None:
                raise
            now = time.monotonic()
            if self._send_stalled_since is None:
                self._send_stalled_since = now
            elif now - self._send_stalled_since >= limit:
                self.stalled_for = limit
                # Not ETIMEDOUT: Python makes that a TimeoutError, which paramiko retries.
                raise ConnectionAbortedError(
                    errno.ECONNABORTED, f"the peer took no data for {limit:g}s"
                ) from None
            raise
        self._send_stalled_since = None
        return sent

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def hand_over_closers(self) -> list[Callable[[], None]]:
        """Give up what closing this socket would also close (the jump hosts under it), for
        a replacement connection through the same jump hosts to take over."""
        closers, self._also_close = self._also_close, []
        return closers

    def close(self) -> None:
        self._sock.close()
        closers, self._also_close = self._also_close, []
        for close in closers:
            with contextlib.suppress(Exception):
                close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    @property
    def _closed(self) -> bool:  # paramiko's Transport.stop_thread looks at this
        return bool(getattr(self._sock, "_closed", False))


async def probe_auth(conn: Connection, budget: Budget) -> Passed:
    return await run_guarded(conn, budget, lambda: _authenticate(conn, budget))


async def probe_sftp(conn: Connection, budget: Budget) -> Passed:
    return await run_guarded(conn, budget, lambda: _list_directory(conn, budget))


def _paramiko_timeout(budget: Budget) -> float:
    return budget.remaining() + PARAMIKO_SLACK


def _wait_for(
    event: threading.Event, transport: paramiko.Transport, budget: Budget, phase: At | None
) -> None:
    while not event.wait(POLL):
        if not transport.is_active():
            break
        if budget.expired():
            raise StageTimeout(phase, budget.elapsed(), by_deadline=budget.cut_by_deadline)
    if not transport.is_active():
        error = transport.get_exception()
        raise error if error is not None else EOFError("the server closed the connection")


class _Transport(paramiko.Transport):
    """A Transport that keeps the server's own words when it refuses to open a channel.

    paramiko turns an SSH_MSG_CHANNEL_OPEN_FAILURE into `ChannelException(code, text)` with a
    text of its own per code ("Connect failed"), and only logs the server's description — which
    is what tells a refused connection ("Connection refused") from a name the jump host cannot
    resolve. The description is kept in `last_open_failure` as (code, description)."""

    last_open_failure: tuple[int, str] | None = None
    # The server's KEXINIT, as name lists ("kex_algo_list", "server_key_algo_list"…): what it
    # offers, for a diagnosis when nothing matches and to ask for its other host keys.
    server_offer: dict[str, list[str]] | None = None

    def _really_parse_kex_init(self, m: paramiko.Message) -> dict[str, Any]:
        parsed: dict[str, Any] = paramiko.Transport._really_parse_kex_init(self, m)  # type: ignore[attr-defined]
        if self.server_offer is None:  # the first exchange's offer; a rekey changes nothing
            self.server_offer = {
                key: list(value) for key, value in parsed.items() if isinstance(value, list)
            }
        return parsed

    def _parse_channel_open_failure(self, m: paramiko.Message) -> None:
        try:
            m.get_int()  # channel id
            code = m.get_int()
            description = m.get_text()
            self.last_open_failure = (code, description)
        except Exception:  # a malformed message: paramiko reports it its own way below
            self.last_open_failure = None
        m.rewind()
        paramiko.Transport._parse_channel_open_failure(self, m)  # type: ignore[attr-defined]


def _stream(conn: Connection) -> HandoverSocket:
    """What the transport runs on: the tcp stage's socket, or the jump host's channel."""
    if isinstance(conn, ChainedConnection):
        assert conn.channel is not None, "the tcp stage opens the channel"
        closers = [hop.close for hop in hops_below(conn)]
        return HandoverSocket(conn.channel, conn.handover, also_close=closers)
    assert conn.sock is not None, "the tcp stage opens the socket"
    conn.sock.setblocking(True)
    if conn.segment_size is None:
        conn.segment_size = segment_size(conn.sock)
    return HandoverSocket(conn.sock, conn.handover)


def open_direct_tcpip(
    via: Connection, destination: tuple[str, int], budget: Budget, facts: dict[str, Any]
) -> paramiko.Channel:
    """Ask the jump host `via` to connect to `destination`, waiting no longer than the budget.
    A refusal keeps the server's reason in `facts["refused"]` and raises `ChannelException`."""
    transport = via.transport
    assert transport is not None, "the jump host's auth stage opens the transport"
    if isinstance(transport, _Transport):
        transport.last_open_failure = None
    try:
        return transport.open_channel(
            "direct-tcpip", destination, ("127.0.0.1", 0), timeout=budget.remaining()
        )
    except paramiko.ChannelException as exc:
        failure = getattr(transport, "last_open_failure", None)
        reason = failure[1] if failure is not None and failure[0] == exc.code else ""
        facts["refused"] = {"code": exc.code, "reason": reason}
        raise
    except paramiko.SSHException:
        if budget.expired() and transport.is_active():
            raise StageTimeout(
                At(Phase.ANSWER, str(facts.get("to", destination[0]))),
                budget.elapsed(),
                by_deadline=budget.cut_by_deadline,
            ) from None
        raise


def _start_transport(
    conn: Connection,
    budget: Budget,
    stream: HandoverSocket | None = None,
    key_types: list[str] | None = None,
) -> _Transport:
    """Start SSH on `stream` (default: the connection the earlier stages opened), asking for
    the host key algorithms `key_types` (default: all, those known_hosts can verify first)."""
    transport = _Transport(stream or _stream(conn))  # type: ignore[arg-type]
    transport.set_log_channel(LOG_CHANNEL)
    transport.banner_timeout = _paramiko_timeout(budget)
    transport.handshake_timeout = _paramiko_timeout(budget)
    transport.auth_timeout = _paramiko_timeout(budget)
    if key_types is not None:
        transport.get_security_options().key_types = key_types
    else:
        _prefer_verifiable_host_keys(conn, transport)
    with conn._lock:
        conn.transport = transport
    conn.phase = At(Phase.KEY_EXCHANGE)
    done = threading.Event()
    transport.start_client(event=done)
    try:
        _wait_for(done, transport, budget, conn.phase)
    except paramiko.ssh_exception.IncompatiblePeer:
        mismatch = _no_common_algorithm(transport)
        if mismatch is None:
            raise
        conn.facts["no_common_algorithm"] = {
            "kind": mismatch.kind,
            "server_offers": list(mismatch.server),
            "paramiko_offers": list(mismatch.ours),
            "openssh_would_use": list(mismatch.openssh_common or []),
        }
        raise mismatch from None
    return transport


# Name lists of a KEXINIT per kind, in the order paramiko checks them (the first kind with
# nothing in common is the one it gave up on).
_OFFER_LISTS = (
    ("key exchange", ("kex_algo_list",)),
    ("host key", ("server_key_algo_list",)),
    ("cipher", ("server_encrypt_algo_list", "client_encrypt_algo_list")),
    ("MAC", ("server_mac_algo_list", "client_mac_algo_list")),
    ("compression", ("server_compress_algo_list", "client_compress_algo_list")),
)
# Markers in the kex list that are no algorithms (RFC 8308, OpenSSH's strict kex).
_NOT_ALGORITHMS = ("ext-info-", "kex-strict-")


def _no_common_algorithm(transport: _Transport) -> NoCommonAlgorithm | None:
    """Which kind of algorithm had nothing in common, from the server's offer and ours, and
    whether the OpenSSH client on this runner would have found one."""
    from preflight import openssh

    offer = transport.server_offer
    if offer is None:
        return None
    ours_by_kind = {
        "key exchange": transport.preferred_kex,
        "host key": [a for a in transport.preferred_keys if "-cert-" not in a],
        "cipher": transport.preferred_ciphers,
        "MAC": transport.preferred_macs,
        "compression": transport.preferred_compression,
    }
    for kind, keys in _OFFER_LISTS:
        server = [
            name
            for key in keys
            for name in offer.get(key, [])
            if name and not name.startswith(_NOT_ALGORITHMS)
        ]
        server = list(dict.fromkeys(server))
        ours = tuple(ours_by_kind[kind])
        if any(name in ours for name in server):
            continue
        client = openssh.client()
        theirs = client.algorithms.get(kind) if client is not None else None
        return NoCommonAlgorithm(
            kind,
            tuple(server),
            ours,
            paramiko.__version__,
            client.version if client is not None and theirs is not None else None,
            # In the client's order: the client picks the first of its own the server offers.
            tuple(n for n in theirs if n in server) if theirs is not None else None,
        )
    return None


def _prefer_verifiable_host_keys(conn: Connection, transport: paramiko.Transport) -> None:
    target = conn.target
    if target.host_key.policy == "off":
        return
    known = hostkeys.preferred_key_types(target.host_key, target.host, target.port)
    if not known:
        return
    options = transport.get_security_options()
    available = list(options.key_types)
    wanted = [alg for t in known for alg in _ALGORITHMS_FOR_KEY_TYPE.get(t, [t])]
    first = [alg for alg in wanted if alg in available]
    if first:
        options.key_types = first + [alg for alg in available if alg not in first]


def _key_verdict(conn: Connection, transport: paramiko.Transport) -> hostkeys.Verdict:
    target = conn.target
    key = transport.get_remote_server_key()
    addresses = [conn.peer.ip] if conn.peer is not None else []
    verdict = hostkeys.verify(
        target.host_key, target.host, target.port, key.get_name(), key.asbytes(), addresses
    )
    conn.facts["host_key"] = {
        "type": key.get_name(),
        "fingerprint": verdict.fingerprint,
        "verified_by": verdict.matched_by or None,
    }
    if verdict.matched_by == "a pinned fingerprint":
        # The key itself (public), so that a printed ssh command can trust what the pin did.
        name = hostkeys.known_name(target.host_key, target.host, target.port)
        conn.facts["host_key"]["line"] = hostkeys.pin_line(name, key.get_name(), key.asbytes())
    if verdict.status == "mismatch":
        conn.facts["host_key"]["expected"] = {
            "by": "pins" if verdict.by_pins else "known_hosts",
            "fingerprints": list(verdict.expected),
        }
    return verdict


def _verify_host_key(
    conn: Connection, transport: _Transport, budget: Budget
) -> tuple[_Transport, list[str]]:
    """Verify the server's host key; returns the transport to go on with (another one when
    the pinned key was found under another key type) and any warnings."""
    target = conn.target
    key = transport.get_remote_server_key()
    key_type, blob = key.get_name(), key.asbytes()
    verdict = _key_verdict(conn, transport)
    if target.host_key.policy == "off":
        return transport, [
            f"host key {key_type} {verdict.fingerprint} not verified (host_key.policy: off)"
        ]
    presented: tuple[tuple[str, str], ...] = ((key_type, verdict.fingerprint),)
    search_failed: BaseException | None = None
    if verdict.status == "mismatch" and verdict.by_pins:
        transport, verdict, presented, search_failed = _look_for_the_pinned_key(
            conn, transport, budget, presented
        )
        if search_failed is None:  # else: `transport` is closed; the key seen first stands
            key = transport.get_remote_server_key()
            key_type, blob = key.get_name(), key.asbytes()
    if verdict.status == "revoked":
        raise HostKeyRevoked(key_type, verdict.fingerprint, verdict.checked)
    if verdict.status == "mismatch":
        raise HostKeyMismatch(
            key_type,
            verdict.fingerprint,
            list(verdict.expected),
            verdict.checked,
            pinned=verdict.by_pins,
            presented=presented,
            search_failed=search_failed,
        )
    if verdict.status == "unknown":
        name = hostkeys.known_name(target.host_key, target.host, target.port)
        line = hostkeys.pin_line(name, key_type, blob)
        if target.host_key.policy == "warn":
            return transport, [
                f"host key {key_type} {verdict.fingerprint} is not in {verdict.checked}; "
                f"accepted because host_key.policy is warn. To pin it: {line}"
            ]
        raise HostKeyUnknown(
            key_type,
            verdict.fingerprint,
            line,
            verdict.checked,
            name=verdict.name,
            known_as=verdict.known_as,
            known_in=verdict.known_in,
        )
    return transport, []


def _key_type_of(algorithm: str) -> str:
    """The key type a host key algorithm signs with: both RSA SHA-2 algorithms use ssh-rsa."""
    return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm


def _other_host_key_types(offer: list[str], seen: set[str]) -> list[list[str]]:
    """The server's other host keys paramiko can verify, as one list of algorithms per key
    type, in paramiko's order of preference."""
    groups: dict[str, list[str]] = {}
    for algorithm in paramiko.Transport._preferred_keys:  # type: ignore[attr-defined]
        key_type = _key_type_of(algorithm)
        if algorithm in offer and key_type not in seen:
            groups.setdefault(key_type, []).append(algorithm)
    return list(groups.values())


def _look_for_the_pinned_key(
    conn: Connection,
    transport: _Transport,
    budget: Budget,
    presented: tuple[tuple[str, str], ...],
) -> tuple[_Transport, hostkeys.Verdict, tuple[tuple[str, str], ...], BaseException | None]:
    """A pin is a fingerprint without a key type, so the key exchange cannot ask for the pinned
    key the way it asks for one known_hosts holds; and OpenSSH refuses a second key exchange
    before authentication. So the server is asked for each of its other key types on a new
    connection, as ssh-keyscan does, and the check goes on over the one whose key is pinned.
    Returns that transport and its verdict, or the last one tried and a mismatch, with every
    (key type, fingerprint) the server presented, and what ended the search early, if anything
    (a second connection refused or closed: the key seen still matches no pin)."""
    offer = (transport.server_offer or {}).get("server_key_algo_list", [])
    seen = {key_type for key_type, _ in presented}
    verdict = _key_verdict(conn, transport)
    for algorithms in _other_host_key_types(offer, seen):
        key_type = _key_type_of(algorithms[0])
        conn.phase = At(Phase.RECONNECT, key_type)
        try:
            stream = _reconnect(conn, budget, transport)
            transport.close()  # the key it showed is not the pinned one: no use for it now
            transport = _start_transport(conn, budget, stream, key_types=algorithms)
        except StageTimeout:
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            conn.phase = At(Phase.HOST_KEY)
            return transport, verdict, presented, exc
        conn.phase = At(Phase.HOST_KEY)
        verdict = _key_verdict(conn, transport)
        presented = (
            *presented,
            (transport.get_remote_server_key().get_name(), verdict.fingerprint),
        )
        if verdict.status != "mismatch":
            break
    return transport, verdict, presented, None


def _reconnect(conn: Connection, budget: Budget, old: _Transport) -> HandoverSocket:
    """A new connection to the same server: a socket to the address the tcp stage reached,
    or a new channel through the same jump host. Published in `conn` before it connects, so
    the watchdog's shutdown reaches it."""
    if isinstance(conn, ChainedConnection):
        assert conn.via is not None
        closers = old.sock.hand_over_closers() if isinstance(old.sock, HandoverSocket) else []
        destination = (conn.target.host, conn.target.port)
        channel = open_direct_tcpip(conn.via, destination, budget, {})
        with conn._lock:
            conn.channel = channel
        return HandoverSocket(channel, b"", also_close=closers)
    assert conn.peer is not None, "the tcp stage connected"
    sock = socket.socket(conn.peer.family, socket.SOCK_STREAM)
    with conn._lock:
        conn.sock = sock
    sock.settimeout(max(0.01, budget.remaining()))
    sock.connect(conn.peer.sockaddr)
    return HandoverSocket(sock, b"")


def _authenticate(conn: Connection, budget: Budget) -> Passed:
    target = conn.target
    transport = _start_transport(conn, budget)
    conn.facts["server_version"] = transport.remote_version
    conn.facts["cipher"] = getattr(transport, "remote_cipher", None)
    conn.phase = At(Phase.HOST_KEY)
    transport, warnings = _verify_host_key(conn, transport, budget)
    conn.phase = At(Phase.AUTHENTICATION)
    user = target.user or "root"
    conn.facts["user"] = user
    if not target.auth.has_credentials:
        allowed = _allowed_methods(transport, user)
        if allowed is None:
            conn.facts["method"] = "none"
            return Passed(f"{user} accepted without authentication (method none)", warnings)
        conn.facts["allowed_methods"] = allowed
        raise NoCredentials(target.auth.unset)
    method = _try_credentials(conn, transport, user)
    conn.facts["method"] = method
    if conn.facts.get("credential") == "key":
        warnings += _key_file_warnings(target.auth)
    key_fact = conn.facts.get("host_key", {})
    return Passed(
        f"{user} authenticated by {method}; host key {key_fact.get('fingerprint')}", warnings
    )


def _key_file_warnings(auth: AuthConfig) -> list[str]:
    """A key file others can read works for paramiko, not for OpenSSH: said when it was the
    key that logged in, since `ssh -i` (and the printed commands) would ignore it."""
    from preflight import keytext

    path = keytext.key_path(auth)
    if path is None:
        return []
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return []
    return [keytext.key_file_mode_warning(auth, mode)] if mode & 0o077 else []


@dataclass
class _Offer:
    """One credential and the methods that can present it (a password goes as `password` or,
    where only that is allowed, as `keyboard-interactive`)."""

    credential: str
    methods: list[tuple[str, Callable[[], list[str]]]]


def _password_answers(secret: str) -> Callable[[str, str, list[tuple[str, bool]]], list[str]]:
    """Answer keyboard-interactive prompts: the password only where a password is asked for,
    never to an OTP or any other question."""

    def answer(_title: str, _instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
        return [secret if "password" in text.lower() else "" for text, _echo in prompts]

    return answer


def _offers(auth: AuthConfig, transport: paramiko.Transport, user: str) -> list[_Offer]:
    offers = []
    key = credentials.load_private_key(auth)
    if key is not None:
        offers.append(
            _Offer("key", [("publickey", functools.partial(transport.auth_publickey, user, key))])
        )
    if auth.agent:
        offers.extend(
            _Offer(
                "agent key", [("publickey", functools.partial(transport.auth_publickey, user, k))]
            )
            for k in paramiko.Agent().get_keys()
        )
    if auth.password:
        secret = auth.password.reveal()
        password = functools.partial(transport.auth_password, user, secret, fallback=False)
        interactive = functools.partial(transport.auth_interactive, user, _password_answers(secret))
        offers.append(
            _Offer("password", [("password", password), ("keyboard-interactive", interactive)])
        )
    return offers


def _allowed_methods(transport: paramiko.Transport, user: str) -> list[str] | None:
    """The methods the server allows `user` (a `none` request; None if `none` succeeds)."""
    try:
        transport.auth_none(user)
    except paramiko.BadAuthenticationType as exc:
        return list(exc.allowed_types)
    return None


def _try_credentials(conn: Connection, transport: paramiko.Transport, user: str) -> str:
    """Present each configured credential once, in a method the server allows, following a
    partial success (`AuthenticationMethods publickey,password`) to the methods still needed.

    The first credential is offered straight away, without asking which methods are allowed
    (a round trip per target on the path that matters most); the server's answer to a wrong
    method tells us, and after a failure a `none` request asks, so the report still lists them.
    """
    auth = conn.target.auth
    pending = _offers(auth, transport, user)
    if not pending:
        raise NoCredentials(auth.unset)
    offered = list(dict.fromkeys(name for offer in pending for name, _ in offer.methods[:1]))
    allowed: list[str] | None = None  # not known until the server says
    accepted: list[str] = []
    tried: list[str] = []
    while True:
        choice = next(
            (
                (offer, name, call)
                for offer in pending
                for name, call in offer.methods
                if allowed is None or name in allowed
            ),
            None,
        )
        if choice is None:
            break
        offer, name, call = choice
        pending.remove(offer)
        try:
            still_needed = call()
        except paramiko.BadAuthenticationType as exc:
            # Not allowed: not a try. The credential may still go by another method.
            allowed = list(exc.allowed_types)
            conn.facts["allowed_methods"] = allowed
            offer.methods = [(n, c) for n, c in offer.methods if n != name]
            if offer.methods:
                pending.insert(0, offer)
            continue
        except paramiko.AuthenticationException:
            if not transport.is_active():
                raise
            tried.append(name)
            continue
        tried.append(name)
        if transport.is_authenticated():
            conn.facts["credential"] = offer.credential  # "key", "agent key", "password"
            return "+".join([*accepted, name])
        accepted.append(name)  # partial success: the server wants another method as well
        allowed = list(still_needed)
        conn.facts["partial_success"] = list(accepted)
    if allowed is None:
        allowed = _allowed_methods(transport, user) or []
        conn.facts["allowed_methods"] = allowed
    if accepted or not tried:
        raise AuthMethodNotAllowed(offered, allowed, accepted=accepted)
    raise AuthDenied(tried, allowed)


def _refuse_a_non_directory(conn: Connection, sftp: paramiko.SFTPClient, path: str) -> None:
    """After "no such file": does `path` exist as something other than a directory? Servers
    give the same answer to listing a file (OpenSSH's sftp-server maps ENOTDIR to it)."""
    conn.phase = At(Phase.STAT, path)
    try:
        mode = sftp.stat(path).st_mode
    except OSError:
        return  # it really does not exist (or cannot be looked at): the listing's answer stands
    if mode is not None and not stat.S_ISDIR(mode):
        raise SFTPNotADirectory(path, mode)


def _look_at_directory(conn: Connection, sftp: paramiko.SFTPClient, path: str) -> Passed:
    """The path must be a directory, not a listable one: a drop box (mode 0733) may be written
    and not listed, and a caller that only uploads needs no more."""
    conn.phase = At(Phase.STAT, path)
    mode = sftp.stat(path).st_mode
    if mode is not None and not stat.S_ISDIR(mode):
        raise SFTPNotADirectory(path, mode)
    return Passed(f"{path} is a directory (not listed)")


def _list_directory(conn: Connection, budget: Budget) -> Passed:
    transport = conn.transport
    assert transport is not None, "the auth stage opens the transport"
    path = conn.target.sftp_path
    conn.facts["path"] = path
    conn.phase = At(Phase.SESSION_CHANNEL)
    try:
        channel = transport.open_session(timeout=budget.remaining() + PARAMIKO_SLACK)
    except paramiko.ChannelException as exc:
        raise SFTPUnavailable(f"the server refused a session channel ({exc.text})") from None
    # The SFTP version handshake and every request honour this only if it is set before
    # SFTPClient is built (DESIGN §3).
    channel.settimeout(budget.remaining() + PARAMIKO_SLACK)
    conn.phase = At(Phase.SUBSYSTEM)
    try:
        channel.invoke_subsystem("sftp")
    except paramiko.SSHException as exc:
        raise SFTPUnavailable(f"the server refused the sftp subsystem ({exc})") from None
    conn.phase = At(Phase.SFTP_VERSION)
    try:
        sftp = SFTPSession(channel)  # what `preflight.open_sftp` hands on
    except EOFError:
        raise SFTPUnavailable(
            "the channel closed before the SFTP version handshake "
            "(the sftp subsystem is not running)"
        ) from None
    with conn._lock:
        conn.sftp = sftp  # closed with the connection, or handed to the library's caller
    looked = (
        _list(conn, sftp, path) if conn.target.sftp_list else _look_at_directory(conn, sftp, path)
    )
    target = conn.target
    if target.sftp_write is None and target.sftp_min_free is None:
        return looked
    shown, warnings = upload.check(conn, sftp, budget)
    return Passed("; ".join([looked.detail, *shown]), [*looked.warnings, *warnings])


def _list(conn: Connection, sftp: paramiko.SFTPClient, path: str) -> Passed:
    conn.phase = At(Phase.LISTDIR, path)
    try:
        entries = sftp.listdir(path)
    except FileNotFoundError:
        _refuse_a_non_directory(conn, sftp, path)
        raise
    conn.facts["entries"] = len(entries)
    with contextlib.suppress(OSError):
        # An absolute path is its own answer: a round trip only for a relative one.
        conn.facts["resolved_path"] = (
            posixpath.normpath(path) if path.startswith("/") else sftp.normalize(path)
        )
    where = conn.facts.get("resolved_path", path)
    return Passed(f"listed {where}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
