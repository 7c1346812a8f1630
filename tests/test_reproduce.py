"""Reproduce-by-hand commands: the same check with standard tools, bounded, never a secret.

These pin down what the commands say; tests/system/test_reproduce_parity.py runs them against
real servers and checks that each fails the way preflight's check did.
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
from dataclasses import replace

import pytest
from checking import FAST, check_one, make_target

from preflight import lab, reproduce
from preflight.model import AuthConfig, Diagnosis, Hop, HostKeyConfig, Secret, Stage, WriteCheck

KEY_TEXT = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----\n"


def failed(code: str) -> Diagnosis:
    return Diagnosis(code, "summary", "hint")


def test_each_stage_has_the_standard_tool_with_the_same_timeout():
    target = make_target(host="sftp.example.com", port=2222, user="ingest", sftp_path="/in box")
    assert reproduce.commands(target, Stage.DNS) == ["timeout 2 getent ahosts sftp.example.com"]
    assert reproduce.commands(target, Stage.TCP) == [
        f"nc -vz -w {FAST.tcp:g} sftp.example.com 2222"
    ]
    # After the banner OpenSSH waits for ever on a stalled server: bounded as preflight was
    # (tcp 1 + banner 1 + auth 2 s).
    auth = reproduce.commands(target, Stage.AUTH, failed("auth.kex_timeout"))[0]
    assert auth.startswith("timeout 4 ssh -vvv -F none -o ConnectTimeout=1 ")
    assert auth.endswith("-p 2222 ingest@sftp.example.com exit")
    sftp = reproduce.commands(target, Stage.SFTP, failed("sftp.not_found"))[0]
    # sftp's own quoting inside the shell's: ls fails for a missing path, cd for a file.
    assert sftp.startswith(
        """printf '%s\\n' 'ls "/in box"' 'cd "/in box"' | timeout 6 sftp -b - """
    )
    assert sftp.endswith("-P 2222 ingest@sftp.example.com")


def test_the_host_key_is_checked_as_preflight_checked_it():
    strict = make_target(host_key=HostKeyConfig(known_hosts="/etc/ci/known_hosts"))
    command = reproduce.commands(strict, Stage.AUTH, failed("auth.host_key_unknown"))[0]
    assert "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/ci/known_hosts" in command
    assert "-o GlobalKnownHostsFile=/dev/null" in command  # preflight reads no other file
    off = make_target(host_key=HostKeyConfig(known_hosts=None, policy="off"))
    command = reproduce.commands(off, Stage.AUTH, failed("auth.denied"))[0]
    assert "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null" in command
    aliased = make_target(host_key=HostKeyConfig(known_hosts="/kh", alias="lab-alias"))
    for stage in (Stage.BANNER, Stage.AUTH, Stage.SFTP):
        assert "-o HostKeyAlias=lab-alias" in reproduce.commands(aliased, stage)[-1]


def test_known_hosts_given_as_a_variables_content_is_written_to_a_file_first():
    host_key = HostKeyConfig(
        known_hosts="[h]:22 ssh-ed25519 AAAA\n", known_hosts_variable="SSH_KNOWN_HOSTS"
    )
    command = reproduce.commands(make_target(host_key=host_key), Stage.AUTH)[0]
    assert command.startswith(
        "(trap 'rm -f \"$kh\"' EXIT && trap 'exit 130' INT HUP TERM && kh=$(mktemp) && "
    )
    assert """printf '%s\\n' "$SSH_KNOWN_HOSTS" > "$kh" """ in command
    assert '-o UserKnownHostsFile="$kh"' in command
    assert "AAAA" not in command


def test_a_key_verified_by_a_pin_is_trusted_as_the_pin_trusted_it():
    pinned = HostKeyConfig(known_hosts=None, fingerprints=("SHA256:abc",))
    facts = {
        "host_key": {
            "verified_by": "a pinned fingerprint",
            "line": "[127.0.0.1]:2222 ssh-ed25519 AAAAkey",
        }
    }
    target = make_target(host_key=pinned)
    command = reproduce.commands(target, Stage.SFTP, failed("sftp.not_found"), facts)[0]
    assert "printf '%s\\n' '[127.0.0.1]:2222 ssh-ed25519 AAAAkey' > \"$kh\"" in command


def test_a_password_is_typed_by_askpass_from_its_variable_and_batch_mode_stays_off():
    auth = AuthConfig(password=Secret("hunter2-password"), password_variable="SFTP_PASSWORD")
    command = reproduce.commands(make_target(auth=auth), Stage.AUTH, failed("auth.denied"))[0]
    assert "BatchMode=yes" not in command  # it would turn password login off
    for option in (
        "BatchMode=no",
        "PreferredAuthentications=password,keyboard-interactive",
        "PubkeyAuthentication=no",
        "NumberOfPasswordPrompts=1",
    ):
        assert f"-o {option}" in command
    assert 'printf "%%s\\\\n" "$SFTP_PASSWORD"' in command
    assert 'SSH_ASKPASS="$ap_sftp_password" SSH_ASKPASS_REQUIRE=force timeout ' in command
    assert "hunter2" not in command


def test_a_key_goes_alone_and_one_command_is_printed_per_credential_tried():
    auth = AuthConfig(
        key=Secret("/etc/ci/id_ed25519"),
        key_source="file /etc/ci/id_ed25519",
        password=Secret("pw"),
        password_variable="SFTP_PASSWORD",
    )
    key, password = reproduce.commands(make_target(auth=auth), Stage.AUTH, failed("auth.denied"))
    assert "-o IdentitiesOnly=yes -i /etc/ci/id_ed25519" in key
    assert "-o PreferredAuthentications=publickey" in key and "SSH_ASKPASS" not in key
    assert "PubkeyAuthentication=no" in password and "-i " not in password


def test_sftp_keeps_a_password_prompt_that_its_batch_mode_would_turn_off():
    # `sftp -b` passes BatchMode=yes to ssh first, and ssh keeps the first value: a wrapper
    # program (-S) turns it off again before sftp's own options.
    auth = AuthConfig(password=Secret("pw"), password_variable="SFTP_PASSWORD")
    facts = {"credential": "password", "method": "password"}
    command = reproduce.commands(
        make_target(auth=auth), Stage.SFTP, failed("sftp.not_found"), facts
    )[0]
    wrapper = 'printf \'#!/bin/sh\\nexec ssh -o BatchMode=no "$@"\\n\' > "$sx" && chmod 700 "$sx"'
    assert wrapper in command
    assert ' -S "$sx" ' in command
    key = AuthConfig(key=Secret("/k/id"), key_source="file /k/id")
    plain = reproduce.commands(make_target(auth=key), Stage.SFTP, failed("sftp.not_found"))[0]
    assert " -S " not in plain  # a key without a passphrase needs no prompt


def test_ipv6_is_written_the_way_each_program_reads_it():
    target = make_target(host="2001:db8::5", port=2222, user="ingest")
    ssh_command = reproduce.commands(target, Stage.AUTH, failed("auth.denied"))[0]
    assert ssh_command.endswith("-p 2222 ingest@2001:db8::5 exit")
    sftp = reproduce.commands(target, Stage.SFTP, failed("sftp.not_found"))[0]
    assert sftp.endswith("-P 2222 'ingest@[2001:db8::5]'")
    behind = make_target(
        host="2001:db8::5", port=2222, jump=(Hop("bastion.example.com", 22, "ops"),)
    )
    assert " -W '[2001:db8::5]:2222' " in reproduce.commands(behind, Stage.TCP)[0]


def test_paths_with_a_space_or_a_percent_reach_ssh_as_one_file():
    host_key = HostKeyConfig(known_hosts="/ci/my dir/known_hosts")
    auth = AuthConfig(key=Secret("/ci/100%/id"), key_source="file /ci/100%/id")
    command = reproduce.commands(
        make_target(auth=auth, host_key=host_key), Stage.AUTH, failed("auth.denied")
    )[0]
    assert """-o UserKnownHostsFile='"/ci/my dir/known_hosts"'""" in command
    # ssh looks for -i's file before expanding its %: only IdentityFile= takes such a path.
    assert "-o IdentityFile=/ci/100%%/id" in command and " -i " not in command


def test_a_path_with_a_single_quote_reaches_ssh_in_double_quotes():
    # ssh reads a ' in an option value as the start of a quoted word ("invalid quotes").
    host_key = HostKeyConfig(known_hosts="/ci/it's/known_hosts")
    command = reproduce.commands(make_target(host_key=host_key), Stage.AUTH, failed("auth.denied"))[
        0
    ]
    assert 'UserKnownHostsFile="/ci/it\'s/known_hosts"' in shlex.split(command)


def test_each_secret_has_its_own_askpass_and_a_jump_host_never_gets_the_targets():
    hop = Hop(
        "bastion.example.com",
        22,
        "ops",
        auth=AuthConfig(key=Secret("/k/b"), key_source="file /k/b"),
    )
    auth = AuthConfig(password=Secret("pw"), password_variable="SFTP_PASSWORD")
    command = reproduce.commands(
        make_target(auth=auth, jump=(hop,)), Stage.AUTH, failed("auth.denied")
    )[0]
    # The hop's ssh answers no prompt: the target's askpass is cleared for it.
    assert "ProxyCommand=env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE ssh " in command


@pytest.mark.parametrize(
    ("value", "writer"),
    [
        (KEY_TEXT, """printf '%s\\n' "$SSH_PRIVATE_KEY" > "$key\""""),
        (KEY_TEXT.replace("\n", "\\n"), """printf '%b\\n' "$SSH_PRIVATE_KEY" > "$key\""""),
        (KEY_TEXT.replace("\n", "\r\n"), "printf '%s\\n' \"$SSH_PRIVATE_KEY\" | tr -d '\\r' > "),
        (
            KEY_TEXT.replace("\n", "  \n"),
            "printf '%s\\n' \"$SSH_PRIVATE_KEY\" | sed -e 's/^[[:space:]]*//' -e "
            "'s/[[:space:]]*$//' > ",
        ),
        ("\n\n" + KEY_TEXT, "printf '%s\\n' \"$SSH_PRIVATE_KEY\" | sed '/./,$!d' > "),
        (
            base64.b64encode(KEY_TEXT.encode()).decode(),
            "printf '%s' \"$SSH_PRIVATE_KEY\" | base64 -d",
        ),
    ],
    ids=[
        "as-is",
        "escaped-newlines",
        "crlf",
        "spaces-around-lines",
        "leading-blank-lines",
        "base64",
    ],
)
def test_key_text_from_a_variable_is_written_as_preflight_repaired_it(value, writer):
    auth = AuthConfig(
        key=Secret(value), key_source="variable SSH_PRIVATE_KEY", key_variable="SSH_PRIVATE_KEY"
    )
    command = reproduce.commands(make_target(auth=auth), Stage.AUTH, failed("auth.denied"))[0]
    assert writer in command
    assert '-i "$key"' in command
    assert "c2VjcmV0" not in command


