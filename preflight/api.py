"""The library: bounded replacements for `paramiko.Transport((host, port))` and friends.

`connect()` returns an authenticated `paramiko.Transport` and `open_sftp()` an SFTP client,
both reached through the same staged, deadline-bound probes as `preflight check` (dns, tcp with
fall-through between addresses, banner under an absolute deadline, key exchange and
authentication under a watchdog, host key verified by default), and neither can hang afterwards
(`bounded`). They take paramiko's `SSHClient.connect` vocabulary where it means the same thing
(`hostname, port, username, password`, `pkey`, `key_filename`, `timeout`, `banner_timeout`…), so
a helper built on paramiko migrates by changing one call; `aconnect`/`aopen_sftp` are the same
for asyncio code. What goes wrong raises `PreflightError` carrying the stage and the diagnosis;
it is a `paramiko.SSHException` and an `OSError` (`socket.error`), so the `except` clauses that
caught paramiko's failures catch it; a timeout is also a `TimeoutError` (`socket.timeout`), a
refused login also a `paramiko.AuthenticationException`.

    import preflight
    with preflight.open_sftp("sftp.example.com", 2222, "ingest",
                             key=os.environ["SSH_PRIVATE_KEY"]) as sftp:
        sftp.put("report.csv", "upload/report.csv")
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import getpass
import logging
import os
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import paramiko

from preflight.bounded import OperationTimeout, SFTPSession, bound_transport
from preflight.model import (
    ALL_STAGES,
    AuthConfig,
    Diagnosis,
    HostKeyConfig,
    HostKeyPolicyName,
    Secret,
    Stage,
    Target,
    TargetResult,
    Timeouts,
)

__all__ = [
    "OperationTimeout",
    "PreflightAuthError",
    "PreflightError",
    "PreflightTimeout",
    "aconnect",
    "aopen_sftp",
    "connect",
    "open_sftp",
]

DEFAULT_OPERATION_TIMEOUT = 30.0
# What `look_for_keys` looks for, as paramiko does (its DSA key aside: paramiko dropped DSA).
_DEFAULT_KEYS = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ed25519")

log = logging.getLogger("preflight")
T = TypeVar("T")


class PreflightError(paramiko.SSHException, OSError):
    """A connection could not be made: `stage` failed with `diagnosis`; `result` has every
    stage's outcome and facts (addresses tried, banner, host key, allowed methods…).

    Both a `paramiko.SSHException` and an `OSError`: code written for paramiko catches
    `(paramiko.SSHException, socket.error)` and must go on catching what replaced it."""

    def __init__(self, result: TargetResult) -> None:
        failure = result.failure
        self.result = result
        self.stage: Stage | None = failure.stage if failure else None
        self.diagnosis: Diagnosis | None = failure.diagnosis if failure else None
        if self.diagnosis is not None:
            message = f"{self.diagnosis.code}: {self.diagnosis.summary}"
        else:
            message = "interrupted before the connection was made"
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PreflightTimeout(PreflightError, TimeoutError):
    """The connection could not be made in time (a `*.timeout` code or `deadline.exceeded`):
    also what `except socket.timeout` catches."""


class PreflightAuthError(PreflightError, paramiko.AuthenticationException):
    """The server refused the login, or there was nothing to log in with (auth.denied,
    auth.method_not_allowed, auth.no_credentials, auth.bad_key): also what
    `except paramiko.AuthenticationException` catches."""


_AUTH_CODES = frozenset(
    {"auth.denied", "auth.method_not_allowed", "auth.no_credentials", "auth.bad_key"}
)


def _error(result: TargetResult) -> PreflightError:
    failure = result.failure
    code = failure.diagnosis.code if failure and failure.diagnosis else ""
    if code.endswith("timeout") or code == "deadline.exceeded":
        return PreflightTimeout(result)
    if code in _AUTH_CODES:
        return PreflightAuthError(result)
    return PreflightError(result)


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER: let the server say
        return None


def _one(name: str, given: Mapping[str, Any]) -> Any:
    """The value of one setting spelt two ways (`user`/`username`): both given is an error."""
    values = {spelling: value for spelling, value in given.items() if value is not None}
    if len(values) > 1:
        raise TypeError(f"{name}: give one of {' or '.join(values)}, not both")
    return next(iter(values.values()), None)


def _timeouts(
    timeouts: Timeouts | Mapping[str, float] | float | None, **single: float | None
) -> Timeouts:
    """`timeouts` as a `Timeouts`, from one, a mapping of stage → seconds or one number for
    every stage; paramiko's single timeouts (`timeout`: the TCP connect…) over it."""
    if timeouts is None:
        base = Timeouts()
    elif isinstance(timeouts, Timeouts):
        base = timeouts
    elif isinstance(timeouts, int | float) and not isinstance(timeouts, bool):
        base = Timeouts(*(float(timeouts),) * len(ALL_STAGES))
    elif isinstance(timeouts, Mapping):
        unknown = sorted(set(timeouts) - {stage.value for stage in ALL_STAGES})
        if unknown:
            stages = ", ".join(stage.value for stage in ALL_STAGES)
            raise TypeError(f"timeouts: unknown stage {unknown[0]!r} (the stages: {stages})")
        base = Timeouts(**{stage: float(seconds) for stage, seconds in timeouts.items()})
    else:
        raise TypeError(
            f"timeouts: expected a Timeouts, a mapping of stage to seconds or a number, "
            f"got {type(timeouts).__name__}"
        )
    from dataclasses import replace

    changes = {stage: float(seconds) for stage, seconds in single.items() if seconds is not None}
    for stage, seconds in changes.items():
        if not seconds > 0:
            raise ValueError(f"the {stage} timeout must be more than 0 seconds, got {seconds:g}")
    return replace(base, **changes)


