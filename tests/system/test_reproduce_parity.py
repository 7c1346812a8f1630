"""Every printed command reproduces the failure it is printed under.

For each diagnosis code that a lab server or a real OpenSSH sshd can produce, preflight checks
the server; then every command printed under the failure (the `try:` lines, `facts["reproduce"]`)
is run by `sh`, as an engineer would paste it on the same runner, and must fail the way preflight
saw it fail: a non-zero exit and OpenSSH's own words for the fault. Where no OpenSSH command can
reproduce a failure (OpenSSH gets through where paramiko cannot), the diagnosis must say so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from preflight.model import StageResult, Target
from preflight.runner import check

from .conftest import SshdFactory, require
from .sshd import OpenSSHServer
from .test_jump import bastion_for_nobody, nobody_available
from .test_openssh import known_hosts_for, openssh_target

# A printed command that hangs is itself a failure to reproduce: they must all end on their own.
COMMAND_LIMIT = 60


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
            env=env,
            stdin=subprocess.DEVNULL,
        )
        done.append((proc.returncode, proc.stdout + proc.stderr))
    return done


def assert_each_fails_saying(
    failure: StageResult, words: str, env: dict[str, str] | None = None
) -> None:
    for (status, output), command in zip(
        run_printed(failure, env), failure.facts["reproduce"], strict=True
    ):
        assert status != 0, f"{command!r} succeeded where preflight saw {failure.diagnosis}"
        assert words in output, f"{command!r} said:\n{output[-1500:]}"


# --- sftp ----------------------------------------------------------------------------------------


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
    known_hosts = known_hosts_for(server, tmp_path)
    target = replace(openssh_target(server, client_key[0], known_hosts), user="nobody")
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
