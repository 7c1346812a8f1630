"""Failures that preflight's own stage code recognises, as exceptions carrying the facts.

The stages raise these when they *see* something wrong that no library exception describes
(a banner that is not SSH, a host key that does not match, nothing to authenticate with), and
let socket, resolver and paramiko exceptions propagate untouched. `diagnose` is the one place
that turns either kind into a `Diagnosis`; nothing here knows about codes' wording or hints.

    ProbeError
    ├── StageTimeout              the stage's own timeout or the target's deadline passed
    ├── BannerError
    │   ├── BannerClosed          EOF before an identification line
    │   ├── BannerNotSSH          something else answered
    │   ├── BannerMalformed       an SSH identification line that breaks the protocol
    │   └── BannerIncompatible    SSH-1.x only
    ├── HostKeyError
    │   ├── HostKeyUnknown
    │   ├── HostKeyMismatch
    │   └── HostKeyRevoked
    ├── CredentialError
    │   ├── NoCredentials
    │   └── BadKey
    ├── NoCommonAlgorithm         the server and paramiko share no algorithm of one kind
    ├── AuthMethodNotAllowed
    ├── AuthDenied
    ├── SFTPUnavailable
    ├── SFTPNotADirectory         the path exists but is a file (or another non-directory)
    └── UploadError               the upload check (`sftp.write`, `sftp.min_free`) failed
        ├── UploadNotWritable     the directory's permissions do not let this user create a file
        ├── UploadReadOnly        a read-only mount, or a server that refuses every write
        ├── UploadNoSpace         the file system is full, or has less free than `min_free`
        ├── UploadSizeMismatch    the file's size after the upload is not what was written
        ├── UploadTooSlow         the upload could not finish within the sftp timeout
        └── UploadFailed          any other refusal, in the server's words
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from preflight.phases import At

# The errnos of a connection refused by the network rather than by the host: ICMP unreachable
# or no route (EACCES is what Linux reports for ICMP "administratively prohibited").
UNREACHABLE_ERRNOS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EACCES}
)


class ProbeError(Exception):
    """Base class: a failure a stage recognised itself."""


class StageTimeout(ProbeError):
    """The stage ran out of time. `phase` says what it was waiting for (`phases.At`: the
    resolver, the key exchange, the sftp subsystem…); `cause` is whatever the blocked call
    raised once preflight closed the connection under it (for the record, not for
    classification)."""

    def __init__(
        self,
        phase: At | None,
        waited: float,
        *,
        by_deadline: bool = False,
        cause: BaseException | None = None,
    ) -> None:
        waiting = f" waiting for {phase}" if phase is not None else ""
        super().__init__(f"timed out after {waited:.1f}s{waiting}")
        self.phase = phase
        self.waited = waited
        self.by_deadline = by_deadline  # the target's deadline, not the stage timeout, ran out
        self.cause = cause


class BannerError(ProbeError):
    def __init__(self, received: bytes, lines: list[bytes]) -> None:
        super().__init__(self.__class__.__name__)
        self.received = received
        self.lines = lines


class BannerClosed(BannerError):
    """The peer closed (or reset) the connection before sending an identification line."""

    def __init__(self, received: bytes, lines: list[bytes], reset: bool = False) -> None:
        super().__init__(received, lines)
        self.reset = reset


class BannerNotSSH(BannerError):
    """Something answered, but not an SSH server. `reason` says how we know."""

    def __init__(self, received: bytes, lines: list[bytes], reason: str) -> None:
        super().__init__(received, lines)
        self.reason = reason


class BannerMalformed(BannerError):
    """An identification line (`SSH-…`) that breaks RFC 4253. `line` is the line as received;
    `defect` says how: "nul" (a NUL byte), "cr" (a carriage return inside the line), "utf8"
    (bytes that are not UTF-8, the first at `position`), "form" (not
    SSH-protoversion-softwareversion). OpenSSH refuses all but "utf8"; paramiko refuses "utf8"."""

    DEFECTS = ("nul", "cr", "utf8", "form")

    def __init__(
        self, received: bytes, lines: list[bytes], line: bytes, defect: str, position: int = -1
    ) -> None:
        super().__init__(received, lines)
        assert defect in self.DEFECTS, defect
        self.line = line
        self.defect = defect
        self.position = position

    @property
    def openssh_refuses(self) -> bool:
        return self.defect != "utf8"


class BannerIncompatible(BannerError):
    """The server only speaks SSH protocol 1."""

    def __init__(self, received: bytes, lines: list[bytes], banner: str) -> None:
        super().__init__(received, lines)
        self.banner = banner


class HostKeyError(ProbeError):
    def __init__(self, key_type: str, fingerprint: str) -> None:
        super().__init__(f"{key_type} {fingerprint}")
        self.key_type = key_type
        self.fingerprint = fingerprint


class HostKeyUnknown(HostKeyError):
    """Neither known_hosts nor the pinned fingerprints know this server. `pin_line` is the
    known_hosts line that would trust it; `checked` lists what was consulted; `name` is the
    name it was looked up under, and `known_as` other names under which the known_hosts file
    `known_in` holds this very key (the address the name resolved to, the name on port 22)."""

    def __init__(
        self,
        key_type: str,
        fingerprint: str,
        pin_line: str,
        checked: str,
        *,
        name: str = "",
        known_as: tuple[str, ...] = (),
        known_in: str = "",
    ) -> None:
        super().__init__(key_type, fingerprint)
        self.pin_line = pin_line
        self.checked = checked
        self.name = name
        self.known_as = known_as
        self.known_in = known_in


class HostKeyMismatch(HostKeyError):
    """The server's key differs from the one expected (known_hosts entry or pinned list).
    With `pinned`, `expected` are the pinned fingerprints and `presented` every (key type,
    fingerprint) the server showed when asked for each of its key types; `search_failed` is
    what ended that search early (a new connection refused), if anything."""

    def __init__(
        self,
        key_type: str,
        fingerprint: str,
        expected: list[str],
        source: str,
        *,
        pinned: bool = False,
        presented: tuple[tuple[str, str], ...] = (),
        search_failed: BaseException | None = None,
    ) -> None:
        super().__init__(key_type, fingerprint)
        self.expected = expected
        self.source = source
        self.pinned = pinned
        self.presented = presented or ((key_type, fingerprint),)
        self.search_failed = search_failed


class HostKeyRevoked(HostKeyError):
    """known_hosts marks the key the server presented `@revoked`; `source` is that file."""

    def __init__(self, key_type: str, fingerprint: str, source: str) -> None:
        super().__init__(key_type, fingerprint)
        self.source = source


class CredentialError(ProbeError):
    pass


class NoCredentials(CredentialError):
    """Nothing to authenticate with: `unset` names the variables that were empty or unset,
    `missing_file` describes a key file that does not exist ("the key file ~/.ssh/id",
    or "the file named by ${SSH_PRIVATE_KEY}" when the path itself came from a variable)."""

    def __init__(self, unset: tuple[str, ...] = (), missing_file: str | None = None) -> None:
        super().__init__("no credentials")
        self.unset = unset
        self.missing_file = missing_file


class BadKey(CredentialError):
    """The private key could not be loaded. `source` names it ("variable SSH_PRIVATE_KEY");
    `reason` is our own wording, never the key text; `kind` says which way it is bad, for a
    hint that fits: "unreadable" (permissions), "directory", "public_key" (the .pub half),
    "not_a_key", "no_passphrase", "wrong_passphrase", "paramiko_type" (a key type OpenSSH
    reads and paramiko does not: DSA, security keys) or "unsupported" (a format paramiko cannot
    read)."""

    def __init__(self, source: str, reason: str, kind: str = "unsupported") -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.kind = kind


class NoCommonAlgorithm(ProbeError):
    """Key exchange found nothing in common: `kind` ("key exchange", "host key", "cipher",
    "MAC", "compression"), what the server offers, what paramiko (`paramiko_version`) speaks,
    and what OpenSSH on this runner shares with the server (`openssh_common`; None when there
    is no OpenSSH client here to ask, `openssh_version` naming it otherwise)."""

    def __init__(
        self,
        kind: str,
        server: tuple[str, ...],
        ours: tuple[str, ...],
        paramiko_version: str,
        openssh_version: str | None = None,
        openssh_common: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(f"no common {kind} algorithm")
        self.kind = kind
        self.server = server
        self.ours = ours
        self.paramiko_version = paramiko_version
        self.openssh_version = openssh_version
        self.openssh_common = openssh_common


class AuthMethodNotAllowed(ProbeError):
    """The server does not accept any method we could offer, or (`accepted` not empty) it
    accepted some and requires another that is not configured."""

    def __init__(
        self, offered: list[str], allowed: list[str], accepted: list[str] | None = None
    ) -> None:
        super().__init__(f"offered {offered}, allowed {allowed}")
        self.offered = offered
        self.allowed = allowed
        self.accepted = accepted or []


class AuthDenied(ProbeError):
    """Every method we offered was rejected. `tried` lists them in order."""

    def __init__(self, tried: list[str], allowed: list[str]) -> None:
        super().__init__(f"tried {tried}, allowed {allowed}")
        self.tried = tried
        self.allowed = allowed


class SFTPUnavailable(ProbeError):
    """The server refused the sftp subsystem or closed the channel."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SFTPNotADirectory(ProbeError):
    """`path` exists but is not a directory: `mode` (st_mode, as the server's stat gave it)
    says what it is. Servers answer "no such file" to listing a file (OpenSSH maps ENOTDIR to
    it), so the stage asks with `stat` before it says a path does not exist."""

    def __init__(self, path: str, mode: int) -> None:
        super().__init__(f"{path} is not a directory")
        self.path = path
        self.mode = mode


