"""The upload check (stages/upload.py) against lab servers: what no OpenSSH sshd does on demand.

A server without the statvfs extension (paramiko's), one that stops answering writes, one whose
disk is slow, one that stores less than it acknowledges, one that refuses to remove. The cases an
OpenSSH server produces (permissions, -R, full and read-only file systems, drop boxes) are in
tests/system/test_upload.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import paramiko
import pytest
from checking import FAST, MARGIN, check_one, make_target

from preflight import lab
from preflight.model import AuthConfig, Report, StageResult, Status, Target, WriteCheck
from preflight.runner import RunOptions, run_checks
from preflight.stages.watchdog import CLEANUP_GRACE

SMALL = WriteCheck(64)
MEGABYTE = WriteCheck(1024 * 1024, sized=True)


@contextmanager
def upload_server(client_key: paramiko.PKey, **options: Any) -> Iterator[lab.SFTPServer]:
    with lab.SFTPServer(authorized_keys={"deploy": [client_key]}, **options) as server:
        yield server


def sftp_row(server: lab.SFTPServer, key_auth: AuthConfig, **changes: Any) -> StageResult:
    target = make_target(server, auth=key_auth, **{"sftp_path": "/upload", **changes})
    result = check_one(target)
    assert [s.status for s in result.stages[:4]] == [Status.PASS] * 4, result.stages
    return result.stages[4]


def uploaded(server: lab.SFTPServer) -> list[str]:
    return sorted(os.listdir(os.path.join(server.root, "upload")))


def test_a_write_passes_and_says_so_without_statvfs(client_key, key_auth):
    with upload_server(client_key) as server:
        row = sftp_row(server, key_auth, sftp_write=SMALL)
        assert row.status is Status.PASS, row.diagnosis
        name = row.facts["upload"]["file"]
        assert row.detail == (
            f"listed /upload: 0 entries; created and wrote {name} (64 bytes), then removed it"
        )
        assert row.facts["upload"] == {
            "file": name,
            "size": 64,
            "created": True,
            "bytes": 64,
            "seconds": row.facts["upload"]["seconds"],
            "removed": True,
        }
        # paramiko's server offers no extensions: the fact is absent, and why is said instead.
        assert "free_bytes" not in row.facts
        assert row.facts["free_bytes_unknown"] == (
            "the server does not offer the statvfs@openssh.com extension, so its free space "
            "is unknown"
        )
        assert uploaded(server) == []


def test_a_sized_write_reports_the_rate(client_key, key_auth):
    with upload_server(client_key) as server:
        row = sftp_row(server, key_auth, sftp_write=MEGABYTE)
    assert row.status is Status.PASS, row.diagnosis
    upload = row.facts["upload"]
    assert upload["bytes"] == 1024 * 1024
    assert upload["rate_bytes_per_s"] == pytest.approx(
        upload["bytes"] / upload["seconds"], rel=0.05
    )
    assert "uploaded 1.0 MiB in " in row.detail and "/s), then removed it" in row.detail


def test_min_free_that_cannot_be_checked_is_a_warning_not_a_pass_in_silence(client_key, key_auth):
    with upload_server(client_key) as server:
        row = sftp_row(server, key_auth, sftp_min_free=1024**3)
    assert row.status is Status.PASS
    assert row.warnings == [
        "sftp.min_free 1.0 GiB not checked: the server does not offer the statvfs@openssh.com "
        "extension, so its free space is unknown"
    ]
    assert "upload" not in row.facts  # min_free alone writes nothing


def test_a_stall_during_the_write_is_sftp_timeout_naming_the_file_left_behind(client_key, key_auth):
    with upload_server(client_key, stall="write") as server:
        row = sftp_row(server, key_auth, sftp_write=MEGABYTE)
        assert row.diagnosis is not None and row.diagnosis.code == "sftp.timeout"
        assert row.duration_s <= FAST.sftp + MARGIN
        name = row.facts["upload"]["file"]
        assert row.diagnosis.summary.endswith(
            f"did not answer the upload to {name} in {FAST.sftp:.1f}s; the test file may be "
            "left behind (the server stopped answering before it could be removed)"
        )
        assert "stopped answering during the upload" in row.diagnosis.hint
        assert row.facts["upload"]["removed"] is False
        assert uploaded(server) == [os.path.basename(name)]  # it really stayed


def test_an_upload_too_slow_for_the_timeout_stops_in_time_and_removes_its_file(
    client_key, key_auth
):
    # 0.1 s per 32 KiB write: 1 MiB would take 3.2 s, and the sftp stage has 2.
    with upload_server(client_key, write_delay=0.1) as server:
        row = sftp_row(server, key_auth, sftp_write=MEGABYTE)
        assert row.diagnosis is not None and row.diagnosis.code == "sftp.timeout"
        assert row.duration_s <= FAST.sftp + MARGIN
        summary = row.diagnosis.summary
        assert "the upload to /upload on " in summary and " of 1.0 MiB in " in summary
        assert "KiB/s) and was stopped to finish within the sftp timeout (2s)" in summary
        assert "; at this rate 1 GiB takes " in summary
        assert row.facts["upload"]["removed"] is True
        assert "left behind" not in summary
        assert uploaded(server) == []


def test_a_server_that_stores_less_than_it_acknowledges_is_a_size_mismatch(client_key, key_auth):
    with upload_server(client_key, short_writes=True) as server:
        row = sftp_row(server, key_auth, sftp_write=MEGABYTE)
        assert row.diagnosis is not None and row.diagnosis.code == "sftp.size_mismatch"
        name = row.facts["upload"]["file"]
        assert row.diagnosis.summary.startswith(
            # The lab keeps half of each write at its offset: the last one ends 16 KiB short.
            f"{name} on {server.host}:{server.port} has 1032192 bytes after preflight wrote 1048576"
        )
        assert "does not compare sizes" in row.diagnosis.hint
        assert uploaded(server) == []


def test_a_file_that_cannot_be_removed_is_a_warning_naming_it(client_key, key_auth):
    with upload_server(client_key, keep_files=True) as server:
        row = sftp_row(server, key_auth, sftp_write=SMALL)
        assert row.status is Status.PASS
        name = row.facts["upload"]["file"]
        assert row.facts["upload"]["removed"] is False
        assert row.detail.endswith(f"; could not remove {name}")
        assert row.warnings == [
            f"the test file {name} could not be removed (Permission denied): it is still on "
            "the server; delete it by hand (it holds 64 bytes written by preflight)"
        ]
        assert uploaded(server) == [os.path.basename(name)]


def test_a_failure_after_the_file_was_made_still_removes_it(client_key, key_auth):
    with upload_server(client_key, short_writes=True, keep_files=True) as server:
        row = sftp_row(server, key_auth, sftp_write=SMALL)
    assert row.diagnosis is not None and row.diagnosis.code == "sftp.size_mismatch"
    assert row.diagnosis.summary.endswith("; the test file may be left behind (Permission denied)")


def test_the_test_file_is_new_each_time_and_never_replaces_one(client_key, key_auth):
    with upload_server(client_key) as server:
        names = {sftp_row(server, key_auth, sftp_write=SMALL).facts["upload"]["file"] for _ in "ab"}
    assert len(names) == 2
    assert all(name.startswith("/upload/.preflight-") and name.endswith(".tmp") for name in names)


def test_a_link_too_slow_for_even_a_few_writes_still_ends_in_a_verdict_and_no_file(
    client_key, key_auth
):
    # 0.7 s per 32 KiB: two answers fit in the 2 s, and what is in flight is kept to what can
    # be answered in the time left, so nothing is cut by the watchdog.
    with upload_server(client_key, write_delay=0.7) as server:
        row = sftp_row(server, key_auth, sftp_write=MEGABYTE)
        assert row.diagnosis is not None and row.diagnosis.code == "sftp.timeout"
        assert "was stopped to finish within the sftp timeout (2s)" in row.diagnosis.summary
        assert row.facts["upload"]["stopped_early"] is True
        assert row.facts["upload"]["removed"] is True
        assert uploaded(server) == []


def test_a_server_that_takes_the_upload_away_at_once_passes_saying_so(client_key, key_auth):
    # An ingest server moves an upload on as soon as it is closed: stat finds nothing.
    with upload_server(client_key, takes_uploads=True) as server:
        row = sftp_row(server, key_auth, sftp_write=SMALL)
    assert row.status is Status.PASS, row.diagnosis
    assert row.detail.endswith("; the server took it away at once (its size was not checked)")
    assert row.facts["upload"]["taken_by_server"] is True


def test_an_upload_cut_off_by_the_deadline_names_the_file_it_may_have_left(client_key, key_auth):
    with upload_server(client_key, stall="write") as server:
        row = sftp_row(
            server, key_auth, sftp_write=SMALL, timeouts=replace(FAST, sftp=10.0), deadline=4.0
        )
    assert row.diagnosis is not None and row.diagnosis.code == "deadline.exceeded"
    assert row.diagnosis.summary.endswith(
        "; the test file may be left behind (the server stopped answering before it could be "
        "removed)"
    )


def test_a_relative_path_is_reported_as_the_directory_it_resolves_to(client_key, key_auth):
    with upload_server(client_key) as server:
        row = sftp_row(server, key_auth, sftp_path=".", sftp_write=SMALL)
    assert row.facts["upload"]["file"].startswith("/.preflight-")


# --------------------------------------------------------------------------- interrupted


def long_upload(server: lab.SFTPServer, key_auth: AuthConfig, sftp: float) -> Target:
    """A target whose 1 MiB upload check has `sftp` seconds: long enough to be interrupted."""
    return make_target(
        server,
        auth=key_auth,
        sftp_path="/upload",
        sftp_write=MEGABYTE,
        timeouts=replace(FAST, sftp=sftp),
    )


def interrupted_sftp_row(server: lab.SFTPServer, key_auth: AuthConfig) -> tuple[StageResult, float]:
    """The sftp row of a 1 MiB upload check interrupted (as SIGTERM cancels a run) 0.3 s after
    its test file appeared on the server, and how long the run took after the interruption."""
    target = long_upload(server, key_auth, sftp=10.0)

    async def interrupt_during_the_upload() -> tuple[Report, float]:
        task = asyncio.create_task(run_checks([target]))
        while not uploaded(server):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        task.cancel()
        interrupted = time.monotonic()
        report = await task
        return report, time.monotonic() - interrupted

    report, after = asyncio.run(interrupt_during_the_upload())
    assert report.interrupted
    row = report.targets[0].stages[4]
    assert row.status is Status.ERROR
    return row, after


def test_an_interrupted_upload_removes_its_test_file_before_the_connection_closes(
    client_key, key_auth
):
    # 0.05 s per 32 KiB write: the 1 MiB takes 1.6 s, so it is under way when interrupted, and
    # what is in flight drains well within the cleanup's time.
    with upload_server(client_key, write_delay=0.05) as server:
        row, after = interrupted_sftp_row(server, key_auth)
        assert uploaded(server) == []
    assert after < CLEANUP_GRACE + MARGIN
    name = row.facts["upload"]["file"]
    assert row.detail.startswith("interrupted after ")
    assert f"s during the upload to {name}, before the stage finished; " in row.detail
    assert re.search(r"; its test file was then removed \(\d\.\d\ds\)$", row.detail), row.detail
    assert row.facts["upload"]["removed"] is True


def test_an_interrupted_upload_that_cannot_clean_up_in_time_names_the_file_it_left(
    client_key, key_auth
):
    # The server stops answering writes: the test file cannot be closed nor removed, and the
    # interruption waits for it no longer than the cleanup's time.
    with upload_server(client_key, stall="write") as server:
        row, after = interrupted_sftp_row(server, key_auth)
        left = uploaded(server)
    assert CLEANUP_GRACE - 0.1 <= after < CLEANUP_GRACE + MARGIN
    name = row.facts["upload"]["file"]
    assert left == [os.path.basename(name)]
    assert re.search(
        rf"; its test file {re.escape(name)} may be left on the server: it was not removed in "
        r"the \d\.\d\ds after the interruption \(delete it by hand\)$",
        row.detail,
    ), row.detail
    assert row.facts["upload"]["removed"] is False


def test_an_interruption_shortly_before_the_deadline_is_still_an_interruption(client_key, key_auth):
    # The cleanup's wait stops at the deadline: past it, the run's own cut-off would take the
    # interruption for the deadline and the row would lose the file it names.
    with upload_server(client_key, stall="write") as server:
        target = long_upload(server, key_auth, sftp=20.0)

        async def interrupt_a_second_before_the_deadline() -> Report:
            task = asyncio.create_task(run_checks([target], RunOptions(deadline=4.0)))
            await asyncio.sleep(3.0)
            task.cancel()
            return await task

        report = asyncio.run(interrupt_a_second_before_the_deadline())
        left = uploaded(server)
    row = report.targets[0].stages[4]
    assert report.interrupted and row.status is Status.ERROR, row
    name = row.facts["upload"]["file"]
    assert left == [os.path.basename(name)]
    assert f"; its test file {name} may be left on the server: " in row.detail
