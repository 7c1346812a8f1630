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
from preflight.model import ALL_STAGES, Stage, Timeouts


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


def test_every_public_name_is_there_and_lazy():
    import subprocess
    import sys

    for name in preflight.__all__:
        assert getattr(preflight, name) is not None, name
    code = "import sys, preflight; print('paramiko' in sys.modules, 'asyncio' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["False", "False"], done.stderr


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


# --- what a paramiko user passes, and what comes back (review of #12) -----------------------------


def test_a_mangled_key_text_never_reaches_a_message(sftp_server, client_key_text, caplog):
    # The key's body without its BEGIN/END lines: neither a key that loads nor a file name,
    # with or without a '/' among its base64 characters.
    body = "".join(client_key_text.splitlines()[1:-1]).replace("/", "")
    caplog.set_level(logging.DEBUG)
    for mangled in (body, f"{body[:40]}/{body[40:]}"):
        with pytest.raises(preflight.PreflightAuthError) as caught:
            preflight.connect(
                "127.0.0.1", sftp_server.port, "deploy", key=mangled, host_key_policy="off"
            )
        assert caught.value.diagnosis.code == "auth.bad_key"
        for text in (
            str(caught.value),
            caught.value.diagnosis.hint,
            caplog.text,
            repr(caught.value.result),
        ):
            assert body[:24] not in text


def test_the_password_decrypts_the_key_when_no_passphrase_is_given_as_in_paramiko(tmp_path):
    key = lab.generate_rsa()
    encrypted = tmp_path / "id_rsa"
    key.write_private_key_file(str(encrypted), password="key-passphrase")
    with (
        lab.SFTPServer(authorized_keys={"deploy": [key]}) as server,
        preflight.open_sftp(
            "127.0.0.1",
            server.port,
            "deploy",
            "key-passphrase",
            key_filename=[str(tmp_path / "missing"), encrypted],  # a Path in a list, too
            host_key_policy="off",
        ) as sftp,
    ):
        assert sftp.get_channel().get_transport().is_authenticated()


def test_the_deadline_by_default_leaves_room_for_the_timeouts_given():
    from preflight import api

    arguments = {**_defaults(preflight.connect), "hostname": "h", "timeout": 40.0}
    assert api._call(arguments, ALL_STAGES[:4]).target.deadline == 40 + 5 + 10 + 3
    assert (
        api._call(_defaults(preflight.connect) | {"hostname": "h"}, ALL_STAGES).target.deadline
        == 31
    )
    explicit = _defaults(preflight.connect) | {"hostname": "h", "deadline": 12.0}
    assert api._call(explicit, ALL_STAGES).target.deadline == 12


def _defaults(function: object) -> dict[str, object]:
    import inspect

    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()  # type: ignore[arg-type]
    }


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"timeouts": 0}, ValueError, "timeouts: must be more than 0 seconds"),
        ({"timeouts": {"tcp": -1}}, ValueError, "timeouts['tcp']: must be more than 0"),
        ({"deadline": 0}, ValueError, "deadline: must be more than 0 seconds"),
        ({"operation_timeout": None}, TypeError, "operation_timeout: expected a number"),
        ({"operation_timeout": 0}, ValueError, "operation_timeout: must be more than 0"),
        (
            {"timeout": float("inf")},
            ValueError,
            "timeout: must be more than 0 seconds (and finite)",
        ),
        ({"port": "2222"}, TypeError, "port: expected a number from 1 to 65535, got '2222'"),
        ({"host_key_policy": "bogus"}, TypeError, "host_key_policy: expected 'strict', 'warn'"),
        ({"key": b"-----BEGIN"}, TypeError, "key: expected a path, the key's text (str) or a"),
    ],
)
def test_a_wrong_argument_is_a_clear_error_before_anything_is_sent(arguments, error, message):
    with pytest.raises(error) as caught:
        preflight.connect("127.0.0.1", **{"port": 22, **arguments})
    assert str(caught.value).startswith(message)


def test_paramikos_host_key_policies_and_a_single_pin_mean_what_they_say(sftp_server, caplog):
    caplog.set_level(logging.WARNING, logger="preflight")
    where = ("127.0.0.1", sftp_server.port, "operator", "s3cret-pass")
    for policy in (paramiko.AutoAddPolicy, paramiko.WarningPolicy()):
        preflight.connect(*where, known_hosts=None, host_key_policy=policy).close()
    assert sum(sftp_server.fingerprint in r.getMessage() for r in caplog.records) == 2
    with pytest.raises(preflight.PreflightError, match=r"auth\.host_key_unknown"):
        preflight.connect(*where, known_hosts=None, host_key_policy=paramiko.RejectPolicy())
    # One pin given as a string is one pin (a str is a sequence of one-letter strings too).
    preflight.connect(*where, known_hosts=None, fingerprints=sftp_server.fingerprint).close()


def test_an_unverified_host_key_asked_for_is_not_a_warning(sftp_server, caplog):
    caplog.set_level(logging.INFO, logger="preflight")
    where = ("127.0.0.1", sftp_server.port, "operator", "s3cret-pass")
    preflight.connect(*where, known_hosts=None, host_key_policy="off").close()
    assert [r.levelno for r in caplog.records if r.name == "preflight"] == [logging.INFO]


def test_an_error_survives_pickling_for_a_process_pool():
    import copy
    import pickle

    with lab.RefusedPort() as refused, pytest.raises(preflight.PreflightError) as caught:
        preflight.connect("127.0.0.1", refused.port, "x", "y")
    for again in (pickle.loads(pickle.dumps(caught.value)), copy.copy(caught.value)):
        assert type(again) is type(caught.value) and str(again) == str(caught.value)
        assert again.diagnosis == caught.value.diagnosis
    timeout = preflight.OperationTimeout("h:22", "the SFTP write", 2.0, sending=True)
    assert str(pickle.loads(pickle.dumps(timeout))) == str(timeout)


def test_the_transports_socket_answers_what_a_socket_is_asked(sftp_server):
    transport = preflight.connect(
        "127.0.0.1", sftp_server.port, "operator", "s3cret-pass", host_key_policy="off"
    )
    try:
        transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        assert transport.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert transport.sock.getsockname()[0] == "127.0.0.1"
    finally:
        transport.close()


def test_a_type_checker_sees_the_async_functions_arguments(tmp_path):
    from mypy import api as mypy

    user = tmp_path / "user.py"
    user.write_text(
        "import preflight\n"
        "async def main() -> None:\n"
        "    sftp = await preflight.aopen_sftp('h', 22, 'u', timout=3)\n"
        "    reveal_type(sftp)\n"
    )
    out, _, status = mypy.run([str(user), "--no-incremental", "--strict"])
    assert status == 1
    assert 'Unexpected keyword argument "timout" for "aopen_sftp"' in out
    assert 'Revealed type is "preflight.bounded.SFTPSession"' in out
