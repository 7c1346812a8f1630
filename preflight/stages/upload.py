"""The sftp stage's upload check (`sftp.write`, `sftp.min_free`): what the job does, not a listing.

A listing can pass where the job's upload fails: a read-only export, a full disk, a directory
this user may read but not write. So, when asked, the stage creates a file whose name says what
it is (`.preflight-<random>.tmp`, created exclusively: nothing of anyone else's is touched),
writes it, checks its size with `stat` and removes it. A sized write (`write: 1MiB`) measures
the upload rate; writes are pipelined, as OpenSSH's sftp does, with no more in flight than the
time left can drain, so that a slow link ends in a verdict and a removed file rather than the
watchdog's cut. Free space comes from the `statvfs@openssh.com` extension where the server
offers it. SFTP version 3 answers most refusals with a bare "Failure", so a refusal is explained
with what the server can be asked: statvfs (read-only mount, no space) and the directory's mode
and owner (`users-groups-by-id@openssh.com` names the owner). Runs in the sftp stage's thread,
under its watchdog; every fact goes into `conn.facts` as soon as it is known.
"""

from __future__ import annotations

import contextlib
import errno
import posixpath
import secrets
import stat
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import paramiko
from paramiko import sftp as protocol

from preflight.bounded import Answers, SFTPSession
from preflight.deadline import Budget
from preflight.errors import (
    UploadFailed,
    UploadNoSpace,
    UploadNotWritable,
    UploadReadOnly,
    UploadSizeMismatch,
    UploadTooSlow,
)
from preflight.model import UPLOAD_NOTE, WriteCheck
from preflight.phases import At, Phase
from preflight.stages import Connection
from preflight.stages.watchdog import CLEANUP_GRACE
from preflight.units import format_rate, format_size

__all__ = ["STATVFS", "check"]

STATVFS = "statvfs@openssh.com"
IDS_TO_NAMES = "users-groups-by-id@openssh.com"
_ST_RDONLY = 0x1  # statvfs f_flag
CHUNK = 32 * 1024  # what OpenSSH's sftp sends per write request
MAX_IN_FLIGHT = 64  # as OpenSSH's sftp (-R 64): 2 MiB unacknowledged at most


@dataclass(frozen=True)
class FreeSpace:
    """statvfs of a directory: bytes and file slots this user may still take, and the mount."""

    free: int
    files: int  # file slots in all; 0 where the file system has no fixed number (tmpfs, btrfs)
    files_free: int
    read_only: bool

    @property
    def out_of_files(self) -> bool:
        return self.files > 0 and self.files_free == 0


def check(conn: Connection, sftp: SFTPSession, budget: Budget) -> tuple[list[str], list[str]]:
    """The upload check of `conn.target` on an open SFTP session: what the pass line adds
    ("wrote 1.0 MiB … (8.3 MiB/s), removed", "4.2 GiB free") and the warnings. Raises an
    `UploadError` (or the SFTP error untouched) when it fails."""
    target = conn.target
    # Where the listing resolved a relative path ("."), the reports name the real directory.
    directory = conn.facts.get("resolved_path") or target.sftp_path
    shown: list[str] = []
    warnings: list[str] = []
    space = _statvfs(conn, sftp, directory, record=True)
    if target.sftp_min_free is not None:
        if space is None:
            warnings.append(
                f"sftp.min_free {format_size(target.sftp_min_free)} not checked: "
                f"{conn.facts['free_bytes_unknown']}"
            )
        elif space.free < target.sftp_min_free:
            raise UploadNoSpace(directory, None, space.free, target.sftp_min_free, by_min_free=True)
    if target.sftp_write is not None:
        shown.append(_upload(conn, sftp, budget, directory, target.sftp_write, space, warnings))
    if space is not None:
        shown.append(f"{format_size(space.free)} free")
    return shown, warnings