def _key(
    key: str | paramiko.PKey | None,
    pkey: paramiko.PKey | None,
    key_filename: str | Sequence[str] | None,
    look_for_keys: bool,
) -> tuple[Secret | paramiko.PKey | None, str | None]:
    """The one key to offer, and how messages name it."""
    chosen = _one("the private key", {"key": key, "pkey": pkey, "key_filename": key_filename})
    if isinstance(chosen, paramiko.PKey):
        return chosen, "the key object given"
    if chosen is not None and not isinstance(chosen, str):
        # A list of files, as paramiko takes them: the first that exists (as ssh's
        # IdentityFile), or the first, so that the missing one is named.
        paths = [os.path.expanduser(str(path)) for path in chosen]
        if not paths:
            return None, None
        chosen = next((path for path in paths if os.path.exists(path)), paths[0])
    if isinstance(chosen, str):
        if "PRIVATE KEY" in chosen:
            return Secret(chosen), "the key text given"
        return Secret(os.path.expanduser(chosen)), f"file {os.path.expanduser(chosen)}"
    if look_for_keys:
        for path in map(os.path.expanduser, _DEFAULT_KEYS):
            if os.path.exists(path):
                return Secret(path), f"file {path}"
    return None, None


def _target(
    hostname: str,
    port: int,
    *,
    username: str | None,
    password: str | None,
    key: Secret | paramiko.PKey | None,
    key_source: str | None,
    passphrase: str | None,
    allow_agent: bool,
    known_hosts: str | None,
    fingerprints: Sequence[str],
    host_key_policy: HostKeyPolicyName,
    timeouts: Timeouts,
    deadline: float,
    stages: tuple[Stage, ...],
    path: str = ".",
) -> Target:
    return Target(
        name=f"{hostname}:{port}",
        host=hostname,
        port=port,
        user=username or _login_name(),
        stages=stages,
        timeouts=timeouts,
        deadline=deadline,
        auth=AuthConfig(
            password=Secret(password) if password else None,
            key=key if isinstance(key, Secret) else None,
            pkey=key if isinstance(key, paramiko.PKey) else None,
            passphrase=Secret(passphrase) if passphrase else None,
            agent=allow_agent,
            key_source=key_source,
        ),
        host_key=HostKeyConfig(
            known_hosts=known_hosts, fingerprints=tuple(fingerprints), policy=host_key_policy
        ),
        sftp_path=path,
        sftp_list=False,  # a drop box may be written and not listed: open it all the same
    )


