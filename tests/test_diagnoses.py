"""Every diagnosis code that loopback can produce, produced by a real server behaving that way.

Each test starts a lab server (preflight.lab) that misbehaves in one specific way, checks it
through the real runner, and asserts the stage that failed, its code, and that it failed within
its timeout + 1 s. The dns codes that need a resolver of our own (nxdomain, no_address, timeout)
and tcp.unreachable live in tests/system, where a network namespace provides one.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from checking import FAST, assert_fails, assert_passes, check_one, make_target

from preflight import lab
from preflight.model import ALL_STAGES, AuthConfig, HostKeyConfig, Secret, Stage, Timeouts

SSH_BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"


# --- the healthy path ----------------------------------------------------------------------------


def test_healthy_sftp_server_passes_all_five_stages(sftp_server, key_auth):
    result = check_one(make_target(sftp_server, auth=key_auth, sftp_path="upload"))
    assert_passes(result)
    sftp = result.stages[-1]
    assert sftp.facts["resolved_path"] == "/upload"
    auth = result.stages[3]
    assert auth.facts["host_key"]["fingerprint"] == sftp_server.fingerprint
    assert auth.facts["method"] == "publickey"


def test_password_authentication_passes(sftp_server):
    auth = AuthConfig(password=Secret("s3cret-pass"))
    assert_passes(check_one(make_target(sftp_server, user="operator", auth=auth)))


def test_a_port_check_runs_only_the_stages_asked_for():
    with lab.Greeter(SSH_BANNER) as server:
        result = check_one(make_target(server, stages=ALL_STAGES[:3]))
    assert_passes(result)
    assert result.stages[-1].facts["banner"] == "SSH-2.0-OpenSSH_9.6"


# --- tcp -----------------------------------------------------------------------------------------


def test_silently_dropped_syn_is_tcp_timeout_within_the_tcp_timeout():
    with lab.DroppingPort() as port:
        failure = assert_fails(check_one(make_target(port)), Stage.TCP, "tcp.timeout")
    assert failure.duration_s >= FAST.tcp * 0.9
    assert "silently dropped" in failure.diagnosis.summary
    assert failure.facts["attempts"][0]["result"] == "timeout"


def test_closed_port_is_tcp_refused():
    with lab.RefusedPort() as port:
        failure = assert_fails(check_one(make_target(port)), Stage.TCP, "tcp.refused")
        assert f"127.0.0.1:{port.port}" in failure.diagnosis.summary


def test_tcp_falls_through_a_dropping_address_to_a_working_one(sftp_server, key_auth):
    # "localhost" would be ambiguous; two literal addresses of one name are a system test.
    # Here: the tcp stage's own loop, given two addresses by hand through the dns stage.
    import asyncio
    import socket

    from preflight.deadline import Budget
    from preflight.stages import Address, Connection, tcp

    async def connect() -> Connection:
        with lab.DroppingPort() as dropping:
            conn = Connection(make_target(sftp_server))
            conn.addresses = [
                Address(socket.AF_INET, ("127.0.0.1", dropping.port)),
                Address(socket.AF_INET, ("127.0.0.1", sftp_server.port)),
            ]
            conn.facts = {}
            passed = await tcp.probe(conn, Budget.start(1.0, float("inf")))
            # Which address failed, and how: a firewall team needs both.
            failed = f"127.0.0.1:{dropping.port} did not answer in 1.0s"
            assert passed.detail.endswith(f", after {failed}")
            return conn

    conn = asyncio.run(connect())
    try:
        results = [a["result"] for a in conn.facts["attempts"]]
        assert results == ["timeout", "connected"]
        assert conn.peer is not None and conn.peer.sockaddr[1] == sftp_server.port
    finally:
        conn.close()


# --- banner --------------------------------------------------------------------------------------


def test_tarpit_is_banner_timeout():
    with lab.Tarpit() as tarpit:
        failure = assert_fails(check_one(make_target(tarpit)), Stage.BANNER, "banner.timeout")
    assert failure.duration_s >= FAST.banner * 0.9
    assert failure.diagnosis.hint.startswith("Something accepts connections but does not speak")


def test_byte_trickling_banner_fails_at_the_banner_timeout_not_later():
    # paramiko restarts banner_timeout on every recv: this server would hold it for 21 s.
    with lab.Trickle(interval=0.2) as trickle:
        failure = assert_fails(check_one(make_target(trickle)), Stage.BANNER, "banner.timeout")
    assert "SSH-" in failure.diagnosis.summary  # says what had arrived so far
    assert "did not arrive in time" in failure.diagnosis.hint  # it did speak: not "silent"


def test_connection_closed_before_identification_is_banner_closed():
    with lab.CloseOnAccept() as server:
        assert_fails(check_one(make_target(server)), Stage.BANNER, "banner.closed")


def test_connection_reset_before_identification_is_banner_closed():
    with lab.CloseOnAccept(reset=True) as server:
        failure = assert_fails(check_one(make_target(server)), Stage.BANNER, "banner.closed")
    assert "reset" in failure.diagnosis.summary


@pytest.mark.parametrize(
    ("greeting", "then", "shown"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "close", "HTTP/1.1 400 Bad Request"),
        (b"220 mail.example.com ESMTP Postfix\r\n", "silence", "220 mail.example.com"),
        (b"\x16\x03\x01\x00\xa5\x01\x00", "silence", ""),
        (b"A" * 65536, "silence", "AAAA"),
    ],
    ids=["http", "smtp", "tls", "64KiB-line"],
)
def test_other_protocols_are_banner_not_ssh(greeting, then, shown):
    with lab.Greeter(greeting, then=then) as server:
        failure = assert_fails(check_one(make_target(server)), Stage.BANNER, "banner.not_ssh")
    assert shown in failure.diagnosis.summary


def test_a_refusal_in_words_then_close_is_banner_closed_showing_the_words():
    # What OpenSSH sends when MaxStartups is reached.
    with lab.Greeter(b"Exceeded MaxStartups\r\n", then="close") as server:
        failure = assert_fails(check_one(make_target(server)), Stage.BANNER, "banner.closed")
    assert "it said 'Exceeded MaxStartups'" in failure.diagnosis.summary


def test_text_lines_then_silence_is_banner_timeout_showing_the_lines():
    with lab.Greeter(b"Welcome, please wait\r\nhello 1\r\n") as server:
        failure = assert_fails(check_one(make_target(server)), Stage.BANNER, "banner.timeout")
    assert failure.diagnosis.summary.endswith(
        "; it sent 2 lines of text, the first 'Welcome, please wait'"
    )
    # Not "an overloaded sshd": sshd identifies first, it never chatters.
    assert failure.diagnosis.hint.startswith("Something here talks but never identifies as SSH")


@pytest.mark.parametrize(
    ("greeting", "reason", "openssh"),
    [
        (
            b"SSH-2.0-Open\xff\xfeSSH\x1b[31m\r\n",
            "is not valid UTF-8 (byte 0xff at position 12): 'SSH-2.0-Open\\xff\\xfeSSH\\x1b[31m'",
            "OpenSSH accepts it, paramiko (preflight's SSH library, and that of a Python job) "
            "cannot read it",
        ),
        (
            b"SSH-2.0-Open\x00SSH\r\n",
            "contains a NUL byte: 'SSH-2.0-Open\\x00SSH'",
            "OpenSSH refuses it: banner line contains invalid characters",
        ),
        (
            b"SSH-2.0-Open\rSSH\r\n",
            "contains a carriage return inside the line",
            "OpenSSH refuses it: banner line contains invalid characters",
        ),
        (
            b"SSH-2.0\r\n",
            "does not have the form SSH-protoversion-softwareversion: 'SSH-2.0'",
            "OpenSSH refuses it: Bad remote protocol version identification",
        ),
    ],
    ids=["invalid-utf8", "nul", "stray-cr", "no-software-version"],
)
def test_a_broken_identification_line_is_banner_malformed_at_the_banner_stage(
    greeting, reason, openssh
):
    # Judged where it arrives, with what OpenSSH makes of it: not a "close" during key
    # exchange (paramiko's words for a line it cannot decode) nor a silent stall.
    with lab.Greeter(greeting) as server:
        failure = assert_fails(check_one(make_target(server)), Stage.BANNER, "banner.malformed")
    summary = failure.diagnosis.summary
    assert f"identifies with a line that {reason}" in summary
    assert summary.endswith(openssh)
    assert failure.duration_s < FAST.banner  # at once, not at the timeout


def test_a_nul_before_any_identification_is_refused_at_once_as_openssh_does():
    with lab.Greeter(b"hello\x00there\r\nSSH-2.0-OpenSSH_9.6\r\n") as server:
        failure = assert_fails(check_one(make_target(server)), Stage.BANNER, "banner.not_ssh")
    assert "banner line contains invalid characters" in failure.diagnosis.summary
    assert failure.duration_s < FAST.banner


def test_lines_before_the_identification_are_allowed():
    chatter = b"".join(b"notice %d: welcome\r\n" % i for i in range(20))
    with lab.Greeter(chatter + SSH_BANNER) as server:
        result = check_one(make_target(server, stages=ALL_STAGES[:3]))
    assert_passes(result)
    assert result.stages[-1].facts["pre_banner_lines"] == 20


def test_ssh1_only_server_is_banner_incompatible():
    with lab.Greeter(b"SSH-1.5-OldServer\r\n") as server:
        assert_fails(check_one(make_target(server)), Stage.BANNER, "banner.incompatible")


# --- auth ----------------------------------------------------------------------------------------


def test_stall_after_kexinit_is_auth_kex_timeout():
    # paramiko cancels its handshake timeout once KEXINIT arrives: without the watchdog this hangs.
    with lab.KexStall() as server:
        assert_fails(check_one(make_target(server)), Stage.AUTH, "auth.kex_timeout")


def test_close_during_key_exchange_is_auth_kex_failed():
    with lab.KexStall(then="close") as server:
        assert_fails(check_one(make_target(server)), Stage.AUTH, "auth.kex_failed")


@pytest.mark.parametrize(
    ("offer", "kind", "openssh_has_it"),
    [
        ({"kex": ("sntrup761x25519-sha512@openssh.com",)}, "key exchange", True),
        ({"ciphers": ("chacha20-poly1305@openssh.com",)}, "cipher", True),
        ({"host_key": ("ssh-rsa",)}, "host key", False),  # SHA-1: OpenSSH 8.8+ refuses it too
        ({"kex": ("diffie-hellman-group1-sha1-nonexistent",)}, "key exchange", False),
    ],
    ids=["newer-kex", "newer-cipher", "sha1-host-key", "unheard-of-kex"],
)
def test_no_common_algorithm_says_which_kind_and_whether_openssh_would_get_through(
    offer, kind, openssh_has_it
):
    from preflight import openssh

    with lab.Greeter(SSH_BANNER + lab.kexinit_packet(**offer)) as server:
        failure = assert_fails(check_one(make_target(server)), Stage.AUTH, "auth.kex_failed")
    (server_offers,) = offer.values()
    summary, hint = failure.diagnosis.summary, failure.diagnosis.hint
    assert f"share no {kind} algorithm: the server offers {server_offers[0]}; paramiko speaks" in (
        summary
    )
    assert "very old" not in hint
    client = openssh.client()
    if client is None:  # no OpenSSH client here: nothing to compare, and nothing claimed
        assert "OpenSSH_" not in summary
    elif openssh_has_it:
        assert summary.endswith(
            f"would use {server_offers[0]}: an ssh command gets through, a job using paramiko "
            "does not"
        )
        assert "paramiko does not implement" in hint
    else:
        assert summary.endswith("on this runner accepts none of them either")
        assert "legacy" in hint
    facts = failure.facts["no_common_algorithm"]
    assert facts["kind"] == kind and facts["server_offers"] == list(server_offers)


def test_unknown_host_key_under_strict_policy_shows_fingerprint_and_pin_line(sftp_server, key_auth):
    strict = HostKeyConfig(known_hosts=None, policy="strict")
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=key_auth, host_key=strict)),
        Stage.AUTH,
        "auth.host_key_unknown",
    )
    assert sftp_server.fingerprint in failure.diagnosis.summary
    assert sftp_server.known_hosts_line() in failure.diagnosis.hint


def test_a_revoked_host_key_is_auth_host_key_revoked_not_a_changed_key(
    sftp_server, key_auth, tmp_path
):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@revoked {sftp_server.known_hosts_line()}\n")
    host_key = HostKeyConfig(known_hosts=str(known_hosts), policy="strict")
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=key_auth, host_key=host_key)),
        Stage.AUTH,
        "auth.host_key_revoked",
    )
    assert failure.diagnosis.summary.endswith(
        f"key {sftp_server.fingerprint}, which {known_hosts} marks as revoked (@revoked)"
    )
    assert "changed" not in failure.diagnosis.hint
    assert "stolen key" in failure.diagnosis.hint


def test_a_pin_of_the_servers_other_key_type_passes_on_a_second_connection(client_key, key_auth):
    rsa = lab.generate_rsa()
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, extra_host_keys=[rsa]) as server:
        pinned = HostKeyConfig(known_hosts=None, fingerprints=(lab.fingerprint(rsa),))
        result = check_one(make_target(server, auth=key_auth, host_key=pinned))
    assert_passes(result)
    assert result.stages[3].facts["host_key"]["fingerprint"] == lab.fingerprint(rsa)


def test_a_pin_search_cut_short_by_a_closed_connection_is_still_a_mismatch(client_key, key_auth):
    # The second connection (to ask for the RSA key) is closed at once: no credential was
    # ever sent, so this is no "auth.denied"; the key seen is not pinned, and the search ended.
    with (
        lab.SFTPServer(
            authorized_keys={"deploy": [client_key]}, extra_host_keys=[lab.generate_rsa()]
        ) as server,
        lab.Intermittent(server.address, every=2, failure="close") as proxy,
    ):
        pinned = HostKeyConfig(known_hosts=None, fingerprints=("SHA256:" + "A" * 43,))
        failure = assert_fails(
            check_one(make_target(proxy, auth=key_auth, host_key=pinned)),
            Stage.AUTH,
            "auth.host_key_mismatch",
        )
    assert f"presented ssh-ed25519 key {server.fingerprint}, but the pinned fingerprint is" in (
        failure.diagnosis.summary
    )
    assert "; asking for its other host keys on a new connection failed (" in (
        failure.diagnosis.summary
    )


def test_a_key_known_for_the_address_but_not_the_name_says_so(sftp_server, key_auth, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sftp_server.known_hosts_line() + "\n")  # [127.0.0.1]:PORT
    host_key = HostKeyConfig(known_hosts=str(known_hosts), policy="strict")
    target = make_target(sftp_server, host="localhost", auth=key_auth, host_key=host_key)
    failure = assert_fails(check_one(target), Stage.AUTH, "auth.host_key_unknown")
    port = sftp_server.port
    assert (
        f"{known_hosts} has this key for [127.0.0.1]:{port} but nothing for [localhost]:{port} "
        "(the name checked)"
    ) in failure.diagnosis.summary
    assert f"[localhost]:{port} ssh-ed25519 " in failure.diagnosis.hint


def test_unknown_host_key_under_warn_policy_passes_with_a_warning(sftp_server, key_auth):
    warn = HostKeyConfig(known_hosts=None, policy="warn")
    result = check_one(make_target(sftp_server, auth=key_auth, host_key=warn))
    assert_passes(result)
    assert any(sftp_server.fingerprint in w for w in result.stages[3].warnings)


def test_known_hosts_entry_with_another_key_is_host_key_mismatch(sftp_server, key_auth):
    other = lab.generate_ed25519()
    stale = f"[127.0.0.1]:{sftp_server.port} {other.get_name()} {other.get_base64()}\n"
    host_key = HostKeyConfig(known_hosts=stale, policy="warn")  # a mismatch fails even under warn
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=key_auth, host_key=host_key)),
        Stage.AUTH,
        "auth.host_key_mismatch",
    )
    assert lab.fingerprint(other) in failure.diagnosis.summary
    assert sftp_server.fingerprint in failure.diagnosis.summary


def test_known_hosts_file_and_pinned_fingerprint_both_verify(sftp_server, key_auth, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sftp_server.known_hosts_line() + "\n")
    by_file = HostKeyConfig(known_hosts=str(known_hosts), policy="strict")
    by_pin = HostKeyConfig(known_hosts=None, fingerprints=(sftp_server.fingerprint,))
    for host_key in (by_file, by_pin):
        assert_passes(check_one(make_target(sftp_server, auth=key_auth, host_key=host_key)))


def test_nothing_to_authenticate_with_names_the_unset_variables(sftp_server):
    auth = AuthConfig(unset=("SFTP_PASSWORD", "SSH_PRIVATE_KEY"))
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=auth)), Stage.AUTH, "auth.no_credentials"
    )
    assert "${SFTP_PASSWORD}" in failure.diagnosis.summary
    assert failure.diagnosis.hint.startswith("Define the CI variable(s)")


def test_nothing_configured_at_all_says_where_a_credential_can_come_from(sftp_server):
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=AuthConfig())), Stage.AUTH, "auth.no_credentials"
    )
    assert failure.diagnosis.summary.endswith("no password, key or agent is configured")
    assert "SSH_PRIVATE_KEY" in failure.diagnosis.hint and "IdentityFile" in failure.diagnosis.hint


def test_missing_key_file_is_no_credentials(sftp_server, tmp_path):
    auth = AuthConfig(key=Secret(str(tmp_path / "id_missing")), key_source="file id_missing")
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=auth)), Stage.AUTH, "auth.no_credentials"
    )
    assert "id_missing" in failure.diagnosis.summary
    assert failure.diagnosis.hint.startswith("Point auth.key (or IdentityFile")


def test_unreadable_key_is_bad_key_naming_the_source_not_the_content(sftp_server):
    garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----"
    auth = AuthConfig(key=Secret(garbage), key_source="variable SSH_PRIVATE_KEY")
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=auth)), Stage.AUTH, "auth.bad_key"
    )
    assert "variable SSH_PRIVATE_KEY" in failure.diagnosis.summary
    assert "bm90IGEga2V5" not in repr(failure)


def test_encrypted_key_without_passphrase_is_bad_key(sftp_server, client_key):
    encrypted = lab.private_key_text(client_key, passphrase="open sesame")
    auth = AuthConfig(key=Secret(encrypted), key_source="variable SSH_PRIVATE_KEY")
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=auth)), Stage.AUTH, "auth.bad_key"
    )
    assert "passphrase" in failure.diagnosis.summary


def test_encrypted_key_with_wrong_passphrase_is_bad_key(sftp_server, client_key):
    encrypted = lab.private_key_text(client_key, passphrase="open sesame")
    auth = AuthConfig(key=Secret(encrypted), passphrase=Secret("wrong"), key_source="variable K")
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=auth)), Stage.AUTH, "auth.bad_key"
    )
    assert "passphrase is wrong" in failure.diagnosis.summary


def bad_key_hint(sftp_server: lab.SFTPServer, auth: AuthConfig) -> tuple[str, str]:
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=auth)), Stage.AUTH, "auth.bad_key"
    )
    return failure.diagnosis.summary, failure.diagnosis.hint


def test_each_way_a_key_file_is_bad_gets_a_hint_of_its_own(sftp_server, client_key, tmp_path):
    public = tmp_path / "id_ed25519.pub"
    public.write_text(f"{client_key.get_name()} {client_key.get_base64()} me@laptop\n")
    words = {}
    for path in (public, tmp_path):
        auth = AuthConfig(key=Secret(str(path)), key_source=f"file {path}")
        words[path] = bad_key_hint(sftp_server, auth)
    summary, hint = words[public]
    assert summary.endswith("is a public key (the .pub half), not the private key")
    assert hint.startswith("Point auth.key at the private key: the same name without .pub")
    summary, hint = words[tmp_path]
    assert summary.endswith("is a directory, not a key file")
    assert "not the directory holding it" in hint
    # The same public key pasted into a CI variable:
    pasted = AuthConfig(key=Secret(public.read_text()), key_source="variable SSH_PRIVATE_KEY")
    assert "the .pub half" in bad_key_hint(sftp_server, pasted)[0]


def test_an_unreadable_key_file_gets_a_permissions_hint():
    # Root reads any file, so this is the translation alone (the stage raises it on EACCES).
    from preflight import diagnose, errors

    exc = errors.BadKey("file /etc/ci/id", "cannot be read (Permission denied)", "unreadable")
    ctx = diagnose.Context(Stage.AUTH, "sftp.example.com", 22, 10.0, 0.1)
    hint = diagnose.diagnose(exc, ctx).hint
    assert "check its owner and mode" in hint and "OpenSSH or PEM" not in hint


def test_a_passphrase_problem_gets_a_passphrase_hint_not_a_format_one(sftp_server, client_key):
    encrypted = lab.private_key_text(client_key, passphrase="open sesame")
    missing = AuthConfig(key=Secret(encrypted), key_source="variable SSH_PRIVATE_KEY")
    wrong = replace(missing, passphrase=Secret("wrong"))
    assert bad_key_hint(sftp_server, missing)[1].startswith("The key is encrypted: give its")
    summary, hint = bad_key_hint(sftp_server, wrong)
    assert summary.endswith("could not be decrypted: the passphrase is wrong")
    assert hint.startswith("The passphrase does not decrypt this key")
    assert "OpenSSH or PEM format" not in hint


def test_a_key_file_others_can_read_logs_in_with_a_warning_that_openssh_would_not(
    sftp_server, client_key_text, tmp_path
):
    key = tmp_path / "id_ed25519"
    key.write_text(client_key_text)
    key.chmod(0o644)
    auth = AuthConfig(key=Secret(str(key)), key_source=f"file {key}")
    result = check_one(make_target(sftp_server, auth=auth))
    assert_passes(result)
    assert any(
        "has mode 0644: OpenSSH refuses a private key that others can read" in warning
        for warning in result.stages[3].warnings
    )
    key.chmod(0o600)
    warnings = check_one(make_target(sftp_server, auth=auth)).stages[3].warnings
    assert not any("OpenSSH refuses" in warning for warning in warnings)


def test_no_credentials_hints_never_suggest_a_literal_password(sftp_server):
    for auth in (AuthConfig(), AuthConfig(unset=("SFTP_PASSWORD",))):
        failure = assert_fails(
            check_one(make_target(sftp_server, auth=auth)), Stage.AUTH, "auth.no_credentials"
        )
        assert "auth.password: ${" in failure.diagnosis.hint
        assert "auth.password in checks.yaml" not in failure.diagnosis.hint


def test_no_credentials_sends_no_one_to_an_ssh_config_the_target_did_not_read(sftp_server):
    # Under -F none (and for checks.yaml targets without `ssh_config:`) an IdentityFile in
    # ~/.ssh/config would change nothing: the hint says how it would be read, or names the file.
    hints = {}
    for read in ("none", "default", "/etc/ci/ssh_config"):
        target = replace(make_target(sftp_server, auth=AuthConfig()), ssh_config=read)
        hints[read] = assert_fails(
            check_one(target), Stage.AUTH, "auth.no_credentials"
        ).diagnosis.hint
    assert "~/.ssh/config" not in hints["none"]
    assert "IdentityFile, which preflight reads only with -F FILE or `ssh_config:`" in hints["none"]
    assert hints["default"].endswith("or an IdentityFile in ~/.ssh/config.")
    assert hints["/etc/ci/ssh_config"].endswith("or an IdentityFile in /etc/ci/ssh_config.")


def test_encrypted_key_with_right_passphrase_authenticates(sftp_server, client_key):
    encrypted = lab.private_key_text(client_key, passphrase="open sesame")
    auth = AuthConfig(key=Secret(encrypted), passphrase=Secret("open sesame"))
    assert_passes(check_one(make_target(sftp_server, auth=auth)))


def test_password_offered_to_a_key_only_account_is_method_not_allowed(client_key):
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}) as server:
        auth = AuthConfig(password=Secret("hunter2-hunter2"))
        failure = assert_fails(
            check_one(make_target(server, auth=auth)), Stage.AUTH, "auth.method_not_allowed"
        )
    assert "publickey" in failure.diagnosis.summary
    assert failure.facts["allowed_methods"] == ["publickey"]


def test_wrong_password_is_auth_denied(sftp_server):
    auth = AuthConfig(password=Secret("not-the-password"))
    assert_fails(
        check_one(make_target(sftp_server, user="operator", auth=auth)), Stage.AUTH, "auth.denied"
    )


def test_key_not_in_authorized_keys_is_auth_denied(sftp_server):
    stranger = AuthConfig(key=Secret(lab.private_key_text(lab.generate_ed25519())))
    assert_fails(check_one(make_target(sftp_server, auth=stranger)), Stage.AUTH, "auth.denied")


def test_server_that_never_answers_authentication_is_auth_timeout(client_key, key_auth):
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, stall="auth") as server:
        assert_fails(check_one(make_target(server, auth=key_auth)), Stage.AUTH, "auth.timeout")


# --- sftp ----------------------------------------------------------------------------------------


def test_sftp_subsystem_switched_off_is_sftp_unavailable(client_key, key_auth):
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, subsystem=False) as server:
        assert_fails(check_one(make_target(server, auth=key_auth)), Stage.SFTP, "sftp.unavailable")


def test_missing_directory_is_sftp_not_found(sftp_server, key_auth):
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=key_auth, sftp_path="/no/such/dir")),
        Stage.SFTP,
        "sftp.not_found",
    )
    assert "/no/such/dir" in failure.diagnosis.summary


def test_a_file_where_a_directory_should_be_is_sftp_not_a_directory(sftp_server, key_auth):
    # The server answers "no such file" to listing a file; the path exists all the same.
    failure = assert_fails(
        check_one(make_target(sftp_server, auth=key_auth, sftp_path="/hello.txt")),
        Stage.SFTP,
        "sftp.not_a_directory",
    )
    assert "/hello.txt on 127.0.0.1:" in failure.diagnosis.summary
    assert failure.diagnosis.summary.endswith("is a regular file, not a directory")
    assert "does not exist" not in failure.diagnosis.summary


def test_unlistable_directory_is_sftp_permission_denied(sftp_server, key_auth):
    assert_fails(
        check_one(make_target(sftp_server, auth=key_auth, sftp_path="/private")),
        Stage.SFTP,
        "sftp.permission_denied",
    )


@pytest.mark.parametrize("stall", ["subsystem", "version", "listdir"])
def test_stalled_sftp_server_is_sftp_timeout(client_key, key_auth, stall):
    # invoke_subsystem has no timeout at all in paramiko: the watchdog is what ends it.
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, stall=stall) as server:
        assert_fails(check_one(make_target(server, auth=key_auth)), Stage.SFTP, "sftp.timeout")


# --- deadline ------------------------------------------------------------------------------------


def test_target_deadline_cuts_a_stage_short_as_deadline_exceeded():
    slow_tcp = Timeouts(dns=2, tcp=10, banner=2, auth=2, sftp=2)
    with lab.DroppingPort() as port:
        result = check_one(make_target(port, timeouts=slow_tcp, deadline=1.0))
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.stage, failure.diagnosis.code) == (Stage.TCP, "deadline.exceeded")
    assert failure.duration_s <= 1.0 + 1.0
    assert "target's deadline (1s)" in failure.diagnosis.summary


def test_run_deadline_caps_every_target():
    with lab.Tarpit() as tarpit:
        target = make_target(tarpit, timeouts=Timeouts(dns=2, tcp=2, banner=30, auth=2, sftp=2))
        result = check_one(target, deadline=1.0)
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.stage, failure.diagnosis.code) == (Stage.BANNER, "deadline.exceeded")
    assert "--deadline 1s" in failure.diagnosis.summary


def test_waiting_for_a_busy_ssh_slot_until_the_deadline_points_at_jobs():
    # One SSH slot (--jobs 1), held by a target whose authentication never gets an answer: the
    # other runs out of deadline before it can start its auth stage. The waiter's server is
    # 0.3 s away, so the holder is sure to reach the slot first.
    from preflight.runner import check

    slow = Timeouts(dns=2, tcp=2, banner=2, auth=5, sftp=2)
    login = AuthConfig(password=Secret("lab"))  # lab.SFTPServer's default user lab/lab
    with (
        lab.SFTPServer(stall="auth") as stalled,
        lab.SFTPServer() as healthy,
        lab.LatencyProxy((healthy.host, healthy.port), delay=0.3) as far,
    ):
        holder = make_target(stalled, name="holder", user="lab", timeouts=slow, auth=login)
        waiter = make_target(
            far, name="waiter", user="lab", timeouts=slow, auth=login, deadline=1.5
        )
        report = check([holder, waiter], jobs=1)
    failure = report.targets[1].failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.stage, failure.diagnosis.code) == (Stage.AUTH, "deadline.exceeded")
    assert "waiting for a free SSH slot (--jobs)" in failure.diagnosis.summary
    assert failure.diagnosis.hint.startswith("Every SSH slot was busy until the deadline")


@pytest.mark.parametrize("make_key", [lab.generate_ed25519, lab.generate_ecdsa, lab.generate_rsa])
def test_every_key_type_authenticates_from_ci_variable_text(make_key):
    key = make_key()
    # What a CI variable often holds after copy-paste: CRLF line ends, no final newline.
    pasted = lab.private_key_text(key).strip().replace("\n", "\r\n")
    with lab.SFTPServer(authorized_keys={"deploy": [key]}) as server:
        result = check_one(make_target(server, auth=AuthConfig(key=Secret(pasted))))
    assert_passes(result)


def test_a_slow_link_passes_when_the_timeouts_allow_for_it(sftp_server, key_auth):
    # 300 ms each way: every SSH round trip costs 0.6 s, the whole check several seconds.
    patient = Timeouts(dns=2, tcp=2, banner=3, auth=10, sftp=10)
    with lab.LatencyProxy(sftp_server.address, delay=0.3) as far:
        result = check_one(make_target(far, auth=key_auth, timeouts=patient, deadline=30))
    assert_passes(result)
    assert result.stages[2].duration_s >= 0.3  # the banner came over the slow link
