"""The library API: bounded connect/open_sftp that raise one exception carrying the diagnosis."""

from __future__ import annotations

import socket
import time

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