def _arguments(
    hostname: str | None,
    port: int,
    username: str | None,
    password: str | None,
    options: dict[str, Any],
    stages: tuple[Stage, ...],
) -> Target:
    """The target a `connect`/`open_sftp` call describes (paramiko's names or preflight's)."""
    host = _one("the host", {"hostname": hostname, "host": options.pop("host")})
    if host is None:
        raise TypeError("the host: give hostname (or host=)")
    user = _one("the user", {"username": username, "user": options.pop("user")})
    key, key_source = _key(
        options.pop("key"),
        options.pop("pkey"),
        options.pop("key_filename"),
        options.pop("look_for_keys"),
    )
    timeouts = _timeouts(
        options.pop("timeouts"),
        tcp=options.pop("timeout"),
        banner=options.pop("banner_timeout"),
        auth=options.pop("auth_timeout"),
        sftp=options.pop("channel_timeout"),
    )
    return _target(
        host,
        port,
        username=user,
        password=password,
        key=key,
        key_source=key_source,
        timeouts=timeouts,
        stages=stages,
        **options,
    )


def _say_warnings(result: TargetResult) -> None:
    """What a check would print as warnings (an unknown host key accepted under `warn`, a key
    file others can read), through `logging`, as paramiko's WarningPolicy does."""
    for stage in result.stages:
        for warning in stage.warnings:
            log.warning("%s: %s", result.target.name, warning)


async def _open(
    target: Target, operation_timeout: float
) -> tuple[paramiko.Transport, SFTPSession | None]:
    from preflight.runner import open_connection

    result, conn = await open_connection(target)
    if conn is None or conn.transport is None:
        raise _error(result)
    _say_warnings(result)
    transport = bound_transport(conn.transport, operation_timeout)
    sftp = conn.sftp
    if isinstance(sftp, SFTPSession):
        sftp.bound(operation_timeout)
    return transport, sftp if isinstance(sftp, SFTPSession) else None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end from synchronous code: on a loop of its own, or, when this
    thread already runs one (a sync call from async code), on a loop in another thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="preflight") as pool:
        return pool.submit(asyncio.run, coroutine).result()


def connect(
    hostname: str | None = None,
    port: int = 22,
    username: str | None = None,
    password: str | None = None,
    *,
    host: str | None = None,
    user: str | None = None,
    pkey: paramiko.PKey | None = None,
    key: str | paramiko.PKey | None = None,
    key_filename: str | Sequence[str] | None = None,
    passphrase: str | None = None,
    allow_agent: bool = False,
    look_for_keys: bool = False,
    known_hosts: str | None = "~/.ssh/known_hosts",
    fingerprints: Sequence[str] = (),
    host_key_policy: HostKeyPolicyName = "strict",
    timeout: float | None = None,
    banner_timeout: float | None = None,
    auth_timeout: float | None = None,
    channel_timeout: float | None = None,
    timeouts: Timeouts | Mapping[str, float] | float | None = None,
    deadline: float = 30.0,
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
) -> paramiko.Transport:
    """An authenticated transport to `hostname`, or `PreflightError`.

    paramiko's names mean what they mean there: `timeout` bounds the TCP connect,
    `banner_timeout` the identification, `auth_timeout` the key exchange and login,
    `channel_timeout` a channel's opening; `key_filename` is a path or a list (the first that
    exists is used), `pkey` a key object. Unlike paramiko, `allow_agent` and `look_for_keys`
    default to False (a call logs in with what it is given) and the host key must verify
    (`known_hosts`, `fingerprints`; `host_key_policy="warn"` logs an unknown key and goes on).
    `timeouts` sets every stage at once (a `Timeouts`, a mapping or a number); `deadline`
    bounds the whole connection. Every channel opened on the transport afterwards, however
    (`open_session`, `paramiko.SFTPClient.from_transport`), waits no longer than
    `operation_timeout` for an answer. Close the transport when done."""
    target = _arguments(hostname, port, username, password, _options(locals()), ALL_STAGES[:4])
    return _run(_open(target, operation_timeout))[0]


