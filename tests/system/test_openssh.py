"""preflight against the reference server: a real OpenSSH sshd on a high loopback port.

Key authentication as root with the server's own host keys, verified through a known_hosts file
written from them; a second server with the sftp subsystem switched off. These are the verdicts
users will see against production servers, so they are checked against the real thing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from preflight import config, sshconfig
from preflight.model import (
    ALL_STAGES,
    AuthConfig,
    HostKeyConfig,
    Secret,
    Stage,
    Status,
    Target,
    Timeouts,
)
from preflight.runner import check
from preflight.sshconfig import passwd_home as real_passwd_home

from .conftest import SshdFactory, require
from .sshd import OpenSSHServer, generate_client_key

TIMEOUTS = Timeouts(dns=3, tcp=3, banner=5, auth=10, sftp=10)


def openssh_target(server: OpenSSHServer, key_path: Path, known_hosts: Path) -> Target:
    return Target(
        name="openssh",
        host=server.host,
        port=server.port,
        user="root",
        stages=ALL_STAGES,
        timeouts=TIMEOUTS,
        deadline=30,
        auth=AuthConfig(key=Secret(str(key_path)), key_source=f"file {key_path}"),
        host_key=HostKeyConfig(known_hosts=str(known_hosts), policy="strict"),
        sftp_path=".",
    )


def known_hosts_for(server: OpenSSHServer, tmp_path: Path) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("\n".join(server.known_hosts_lines()) + "\n")
    return path


def verdict(target: Target) -> tuple[Stage | None, str | None]:
    result = check([target]).targets[0]
    failure = result.failure
    if failure is None:
        assert [s.status for s in result.stages] == [Status.PASS] * len(target.stages)
        return None, None
    assert failure.diagnosis is not None
    return failure.stage, failure.diagnosis.code


def test_all_five_stages_pass_with_key_auth(sshd_server, client_key, tmp_path):
    target = openssh_target(sshd_server, client_key[0], known_hosts_for(sshd_server, tmp_path))
    result = check([target]).targets[0]
    assert result.ok, [(s.stage, s.diagnosis) for s in result.stages]
    banner, auth, sftp = result.stages[2], result.stages[3], result.stages[4]
    assert banner.facts["banner"].startswith("SSH-2.0-OpenSSH")
    fingerprint = auth.facts["host_key"]["fingerprint"]
    assert fingerprint in sshd_server.host_key_fingerprints.values()
    assert auth.facts["method"] == "publickey"
    assert "allowed_methods" not in auth.facts  # not asked for: a round trip saved
    assert sftp.facts["resolved_path"] == "/root"


def test_key_not_authorized_is_auth_denied(sshd_server, tmp_path):
    stranger, _ = generate_client_key(tmp_path / "stranger")
    target = openssh_target(sshd_server, stranger, known_hosts_for(sshd_server, tmp_path))
    assert verdict(target) == (Stage.AUTH, "auth.denied")
    failure = check([target]).targets[0].failure
    assert failure is not None and failure.diagnosis is not None
    assert failure.facts["allowed_methods"] == ["publickey"]  # asked for once it failed
    assert "server allows: publickey" in failure.diagnosis.summary


def test_password_offered_where_only_keys_are_allowed_is_method_not_allowed(sshd_server, tmp_path):
    target = replace(
        openssh_target(sshd_server, tmp_path / "unused", known_hosts_for(sshd_server, tmp_path)),
        auth=AuthConfig(password=Secret("correct horse battery")),
    )
    assert verdict(target) == (Stage.AUTH, "auth.method_not_allowed")


def test_sftp_subsystem_off_is_sftp_unavailable(sshd_factory: SshdFactory, client_key, tmp_path):
    server = sshd_factory(authorized_keys=[client_key[1]], sftp=False)
    target = openssh_target(server, client_key[0], known_hosts_for(server, tmp_path))
    assert verdict(target) == (Stage.SFTP, "sftp.unavailable")


def test_known_hosts_entry_with_another_key_is_host_key_mismatch(
    sshd_factory: SshdFactory, sshd_server, client_key, tmp_path
):
    impostor = sshd_factory(authorized_keys=[client_key[1]])
    # known_hosts lists the *other* server's keys under this server's name and port.
    lines = [
        line.replace(f"]:{impostor.port} ", f"]:{sshd_server.port} ")
        for line in impostor.known_hosts_lines()
    ]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(lines) + "\n")
    target = openssh_target(sshd_server, client_key[0], known_hosts)
    assert verdict(target) == (Stage.AUTH, "auth.host_key_mismatch")


def test_unknown_host_is_host_key_unknown_under_strict(sshd_server, client_key, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    target = openssh_target(sshd_server, client_key[0], empty)
    assert verdict(target) == (Stage.AUTH, "auth.host_key_unknown")


def test_missing_directory_is_sftp_not_found(sshd_server, client_key, tmp_path):
    target = replace(
        openssh_target(sshd_server, client_key[0], known_hosts_for(sshd_server, tmp_path)),
        sftp_path="/no/such/directory",
    )
    assert verdict(target) == (Stage.SFTP, "sftp.not_found")


def test_hashed_known_hosts_written_by_ssh_keygen_verify(sshd_server, client_key, tmp_path):
    known_hosts = known_hosts_for(sshd_server, tmp_path)
    subprocess.run(
        ["ssh-keygen", "-H", "-f", str(known_hosts)], check=True, capture_output=True, timeout=15
    )
    assert "|1|" in known_hosts.read_text()
    target = openssh_target(sshd_server, client_key[0], known_hosts)
    assert verdict(target) == (None, None)


def test_known_hosts_given_as_content_in_a_variable(sshd_server, client_key, tmp_path):
    content = "\n".join(sshd_server.known_hosts_lines()) + "\n"
    target = replace(
        openssh_target(sshd_server, client_key[0], tmp_path / "unused"),
        host_key=HostKeyConfig(known_hosts=content, policy="strict"),
    )
    assert verdict(target) == (None, None)


def test_partial_success_names_the_method_still_required(
    sshd_factory: SshdFactory, client_key, tmp_path
):
    # Two keys required; one configured: the first is accepted and the report says so.
    server = sshd_factory(
        authorized_keys=[client_key[1]], extra_config=["AuthenticationMethods publickey,publickey"]
    )
    target = openssh_target(server, client_key[0], known_hosts_for(server, tmp_path))
    failure = check([target]).targets[0].failure
    assert failure is not None and failure.diagnosis is not None
    assert failure.diagnosis.code == "auth.method_not_allowed"
    assert "accepted root's publickey but also requires one of: publickey" in (
        failure.diagnosis.summary
    )


def hold_the_only_startup_slot(server: OpenSSHServer) -> socket.socket:
    """An unauthenticated connection that holds sshd's only start-up slot (`MaxStartups 1`).
    The slot may still be held for a moment by the fixture's readiness probe, whose connection
    sshd then refuses: try again until sshd greets this one."""
    deadline = time.monotonic() + 10
    while True:
        hog = socket.create_connection((server.host, server.port), timeout=5)
        if hog.recv(256).startswith(b"SSH-"):
            return hog
        hog.close()
        assert time.monotonic() < deadline, "sshd never freed its only start-up slot"
        time.sleep(0.05)


def test_maxstartups_refusal_is_banner_closed(sshd_factory: SshdFactory, client_key, tmp_path):
    server = sshd_factory(authorized_keys=[client_key[1]], extra_config=["MaxStartups 1"])
    with hold_the_only_startup_slot(server):
        target = openssh_target(server, client_key[0], known_hosts_for(server, tmp_path))
        failure = check([target]).targets[0].failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.stage, failure.diagnosis.code) == (Stage.BANNER, "banner.closed")
    assert "MaxStartups" in failure.diagnosis.summary


def test_the_reproduce_command_for_auth_agrees_with_preflight(sshd_server, client_key, tmp_path):
    from preflight import reproduce

    known_hosts = known_hosts_for(sshd_server, tmp_path)
    stranger, _ = generate_client_key(tmp_path / "stranger")
    for key, should_pass in ((client_key[0], True), (stranger, False)):
        target = openssh_target(sshd_server, key, known_hosts)
        command = reproduce.commands(target, Stage.AUTH)[0]
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
        assert (done.returncode == 0) is should_pass, (command, done.stderr[-500:])
        assert (verdict(target) == (None, None)) is should_pass


def test_library_open_sftp_against_real_openssh(sshd_server, client_key, tmp_path):
    import preflight

    known_hosts = known_hosts_for(sshd_server, tmp_path)
    local = tmp_path / "upload.txt"
    local.write_text("hello\n")
    with preflight.open_sftp(
        sshd_server.host,
        sshd_server.port,
        user="root",
        key=str(client_key[0]),
        known_hosts=str(known_hosts),
        operation_timeout=10,
    ) as sftp:
        remote = str(tmp_path / "uploaded.txt")
        sftp.put(str(local), remote)
        assert sftp.stat(remote).st_size == 6
    stranger, _ = generate_client_key(tmp_path / "stranger")
    try:
        preflight.connect(
            sshd_server.host,
            sshd_server.port,
            user="root",
            key=str(stranger),
            known_hosts=str(known_hosts),
        )
    except preflight.PreflightError as error:
        assert error.diagnosis is not None and error.diagnosis.code == "auth.denied"
    else:
        raise AssertionError("a key the server does not know must not connect")


def test_host_key_alias_is_looked_up_as_ssh_does(sshd_server, client_key, tmp_path):
    # known_hosts knows the server only under an alias (as for a host reached through a port
    # forward); ~/.ssh/config's HostKeyAlias makes both ssh and preflight find it there.
    from preflight import config, reproduce, sshconfig

    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        "".join(f"lab-alias {line.split(' ', 1)[1]}\n" for line in sshd_server.known_hosts_lines())
    )
    ssh_config = tmp_path / "ssh_config"
    base = (
        f"Host aliased\n  HostName {sshd_server.host}\n  Port {sshd_server.port}\n  User root\n"
        f"  IdentityFile {client_key[0]}\n  UserKnownHostsFile {known_hosts}\n"
    )
    env = {"HOME": str(tmp_path), "USER": "root"}
    for alias_line, should_pass in (("", False), ("  HostKeyAlias Lab-Alias\n", True)):
        ssh_config.write_text(base + alias_line)
        ssh = sshconfig.SshConfig(
            [sshconfig.ConfigFile(str(ssh_config), required=True)],
            home=str(tmp_path),
            local_user="root",
            environ=env,
        )
        target = config.target_from_spec("aliased", config.builtin_defaults(env), ssh)
        expected = (None, None) if should_pass else (Stage.AUTH, "auth.host_key_unknown")
        assert verdict(target) == expected
        command = reproduce.commands(target, Stage.AUTH)[0]
        assert ("HostKeyAlias=lab-alias" in command) is should_pass
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
        assert (done.returncode == 0) is should_pass, (command, done.stderr[-500:])


def test_an_entry_for_the_address_does_not_vouch_for_the_name(sshd_server, client_key, tmp_path):
    # known_hosts knows [127.0.0.1]:PORT; the target is named localhost. ssh refuses (it checks
    # the name; CheckHostIP is off by default), and so must preflight.
    from preflight import reproduce

    target = replace(
        openssh_target(sshd_server, client_key[0], known_hosts_for(sshd_server, tmp_path)),
        host="localhost",
    )
    assert verdict(target) == (Stage.AUTH, "auth.host_key_unknown")
    command = reproduce.commands(target, Stage.AUTH)[0]
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "Host key verification failed" in done.stderr, command


def test_a_pin_of_the_servers_rsa_key_passes_though_ed25519_comes_first(sshd_server, client_key):
    # A pin has no key type: paramiko negotiates ed25519 first, whose key is not the pin. The
    # server also holds the pinned RSA key, so this is no "host key changed": ask for it.
    rsa = sshd_server.host_key_fingerprints["ssh-rsa"]
    target = replace(
        openssh_target(sshd_server, client_key[0], Path("/nonexistent")),
        host_key=HostKeyConfig(known_hosts=None, fingerprints=(rsa,), policy="strict"),
    )
    result = check([target]).targets[0]
    assert result.ok, [(s.name, s.diagnosis) for s in result.stages]
    auth = result.stages[3]
    host_key = auth.facts["host_key"]
    assert (host_key["type"], host_key["fingerprint"]) == ("ssh-rsa", rsa)
    assert host_key["verified_by"] == "a pinned fingerprint"
    assert host_key["line"].startswith(f"[127.0.0.1]:{sshd_server.port} ssh-rsa AAAA")
    assert result.stages[4].status is Status.PASS  # the session goes on over the new connection


def test_pins_of_none_of_the_servers_keys_name_every_key_it_showed(sshd_server, client_key):
    stranger = "SHA256:" + "A" * 43
    target = replace(
        openssh_target(sshd_server, client_key[0], Path("/nonexistent")),
        host_key=HostKeyConfig(known_hosts=None, fingerprints=(stranger,), policy="strict"),
    )
    failure = check([target]).targets[0].failure
    assert failure is not None and failure.diagnosis is not None
    assert failure.diagnosis.code == "auth.host_key_mismatch"
    ed25519 = sshd_server.host_key_fingerprints["ssh-ed25519"]
    rsa = sshd_server.host_key_fingerprints["ssh-rsa"]
    assert (
        f"presented ssh-ed25519 key {ed25519} and ssh-rsa key {rsa}, but the pinned fingerprint "
        f"is {stranger}"
    ) in failure.diagnosis.summary


def test_tilde_is_the_passwd_home_as_for_ssh_not_home(tmp_path, monkeypatch):
    # OpenSSH finds ~/.ssh/config in the passwd entry's home and ignores $HOME. Where the two
    # differ (containers, `sudo -E`), `preflight check HOST` must read what `ssh HOST` reads,
    # and say that the other file was not read. ssh -G prints ssh's own conclusion.
    require(None if shutil.which("ssh") else "no ssh client")
    monkeypatch.setattr(sshconfig, "passwd_home", real_passwd_home)  # conftest stands it in
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host 127.0.0.1\n  Port 1234\n")
    environ = {**os.environ, "HOME": str(home)}
    shown = subprocess.run(
        ["ssh", "-G", "127.0.0.1"], env=environ, capture_output=True, text=True, timeout=10
    )
    ssh_port = next(
        int(line.split()[1]) for line in shown.stdout.splitlines() if line.startswith("port ")
    )
    ssh = config.open_ssh_config(None, environ)
    assert ssh is not None and ssh.home == pwd.getpwuid(os.getuid()).pw_dir
    found = ssh.lookup("127.0.0.1")
    assert (found.port.value if found.port else 22) == ssh_port != 1234
    assert any(f"not {home}/.ssh/config ($HOME)" in note for note in found.notes), found.notes