def test_no_credential_is_ever_written_into_a_command():
    auth = AuthConfig(
        password=Secret("hunter2-password"),
        key=Secret(KEY_TEXT),
        passphrase=Secret("pass-phrase"),
        key_source="variable SSH_PRIVATE_KEY",  # no variable recorded: a library caller's text
    )
    target = make_target(auth=auth)
    codes = ("auth.denied", "auth.bad_key", "auth.kex_timeout", "sftp.not_found", "")
    text = "\n".join(
        command
        for stage in Stage
        for code in codes
        for command in reproduce.commands(target, stage, failed(code) if code else None)
    )
    for secret in ("hunter2-password", "c2VjcmV0", "pass-phrase"):
        assert secret not in text
    assert "-i KEY_FILE" in text


def test_a_key_path_is_named_whether_written_in_the_file_or_held_by_a_variable():
    for source, variable in (("file /etc/ci/id", None), ("file /etc/ci/id (from ${K})", "K")):
        auth = AuthConfig(key=Secret("/etc/ci/id"), key_source=source, key_variable=variable)
        command = reproduce.commands(make_target(auth=auth), Stage.AUTH, failed("auth.denied"))
        assert "-i /etc/ci/id " in command[0]


def test_a_key_that_does_not_load_is_loaded_by_ssh_keygen_with_the_same_passphrase():
    auth = AuthConfig(
        key=Secret("/etc/ci/id"),
        key_source="file /etc/ci/id",
        passphrase=Secret("x"),
        passphrase_variable="SSH_KEY_PASSPHRASE",
    )
    assert reproduce.commands(make_target(auth=auth), Stage.AUTH, failed("auth.bad_key")) == [
        'ssh-keygen -y -P "$SSH_KEY_PASSPHRASE" -f /etc/ci/id > /dev/null'
    ]