def open_sftp(
    hostname: str | None = None,
    port: int = 22,
    username: str | None = None,
    password: str | None = None,
    *,
    host: str | None = None,
    user: str | None = None,
    pkey: paramiko.PKey | None = None,
    key: str | paramiko.PKey | None = None,
    key_filename: str | Sequence[str] | None = None,
    passphrase: str | None = None,
    allow_agent: bool = False,
    look_for_keys: bool = False,
    known_hosts: str | None = "~/.ssh/known_hosts",
    fingerprints: Sequence[str] = (),
    host_key_policy: HostKeyPolicyName = "strict",
    timeout: float | None = None,
    banner_timeout: float | None = None,
    auth_timeout: float | None = None,
    channel_timeout: float | None = None,
    timeouts: Timeouts | Mapping[str, float] | float | None = None,
    deadline: float = 30.0,
    path: str = ".",
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
) -> SFTPSession:
    """An SFTP client on `hostname`, or `PreflightError`; the arguments are `connect`'s.
    `path` must be a directory (it need not be listable: a drop box can be opened to write
    to). Every later request fails with `OperationTimeout` after `operation_timeout` seconds
    without an answer. Closing the client (or leaving its `with` block) closes the
    connection."""
    target = _arguments(hostname, port, username, password, _options(locals()), ALL_STAGES)
    sftp = _run(_open(target, operation_timeout))[1]
    assert sftp is not None, "the sftp stage leaves its session open when asked to"
    return sftp


async def aconnect(*args: Any, **kwargs: Any) -> paramiko.Transport:
    """`connect` for asyncio code: the checks run on the caller's event loop."""
    operation_timeout = kwargs.get("operation_timeout", DEFAULT_OPERATION_TIMEOUT)
    target = _bind(connect, args, kwargs, ALL_STAGES[:4])
    return (await _open(target, operation_timeout))[0]


async def aopen_sftp(*args: Any, **kwargs: Any) -> SFTPSession:
    """`open_sftp` for asyncio code: the checks run on the caller's event loop. (The client it
    returns is paramiko's, whose calls block: run them in a thread, `asyncio.to_thread`.)"""
    operation_timeout = kwargs.get("operation_timeout", DEFAULT_OPERATION_TIMEOUT)
    target = _bind(open_sftp, args, kwargs, ALL_STAGES)
    sftp = (await _open(target, operation_timeout))[1]
    assert sftp is not None, "the sftp stage leaves its session open when asked to"
    return sftp


_NOT_TARGET = ("hostname", "port", "username", "password", "operation_timeout")


def _options(arguments: dict[str, Any]) -> dict[str, Any]:
    """A call's keyword arguments, but those `_arguments` takes one by one."""
    return {name: value for name, value in arguments.items() if name not in _NOT_TARGET}


def _bind(
    function: Any, args: tuple[Any, ...], kwargs: dict[str, Any], stages: tuple[Stage, ...]
) -> Target:
    """The target an async call describes, checked against the sync function's signature."""
    import inspect

    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    return _arguments(
        arguments["hostname"],
        arguments["port"],
        arguments["username"],
        arguments["password"],
        _options(arguments),
        stages,
    )
