"""The library as a paramiko user meets it, against a real OpenSSH sshd and a real firewall.

The README's "Migrating from paramiko" section starts from the helper preflight was born
from and shows its one-line replacement; both code blocks are executed here as written, with
``HOST``, ``PORT`` and ``getpass.getpass`` supplied the way the user's module would. The
server is OpenSSH's sshd with password login for the unprivileged user ``nobody``; the
firewall is nftables in a network namespace made by the test.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import logging
import os
import pwd
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

import preflight

from .netns import NetNamespace
from .sshd import OpenSSHServer

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "nobody", "correct horse battery staple"
TIMEOUT = 3.0  # the helper's timeout=3.0


def readme_block(marker: str) -> str:
    """The ```python block that follows ``<!-- marker -->`` in README.md."""
    readme = (REPO / "README.md").read_text()
    found = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", readme, re.DOTALL)
    assert found, f"README.md has no python block after <!-- {marker} -->"
    return found.group(1)


def helper_from_readme(marker: str, host: str, port: int) -> Callable[[str], Any]:
    """The README's ``connect(username)`` helper, defined in a module of its own."""
    module: dict[str, Any] = {
        "HOST": host,
        "PORT": port,
        "getpass": getpass,
        "paramiko": paramiko,
        "preflight": preflight,
    }
    exec(compile(readme_block(marker), f"README.md <!-- {marker} -->", "exec"), module)
    helper: Callable[[str], Any] = module["connect"]
    return helper


@pytest.fixture
def password_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper asks for the password with getpass; the test types it."""
    monkeypatch.setattr(getpass, "getpass", lambda prompt="Password: ": PASSWORD)


@pytest.fixture
def known_hosts_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[[OpenSSHServer], None]:
    """Give the user a ~/.ssh/known_hosts that holds the server's keys, as `ssh` would have."""

    def write(server: OpenSSHServer) -> None:
        home = tmp_path / "home"
        (home / ".ssh").mkdir(parents=True, exist_ok=True)
        (home / ".ssh" / "known_hosts").write_text("\n".join(server.known_hosts_lines()) + "\n")
        monkeypatch.setenv("HOME", str(home))

    return write


@pytest.fixture
def password_sshd(sshd_factory: Callable[..., OpenSSHServer]) -> OpenSSHServer:
    return sshd_factory(passwords={USER: PASSWORD})


@pytest.fixture
def drop_box() -> Iterator[str]:
    """A directory ``nobody`` may write into but not list (mode 0733, owned by root)."""
    parent = Path(tempfile.mkdtemp(prefix="pfl-dropbox-"))
    try:
        parent.chmod(0o755)  # nobody must be able to reach it
        box = parent / "upload"
        box.mkdir()
        (box / "already-there.txt").write_text("not yours to see\n")
        box.chmod(0o733)
        yield str(box)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def sshd_in(netns: NetNamespace, sshd_factory: Callable[..., OpenSSHServer]) -> OpenSSHServer:
    return sshd_factory(passwords={USER: PASSWORD}, netns=netns)


def pinned(server: OpenSSHServer) -> list[str]:
    return list(server.host_key_fingerprints.values())


# --- the README's before and after --------------------------------------------------------------


def test_the_helper_preflight_was_born_from_works_against_this_sshd(password_sshd, password_prompt):
    # The baseline: the README's "before" really is working code when the network is fine.
    sftp = helper_from_readme("migration-before", password_sshd.host, password_sshd.port)("nobody")
    try:
        assert sftp.stat("/").st_mode is not None
    finally:
        sftp.get_channel().get_transport().close()


def test_the_one_line_migration_works_against_a_real_sshd(
    password_sshd, password_prompt, known_hosts_for
):
    known_hosts_for(password_sshd)
    connect = helper_from_readme("migration-after", password_sshd.host, password_sshd.port)
    with connect("nobody") as sftp:
        assert "etc" in sftp.listdir("/")
        transport = sftp.get_channel().get_transport()
        assert transport.is_authenticated() and transport.get_username() == USER
    assert not transport.is_active()  # closing the client closed the connection


def test_the_migrated_helper_fails_within_its_timeout_on_a_dropping_port_as_the_old_catch_expects(
    netns, sshd_factory, password_prompt, known_hosts_for
):
    server = sshd_in(netns, sshd_factory)
    known_hosts_for(server)
    netns.drop_tcp_port(server.port)  # a firewall that drops, no RST: paramiko waits minutes
    connect = helper_from_readme("migration-after", server.host, server.port)

    def attempt() -> tuple[BaseException | None, float]:
        started = time.monotonic()
        try:
            connect("nobody")
        # The old code's clause, spelled as it is: socket.error, not its alias OSError.
        except (paramiko.SSHException, socket.error) as caught:  # noqa: UP024
            return caught, time.monotonic() - started
        return None, time.monotonic() - started

    caught, elapsed = netns.call(attempt, timeout=30)
    assert isinstance(caught, preflight.PreflightTimeout), caught
    assert isinstance(caught, socket.timeout)
    assert caught.diagnosis.code == "tcp.timeout"
    assert elapsed < TIMEOUT + 1.5, f"took {elapsed:.2f}s"


def test_the_sshclient_partial_fix_takes_the_same_arguments(
    password_sshd, password_prompt, known_hosts_for
):
    # client.connect(HOST, PORT, username, password, timeout=3.0, allow_agent=False,
    #                look_for_keys=False); client.open_sftp()
    known_hosts_for(password_sshd)
    arguments = (password_sshd.host, password_sshd.port, USER, getpass.getpass())
    options = {"timeout": TIMEOUT, "allow_agent": False, "look_for_keys": False}
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    client.connect(*arguments, **options)
    try:
        assert client.open_sftp().stat("/").st_mode is not None
    finally:
        client.close()
    with preflight.open_sftp(*arguments, **options) as sftp:
        assert sftp.stat("/").st_mode is not None


# --- failures caught as paramiko's --------------------------------------------------------------


def test_a_wrong_password_is_what_paramiko_raises_for_one(password_sshd, known_hosts_for):
    known_hosts_for(password_sshd)
    where = (password_sshd.host, password_sshd.port, USER, "not-the-password-x9")
    with pytest.raises(paramiko.AuthenticationException):
        _paramiko_login(*where)
    with pytest.raises(paramiko.AuthenticationException) as caught:
        preflight.open_sftp(*where, timeout=TIMEOUT)
    assert isinstance(caught.value, preflight.PreflightError)
    assert caught.value.diagnosis.code == "auth.denied"
    assert PASSWORD not in str(caught.value) and "x9" not in str(caught.value)


def _paramiko_login(host: str, port: int, username: str, password: str) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            host, port, username, password, timeout=TIMEOUT, allow_agent=False, look_for_keys=False
        )
    finally:
        client.close()


# --- nothing hangs after the connect ------------------------------------------------------------


def test_from_transport_after_the_network_starts_dropping_raises_in_operation_timeout(
    netns, sshd_factory
):
    server = sshd_in(netns, sshd_factory)

    def connect_then_drop() -> tuple[BaseException | None, float]:
        transport = preflight.connect(
            server.host,
            server.port,
            USER,
            PASSWORD,
            fingerprints=pinned(server),
            operation_timeout=2.0,
        )
        try:
            netns.drop_tcp_port(server.port)
            started = time.monotonic()
            try:
                paramiko.SFTPClient.from_transport(transport)  # the old way to get a client
            except TimeoutError as caught:
                return caught, time.monotonic() - started
            return None, time.monotonic() - started
        finally:
            transport.close()

    caught, elapsed = netns.call(connect_then_drop, timeout=30)
    assert isinstance(caught, preflight.OperationTimeout), caught
    assert str(caught) == f"{server.host}:{server.port} did not answer a channel open in 2s"
    assert elapsed < 2.0 + 1.5, f"took {elapsed:.2f}s"


def test_channel_timeout_bounds_opening_a_channel_as_in_paramiko(netns, sshd_factory):
    server = sshd_in(netns, sshd_factory)

    def connect_drop_open() -> tuple[BaseException | None, float]:
        transport = preflight.connect(
            server.host,
            server.port,
            USER,
            PASSWORD,
            fingerprints=pinned(server),
            channel_timeout=1.0,
            operation_timeout=20.0,
        )
        try:
            netns.drop_tcp_port(server.port)
            started = time.monotonic()
            try:
                transport.open_session()
            except TimeoutError as caught:
                return caught, time.monotonic() - started
            return None, time.monotonic() - started
        finally:
            transport.close()

    caught, elapsed = netns.call(connect_drop_open, timeout=30)
    assert str(caught) == f"{server.host}:{server.port} did not answer a channel open in 1s"
    assert elapsed < 1.0 + 1.5, f"took {elapsed:.2f}s"


def test_an_sftp_request_after_the_network_starts_dropping_names_operation_host_and_seconds(
    netns, sshd_factory
):
    server = sshd_in(netns, sshd_factory)

    def open_then_drop() -> tuple[BaseException | None, float]:
        sftp = preflight.open_sftp(
            server.host,
            server.port,
            USER,
            PASSWORD,
            fingerprints=pinned(server),
            operation_timeout=2.0,
        )
        with sftp:
            netns.drop_tcp_port(server.port)
            started = time.monotonic()
            try:
                sftp.listdir("/")
            except TimeoutError as caught:
                return caught, time.monotonic() - started
            return None, time.monotonic() - started

    caught, elapsed = netns.call(open_then_drop, timeout=30)
    assert isinstance(caught, preflight.OperationTimeout), caught
    assert isinstance(caught, socket.timeout)
    assert str(caught) == f"{server.host}:{server.port} did not answer the SFTP opendir in 2s"
    assert elapsed < 2.0 + 1.5, f"took {elapsed:.2f}s"


@pytest.mark.parametrize("client", ["open_sftp", "from_transport"])
def test_an_upload_the_network_stops_taking_is_given_up_in_operation_timeout(
    netns, sshd_factory, client
):
    # With a send buffer smaller than the SSH channel's window (as on many real links; here
    # tcp_wmem caps it at 256 KB), a dropped upload blocks in the socket's send, which
    # paramiko retries for ever: minutes, until TCP itself gives up.
    netns.run(["sysctl", "-q", "-w", "net.ipv4.tcp_wmem=4096 16384 262144"], check=True)
    server = sshd_in(netns, sshd_factory)
    upload = f"/tmp/pfl-upload-{os.getpid()}-{client}.bin"

    def upload_then_drop() -> tuple[BaseException | None, float]:
        where = (server.host, server.port, USER, PASSWORD)
        options: dict[str, Any] = {"fingerprints": pinned(server), "operation_timeout": 2.0}
        if client == "open_sftp":
            sftp = preflight.open_sftp(*where, **options)
        else:
            sftp = paramiko.SFTPClient.from_transport(preflight.connect(*where, **options))
        dropped_at: list[float] = []

        def progress(done: int, _total: int) -> None:
            if done >= 2 << 20 and not dropped_at:
                netns.drop_tcp_port(server.port)
                dropped_at.append(time.monotonic())

        try:
            sftp.putfo(io.BytesIO(bytes(32 << 20)), upload, callback=progress)
        except TimeoutError as caught:
            return caught, time.monotonic() - dropped_at[0]
        finally:
            sftp.get_channel().get_transport().close()
        return None, time.monotonic() - dropped_at[0]

    try:
        caught, elapsed = netns.call(upload_then_drop, timeout=60)
    finally:
        if os.path.exists(upload):
            os.remove(upload)
    operation = "the SFTP write" if client == "open_sftp" else "a channel send"
    assert isinstance(caught, preflight.OperationTimeout), caught
    assert str(caught) == f"{server.host}:{server.port} took no data for 2s during {operation}"
    assert elapsed < 2.0 + 2.0, f"took {elapsed:.2f}s"


# --- asyncio, logging, drop boxes ---------------------------------------------------------------


def test_async_code_can_await_it_or_call_it(password_sshd):
    where = (password_sshd.host, password_sshd.port, USER, PASSWORD)
    pins = pinned(password_sshd)

    async def main() -> list[str]:
        async_sftp = await preflight.aopen_sftp(*where, fingerprints=pins)
        sync_sftp = preflight.open_sftp(*where, fingerprints=pins)  # inside the running loop
        with async_sftp, sync_sftp:
            return [str(async_sftp.normalize(".")), str(sync_sftp.normalize("."))]

    assert asyncio.run(main()) == ["/", "/"]  # nobody's home does not exist: sshd starts at /


def test_warn_logs_the_unknown_key_with_its_fingerprint(password_sshd, caplog):
    caplog.set_level(logging.WARNING, logger="preflight")
    where = (password_sshd.host, password_sshd.port, USER, PASSWORD)
    with preflight.open_sftp(*where, known_hosts=None, host_key_policy="warn") as sftp:
        offered = sftp.get_channel().get_transport().get_remote_server_key()
    expected = password_sshd.host_key_fingerprints[offered.get_name()]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(expected in message for message in warnings), warnings


def test_a_drop_box_that_may_be_written_but_not_listed_opens_with_its_path(password_sshd, drop_box):
    where = (password_sshd.host, password_sshd.port, USER, PASSWORD)
    with preflight.open_sftp(*where, fingerprints=pinned(password_sshd), path=drop_box) as sftp:
        with sftp.open(f"{drop_box}/build.tar", "w") as upload:
            upload.write(b"artifact")
        with pytest.raises(PermissionError):
            sftp.listdir(drop_box)
    assert (Path(drop_box) / "build.tar").read_bytes() == b"artifact"
    assert (Path(drop_box) / "build.tar").stat().st_uid == pwd.getpwnam(USER).pw_uid