class UploadError(ProbeError):
    """The upload check failed in `directory`; `file` is the test file (None if it was never
    created). Whether the file was removed is in the stage's facts (`upload.removed`)."""

    def __init__(self, directory: str, file: str | None) -> None:
        super().__init__(f"upload to {directory} failed")
        self.directory = directory
        self.file = file


class UploadNotWritable(UploadError):
    """Creating a file was refused to `user`, and the directory's permissions may explain it:
    `mode`, the owner (`uid`, `owner` its name where the server says) and the group (`gid`,
    `group`) as its stat gave them (None where the stat failed too)."""

    def __init__(
        self,
        directory: str,
        mode: int | None,
        uid: int | None,
        owner: str | None,
        user: str | None,
        *,
        gid: int | None = None,
        group: str | None = None,
    ) -> None:
        super().__init__(directory, None)
        self.user = user
        self.gid = gid
        self.group = group
        self.mode = mode
        self.uid = uid
        self.owner = owner


class UploadReadOnly(UploadError):
    """Writes are refused whatever the permissions: `by` is "mount" (statvfs says the file
    system is read-only) or "server" (the directory lets this user write, so the SFTP server
    itself refuses: OpenSSH's sftp-server -R, a policy); `evidence` says how that is known."""

    def __init__(self, directory: str, file: str | None, by: str, evidence: str) -> None:
        super().__init__(directory, file)
        self.by = by
        self.evidence = evidence


