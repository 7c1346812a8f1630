"""Fixtures for system tests: a real OpenSSH sshd and throw-away network namespaces.

Everything under ``tests/system`` is marked ``system`` (``pytest -m "not system"`` leaves it
out). A missing requirement (not root, no sshd, no nft) skips the test locally but *fails*
it when the ``CI`` environment variable is set: CI installs openssh-server and nftables
and runs as root, so a skip there would hide a broken setup.

Fixtures:

* ``client_key`` — ``(private_key_path, public_key_line)``, a fresh ed25519 key.
* ``sshd_factory`` — ``sshd_factory(authorized_keys=[...], sftp=True, extra_config=[...],
  netns=None, passwords=None) -> OpenSSHServer``, started; every server is stopped at teardown.
* ``sshd_server`` — a started server that authorizes ``client_key``, with SFTP.
* ``netns`` — a fresh :class:`NetNamespace` (deleted at teardown).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

from .netns import NetNamespace, netns_available
from .sshd import OpenSSHServer, generate_client_key, sshd_available

_HERE = Path(__file__).resolve().parent

SshdFactory = Callable[..., OpenSSHServer]


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set and non-empty."""
    return bool(os.environ.get("CI"))


def require(reason: str | None) -> None:
    """Do nothing if *reason* is None; else skip the test, or fail it under ``CI``."""
    if reason is None:
        return
    _missing(reason)


def _missing(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"system test requirement missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory with ``pytest.mark.system``."""
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.system)


@pytest.fixture
def client_key(tmp_path: Path) -> tuple[Path, str]:
    """A fresh ed25519 client key: ``(private_key_path, public_key_line)``."""
    require(sshd_available())
    return generate_client_key(tmp_path / "client-key")


@pytest.fixture
def sshd_factory() -> Iterator[SshdFactory]:
    """Start real OpenSSH servers on demand; all are stopped at teardown."""
    require(sshd_available())
    servers: list[OpenSSHServer] = []

    def start(
        authorized_keys: Sequence[str] = (),
        *,
        sftp: bool = True,
        extra_config: Sequence[str] = (),
        netns: NetNamespace | None = None,
        passwords: Mapping[str, str] | None = None,
    ) -> OpenSSHServer:
        server = OpenSSHServer(
            authorized_keys=authorized_keys,
            sftp=sftp,
            extra_config=extra_config,
            netns=netns,
            passwords=passwords,
        )
        server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture
def sshd_server(sshd_factory: SshdFactory, client_key: tuple[Path, str]) -> OpenSSHServer:
    """A running sshd (SFTP enabled) that authorizes ``client_key`` for root."""
    return sshd_factory(authorized_keys=[client_key[1]])


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    """A fresh network namespace with only loopback, deleted at teardown."""
    require(netns_available())
    with NetNamespace() as ns:
        yield ns
