"""The library API: bounded connect/open_sftp that raise one exception carrying the diagnosis."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import paramiko
import pytest
from checking import FAST

import preflight
from preflight import lab
from preflight.model import Stage, Timeouts


def test_open_sftp_returns_a_working_client_that_closes_its_connection(
    sftp_server, client_key_text, tmp_path
):
    local = tmp_path / "report.csv"
    local.write_text("a,b\n1,2\n")
    with preflight.open_sftp(
        "127.0.0.1",
        sftp_server.port,
        user="deploy",
        key=client_key_text,
        known_hosts=None,
        fingerprints=[sftp_server.fingerprint],
        path="upload",
    ) as sftp:
        sftp.put(str(local), "upload/report.csv")
        assert sftp.listdir("upload") == ["report.csv"]
        transport = sftp.get_channel().get_transport()
    assert not transport.is_active()


def test_connect_returns_an_authenticated_transport(sftp_server, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sftp_server.known_hosts_line() + "\n")
    transport = preflight.connect(
        "127.0.0.1",
        sftp_server.port,
        user="operator",
        password="s3cret-pass",
        known_hosts=str(known_hosts),
    )
    try:
        assert transport.is_authenticated()
        assert transport.get_username() == "operator"
    finally:
        transport.close()


def test_host_key_is_verified_by_default(sftp_server, client_key_text, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(preflight.PreflightError) as caught:
        preflight.connect(
            "127.0.0.1",
            sftp_server.port,
            user="deploy",
            key=client_key_text,
            known_hosts=str(empty),
        )
    assert caught.value.stage is Stage.AUTH
    assert caught.value.diagnosis.code == "auth.host_key_unknown"
    assert sftp_server.fingerprint in str(caught.value)


def test_a_dropping_firewall_raises_within_the_tcp_timeout_instead_of_hanging():
    # The call this library replaces, paramiko.Transport((host, port)), waits minutes here.
    with lab.DroppingPort() as dropping:
        started = time.monotonic()
        with pytest.raises(preflight.PreflightError) as caught:
            preflight.connect("127.0.0.1", dropping.port, password="x", timeouts=FAST)
        elapsed = time.monotonic() - started
    assert caught.value.diagnosis.code == "tcp.timeout"
    assert elapsed < FAST.tcp + 1.0
    assert caught.value.result.stages[1].facts["attempts"][0]["result"] == "timeout"


def test_the_sftp_client_keeps_a_per_operation_timeout(client_key, client_key_text):
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, stalling=["/stuck"]) as server:
        sftp = preflight.open_sftp(
            "127.0.0.1",
            server.port,
            user="deploy",
            key=client_key_text,
            host_key_policy="off",
            timeouts=Timeouts(auth=5, sftp=5),
            operation_timeout=1.0,
        )
        try:
            started = time.monotonic()
            with pytest.raises((socket.timeout, TimeoutError)):
                sftp.listdir("/stuck")
            assert time.monotonic() - started < 1.0 + 1.0
        finally:
            sftp.close()


def test_check_is_exported_for_library_users(sftp_server):
    from preflight.model import ALL_STAGES, Target

    report = preflight.check(
        [Target(name="x", host="127.0.0.1", port=sftp_server.port, stages=ALL_STAGES[:3])]
    )
    assert report.ok


# --- paramiko's vocabulary ------------------------------------------------------------------------


def test_paramiko_sshclient_arguments_mean_what_they_mean_there(sftp_server, client_key, tmp_path):
    # hostname, port, username, password positionally, as SSHClient.connect takes them.
    transport = preflight.connect(
        "127.0.0.1", sftp_server.port, "operator", "s3cret-pass", host_key_policy="off"
    )
    try:
        assert transport.get_username() == "operator"
    finally:
        transport.close()
    # pkey (a key object) and key_filename (a path, or a list: the first that exists).
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(lab.private_key_text(client_key))
    for credentials in (
        {"pkey": client_key},
        {"key_filename": str(key_file)},
        {"key_filename": [str(tmp_path / "missing"), str(key_file)]},
    ):
        with preflight.open_sftp(
            "127.0.0.1", sftp_server.port, "deploy", host_key_policy="off", **credentials
        ) as sftp:
            assert "upload" in sftp.listdir(".")


def test_paramiko_timeouts_set_the_stages_they_bound():
    with lab.Tarpit() as tarpit:
        started = time.monotonic()
        with pytest.raises(preflight.PreflightError) as caught:
            preflight.connect("127.0.0.1", tarpit.port, "x", "y", banner_timeout=1.0, timeout=2)
        assert time.monotonic() - started < 1.0 + 1.0
    assert caught.value.diagnosis is not None
    assert caught.value.diagnosis.code == "banner.timeout"
    assert caught.value.result.target.timeouts == Timeouts(tcp=2.0, banner=1.0)


def test_timeouts_take_a_timeouts_a_mapping_or_one_number():
    with lab.DroppingPort() as dropping:
        for timeouts in (1.0, {"tcp": 1.0}, preflight.Timeouts(tcp=1.0)):
            started = time.monotonic()
            with pytest.raises(preflight.PreflightError):
                preflight.connect("127.0.0.1", dropping.port, "x", "y", timeouts=timeouts)
            assert time.monotonic() - started < 1.0 + 1.0
    with pytest.raises(TypeError, match="unknown stage 'tpc'"):
        preflight.connect("127.0.0.1", 22, timeouts={"tpc": 1})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            {"hostname": "h", "username": "a", "user": "b"},
            "the user: give one of username or user, not both",
        ),
        ({"hostname": "h", "host": "h"}, "the host: give one of hostname or host, not both"),
        ({"hostname": "h", "key": "/k", "pkey": object()}, "give one of key or pkey"),
        ({}, "the host: give hostname"),
    ],
)
def test_contradictory_or_missing_spellings_are_a_clear_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        preflight.connect(**call)


def test_failures_are_caught_by_what_caught_paramikos():
    with lab.DroppingPort() as dropping:
        with pytest.raises((paramiko.SSHException, socket.error)):  # code written for paramiko
            preflight.connect("127.0.0.1", dropping.port, "x", "y", timeout=1)
        with pytest.raises(socket.timeout) as caught:  # a timeout is a timeout
            preflight.connect("127.0.0.1", dropping.port, "x", "y", timeout=1)
    assert isinstance(caught.value, preflight.PreflightTimeout)
    assert caught.value.diagnosis is not None and caught.value.diagnosis.code == "tcp.timeout"


def test_a_refused_login_is_an_authentication_exception(sftp_server):
    with pytest.raises(paramiko.AuthenticationException) as caught:
        preflight.connect("127.0.0.1", sftp_server.port, "operator", "wrong", host_key_policy="off")
    assert isinstance(caught.value, preflight.PreflightAuthError)
    assert caught.value.stage is Stage.AUTH


# --- bounded afterwards ---------------------------------------------------------------------------


def test_a_stalled_operation_names_the_operation_the_host_and_the_seconds(client_key):
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, stalling=["/stuck"]) as server:
        where = f"127.0.0.1:{server.port}"
        sftp = preflight.open_sftp(
            "127.0.0.1",
            server.port,
            "deploy",
            pkey=client_key,
            host_key_policy="off",
            operation_timeout=1.0,
        )
        with sftp, pytest.raises(preflight.OperationTimeout) as caught:
            sftp.listdir("/stuck")
    assert str(caught.value) == f"{where} did not answer the SFTP opendir in 1s"
    assert isinstance(caught.value, socket.timeout)


def test_the_old_from_transport_on_a_connected_transport_cannot_hang(client_key):
    # paramiko's invoke_subsystem waits for ever; the transport connect() returns bounds it.
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, stall="subsystem") as server:
        transport = preflight.connect(
            "127.0.0.1",
            server.port,
            "deploy",
            pkey=client_key,
            host_key_policy="off",
            operation_timeout=1.0,
        )
        try:
            started = time.monotonic()
            with pytest.raises(
                preflight.OperationTimeout, match="did not answer a channel request in 1s"
            ):
                paramiko.SFTPClient.from_transport(transport)
            assert time.monotonic() - started < 1.0 + 1.0
        finally:
            transport.close()


# --- asyncio, logging, drop boxes -----------------------------------------------------------------


def test_it_works_from_async_code_both_ways(sftp_server):
    async def main() -> tuple[str, str]:
        sync = preflight.connect(  # a sync call inside a running loop
            "127.0.0.1", sftp_server.port, "operator", "s3cret-pass", host_key_policy="off"
        )
        awaited = await preflight.aconnect(
            "127.0.0.1", sftp_server.port, "operator", "s3cret-pass", host_key_policy="off"
        )
        names = sync.get_username(), awaited.get_username()
        sync.close()
        awaited.close()
        return names

    assert asyncio.run(main()) == ("operator", "operator")


def test_an_unknown_host_key_under_warn_is_logged_with_its_fingerprint(sftp_server, caplog):
    caplog.set_level(logging.WARNING, logger="preflight")
    transport = preflight.connect(
        "127.0.0.1",
        sftp_server.port,
        "operator",
        "s3cret-pass",
        known_hosts=None,
        host_key_policy="warn",
    )
    transport.close()
    assert any(sftp_server.fingerprint in record.getMessage() for record in caplog.records)


def test_a_path_that_may_be_written_but_not_listed_opens(client_key):
    # The server refuses to list /upload (a drop box); opening it for upload needs no listing.
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, unlistable=["/upload"]) as server:
        sftp = preflight.open_sftp(
            "127.0.0.1",
            server.port,
            "deploy",
            pkey=client_key,
            host_key_policy="off",
            path="/upload",
        )
        with sftp, pytest.raises(PermissionError):
            sftp.listdir("/upload")
