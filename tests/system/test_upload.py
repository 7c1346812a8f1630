"""The upload check (`sftp.write`, `sftp.list`, `sftp.min_free`) against OpenSSH's internal-sftp.

The cases an ingest server meets: a directory this user may write, one it may only read, a
read-only server (`internal-sftp -R`), a read-only mount, a drop box that may be written but not
listed (0733), a full file system (a 256 KiB tmpfs the test mounts) and a free-space threshold
above what statvfs reports. Each verdict is checked with OpenSSH's own `sftp` (the commands
printed under the failure, pasted as they are), and no case may leave a file behind: the
directories are looked at afterwards as root, another user than the one that wrote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from preflight.model import StageResult, Status, Target, Timeouts, WriteCheck
from preflight.runner import check

from .conftest import SshdFactory, require
from .sshd import OpenSSHServer
from .test_jump import NOBODY_UID, bastion_for_nobody, nobody_available
from .test_openssh import known_hosts_for, openssh_target
from .test_reproduce_parity import assert_each_fails_saying, tools_available

TIMEOUTS = Timeouts(dns=2, tcp=1, banner=2, auth=3, sftp=5)
SMALL = WriteCheck(64)
MEGABYTE = WriteCheck(1024 * 1024, sized=True)


@pytest.fixture(autouse=True)
def _requirements() -> None:
    require(tools_available())
    require(nobody_available())


@pytest.fixture
def upload_dir() -> Iterator[Path]:
    """An empty directory `nobody` can reach (pytest's own are root's, mode 0700)."""
    base = Path("/tmp") / f"preflight-upload-{os.getpid()}"
    base.mkdir()
    base.chmod(0o755)
    try:
        yield base
    finally:
        subprocess.run(["umount", "-q", str(base)], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def mounted_tmpfs(where: Path, options: str) -> Iterator[Path]:
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "preflight-test", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    require(None if proc.returncode == 0 else f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def read_only_sshd(sshd_factory: SshdFactory, key_line: str) -> OpenSSHServer:
    """An sshd whose SFTP server refuses every write (internal-sftp -R)."""
    return sshd_factory(
        authorized_keys=[key_line], sftp=False, extra_config=["Subsystem sftp internal-sftp -R"]
    )


def target_for(
    server: OpenSSHServer, key: Path, tmp_path: Path, user: str, directory: Path, **changes: object
) -> Target:
    if user == "nobody":
        bastion_for_nobody(server)  # sshd reads authorized_keys as the user logging in
    base = openssh_target(server, key, known_hosts_for(server, tmp_path))
    return replace(base, user=user, timeouts=TIMEOUTS, sftp_path=str(directory), **changes)  # type: ignore[arg-type]


def sftp_row(target: Target) -> StageResult:
    result = check([target]).targets[0]
    assert result.stages[3].status is Status.PASS, result.stages[3].diagnosis
    return result.stages[4]


def leftovers(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))  # as root: whatever the user could or could not list


def test_a_writable_directory_passes_and_keeps_nothing(
    sshd_factory, client_key, tmp_path, upload_dir
):
    os.chown(upload_dir, NOBODY_UID, NOBODY_UID)
    server = sshd_factory(authorized_keys=[client_key[1]])
    for write in (SMALL, MEGABYTE):
        target = target_for(server, client_key[0], tmp_path, "nobody", upload_dir, sftp_write=write)
        row = sftp_row(target)
        assert row.status is Status.PASS, row.diagnosis
        upload = row.facts["upload"]
        assert upload["removed"] is True and upload["bytes"] == write.size
        assert Path(upload["file"]).parent == upload_dir
        assert Path(upload["file"]).name.startswith(".preflight-")
        assert row.facts["free_bytes"] > 0  # OpenSSH offers statvfs@openssh.com
        assert "then removed it" in row.detail
        assert leftovers(upload_dir) == []
    assert upload["rate_bytes_per_s"] > 0 and "uploaded 1.0 MiB in " in row.detail  # the sized one


def test_a_directory_this_user_may_not_write_is_not_writable(
    sshd_factory, client_key, tmp_path, upload_dir
):
    server = sshd_factory(authorized_keys=[client_key[1]])
    target = target_for(server, client_key[0], tmp_path, "nobody", upload_dir, sftp_write=SMALL)
    row = sftp_row(target)
    assert row.diagnosis is not None and row.diagnosis.code == "sftp.not_writable"
    assert "refused nobody a new file" in row.diagnosis.summary
    assert "mode 0755, owned by root (uid 0)" in row.diagnosis.summary
    assert_each_fails_saying(row, "Permission denied")
    assert leftovers(upload_dir) == []


def test_a_read_only_server_is_told_from_a_directory_without_permission(
    sshd_factory, client_key, tmp_path, upload_dir
):
    # root owns the directory and may write it: only the server's -R can refuse.
    server = read_only_sshd(sshd_factory, client_key[1])
    target = target_for(server, client_key[0], tmp_path, "root", upload_dir, sftp_write=SMALL)
    row = sftp_row(target)
    assert row.diagnosis is not None and row.diagnosis.code == "sftp.read_only"
    assert row.diagnosis.summary.startswith(
        f"{target.host}:{target.port} refused to create a file in {upload_dir} (permission denied)"
    )
    assert "it belongs to root, whose mode 0755 allows creating files" in row.diagnosis.summary
    assert "internal-sftp -R" in row.diagnosis.hint
    assert_each_fails_saying(row, "Permission denied")
    assert leftovers(upload_dir) == []


def test_a_read_only_mount_is_sftp_read_only(sshd_factory, client_key, tmp_path, upload_dir):
    server = sshd_factory(authorized_keys=[client_key[1]])
    with mounted_tmpfs(upload_dir, "ro,size=64k"):
        target = target_for(server, client_key[0], tmp_path, "root", upload_dir, sftp_write=SMALL)
        row = sftp_row(target)
        assert row.diagnosis is not None and row.diagnosis.code == "sftp.read_only"
        assert "read-only file system: statvfs reports the mount read-only" in row.diagnosis.summary
        assert_each_fails_saying(row, "Failure")


def test_a_drop_box_passes_with_list_false_and_points_there_without(
    sshd_factory, client_key, tmp_path, upload_dir
):
    upload_dir.chmod(0o733)  # anyone may write, nobody but root may list
    server = sshd_factory(authorized_keys=[client_key[1]])
    drop_box = target_for(
        server, client_key[0], tmp_path, "nobody", upload_dir, sftp_write=SMALL, sftp_list=False
    )
    row = sftp_row(drop_box)
    assert row.status is Status.PASS, row.diagnosis
    assert row.detail.startswith(f"{upload_dir} is a directory (not listed); created and wrote")
    assert leftovers(upload_dir) == []

    listed = sftp_row(replace(drop_box, sftp_list=True))
    assert listed.diagnosis is not None and listed.diagnosis.code == "sftp.permission_denied"
    assert "sftp.list: false and sftp.write: true" in listed.diagnosis.hint
    assert "upload" not in listed.facts  # the listing failed first: nothing was written


def test_a_full_file_system_is_no_space_and_nothing_stays(
    sshd_factory, client_key, tmp_path, upload_dir
):
    server = sshd_factory(authorized_keys=[client_key[1]])
    with mounted_tmpfs(upload_dir, "size=256k,mode=0755"):
        target = target_for(
            server, client_key[0], tmp_path, "root", upload_dir, sftp_write=MEGABYTE
        )
        row = sftp_row(target)
        assert row.diagnosis is not None and row.diagnosis.code == "sftp.no_space"
        assert "the upload of 1.0 MiB" in row.diagnosis.summary
        assert "the file system has 0 B free (statvfs)" in row.diagnosis.summary
        assert row.facts["upload"]["removed"] is True
        assert leftovers(upload_dir) == []
        # OpenSSH's sftp fails the same put; the line's second sftp removes what it left.
        assert_each_fails_saying(row, "Failure")
        assert leftovers(upload_dir) == []


def test_min_free_above_what_statvfs_reports_fails_with_both_numbers(
    sshd_factory, client_key, tmp_path, upload_dir
):
    server = sshd_factory(authorized_keys=[client_key[1]])
    with mounted_tmpfs(upload_dir, "size=256k,mode=0755"):
        target = target_for(
            server, client_key[0], tmp_path, "root", upload_dir, sftp_min_free=1024**3
        )
        row = sftp_row(target)
        assert row.diagnosis is not None and row.diagnosis.code == "sftp.no_space"
        assert row.diagnosis.summary == (
            f"{upload_dir} on {server.host}:{server.port} has 256.0 KiB free, less than "
            "sftp.min_free 1.0 GiB (statvfs)"
        )
        assert "upload" not in row.facts  # nothing is written once the space is known short
        # sftp's df shows the same free space, and awk applies the threshold to it.
        assert_each_fails_saying(row, "Avail 256 KiB is less than sftp.min_free 1048576 KiB")
        enough = sftp_row(replace(target, sftp_min_free=128 * 1024))
        assert enough.status is Status.PASS and enough.detail.endswith("; 256.0 KiB free")


def test_a_stalled_upload_is_reproduced_by_a_put_ended_by_its_timeout(tmp_path):
    # A lab server that takes the file and never acknowledges a write (no sshd does on demand).
    from preflight import lab

    from .test_reproduce_parity import CLIENT_KEY, KEY_AUTH, KEY_ENV, STALLED, lab_target

    with lab.SFTPServer(authorized_keys={"deploy": [CLIENT_KEY]}, stall="write") as server:
        target = lab_target(server, auth=KEY_AUTH, sftp_path="/upload", sftp_write=SMALL)
        row = check([target]).targets[0].stages[4]
        assert row.diagnosis is not None and row.diagnosis.code == "sftp.timeout"
        assert_each_fails_saying(row, STALLED, KEY_ENV)
        left = sorted(os.listdir(os.path.join(server.root, "upload")))
    # preflight's own file stays (the server stopped answering), the pasted command's does not:
    # its second sftp removed it.
    assert left == [os.path.basename(row.facts["upload"]["file"])]


def test_write_without_search_permission_is_not_writable_not_a_read_only_server(
    sshd_factory, client_key, tmp_path, upload_dir
):
    upload_dir.chmod(0o766)  # others may write but not search: no file can be created
    server = sshd_factory(authorized_keys=[client_key[1]])
    target = target_for(
        server, client_key[0], tmp_path, "nobody", upload_dir, sftp_write=SMALL, sftp_list=False
    )
    row = sftp_row(target)
    assert row.diagnosis is not None and row.diagnosis.code == "sftp.not_writable"
    assert "it is mode 0766, owned by root (uid 0), group root (gid 0)" in row.diagnosis.summary
    assert "write *and* search (x) permission" in row.diagnosis.hint
    assert_each_fails_saying(row, "Permission denied")


def test_a_group_that_may_write_under_a_read_only_server_is_said_to_be_the_question(
    sshd_factory, client_key, tmp_path, upload_dir
):
    os.chown(upload_dir, 0, NOBODY_UID)  # root:nogroup 0775; nobody is in nogroup
    upload_dir.chmod(0o775)
    server = read_only_sshd(sshd_factory, client_key[1])
    target = target_for(server, client_key[0], tmp_path, "nobody", upload_dir, sftp_write=SMALL)
    row = sftp_row(target)
    assert row.diagnosis is not None and row.diagnosis.code == "sftp.not_writable"
    assert "group nogroup (gid 65534)" in row.diagnosis.summary
    assert row.diagnosis.hint.startswith(
        "Its group nogroup may create files there: if nobody is in that group, the server "
        "itself refuses writes (internal-sftp -R, a policy)"
    )


@pytest.mark.parametrize(
    ("options", "code", "openssh_says"),
    [
        (
            {"short_writes": True},
            "sftp.size_mismatch",
            "the server reports 1032192 bytes of the 1048576 written",
        ),
        ({"write_delay": 0.1}, "sftp.timeout", "more than the sftp timeout (2s)"),
    ],
    ids=["size-mismatch", "too-slow"],
)
def test_what_sftp_does_not_check_is_checked_by_the_printed_command(options, code, openssh_says):
    from preflight import lab

    from .test_reproduce_parity import CLIENT_KEY, KEY_AUTH, KEY_ENV, lab_target

    with lab.SFTPServer(authorized_keys={"deploy": [CLIENT_KEY]}, **options) as server:
        target = lab_target(server, auth=KEY_AUTH, sftp_path="/upload", sftp_write=MEGABYTE)
        row = check([target]).targets[0].stages[4]
        assert row.diagnosis is not None and row.diagnosis.code == code
        assert_each_fails_saying(row, openssh_says, KEY_ENV)
        assert os.listdir(os.path.join(server.root, "upload")) == []  # its rm, or a second sftp
