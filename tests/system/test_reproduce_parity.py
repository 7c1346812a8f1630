"""Every printed command reproduces the failure it is printed under.

For each diagnosis code that a lab server or a real OpenSSH sshd can produce, preflight checks
the server; then every command printed under the failure (the `try:` lines, `facts["reproduce"]`)
is run by `sh`, as an engineer would paste it on the same runner, and must fail the way preflight
saw it fail: a non-zero exit and OpenSSH's own words for the fault. Where no OpenSSH command can
reproduce a failure (OpenSSH gets through where paramiko cannot), the diagnosis must say so.
The dns and tcp.unreachable codes need a namespace of their own and are covered where those are
made (tests/system/test_dns.py, test_network_faults.py); deadline.exceeded is preflight's own
limit, which no command has.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from checking import make_target

from preflight import lab
from preflight.model import (
    ALL_STAGES,
    AuthConfig,
    HostKeyConfig,
    Secret,
    StageResult,
    Target,
    Timeouts,
)
from preflight.runner import check

from .conftest import SshdFactory, require
from .sshd import OpenSSHServer, generate_client_key
from .test_jump import bastion_for_nobody, nobody_available
from .test_openssh import known_hosts_for, openssh_target

# A printed command that hangs is itself a failure to reproduce: they must all end on their own.
COMMAND_LIMIT = 60
TIMEOUTS = Timeouts(dns=2, tcp=1, banner=1, auth=2, sftp=2)
BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"
CLIENT_KEY = lab.generate_ed25519()


def tools_available() -> str | None:
    for tool in ("ssh", "sftp", "ssh-keygen", "ssh-keyscan", "nc", "timeout"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install openssh-client netcat-openbsd)"
    return None


@pytest.fixture(autouse=True)
def _tools() -> None:
    require(tools_available())


def failure_of(target: Target) -> StageResult:
    result = check([target]).targets[0]
    failure = result.failure
    assert failure is not None, [(s.name, s.status, s.detail) for s in result.stages]
    assert failure.diagnosis is not None
    return failure


def run_printed(failure: StageResult, env: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """Run every printed command as pasted into `sh`: (exit status, stdout + stderr) each."""
    commands = failure.facts.get("reproduce") or []
    assert commands, f"no command printed under {failure.diagnosis}"
    done = []
    for command in commands:
        proc = subprocess.run(
            ["sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=COMMAND_LIMIT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
        )
        done.append((proc.returncode, proc.stdout + proc.stderr))
    return done


STALLED = None  # what a case expects of a stall: ended by `timeout`, exit status 124


def assert_each_fails_saying(
    failure: StageResult, words: str | None, env: dict[str, str] | None = None
) -> None:
    """Every command fails, saying `words`, or (`STALLED`) is ended by `timeout` (exit 124) as
    preflight's stage was by its own; and no temporary file (key, known_hosts, askpass) is
    left behind."""
    before = set(Path("/tmp").glob("tmp.*"))
    for (status, output), command in zip(
        run_printed(failure, env), failure.facts["reproduce"], strict=True
    ):
        assert status != 0, f"{command!r} succeeded where preflight saw {failure.diagnosis}"
        if words is STALLED:
            assert status == 124, f"{command!r} was not a stall (exit {status}):\n{output[-2000:]}"
        else:
            assert words in output, f"{command!r} said:\n{output[-2000:]}"
    assert set(Path("/tmp").glob("tmp.*")) <= before, "a temporary file was left behind"


def lab_target(server: lab.LabServer, **changes: Any) -> Target:
    return replace(make_target(server, timeouts=TIMEOUTS), **changes)


# --- lab servers: every code loopback can produce ----------------------------------------------

KEY_AUTH = AuthConfig(
    key=Secret(lab.private_key_text(CLIENT_KEY)),
    key_source="variable SSH_PRIVATE_KEY",
    key_variable="SSH_PRIVATE_KEY",
)
KEY_ENV = {"SSH_PRIVATE_KEY": lab.private_key_text(CLIENT_KEY)}
MANGLED_KEY = "\r\n" + "".join(
    f"  {line}  \r\n" for line in lab.private_key_text(CLIENT_KEY).splitlines()
)


def sftp_lab(**kwargs: Any) -> lab.SFTPServer:
    return lab.SFTPServer(
        users={"operator": "right-pass"}, authorized_keys={"deploy": [CLIENT_KEY]}, **kwargs
    )


# id → (server, target changes, environment, code, what OpenSSH or the tool says)
LAB_CASES: dict[
    str,
    tuple[
        Callable[[], AbstractContextManager[Any]], dict[str, Any], dict[str, str], str, str | None
    ],
] = {
    "tcp.refused": (lab.RefusedPort, {}, {}, "tcp.refused", "Connection refused"),
    "tcp.timeout": (lab.DroppingPort, {}, {}, "tcp.timeout", "timed out"),
    "banner.timeout": (lab.Tarpit, {}, {}, "banner.timeout", "timed out during banner exchange"),
    "banner.timeout-trickle": (
        lambda: lab.Trickle(interval=0.3),
        {},
        {},
        "banner.timeout",
        "timed out during banner exchange",
    ),
    "banner.closed": (
        lab.CloseOnAccept,
        {},
        {},
        "banner.closed",
        "Connection closed by remote host",
    ),
    "banner.not_ssh": (
        lambda: lab.Greeter(b"HTTP/1.1 400 Bad Request\r\n\r\n", then="close"),
        {},
        {},
        "banner.not_ssh",
        "HTTP/1.1 400 Bad Request",
    ),
    "banner.malformed": (
        lambda: lab.Greeter(b"SSH-2.0-Open\x00SSH\r\n"),
        {},
        {},
        "banner.malformed",
        "banner line contains invalid characters",
    ),
    "banner.incompatible": (
        lambda: lab.Greeter(b"SSH-1.5-Ancient\r\n"),
        {},
        {},
        "banner.incompatible",
        "Protocol major versions differ",
    ),
    "auth.kex_timeout": (lab.KexStall, {}, {}, "auth.kex_timeout", STALLED),
    "auth.kex_failed": (
        lambda: lab.Greeter(BANNER + lab.kexinit_packet(host_key=("ssh-rsa",))),
        {},
        {},
        "auth.kex_failed",
        "no matching host key type found. Their offer: ssh-rsa",
    ),
    "auth.no_credentials": (
        sftp_lab,
        {"auth": AuthConfig()},
        {},
        "auth.no_credentials",
        "Permission denied (publickey)",  # what the server allows deploy: nothing was offered
    ),
    "auth.bad_key-passphrase": (
        sftp_lab,
        {
            "auth": AuthConfig(
                key=Secret(lab.private_key_text(CLIENT_KEY, passphrase="right")),
                key_source="variable SSH_PRIVATE_KEY",
                key_variable="SSH_PRIVATE_KEY",
                passphrase=Secret("wrong"),
                passphrase_variable="SSH_KEY_PASSPHRASE",
            )
        },
        {
            "SSH_PRIVATE_KEY": lab.private_key_text(CLIENT_KEY, passphrase="right"),
            "SSH_KEY_PASSPHRASE": "wrong",
        },
        "auth.bad_key",
        "incorrect passphrase supplied to decrypt private key",
    ),
    "auth.method_not_allowed": (
        sftp_lab,
        {"auth": AuthConfig(password=Secret("x"), password_variable="SFTP_PASSWORD")},
        {"SFTP_PASSWORD": "x"},
        "auth.method_not_allowed",
        "Permission denied (publickey)",
    ),
    "auth.denied-key": (
        sftp_lab,
        {
            "user": "nobody-known",
            "auth": KEY_AUTH,
        },
        KEY_ENV,
        "auth.denied",
        "Permission denied (password,publickey)",
    ),
    "auth.denied-password": (
        sftp_lab,
        {
            "user": "operator",
            "auth": AuthConfig(password=Secret("wrong-pass"), password_variable="SFTP_PASSWORD"),
        },
        {"SFTP_PASSWORD": "wrong-pass"},
        "auth.denied",
        "Permission denied (password)",
    ),
    "auth.timeout": (
        lambda: sftp_lab(stall="auth"),
        {"auth": KEY_AUTH},
        KEY_ENV,
        "auth.timeout",
        None,
    ),
    "sftp.unavailable": (
        lambda: sftp_lab(subsystem=False),
        {"auth": KEY_AUTH},
        KEY_ENV,
        "sftp.unavailable",
        "subsystem request failed",
    ),
    "sftp.timeout": (
        lambda: sftp_lab(stall="listdir"),
        {"auth": KEY_AUTH},
        KEY_ENV,
        "sftp.timeout",
        STALLED,
    ),
    # sftp logging in with a password, and with an encrypted key: `sftp -b` alone would turn
    # off the prompts both need.
    "sftp.not_found-password": (
        sftp_lab,
        {
            "user": "operator",
            "auth": AuthConfig(password=Secret("right-pass"), password_variable="SFTP_PASSWORD"),
            "sftp_path": "/no/such",
        },
        {"SFTP_PASSWORD": "right-pass"},
        "sftp.not_found",
        "not found",
    ),
    "sftp.not_found-passphrase": (
        sftp_lab,
        {
            "auth": AuthConfig(
                key=Secret(lab.private_key_text(CLIENT_KEY, passphrase="right")),
                key_source="variable SSH_PRIVATE_KEY",
                key_variable="SSH_PRIVATE_KEY",
                passphrase=Secret("right"),
                passphrase_variable="SSH_KEY_PASSPHRASE",
            ),
            "sftp_path": "/no/such",
        },
        {
            "SSH_PRIVATE_KEY": lab.private_key_text(CLIENT_KEY, passphrase="right"),
            "SSH_KEY_PASSPHRASE": "right",
        },
        "sftp.not_found",
        "not found",
    ),
    # Key text as a CI variable mangles it: blanks around the lines, CRLF, a blank line first.
    "sftp.not_found-mangled-key": (
        sftp_lab,
        {
            "auth": replace(KEY_AUTH, key=Secret(MANGLED_KEY)),
            "sftp_path": "/no/such",
        },
        {"SSH_PRIVATE_KEY": MANGLED_KEY},
        "sftp.not_found",
        "not found",
    ),
    # IPv6: ssh takes user@::1, sftp user@[::1].
    "tcp.refused-ipv6": (lambda: lab.RefusedPort(host="::1"), {}, {}, "tcp.refused", "refused"),
    "sftp.not_found-ipv6": (
        lambda: sftp_lab(host="::1"),
        {"auth": KEY_AUTH, "sftp_path": "/no/such"},
        KEY_ENV,
        "sftp.not_found",
        "not found",
    ),
}


@pytest.mark.parametrize("case", sorted(LAB_CASES))
def test_lab_server_failures_reproduce(case):
    make, changes, env, code, openssh_says = LAB_CASES[case]
    with make() as server:
        failure = failure_of(lab_target(server, **changes))
        assert failure.diagnosis is not None and failure.diagnosis.code == code, failure.diagnosis
        assert_each_fails_saying(failure, openssh_says, env)


def test_a_stall_is_ended_by_the_printed_timeout_as_preflight_ended_it():
    # OpenSSH has no timeout after the banner: without `timeout` the command would hang.
    with lab.KexStall() as server:
        failure = failure_of(lab_target(server))
        ((status, _),) = run_printed(failure)
    assert status == 124  # timeout(1) ended it


def test_a_deadline_that_cuts_a_stage_short_is_reproduced_by_the_same_bound():
    # The banner timeout is 5 s but the deadline leaves 1.5 s: the printed command gets the
    # same 2 s (whole seconds, rounded up) and stops there too.
    with lab.Tarpit() as server:
        target = lab_target(server, timeouts=replace(TIMEOUTS, banner=5), deadline=1.5)
        failure = failure_of(target)
        assert failure.diagnosis is not None and failure.diagnosis.code == "deadline.exceeded"
        ((status, output),) = run_printed(failure)
    assert failure.facts["reproduce"][0].startswith("timeout 2 ssh ")
    # ssh's ConnectTimeout (the tcp timeout) may end its banner wait first: a stall either way.
    assert status == 124 or (status == 255 and "timed out during banner exchange" in output)


def test_host_key_failures_reproduce(tmp_path):
    other = lab.generate_ed25519()
    with sftp_lab() as server:
        line = server.known_hosts_line()
        cases = {
            "auth.host_key_unknown": ("", "Host key verification failed"),
            "auth.host_key_mismatch": (
                f"{line.rsplit(' ', 2)[0]} {other.get_name()} {other.get_base64()}",
                "REMOTE HOST IDENTIFICATION HAS CHANGED",
            ),
            "auth.host_key_revoked": (f"@revoked {line}", "REVOKED HOST KEY DETECTED"),
        }
        for code, (content, openssh_says) in cases.items():
            known_hosts = tmp_path / f"{code}.known_hosts"
            known_hosts.write_text(content + "\n")
            host_key = HostKeyConfig(known_hosts=str(known_hosts), policy="strict")
            failure = failure_of(lab_target(server, auth=KEY_AUTH, host_key=host_key))
            assert failure.diagnosis is not None and failure.diagnosis.code == code
            assert_each_fails_saying(failure, openssh_says, KEY_ENV)
        pinned = HostKeyConfig(known_hosts=None, fingerprints=("SHA256:" + "A" * 43,))
        failure = failure_of(lab_target(server, auth=KEY_AUTH, host_key=pinned))
        assert failure.diagnosis is not None
        assert failure.diagnosis.code == "auth.host_key_mismatch"
        ((status, _),) = run_printed(failure)
        assert status == 1  # grep finds no pin among the server's keys…
        (command,) = failure.facts["reproduce"]
        scan = command.rsplit(" | grep ", 1)[0]
        scanned = subprocess.run(["sh", "-c", scan], capture_output=True, text=True, timeout=60)
        assert server.fingerprint in scanned.stdout  # …which the scan did fetch


def test_key_files_that_do_not_load_reproduce(tmp_path):
    public = tmp_path / "id_ed25519.pub"
    public.write_text(f"{CLIENT_KEY.get_name()} {CLIENT_KEY.get_base64()} me@laptop\n")
    public.chmod(0o600)  # so that ssh-keygen gets past its permission check to the content
    missing = tmp_path / "id_missing"
    with sftp_lab() as server:
        for path, code, says in (
            (public, "auth.bad_key", "Load key"),
            (tmp_path, "auth.bad_key", "Is a directory"),
            (missing, "auth.no_credentials", "No such file or directory"),
        ):
            auth = AuthConfig(key=Secret(str(path)), key_source=f"file {path}")
            failure = failure_of(lab_target(server, auth=auth))
            assert failure.diagnosis is not None and failure.diagnosis.code == code
            status, output = run_printed(failure)[0]
            assert status != 0 and says in output, output


def test_a_command_cut_short_by_ctrl_c_leaves_no_key_behind():
    # The key text is written to a temporary file; an interrupted command must remove it too.
    with lab.Tarpit() as server:
        target = lab_target(server, auth=KEY_AUTH, timeouts=replace(TIMEOUTS, banner=3))
        failure = failure_of(target)
        (command,) = failure.facts["reproduce"]
        before = set(Path("/tmp").glob("tmp.*"))
        proc = subprocess.Popen(
            ["sh", "-c", command],
            env={**os.environ, **KEY_ENV},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(0.5)
        assert set(Path("/tmp").glob("tmp.*")) - before, "the key was not written: nothing tested"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
        proc.wait(timeout=COMMAND_LIMIT)
        # The subshell exits once the command in front of it has ended (ssh runs under
        # `timeout`, in a group of its own), and its EXIT trap removes the files.
        deadline = time.monotonic() + 10
        while set(Path("/tmp").glob("tmp.*")) - before and time.monotonic() < deadline:
            time.sleep(0.1)
    assert set(Path("/tmp").glob("tmp.*")) <= before, "the key file was left behind"


def test_a_path_with_a_space_reaches_ssh_as_one_known_hosts_file(tmp_path):
    # ssh splits UserKnownHostsFile at spaces: unquoted, this would fail at the host key.
    with sftp_lab() as server:
        folder = tmp_path / "my known hosts"
        folder.mkdir()
        (folder / "known_hosts").write_text(server.known_hosts_line() + "\n")
        host_key = HostKeyConfig(known_hosts=str(folder / "known_hosts"), policy="strict")
        failure = failure_of(lab_target(server, user="stranger", auth=KEY_AUTH, host_key=host_key))
        assert failure.diagnosis is not None and failure.diagnosis.code == "auth.denied"
        assert_each_fails_saying(failure, "Permission denied", KEY_ENV)


def test_a_key_path_with_a_percent_and_a_known_hosts_path_with_a_quote_reach_ssh(tmp_path):
    # ssh looks for -i's file before it expands the % in it, and reads a ' in an option value
    # as a quote: printed as they were, the command logged in with no key ("Permission denied")
    # or stopped at its own options ("invalid quotes"), not at the missing directory.
    with sftp_lab() as server:
        keys, hosts = tmp_path / "50%off", tmp_path / "it's"
        keys.mkdir()
        hosts.mkdir()
        (keys / "id").write_text(lab.private_key_text(CLIENT_KEY))
        (keys / "id").chmod(0o600)
        (hosts / "known_hosts").write_text(server.known_hosts_line() + "\n")
        target = lab_target(
            server,
            auth=AuthConfig(key=Secret(str(keys / "id")), key_source=f"file {keys / 'id'}"),
            host_key=HostKeyConfig(known_hosts=str(hosts / "known_hosts"), policy="strict"),
            sftp_path="/no/such",
        )
        failure = failure_of(target)
        assert failure.diagnosis is not None and failure.diagnosis.code == "sftp.not_found"
        assert_each_fails_saying(failure, "not found")


def test_a_key_type_openssh_reads_and_paramiko_does_not_is_said_to_have_no_command(tmp_path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "dsa", "-N", "", "-f", str(tmp_path / "id_dsa")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with sftp_lab() as server:
        key = tmp_path / "id_dsa"
        failure = failure_of(
            lab_target(server, auth=AuthConfig(key=Secret(str(key)), key_source=f"file {key}"))
        )
        assert failure.diagnosis is not None and failure.diagnosis.code == "auth.bad_key"
        assert failure.diagnosis.summary.endswith("is a ssh-dss key, which paramiko cannot use")
        assert "no command fails as preflight did" in failure.diagnosis.hint
        assert [status for status, _ in run_printed(failure)] == [0]  # ssh-keygen loads it


def test_a_malformed_banner_openssh_accepts_is_said_to_have_no_command(tmp_path):
    # Not UTF-8: OpenSSH reads on, paramiko cannot. No ssh command fails the same way; the
    # diagnosis says so, and the printed od shows the bytes that were seen.
    with lab.Greeter(b"SSH-2.0-Open\xff\xfeSSH\r\n") as server:
        failure = failure_of(lab_target(server))
        assert failure.diagnosis is not None and failure.diagnosis.code == "banner.malformed"
        assert "OpenSSH accepts it" in failure.diagnosis.summary
        assert "the ssh command below does" in failure.diagnosis.hint
        outputs = [output for _, output in run_printed(failure)]
    assert "377 376" in outputs[0]  # od -c of the bytes 0xff 0xfe
    # The ssh command gets past the banner (the lab server then says no more).
    assert "Remote protocol version 2.0, remote software version Open" in outputs[1]


# --- a real sshd ---------------------------------------------------------------------------------


@pytest.fixture
def tree() -> Iterator[Path]:
    """A directory `nobody` can reach, holding a file and a directory only root may list."""
    require(nobody_available())
    base = Path("/tmp") / f"preflight-parity-{os.getpid()}"
    (base / "private").mkdir(parents=True)
    (base / "file.txt").write_text("not a directory\n")
    base.chmod(0o755)
    (base / "private").chmod(0o700)
    try:
        yield base
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.fixture
def sftp_as_nobody(
    sshd_factory: SshdFactory, client_key: tuple[Path, str], tmp_path: Path
) -> Iterator[tuple[OpenSSHServer, Target]]:
    require(nobody_available())
    server = sshd_factory(authorized_keys=[client_key[1]])
    bastion_for_nobody(server)  # sshd reads authorized_keys as the user logging in
    target = replace(
        openssh_target(server, client_key[0], known_hosts_for(server, tmp_path)), user="nobody"
    )
    yield server, target


@pytest.mark.parametrize(
    ("path", "code", "openssh_says"),
    [
        ("no/such/dir", "sftp.not_found", "not found"),
        ("file.txt", "sftp.not_a_directory", "is not a directory"),
        ("private", "sftp.permission_denied", "Permission denied"),
    ],
)
def test_sftp_path_failures(sftp_as_nobody, tree, path, code, openssh_says):
    _, target = sftp_as_nobody
    failure = failure_of(replace(target, sftp_path=str(tree / path)))
    assert failure.diagnosis is not None and failure.diagnosis.code == code
    assert_each_fails_saying(failure, openssh_says)


@pytest.mark.parametrize(
    ("server_config", "openssh_gets_through", "openssh_says"),
    [
        (["KexAlgorithms sntrup761x25519-sha512@openssh.com"], True, None),
        (["Ciphers chacha20-poly1305@openssh.com"], True, None),
        (["HostKeyAlgorithms ssh-rsa"], False, "no matching host key type found"),
    ],
    ids=["newer-kex", "newer-cipher", "sha1-host-key"],
)
def test_no_common_algorithm_against_real_sshd(
    sshd_factory, client_key, tmp_path, server_config, openssh_gets_through, openssh_says
):
    server = sshd_factory(authorized_keys=[client_key[1]], extra_config=server_config)
    target = openssh_target(server, client_key[0], known_hosts_for(server, tmp_path))
    failure = failure_of(target)
    assert failure.diagnosis is not None and failure.diagnosis.code == "auth.kex_failed"
    if openssh_gets_through:
        # No command fails the same way: the diagnosis says so, and the command proves it.
        assert "an ssh command gets through, a job using paramiko does not" in (
            failure.diagnosis.summary
        )
        assert [status for status, _ in run_printed(failure)] == [0]
    else:
        assert "accepts none of them either" in failure.diagnosis.summary
        assert_each_fails_saying(failure, openssh_says)


def test_variables_hold_the_key_text_and_the_known_hosts_content(sshd_server, tmp_path):
    # The README's CI set-up: SSH_KNOWN_HOSTS holds known_hosts lines, SSH_PRIVATE_KEY the key
    # text with its line breaks written as \n. The printed command writes both to temporary
    # files from the variables; it must fail at authentication, as preflight did, not at the
    # host key ("Host key verification failed") or at loading the key.
    stranger, _ = generate_client_key(tmp_path / "stranger")
    escaped = stranger.read_text().strip().replace("\n", "\\n")
    content = "\n".join(sshd_server.known_hosts_lines()) + "\n"
    env = {"SSH_PRIVATE_KEY": escaped, "SSH_KNOWN_HOSTS": content}
    target = replace(
        openssh_target(sshd_server, stranger, tmp_path / "unused"),
        auth=AuthConfig(
            key=Secret(escaped),
            key_source="variable SSH_PRIVATE_KEY",
            key_variable="SSH_PRIVATE_KEY",
        ),
        host_key=HostKeyConfig(
            known_hosts=content, known_hosts_variable="SSH_KNOWN_HOSTS", policy="strict"
        ),
    )
    failure = failure_of(target)
    assert failure.diagnosis is not None and failure.diagnosis.code == "auth.denied"
    command = failure.facts["reproduce"][0]
    assert "BEGIN" not in command and "ssh-ed25519 AAAA" not in command
    assert_each_fails_saying(failure, "Permission denied (publickey)", env)


def test_a_password_login_is_reproduced_with_a_password(sshd_factory, tmp_path):
    # BatchMode=yes would turn password login off and test nothing (or log in with a key).
    require(nobody_available())
    server = sshd_factory(extra_config=["PasswordAuthentication yes"])
    target = replace(
        openssh_target(server, tmp_path / "unused", known_hosts_for(server, tmp_path)),
        user="nobody",
        auth=AuthConfig(password=Secret("not-the-password"), password_variable="SFTP_PASSWORD"),
    )
    failure = failure_of(target)
    assert failure.diagnosis is not None and failure.diagnosis.code == "auth.denied"
    assert_each_fails_saying(failure, "Permission denied", {"SFTP_PASSWORD": "not-the-password"})
    assert "Failed password for nobody" in server.log  # the command typed a password


def test_a_stall_after_the_banner_against_real_sshd_is_bounded(sshd_factory, client_key, tmp_path):
    # sshd's sftp subsystem is a program that never answers here: preflight says sftp.timeout,
    # and the printed sftp command ends at the same bound instead of hanging.
    server = sshd_factory(
        authorized_keys=[client_key[1]], sftp=False, extra_config=["Subsystem sftp /bin/sleep 600"]
    )
    target = replace(
        openssh_target(server, client_key[0], known_hosts_for(server, tmp_path)),
        timeouts=Timeouts(dns=2, tcp=2, banner=2, auth=5, sftp=2),
        stages=ALL_STAGES,
    )
    failure = failure_of(target)
    assert failure.diagnosis is not None and failure.diagnosis.code == "sftp.timeout"
    ((status, _),) = run_printed(failure)
    assert status == 124