def _statvfs(
    conn: Connection, sftp: SFTPSession, directory: str, *, record: bool = False
) -> FreeSpace | None:
    """The free space of `directory`, None where the server does not say (and, with
    `record`, why not in the facts)."""
    if STATVFS not in sftp.extensions:
        if record:
            conn.facts["free_bytes_unknown"] = (
                f"the server does not offer the {STATVFS} extension, so its free space is unknown"
            )
        return None
    conn.phase = At(Phase.STATVFS, directory)
    try:
        kind, message = sftp.request(protocol.CMD_EXTENDED, STATVFS, directory)
        if kind != protocol.CMD_EXTENDED_REPLY:
            raise OSError(f"an answer of type {kind} to {STATVFS}")
        # bsize frsize blocks bfree bavail files ffree favail fsid flag namemax (all uint64)
        values = [message.get_int64() for _ in range(11)]
    except OSError as exc:
        if record:
            conn.facts["free_bytes_unknown"] = f"{STATVFS} failed: {exc.strerror or exc}"
        return None
    block = values[1] or values[0]
    space = FreeSpace(values[4] * block, values[5], values[7], bool(values[9] & _ST_RDONLY))
    if record:
        conn.facts["free_bytes"] = space.free
        if space.read_only:
            conn.facts["read_only_mount"] = True
    return space


def _upload(
    conn: Connection,
    sftp: SFTPSession,
    budget: Budget,
    directory: str,
    write: WriteCheck,
    space: FreeSpace | None,
    warnings: list[str],
) -> str:
    name = posixpath.join(directory, f".preflight-{secrets.token_hex(6)}.tmp")
    record: dict[str, Any] = {"file": name, "size": write.size, "created": False}
    conn.facts["upload"] = record
    conn.phase = At(Phase.CREATE, name)
    started = time.monotonic()
    flags = protocol.SFTP_FLAG_WRITE | protocol.SFTP_FLAG_CREATE | protocol.SFTP_FLAG_EXCL
    try:
        kind, message = sftp.request(protocol.CMD_OPEN, name, flags, paramiko.SFTPAttributes())
        if kind != protocol.CMD_HANDLE:
            raise OSError(f"an answer of type {kind} to open")
        handle = message.get_binary()
    except OSError as exc:
        raise _refused(conn, sftp, directory, exc, space, write.size) from None
    record["created"] = True
    conn.test_file = name
    state: set[str] = set()  # "closing", "closed": how far the file's handle got
    try:
        written = _write(conn, sftp, budget, handle, name, write, record, state)
        record["seconds"] = round(time.monotonic() - started, 3)
        if written < write.size:
            raise UploadTooSlow(
                directory,
                name,
                written,
                write.size,
                record["seconds"],
                by_deadline=budget.cut_by_deadline,
            )
        conn.phase = At(Phase.STAT, name)
        try:
            reported = sftp.stat(name).st_size
        except FileNotFoundError:
            # Gone as soon as it was closed: an ingest server that moves uploads on. The
            # upload worked; there is nothing left to check or to remove.
            record["removed"] = record["taken_by_server"] = True
            conn.test_file = None
            reported = written
        if reported != written:
            raise UploadSizeMismatch(directory, name, written, reported)
    except OSError as exc:
        written = record.get("bytes", 0)
        failure = _write_failed(conn, sftp, directory, name, exc, written, write.size, state)
        _close(conn, sftp, budget, handle, state)
        _remove(conn, sftp, budget, name, record)
        raise failure from None
    except BaseException:
        _close(conn, sftp, budget, handle, state)
        _remove(conn, sftp, budget, name, record)
        raise
    seconds = record["seconds"]
    if write.sized:
        record["rate_bytes_per_s"] = round(written / seconds) if seconds > 0 else None
        rate = format_rate(written, seconds)
        what = f"uploaded {format_size(written)} in {seconds:.2f}s ({rate})"
    else:
        what = f"created and wrote {name} ({written} bytes)"
    if record.get("taken_by_server"):
        return f"{what}; the server took it away at once (its size was not checked)"
    if _remove(conn, sftp, budget, name, record):
        if record.get("taken_by_server"):
            return f"{what}; the server took it away before it could be removed"
        return f"{what}, then removed it"
    warnings.append(
        f"the test file {name} could not be removed ({record['remove_error']}): it is still "
        f"on the server; delete it by hand (it holds {written} bytes written by preflight)"
    )
    return f"{what}; could not remove {name}"