def test_pins_that_match_no_key_are_searched_for_among_the_servers_keys():
    target = make_target(
        host="sftp.example.com",
        host_key=HostKeyConfig(known_hosts=None, fingerprints=("SHA256:pin1", "SHA256:pin2")),
    )
    facts = {"host_key": {"expected": {"by": "pins"}}}
    assert reproduce.commands(target, Stage.AUTH, failed("auth.host_key_mismatch"), facts) == [
        "ssh-keyscan -T 2 -p 22 sftp.example.com 2>/dev/null | ssh-keygen -lf - | "
        "grep -F -e SHA256:pin1 -e SHA256:pin2"
    ]


def test_ssh_reads_the_client_config_preflight_applied_and_only_that():
    assert " -F none " in reproduce.commands(make_target(), Stage.AUTH)[0]
    default = make_target(ssh_config="default")
    assert " -F " not in reproduce.commands(default, Stage.AUTH)[0]
    given = make_target(ssh_config="/etc/ci/ssh_config")
    assert " -F /etc/ci/ssh_config " in reproduce.commands(given, Stage.AUTH)[0]


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


def test_jump_hosts_from_ssh_config_are_named_as_written_there():
    # `-J user@resolved:port` would lose what ssh_config says for the alias (IdentityFile…).
    target = make_target(
        host="inner.internal",
        port=2222,
        user="ingest",
        ssh_config="default",
        jump=(Hop("10.0.0.5", 22, "ops", alias="bastion"),),
    )
    assert reproduce.commands(target, Stage.TCP)[0].endswith(
        "ssh -v -o BatchMode=yes -W inner.internal:2222 bastion </dev/null"
    )
    assert (
        " -J bastion -p 2222 ingest@inner.internal exit"
        in (reproduce.commands(target, Stage.AUTH, failed("auth.denied"))[0])
    )


