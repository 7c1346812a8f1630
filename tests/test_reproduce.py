"""Reproduce-by-hand commands: the same check with standard tools, and never a secret."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from checking import FAST, check_one, make_target

from preflight import lab, reproduce
from preflight.model import AuthConfig, HostKeyConfig, Secret, Stage


def test_each_stage_has_the_standard_tool_with_the_same_timeout():
    target = make_target(host="sftp.example.com", port=2222, user="ingest", sftp_path="/in box")
    assert reproduce.commands(target, Stage.TCP) == [
        f"nc -vz -w {FAST.tcp:g} sftp.example.com 2222"
    ]
    assert reproduce.commands(target, Stage.DNS)[0] == "getent ahosts sftp.example.com"
    auth = reproduce.commands(target, Stage.AUTH)[0]
    assert auth.startswith("ssh -vvv -o BatchMode=yes -o ConnectTimeout=1 ")
    assert auth.endswith("-p 2222 ingest@sftp.example.com exit")
    sftp = reproduce.commands(target, Stage.SFTP)[0]
    # sftp's own quoting inside the shell's: ls fails for a missing path, cd for a file.
    assert sftp.startswith("""printf '%s\\n' 'ls "/in box"' 'cd "/in box"' | sftp -b - """)
    assert "-P 2222 ingest@sftp.example.com" in sftp


def test_a_host_key_alias_is_passed_on_to_ssh_and_sftp():
    target = make_target(host_key=HostKeyConfig(known_hosts="/kh", alias="lab-alias"))
    for stage in (Stage.BANNER, Stage.AUTH, Stage.SFTP):
        assert "-o HostKeyAlias=lab-alias" in reproduce.commands(target, stage)[-1]


def test_no_credential_is_ever_written_into_a_command():
    secret_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----"
    target = make_target(
        auth=AuthConfig(
            password=Secret("hunter2-password"),
            key=Secret(secret_key),
            passphrase=Secret("pass-phrase"),
            key_source="variable SSH_PRIVATE_KEY",
        )
    )
    text = "\n".join(cmd for stage in Stage for cmd in reproduce.commands(target, stage))
    for secret in ("hunter2-password", "c2VjcmV0", "pass-phrase"):
        assert secret not in text
    assert "-i KEY_FILE" in text


def test_a_key_file_written_in_the_config_is_named():
    target = make_target(
        auth=AuthConfig(key=Secret("/etc/ci/id_ed25519"), key_source="file /etc/ci/id_ed25519"),
        host_key=HostKeyConfig(known_hosts="/etc/ci/known_hosts"),
    )
    auth = reproduce.commands(target, Stage.AUTH)[0]
    assert "-i /etc/ci/id_ed25519" in auth
    assert "-o UserKnownHostsFile=/etc/ci/known_hosts" in auth


def test_a_failed_stage_carries_its_commands_in_the_report():
    with lab.RefusedPort() as refused:
        failure = check_one(make_target(refused)).failure
        assert failure is not None
        assert failure.facts["reproduce"] == [f"nc -vz -w 1 127.0.0.1 {refused.port}"]


@pytest.mark.skipif(
    not shutil.which("nc") and not os.environ.get("CI"), reason="nc (netcat-openbsd) not installed"
)
def test_the_tcp_command_sees_what_preflight_saw():
    with lab.RefusedPort() as refused, lab.Greeter(b"SSH-2.0-x\r\n") as listening:
        for server, expected in ((refused, 1), (listening, 0)):
            command = reproduce.commands(make_target(server), Stage.TCP)[0]
            done = subprocess.run(command, shell=True, capture_output=True, timeout=10)
            assert (done.returncode != 0) == bool(expected), (command, done.stderr)


def test_behind_jump_hosts_the_commands_go_through_them():
    from preflight.model import Hop

    target = make_target(
        host="inner.internal",
        port=2222,
        user="ingest",
        jump=(Hop("bastion1.example.com", 22, "ops"), Hop("bastion2.example.com", 2200, "ops")),
    )
    tcp = reproduce.commands(target, Stage.TCP)[0]
    assert "nc " not in tcp  # from this runner nc would test the wrong path
    assert "-J ops@bastion1.example.com:22" in tcp
    assert "-W inner.internal:2222 -p 2200 ops@bastion2.example.com" in tcp
    auth = reproduce.commands(target, Stage.AUTH)[0]
    assert "-J ops@bastion1.example.com:22,ops@bastion2.example.com:2200" in auth
    assert (
        "-J ops@bastion1.example.com:22,ops@bastion2.example.com:2200"
        in (reproduce.commands(target, Stage.SFTP)[0])
    )
