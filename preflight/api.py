"""The library: bounded replacements for `paramiko.Transport((host, port))` and friends.

`connect()` returns an authenticated `paramiko.Transport` and `open_sftp()` an SFTP client,
both reached through the same staged, deadline-bound probes as `preflight check` (dns, tcp with
fall-through between addresses, banner under an absolute deadline, key exchange and
authentication under a watchdog, host key verified by default). Whatever goes wrong raises one
exception type, `PreflightError`, carrying the stage and the diagnosis (code, summary, hint). The
SFTP client keeps a per-operation timeout, so no later `listdir` or `get` can hang forever.

    import preflight
    with preflight.open_sftp("sftp.example.com", 2222, user="ingest",
                             key=os.environ["SSH_PRIVATE_KEY"]) as sftp:
        sftp.put("report.csv", "upload/report.csv")
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Sequence
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    import paramiko

DEFAULT_OPERATION_TIMEOUT = 30.0


class PreflightError(Exception):
    """A connection could not be made: `stage` failed with `diagnosis`; `result` has every
    stage's outcome and facts (addresses tried, banner, host key, allowed methods…)."""

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


def _login_name() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER: let the server say
        return None


def _target(
    host: str,
    port: int,
    *,
    user: str | None,
    password: str | None,
    key: str | None,
    passphrase: str | None,
    known_hosts: str | None,
    fingerprints: Sequence[str],
    host_key_policy: HostKeyPolicyName,
    timeouts: Timeouts | None,
    deadline: float,
    stages: tuple[Stage, ...],
    path: str,
) -> Target:
    key_is_text = bool(key) and "PRIVATE KEY" in (key or "")
    return Target(
        name=f"{host}:{port}",
        host=host,
        port=port,
        user=user or _login_name(),
        stages=stages,
        timeouts=timeouts or Timeouts(),
        deadline=deadline,
        auth=AuthConfig(
            password=Secret(password) if password else None,
            key=Secret(key) if key else None,
            passphrase=Secret(passphrase) if passphrase else None,
            key_source="the key text given" if key_is_text else f"file {key}" if key else None,
        ),
        host_key=HostKeyConfig(
            known_hosts=known_hosts, fingerprints=tuple(fingerprints), policy=host_key_policy
        ),
        sftp_path=path,
    )


def _open(target: Target) -> tuple[TargetResult, paramiko.Transport, paramiko.SFTPClient | None]:
    from preflight.runner import open_connection

    result, conn = asyncio.run(open_connection(target))
    if conn is None or conn.transport is None:
        raise PreflightError(result)
    return result, conn.transport, conn.sftp


def connect(
    host: str,
    port: int = 22,
    *,
    user: str | None = None,
    password: str | None = None,
    key: str | None = None,
    passphrase: str | None = None,
    known_hosts: str | None = "~/.ssh/known_hosts",
    fingerprints: Sequence[str] = (),
    host_key_policy: HostKeyPolicyName = "strict",
    timeouts: Timeouts | None = None,
    deadline: float = 30.0,
) -> paramiko.Transport:
    """An authenticated transport to `host`, or `PreflightError`. `key` is a path or the
    private key text; `known_hosts` a path or content; the host key must verify unless
    `host_key_policy` says otherwise. Close the transport when done."""
    target = _target(
        host,
        port,
        user=user,
        password=password,
        key=key,
        passphrase=passphrase,
        known_hosts=known_hosts,
        fingerprints=fingerprints,
        host_key_policy=host_key_policy,
        timeouts=timeouts,
        deadline=deadline,
        stages=ALL_STAGES[:4],
        path=".",
    )
    return _open(target)[1]


def open_sftp(
    host: str,
    port: int = 22,
    *,
    user: str | None = None,
    password: str | None = None,
    key: str | None = None,
    passphrase: str | None = None,
    known_hosts: str | None = "~/.ssh/known_hosts",
    fingerprints: Sequence[str] = (),
    host_key_policy: HostKeyPolicyName = "strict",
    timeouts: Timeouts | None = None,
    deadline: float = 30.0,
    path: str = ".",
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
) -> paramiko.SFTPClient:
    """An SFTP client on `host` whose `path` has been listed, or `PreflightError`. Every
    later operation fails with a timeout after `operation_timeout` seconds without an answer.
    Closing the client (or leaving its `with` block) closes the connection."""
    target = _target(
        host,
        port,
        user=user,
        password=password,
        key=key,
        passphrase=passphrase,
        known_hosts=known_hosts,
        fingerprints=fingerprints,
        host_key_policy=host_key_policy,
        timeouts=timeouts,
        deadline=deadline,
        stages=ALL_STAGES,
        path=path,
    )
    _, _, sftp = _open(target)
    assert sftp is not None, "the sftp stage leaves its session open when asked to"
    sftp.get_channel().settimeout(operation_timeout)  # type: ignore[union-attr]
    return sftp
