"""Fixtures shared by the test suite: client keys and a healthy lab SFTP server."""

from __future__ import annotations

from collections.abc import Iterator

import paramiko
import pytest

from preflight import lab
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