def test_jump_hosts_of_checks_yaml_are_crossed_with_their_own_credentials():
    # ssh -J passes no -i to a jump host: a ProxyCommand carries each one's own options.
    bastion_key = AuthConfig(
        key=Secret(KEY_TEXT), key_source="variable BASTION_KEY", key_variable="BASTION_KEY"
    )
    target = make_target(
        host="inner.internal",
        port=2222,
        user="ingest",
        jump=(
            Hop("bastion1.example.com", 22, "ops", auth=bastion_key),
            Hop("bastion2.example.com", 2200, "ops"),
        ),
    )
    tcp = reproduce.commands(target, Stage.TCP)[0]
    assert "nc " not in tcp  # from this runner nc would test the wrong path
    assert """printf '%s\\n' "$BASTION_KEY" > "$key1" && export key1""" in tcp
    assert "-W bastion2.example.com:2200 -p 22 ops@bastion1.example.com'" in tcp
    assert tcp.endswith("-W inner.internal:2222 -p 2200 ops@bastion2.example.com </dev/null)")
    auth = reproduce.commands(target, Stage.AUTH, failed("auth.denied"))[0]
    assert '-i "$key1"' in auth and "-p 2222 ingest@inner.internal exit" in auth
    assert "c2VjcmV0" not in tcp + auth