class UploadNoSpace(UploadError):
    """Too little room: `free` bytes available (statvfs) against `needed` — `min_free` when
    `by_min_free`, else the upload's size, of which `written` bytes had been sent. `no_inodes`
    when the file system has space but no free file slots."""

    def __init__(
        self,
        directory: str,
        file: str | None,
        free: int,
        needed: int,
        *,
        written: int = 0,
        by_min_free: bool = False,
        no_inodes: bool = False,
    ) -> None:
        super().__init__(directory, file)
        self.free = free
        self.needed = needed
        self.written = written
        self.by_min_free = by_min_free
        self.no_inodes = no_inodes


class UploadSizeMismatch(UploadError):
    """After the upload the server's stat gives `reported` bytes where `written` were sent."""

    def __init__(self, directory: str, file: str, written: int, reported: int | None) -> None:
        super().__init__(directory, file)
        self.written = written
        self.reported = reported


class UploadTooSlow(UploadError):
    """The upload was stopped to keep within the sftp timeout (the deadline, `by_deadline`):
    `written` of `size` bytes were acknowledged in `seconds`."""

    def __init__(
        self,
        directory: str,
        file: str,
        written: int,
        size: int,
        seconds: float,
        *,
        by_deadline: bool = False,
    ) -> None:
        super().__init__(directory, file)
        self.by_deadline = by_deadline
        self.written = written
        self.size = size
        self.seconds = seconds


class UploadFailed(UploadError):
    """The server refused a step of the upload (`step`: "create", "write", "close") for a
    reason that neither its answer nor statvfs explains; `reason` is its own words, `free` the
    free bytes statvfs gave afterwards (None: unknown)."""

    def __init__(
        self,
        directory: str,
        file: str | None,
        step: str,
        reason: str,
        *,
        written: int = 0,
        size: int = 0,
        free: int | None = None,
    ) -> None:
        super().__init__(directory, file)
        self.step = step
        self.reason = reason
        self.written = written
        self.size = size
        self.free = free