def _write(
    conn: Connection,
    sftp: SFTPSession,
    budget: Budget,
    handle: bytes,
    name: str,
    write: WriteCheck,
    record: dict[str, Any],
    state: set[str],
) -> int:
    """Send `write.size` bytes, pipelined, and close the file; the bytes the server
    acknowledged (kept in `record["bytes"]` as they are). Stops early, with no more in flight
    than can drain at the rate seen so far, when the rest could not arrive before the budget is
    down to its reserve: the check then ends with a verdict and a removed file instead of the
    watchdog's cut."""
    conn.phase = At(Phase.WRITE, name)
    payload = UPLOAD_NOTE if not write.sized else (UPLOAD_NOTE * (CHUNK // len(UPLOAD_NOTE) + 1))
    answers = Answers()
    in_flight: deque[tuple[int, int]] = deque()  # (request number, bytes)
    sent = acked = 0
    record["bytes"] = 0
    started = time.monotonic()
    reserve = min(2.0, max(0.25, budget.timeout * 0.1))
    while sent < write.size or in_flight:
        if conn.stop_requested:
            raise _Stopped
        # One request first: its answer shows the rate that sizes the window after it.
        window = CHUNK
        if acked:
            rate = acked / max(time.monotonic() - started, 1e-6)
            # No more in flight than drains in half the time an interruption leaves for the
            # cleanup: the close and remove queue behind every write already sent.
            drain = min(budget.remaining() - reserve, CLEANUP_GRACE / 2)
            window = min(MAX_IN_FLIGHT * CHUNK, int(rate * drain))
        if sent < write.size and sent - acked + CHUNK <= window:
            piece = payload[: min(CHUNK, write.size - sent)]
            at = protocol.int64(sent)
            in_flight.append(
                (sftp.send_request(answers, protocol.CMD_WRITE, handle, at, piece), len(piece))
            )
            sent += len(piece)
            continue
        if not in_flight:
            break  # nothing more fits in the time left
        if not _readable(conn, sftp, budget.remaining() - reserve):
            record["stopped_early"] = True
            break  # no answer in the time left: too slow (or stalled: the close will tell)
        number, size = in_flight.popleft()
        kind, _ = sftp.answer(answers, number)
        if kind != protocol.CMD_STATUS:
            raise OSError(f"an answer of type {kind} to write")
        acked += size
        record["bytes"] = acked
    if sent < write.size:
        record["stopped_early"] = True
    conn.phase = At(Phase.WRITE, name)
    state.add("closing")
    sftp.request(protocol.CMD_CLOSE, handle)  # after the writes still in flight, if any
    state.add("closed")
    return acked


class _Stopped(Exception):
    """The run was interrupted (`Connection.stop_requested`): the writing stops here, and the
    test file is closed and removed on the way out."""


def _readable(conn: Connection, sftp: SFTPSession, seconds: float) -> bool:
    """`sftp.readable(seconds)`, looking in on `conn.stop_requested` every tenth of a second."""
    until = time.monotonic() + seconds
    while True:
        left = until - time.monotonic()
        if sftp.readable(min(left, 0.1)):
            return True
        if left <= 0.1:
            return False
        if conn.stop_requested:
            raise _Stopped


def _close(
    conn: Connection, sftp: SFTPSession, budget: Budget, handle: bytes, state: set[str]
) -> None:
    """Close the file after a failure, if it is still open and the server still answers: some
    servers (Windows ones) refuse to remove an open file."""
    transport = conn.transport
    if "closed" in state or budget.expired() or transport is None or not transport.is_active():
        return
    with contextlib.suppress(OSError):
        sftp.request(protocol.CMD_CLOSE, handle)
    state.add("closed")


def _refused(
    conn: Connection,
    sftp: SFTPSession,
    directory: str,
    exc: OSError,
    space: FreeSpace | None,
    size: int,
) -> BaseException:
    """Why creating the file was refused, from the answer and what else the server says."""
    if space is not None and space.read_only:
        return UploadReadOnly(
            directory, None, "mount", "statvfs reports the mount read-only (ST_RDONLY)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        mode = uid = gid = None
        conn.phase = At(Phase.STAT, directory)
        with contextlib.suppress(OSError):
            attributes = sftp.stat(directory)
            mode, uid, gid = attributes.st_mode, attributes.st_uid, attributes.st_gid
        owner, group = _names(sftp, uid, gid)
        user = conn.target.user
        # Creating a file takes write *and* search (x) permission on the directory.
        others_may = mode is not None and mode & _OTHERS_CREATE == _OTHERS_CREATE
        owner_may = mode is not None and mode & _OWNER_CREATE == _OWNER_CREATE and owner == user
        if others_may or owner_may:
            assert mode is not None
            evidence = (
                f"its mode {stat.S_IMODE(mode):04o} lets anyone create files in it"
                if others_may
                else f"it belongs to {owner}, whose mode {stat.S_IMODE(mode):04o} allows "
                "creating files"
            )
            return UploadReadOnly(directory, None, "server", evidence)
        return UploadNotWritable(directory, mode, uid, owner, user, gid=gid, group=group)
    if exc.errno is None:  # SSH_FX_FAILURE: the server names no reason
        if space is not None and (space.free == 0 or space.out_of_files):
            no_inodes = space.out_of_files and space.free > 0
            return UploadNoSpace(directory, None, space.free, size, no_inodes=no_inodes)
        return UploadFailed(
            directory, None, "create", _words(exc), free=space.free if space else None
        )
    return exc  # no such directory and the like: the listing's diagnoses say them


_OTHERS_CREATE = stat.S_IWOTH | stat.S_IXOTH
_OWNER_CREATE = stat.S_IWUSR | stat.S_IXUSR


def _write_failed(
    conn: Connection,
    sftp: SFTPSession,
    directory: str,
    name: str,
    exc: OSError,
    written: int,
    size: int,
    state: set[str],
) -> BaseException:
    """Why a write (or the close after it) was refused: statvfs, asked again, tells a full
    file system or a read-only one from a reason the server keeps to itself."""
    if isinstance(exc, TimeoutError) or conn.transport is None or not conn.transport.is_active():
        return exc  # a stall or a lost connection: the timeout and channel diagnoses say it
    step = "stat" if "closed" in state else "close" if "closing" in state else "write"
    after = _statvfs(conn, sftp, directory) if step != "stat" else None
    if after is not None and after.read_only:
        return UploadReadOnly(
            directory, name, "mount", "statvfs reports the mount read-only (ST_RDONLY)"
        )
    if after is not None and after.free < max(size - written, 1) + CHUNK:
        return UploadNoSpace(directory, name, after.free, size, written=written)
    return UploadFailed(
        directory,
        name,
        step,
        _words(exc),
        written=written,
        size=size,
        free=after.free if after is not None else None,
    )


def _remove(
    conn: Connection, sftp: SFTPSession, budget: Budget, name: str, record: dict[str, Any]
) -> bool:
    """Remove the test file; whether it is gone. The facts say what stayed, and why."""
    conn.phase = At(Phase.REMOVE, name)
    transport = conn.transport
    if budget.expired() or transport is None or not transport.is_active():
        record["removed"] = False
        record["remove_error"] = (
            "the server stopped answering before it could be removed"
            if budget.expired()
            else "the connection closed before it could be removed"
        )
        return False
    try:
        sftp.remove(name)
    except FileNotFoundError:
        # Gone already: an ingest server that moves uploads on (or cleans up) took it.
        record["removed"] = record["taken_by_server"] = True
        conn.test_file = None
        return True
    except OSError as exc:
        record["removed"] = False
        record["remove_error"] = _words(exc)
        return False
    record["removed"] = True
    conn.test_file = None
    return True


def _names(sftp: SFTPSession, uid: int | None, gid: int | None) -> tuple[str | None, str | None]:
    """The server's names for `uid` and `gid` (users-groups-by-id@openssh.com); None where
    it does not say."""
    if uid is None or gid is None or IDS_TO_NAMES not in sftp.extensions:
        return None, None
    uids, gids = paramiko.Message(), paramiko.Message()
    uids.add_int(uid)
    gids.add_int(gid)
    try:
        kind, message = sftp.request(
            protocol.CMD_EXTENDED, IDS_TO_NAMES, uids.asbytes(), gids.asbytes()
        )
        if kind != protocol.CMD_EXTENDED_REPLY:
            return None, None
        users, groups = (
            paramiko.Message(message.get_binary()),
            paramiko.Message(message.get_binary()),
        )
        return users.get_text() or None, groups.get_text() or None
    except Exception:  # an odd answer: the owner stays unnamed
        return None, None


def _words(exc: OSError) -> str:
    """The server's reason as it gave it ("Permission denied", "Failure")."""
    text = exc.strerror if exc.strerror else str(exc)
    return text.strip() or type(exc).__name__