@pytest.mark.skipif(
    not shutil.which("ssh") and not os.environ.get("CI"), reason="OpenSSH's ssh not installed"
)
@pytest.mark.parametrize(
    "hop_auth",
    [
        AuthConfig(password=Secret("pw"), password_variable="BASTION_PASSWORD"),
        AuthConfig(
            key=Secret(KEY_TEXT),
            key_source="variable BASTION_KEY",
            key_variable="BASTION_KEY",
            passphrase=Secret("pp"),
            passphrase_variable="BASTION_PASSPHRASE",
        ),
    ],
    ids=["password", "key with a passphrase"],
)
def test_the_tcp_command_through_a_jump_host_that_prompts_runs_ssh(hop_auth):
    # `timeout 5 SSH_ASKPASS=... ssh ...` ran no ssh at all: timeout took the VAR=value for
    # the program ("failed to run command"). The environment goes in front of `timeout`.
    with lab.RefusedPort() as refused:
        hop = Hop("127.0.0.1", refused.port, "ops", auth=hop_auth)
        line = reproduce.commands(make_target(refused, jump=(hop,)), Stage.TCP)[0]
        variables = {"BASTION_PASSWORD": "pw", "BASTION_KEY": KEY_TEXT, "BASTION_PASSPHRASE": "pp"}
        done = subprocess.run(
            ["sh", "-c", line],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, **variables},
        )
    assert "SSH_ASKPASS=" in line
    assert "failed to run command" not in done.stderr, line
    assert done.returncode == 255 and "Connection refused" in done.stderr, done.stderr


def test_a_temporary_file_gets_all_its_writer_wrote(tmp_path):
    # `kh=$(mktemp) && cat F || true > "$kh"` sent F to the terminal (or the CI log) and left
    # "$kh" empty, so a pasted command checked against no known host at all.
    from preflight.reproduce.shell import Command

    source = tmp_path / "known_hosts"
    source.write_text("[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    command = Command()
    made = command.temp_file("kh", f"cat {source} 2>/dev/null || true")
    line = command.render(["sh", "-c", 'wc -c < "$1"', "sh", made])
    done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [str(source.stat().st_size)]  # all of it, in the file only


# --- the upload check (sftp.write) ---------------------------------------------------------

UPLOAD_MEGABYTE = WriteCheck(1024 * 1024, sized=True)


def upload_command(code: str, facts: dict[str, object]) -> str:
    target = replace(make_target(None, sftp_path="/upload"), sftp_write=UPLOAD_MEGABYTE)
    [line] = reproduce.commands(target, Stage.SFTP, Diagnosis(code, "", ""), facts)
    return line


@pytest.mark.parametrize(
    ("code", "batch"),
    [
        ("sftp.not_writable", """printf 'put "%s" %s\\nrm %s\\n' "$f" """),
        ("sftp.size_mismatch", """printf 'put "%s" %s\\nls -ln %s\\nrm %s\\n' "$f" """),
    ],
)
def test_upload_failures_are_reproduced_with_a_put_and_its_rm(code, batch):
    line = upload_command(code, {"upload": {"file": "/upload/.preflight-1.tmp"}})
    assert 'f=$(mktemp) && head -c 1048576 /dev/zero > "$f"' in line
    assert batch in line
    # One remote name per placeholder after the local file's: the fixed name, never
    # preflight's own random one.
    assert line.count("/upload/.preflight-check.tmp") == batch.count("%s") - 1


def test_a_put_that_fails_halfway_is_cleaned_up_by_a_second_sftp_keeping_the_status():
    first, rest = upload_command("sftp.no_space", {"upload": {}}).split("; rc=$?; ")
    assert """printf 'put "%s" %s\\n' "$f" /upload/.preflight-check.tmp | """ in first
    assert rest.startswith("printf 'rm %s\\n' /upload/.preflight-check.tmp | ")
    assert rest.endswith(" >/dev/null 2>&1; exit $rc)")


def test_a_drop_box_is_reproduced_with_cd_not_ls():
    target = replace(make_target(None, sftp_path="/drop"), sftp_list=False)
    [line] = reproduce.commands(target, Stage.SFTP, Diagnosis("sftp.not_found", "", ""), {})
    assert line.startswith("printf '%s\\n' 'cd /drop' | ")
