"""Fixtures shared by the test suite: client keys, a healthy lab SFTP server, and a guard.

The guard (autouse) keeps every in-process test on loopback, as DESIGN §9 requires: a name
lookup of anything but a loopback literal or `localhost`, or a connect to a non-loopback
address, fails at once with an error naming the test guard instead of leaving the machine.
Processes that tests start (the CLI, system tests in namespaces) are not covered by it.
Every test also gets an empty HOME, so a developer's ~/.ssh/config or known_hosts cannot change
what a test sees, and the loggers as it found them: `cli.run` stops "preflight" and "paramiko"
propagating (right for a process), which would hide later tests' records from `caplog`.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import Any

import paramiko
import pytest

from preflight import lab, sshconfig
from preflight.model import AuthConfig, Secret


@pytest.fixture(scope="session")
def client_key() -> paramiko.PKey:
    return lab.generate_ed25519()


@pytest.fixture(scope="session")
def client_key_text(client_key: paramiko.PKey) -> str:
    return lab.private_key_text(client_key)


@pytest.fixture
def key_auth(client_key_text: str) -> AuthConfig:
    return AuthConfig(key=Secret(client_key_text), key_source="variable SSH_PRIVATE_KEY")


@pytest.fixture
def sftp_server(client_key: paramiko.PKey) -> Iterator[lab.SFTPServer]:
    """A healthy SFTP server: `deploy` by key, `operator` by password."""
    with lab.SFTPServer(
        users={"operator": "s3cret-pass"},
        authorized_keys={"deploy": [client_key]},
        unlistable=["/private"],
    ) as server:
        yield server


def _is_loopback(host: Any) -> bool:
    if host is None or host == "localhost":
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: {host!r} is not loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise OSError(errno.EPERM, f"test guard: {address[0]!r} is not loopback")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(autouse=True)
def empty_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    # ssh's ~ is the passwd home, not $HOME: as for a user with no passwd entry, let the
    # (injected) HOME stand in for it, so no test reads the real ~/.ssh of whoever runs it.
    # tests/test_sshconfig.py checks the real passwd home against `ssh -G`.
    monkeypatch.setattr(sshconfig, "passwd_home", lambda: None)


# preflight's and paramiko's loggers as the session found them. An in-process `preflight check`
# stops them propagating (`cli._quiet_libraries`), and one run by a module- or session-scoped
# fixture did so outside any test: every later test then missed their records in caplog.
_LOGGERS = [logging.getLogger(name) for name in ("preflight", "paramiko")]
_LOGGERS_AT_START = [(logger.propagate, list(logger.handlers)) for logger in _LOGGERS]


def _loggers_as_at_start() -> None:
    for logger, (propagate, handlers) in zip(_LOGGERS, _LOGGERS_AT_START, strict=True):
        logger.propagate = propagate
        logger.handlers[:] = handlers


@pytest.fixture(autouse=True)
def loggers_as_found() -> Iterator[None]:
    _loggers_as_at_start()
    yield
    _loggers_as_at_start()
