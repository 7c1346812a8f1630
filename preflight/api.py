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
import inspect
import logging
import os
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ParamSpec, TypeVar, cast

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
    endpoint,
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
P = ParamSpec("P")


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

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the result (for pickling, copy, a ProcessPoolExecutor's answer).
        return (type(self), (self.result,))


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


def _seconds(name: str, value: Any) -> float:
    """A number of seconds above 0, or a clear error (0 would mean "do not wait", None "for
    ever": neither bounds anything)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a number of seconds, got {type(value).__name__}")
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"{name}: must be more than 0 seconds (and finite), got {value:g}")
    return float(value)


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
        base = Timeouts(*(_seconds("timeouts", timeouts),) * len(ALL_STAGES))
    elif isinstance(timeouts, Mapping):
        unknown = sorted(set(timeouts) - {stage.value for stage in ALL_STAGES})
        if unknown:
            stages = ", ".join(stage.value for stage in ALL_STAGES)
            raise TypeError(f"timeouts: unknown stage {unknown[0]!r} (the stages: {stages})")
        base = Timeouts(
            **{stage: _seconds(f"timeouts[{stage!r}]", value) for stage, value in timeouts.items()}
        )
    else:
        raise TypeError(
            f"timeouts: expected a Timeouts, a mapping of stage to seconds or a number, "
            f"got {type(timeouts).__name__}"
        )
    for stage in ALL_STAGES:  # a Timeouts built by hand is checked too
        _seconds(f"the {stage} timeout", base.for_stage(stage))
    changes = {
        stage: _seconds(name, single[name])
        for stage, name in _SINGLE_TIMEOUTS.items()
        if single.get(name) is not None
    }
    return replace(base, **changes)


# paramiko's single timeouts → the stage each bounds.
_SINGLE_TIMEOUTS = {
    "tcp": "timeout",
    "banner": "banner_timeout",
    "auth": "auth_timeout",
    "sftp": "channel_timeout",
}


def _key(
    key: str | os.PathLike[str] | paramiko.PKey | None,
    pkey: paramiko.PKey | None,
    key_filename: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    look_for_keys: bool,
) -> tuple[Secret | paramiko.PKey | None, str | None]:
    """The one key to offer, and how messages name it: a file by its path, anything else
    without its value (a string that is neither plainly a path nor an existing file may be a
    key's text, mangled: it must never reach a message)."""
    chosen = _one("the private key", {"key": key, "pkey": pkey, "key_filename": key_filename})
    if isinstance(chosen, paramiko.PKey):
        return (
            chosen,
            "the key object given (pkey=)" if pkey is not None else "the key object given",
        )
    if isinstance(chosen, bytes):
        raise TypeError("key: expected a path, the key's text (str) or a paramiko.PKey, got bytes")
    if key_filename is not None:
        # paramiko's file names: one, or a list of which the first that exists is used (as
        # ssh's IdentityFile), or the first, so that the missing one is named.
        names = [key_filename] if isinstance(key_filename, str | os.PathLike) else key_filename
        paths = [os.path.expanduser(os.fspath(name)) for name in names]
        if not paths:
            return None, None
        chosen = next((path for path in paths if os.path.exists(path)), paths[0])
        return Secret(chosen), f"file {chosen}"
    if isinstance(chosen, os.PathLike):
        chosen = os.fspath(chosen)
    if isinstance(chosen, str):
        from preflight import keytext

        path = os.path.expanduser(chosen)
        # As for a CI variable: what is not plainly a file name is taken for key text (a
        # mangled key fails as a bad key), so that it never appears in a message.
        if not os.path.exists(path) and keytext.is_key_text(chosen, from_variable=True):
            return Secret(chosen), "the key= argument (key text)"
        return Secret(path), f"file {path}"
    if chosen is not None:
        raise TypeError(
            f"key: expected a path, the key's text or a paramiko.PKey, got {type(chosen).__name__}"
        )
    if look_for_keys:
        for path in map(os.path.expanduser, _DEFAULT_KEYS):
            if os.path.exists(path):
                return Secret(path), f"file {path}"
    return None, None


_POLICIES: dict[str, HostKeyPolicyName] = {
    "RejectPolicy": "strict",
    "WarningPolicy": "warn",
    "AutoAddPolicy": "warn",  # accepts an unknown key (and logs it); never writes known_hosts
}


def _policy(given: Any) -> HostKeyPolicyName:
    """`strict`, `warn` or `off`; paramiko's MissingHostKeyPolicy (class or instance) as the
    one of these that does what it does."""
    if given in ("strict", "warn", "off"):
        return cast(HostKeyPolicyName, given)
    kind = given if isinstance(given, type) else type(given)
    if issubclass(kind, paramiko.MissingHostKeyPolicy) and kind.__name__ in _POLICIES:
        return _POLICIES[kind.__name__]
    raise TypeError(
        f"host_key_policy: expected 'strict', 'warn' or 'off' (or paramiko's RejectPolicy, "
        f"WarningPolicy, AutoAddPolicy), got {given!r}"
    )


def _fingerprints(given: str | Sequence[str]) -> tuple[str, ...]:
    # One pin as a string is one pin, not a sequence of one-letter ones.
    return (given,) if isinstance(given, str) else tuple(given)


@dataclass(frozen=True)
class _Call:
    """What one `connect`/`open_sftp` call asks for: the target, and its bounds afterwards."""

    target: Target
    operation_timeout: float
    open_timeout: float | None  # paramiko's channel_timeout, for opening a channel
    where: str  # the server as the caller named it, for messages


def _call(arguments: Mapping[str, Any], stages: tuple[Stage, ...]) -> _Call:
    """The call `arguments` (a `connect`/`open_sftp` call's parameters by name) describes."""
    given = dict(arguments)
    host = _one("the host", {"hostname": given["hostname"], "host": given["host"]})
    if host is None:
        raise TypeError("the host: give hostname (or host=)")
    port = given["port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise TypeError(f"port: expected a number from 1 to 65535, got {port!r}")
    key, key_source = _key(
        given["key"], given["pkey"], given["key_filename"], given["look_for_keys"]
    )
    password, passphrase = given["password"], given["passphrase"]
    if passphrase is None and key is not None and password is not None:
        passphrase = password  # as paramiko: "if not given, password is used"
    timeouts = _timeouts(
        given["timeouts"],
        **{name: given[name] for name in _SINGLE_TIMEOUTS.values()},
    )
    deadline = given["deadline"]
    if deadline is None:
        # The stages' own timeouts, at least 30 s: a timeout given larger than the default
        # deadline must not be cut off by it.
        deadline = max(30.0, sum(timeouts.for_stage(stage) for stage in stages))
    path = given.get("path") or "."
    target = Target(
        name=endpoint(host, port),
        host=host,
        port=port,
        user=_one("the user", {"username": given["username"], "user": given["user"]})
        or _login_name(),
        stages=stages,
        timeouts=timeouts,
        deadline=_seconds("deadline", deadline),
        auth=AuthConfig(
            password=Secret(password) if password else None,
            key=key if isinstance(key, Secret) else None,
            pkey=key if isinstance(key, paramiko.PKey) else None,
            passphrase=Secret(passphrase) if passphrase else None,
            agent=bool(given["allow_agent"]),
            key_source=key_source,
        ),
        host_key=HostKeyConfig(
            known_hosts=given["known_hosts"],
            fingerprints=_fingerprints(given["fingerprints"]),
            policy=_policy(given["host_key_policy"]),
        ),
        sftp_path=str(path),
        sftp_list=False,  # a drop box may be written and not listed: open it all the same
    )
    return _Call(
        target,
        operation_timeout=_seconds("operation_timeout", given["operation_timeout"]),
        open_timeout=given["channel_timeout"],
        where=target.name,
    )


def _say_warnings(result: TargetResult) -> None:
    """What a check would print as warnings (an unknown host key accepted under `warn`, a key
    file others can read), through `logging`, as paramiko's WarningPolicy does. Under `off`,
    asked for by the caller, that nothing was verified is logged at INFO, once per call."""
    quiet = result.target.host_key.policy == "off"
    for stage in result.stages:
        for warning in stage.warnings:
            level = logging.INFO if quiet and stage.stage is Stage.AUTH else logging.WARNING
            log.log(level, "%s: %s", result.target.name, warning)


async def _open(call: _Call) -> tuple[paramiko.Transport, SFTPSession | None]:
    from preflight.runner import open_connection

    result, conn = await open_connection(call.target)
    if conn is None or conn.transport is None:
        raise _error(result)
    _say_warnings(result)
    transport = bound_transport(
        conn.transport, call.operation_timeout, where=call.where, open_timeout=call.open_timeout
    )
    sftp = conn.sftp
    if isinstance(sftp, SFTPSession):
        sftp.bound(call.operation_timeout, where=call.where)
    return transport, sftp if isinstance(sftp, SFTPSession) else None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end from synchronous code: on a loop of its own, or, when this
    thread already runs one (a sync call from async code), on a loop in another thread — the
    caller's loop then waits for it; `aconnect`/`aopen_sftp` do not block it."""
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
    key: str | os.PathLike[str] | paramiko.PKey | None = None,
    key_filename: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    passphrase: str | None = None,
    allow_agent: bool = False,
    look_for_keys: bool = False,
    known_hosts: str | None = "~/.ssh/known_hosts",
    fingerprints: str | Sequence[str] = (),
    host_key_policy: HostKeyPolicyName
    | type[paramiko.MissingHostKeyPolicy]
    | paramiko.MissingHostKeyPolicy = "strict",
    timeout: float | None = None,
    banner_timeout: float | None = None,
    auth_timeout: float | None = None,
    channel_timeout: float | None = None,
    timeouts: Timeouts | Mapping[str, float] | float | None = None,
    deadline: float | None = None,
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
) -> paramiko.Transport:
    """An authenticated transport to `hostname`, or `PreflightError`.

    paramiko's names mean what they mean there: `timeout` bounds the TCP connect,
    `banner_timeout` the identification, `auth_timeout` the key exchange and login,
    `channel_timeout` a channel's opening; `key_filename` is a path or a list (the first that
    exists is used), `pkey` a key object; `password` decrypts the key when no `passphrase` is
    given. Unlike paramiko, `allow_agent` and `look_for_keys` default to False (a call logs in
    with what it is given) and the host key must verify (`known_hosts`, `fingerprints`;
    `host_key_policy="warn"` — or paramiko's WarningPolicy/AutoAddPolicy — logs an unknown key
    and goes on). `timeouts` sets every stage at once (a `Timeouts`, a mapping or a number);
    `deadline` bounds the whole connection (default: the stages' timeouts together, at least
    30 s). Every channel opened on the transport afterwards, however (`open_session`,
    `paramiko.SFTPClient.from_transport`), waits no longer than `operation_timeout` for each
    answer, read or write. Close the transport when done."""
    return _run(_open(_call(locals(), ALL_STAGES[:4])))[0]


def open_sftp(
    hostname: str | None = None,
    port: int = 22,
    username: str | None = None,
    password: str | None = None,
    *,
    host: str | None = None,
    user: str | None = None,
    pkey: paramiko.PKey | None = None,
    key: str | os.PathLike[str] | paramiko.PKey | None = None,
    key_filename: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    passphrase: str | None = None,
    allow_agent: bool = False,
    look_for_keys: bool = False,
    known_hosts: str | None = "~/.ssh/known_hosts",
    fingerprints: str | Sequence[str] = (),
    host_key_policy: HostKeyPolicyName
    | type[paramiko.MissingHostKeyPolicy]
    | paramiko.MissingHostKeyPolicy = "strict",
    timeout: float | None = None,
    banner_timeout: float | None = None,
    auth_timeout: float | None = None,
    channel_timeout: float | None = None,
    timeouts: Timeouts | Mapping[str, float] | float | None = None,
    deadline: float | None = None,
    path: str = ".",
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
) -> SFTPSession:
    """An SFTP client on `hostname`, or `PreflightError`; the arguments are `connect`'s.
    `path` must be a directory (it need not be listable: a drop box can be opened to write
    to). Every later request fails with `OperationTimeout` after `operation_timeout` seconds
    without an answer (or without the server taking any of a write). Closing the client (or
    leaving its `with` block) closes the connection."""
    sftp = _run(_open(_call(locals(), ALL_STAGES)))[1]
    assert sftp is not None, "the sftp stage leaves its session open when asked to"
    return sftp


def _on_the_callers_loop(
    sync: Callable[P, Any],
) -> Callable[[Callable[..., Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Give an async twin `sync`'s signature, for type checkers and for `help()` alike."""

    def twin(
        function: Callable[..., Coroutine[Any, Any, T]],
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        function.__signature__ = inspect.signature(sync)  # type: ignore[attr-defined]
        return function

    return twin


def _bound(
    sync: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """An async call's arguments by name, checked against the sync function's signature."""
    bound = inspect.signature(sync).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


@_on_the_callers_loop(connect)
async def aconnect(*args: Any, **kwargs: Any) -> paramiko.Transport:
    """`connect` for asyncio code: the checks run on the caller's event loop."""
    return (await _open(_call(_bound(connect, args, kwargs), ALL_STAGES[:4])))[0]


@_on_the_callers_loop(open_sftp)
async def aopen_sftp(*args: Any, **kwargs: Any) -> SFTPSession:
    """`open_sftp` for asyncio code: the checks run on the caller's event loop. (The client it
    returns is paramiko's, whose calls block: run them in a thread, `asyncio.to_thread`.)"""
    sftp = (await _open(_call(_bound(open_sftp, args, kwargs), ALL_STAGES)))[1]
    assert sftp is not None, "the sftp stage leaves its session open when asked to"
    return sftp
