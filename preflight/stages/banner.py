"""The banner stage: read the server's SSH identification line under an absolute deadline.

RFC 4253 §4.2 lets a server send other lines before `SSH-2.0-…`. paramiko restarts its banner
timeout on every `recv` and then allows 2 s per extra line, so a server trickling one byte a
second never times out there. Here the deadline is fixed when the stage starts and every read
waits only for what is left of it. Input is capped (line length, line count, total bytes) so a
hostile peer cannot make us buffer without end, and a peer that speaks another protocol first
(HTTP, SMTP, TLS…) is recognised at once instead of after the timeout. The identification line
and any bytes after it are kept in `conn.handover` for paramiko to read as if from the socket.
The judgement itself is `IdentificationReader`, free of I/O, so that the same rules apply to a
server reached through a jump host, whose bytes arrive on an SSH channel (`stages.jump`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from preflight.deadline import Budget
from preflight.errors import (
    BannerClosed,
    BannerIncompatible,
    BannerMalformed,
    BannerNotSSH,
    StageTimeout,
)
from preflight.phases import At, Phase
from preflight.stages import Connection, Passed

MAX_LINE = 8192  # RFC 4253 allows 255 for the version line; be lenient with chatter lines
MAX_LINES = 1024  # OpenSSH's limit on lines before the identification
MAX_BYTES = 65536
READ_SIZE = 4096

# Greetings of protocols that speak first; recognising them saves waiting out the timeout.
_OTHER_PROTOCOLS = (
    (re.compile(rb"^HTTP/\d"), "an HTTP server"),
    (re.compile(rb"^220[ -]"), "an SMTP or FTP server"),
    (re.compile(rb"^\+OK"), "a POP3 server"),
    (re.compile(rb"^\* (OK|PREAUTH|BYE)"), "an IMAP server"),
    (re.compile(rb"^\x16\x03[\x00-\x04]"), "a TLS server"),
    (re.compile(rb"^\x15\x03[\x00-\x04]"), "a TLS server (alert)"),
    (re.compile(rb"^RFB \d"), "a VNC server"),
    (re.compile(rb"^\x00\x00\x00.\xff"), "a binary protocol"),
)


def recognise_other_protocol(data: bytes) -> str | None:
    for pattern, name in _OTHER_PROTOCOLS:
        if pattern.match(data):
            return name
    return None


def parse_identification(line: bytes) -> tuple[str, str, str] | None:
    """(`protoversion`, `softwareversion`, `comments`) of an `SSH-…` line, else None."""
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    match = re.match(r"SSH-([^-\s]+)-(\S*)(?: (.*))?$", text)
    if not match:
        return None
    return match.group(1), match.group(2), match.group(3) or ""


@dataclass(frozen=True)
class Identification:
    """A complete identification line, everything received, and the lines before it."""

    line: bytes
    received: bytes
    lines: list[bytes]
    after: int  # offset in `received` just past the identification line


class IdentificationReader:
    """The banner stage's judgement, apart from any I/O: feed it what the peer sends, chunk by
    chunk, and it returns the identification once a complete `SSH-` line has arrived, or
    raises (`BannerNotSSH`…) as soon as the bytes say the peer is something else. `closed` and
    `timed_out` say what the end of the input means. The socket path (on the event loop) and
    the channel path through a jump host (in a thread) both drive one of these."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.lines: list[bytes] = []  # complete lines seen before the identification
        self.line_start = 0

    @property
    def pending(self) -> bytes:
        """The unterminated line received so far."""
        return bytes(self.received[self.line_start :])

    def feed(self, chunk: bytes) -> Identification | None:
        self.received += chunk
        if len(self.received) > MAX_BYTES:
            raise BannerNotSSH(
                bytes(self.received[:MAX_BYTES]),
                self.lines,
                f"it sent more than {MAX_BYTES} bytes without an SSH identification line",
            )
        while True:
            newline = self.received.find(b"\n", self.line_start)
            if newline < 0:
                _check_unterminated(self.pending, bytes(self.received), self.lines)
                return None
            line = bytes(self.received[self.line_start : newline + 1])
            self.line_start = newline + 1
            defect = _invalid_characters(line)
            if line.startswith(b"SSH-"):
                if defect:
                    raise BannerMalformed(bytes(self.received), self.lines, line, defect)
                return Identification(line, bytes(self.received), self.lines, self.line_start)
            if defect and recognise_other_protocol(line) is None:
                # OpenSSH refuses such a line before the identification too, at once.
                raise BannerNotSSH(
                    bytes(self.received),
                    [*self.lines, line],
                    f"a line before any SSH identification {_DEFECTS[defect]} ({_OPENSSH_INVALID})",
                )
            self.lines.append(line)
            other = recognise_other_protocol(self.lines[0])
            if other is not None:
                raise BannerNotSSH(bytes(self.received), self.lines, f"it looks like {other}")
            if len(self.lines) >= MAX_LINES:
                raise BannerNotSSH(
                    bytes(self.received),
                    self.lines,
                    f"{MAX_LINES} lines arrived without an SSH identification line",
                )

    def closed(self, *, reset: bool = False) -> NoReturn:
        """The peer closed (or reset) the connection before identifying."""
        received, lines = bytes(self.received), self.lines
        if reset:
            raise BannerClosed(received, lines, reset=True)
        if _is_text(lines) and not self.pending:
            # "Exceeded MaxStartups", a tcp_wrappers or fail2ban notice: a refusal in words,
            # then the close.
            raise BannerClosed(received, lines)
        if lines or received:
            raise BannerNotSSH(
                received, lines, "it closed the connection without identifying as SSH"
            )
        raise BannerClosed(received, lines)

    def timed_out(self, facts: dict[str, Any], budget: Budget) -> NoReturn:
        """The budget ran out. RFC 4253 allows text lines before the identification: a server
        that sent some and then fell silent is slow, not something else; garbage is."""
        pending, lines = self.pending, self.lines
        if not _is_text(lines) or (pending and not _may_become_identification(pending)):
            raise BannerNotSSH(bytes(self.received), lines, _silent_reason(lines, budget))
        if lines:
            facts["lines_before"] = [_line_text(ln) for ln in lines[:3]]
            facts["pre_banner_lines"] = len(lines)
        if pending:  # a trickle: the identification was still arriving
            facts["received_so_far"] = pending.decode("utf-8", errors="replace")
        raise StageTimeout(
            At(Phase.IDENTIFICATION), budget.elapsed(), by_deadline=budget.cut_by_deadline
        )


async def probe(conn: Connection, budget: Budget) -> Passed:
    assert conn.sock is not None, "the tcp stage opens the socket"
    conn.phase = At(Phase.BANNER)
    loop = asyncio.get_running_loop()
    reader = IdentificationReader()
    while True:
        try:
            async with asyncio.timeout(budget.remaining()):  # no task per read, as wait_for
                chunk = await loop.sock_recv(conn.sock, READ_SIZE)
        except TimeoutError:
            reader.timed_out(conn.facts, budget)
        except ConnectionResetError:
            reader.closed(reset=True)
        if not chunk:
            reader.closed(reset=conn.reset_on_connect)
        found = reader.feed(chunk)
        if found is not None:
            return identified(conn, found)


# What OpenSSH's client says of a NUL or a stray carriage return in any line it reads before
# the key exchange (kex.c): it refuses the server at once. (The reason of a BannerNotSSH is
# written where the line is judged, as for every other protocol it recognises.)
_OPENSSH_INVALID = "OpenSSH refuses it: banner line contains invalid characters"
_DEFECTS = {"nul": "contains a NUL byte", "cr": "contains a carriage return inside the line"}


def _invalid_characters(line: bytes) -> str:
    """How `line` breaks OpenSSH's rules for the lines before the key exchange, or "": "nul"
    (a NUL byte) or "cr" (a carriage return anywhere but just before the newline)."""
    body = line.removesuffix(b"\n").removesuffix(b"\r")
    if b"\0" in body:
        return "nul"
    if b"\r" in body:
        return "cr"
    return ""


def _check_unterminated(pending: bytes, received: bytes, lines: list[bytes]) -> None:
    """Fail early on a partial line that can already be judged: another protocol's greeting
    (TLS sends no newline) or a line longer than any SSH peer would send."""
    if not lines and pending:
        other = recognise_other_protocol(pending)
        if other is not None:
            raise BannerNotSSH(received, lines, f"it looks like {other}")
    if len(pending) > MAX_LINE:
        raise BannerNotSSH(
            received, lines, f"it sent a line of more than {MAX_LINE} bytes without a newline"
        )


def _line_text(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("utf-8", errors="replace")


def _is_text(lines: list[bytes]) -> bool:
    """Printable text lines (what RFC 4253 allows before the identification)."""
    return all(_line_text(line).isprintable() for line in lines)


def _may_become_identification(partial: bytes) -> bool:
    return partial.startswith(b"SSH-") or b"SSH-".startswith(partial)


def _silent_reason(lines: list[bytes], budget: Budget) -> str:
    what = f"{len(lines)} line{'s' if len(lines) != 1 else ''}" if lines else "a partial line"
    return f"it sent {what} but no SSH identification in {budget.elapsed():.1f}s"


def identified(conn: Connection, found: Identification) -> Passed:
    """Check the identification line's version and hand it (and what followed) on."""
    line, received, lines = found.line, found.received, found.lines
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    conn.facts["banner"] = text
    if lines:
        conn.facts["pre_banner_lines"] = len(lines)
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        # paramiko decodes the identification line strictly and gives up; OpenSSH reads it
        # as bytes and goes on. The bytes also enter the key exchange hash, so they cannot be
        # repaired on the way to paramiko.
        conn.facts["openssh_accepts_banner"] = True
        raise BannerMalformed(received, lines, line, "utf8", exc.start) from None
    parsed = parse_identification(line)
    if parsed is None:
        raise BannerMalformed(received, lines, line, "form")
    version = parsed[0]
    if version not in ("2.0", "1.99"):
        if version.startswith("1."):
            raise BannerIncompatible(received, lines, text)
        raise BannerNotSSH(received, lines, f"it announces SSH protocol version {version!r}")
    conn.banner = text
    conn.handover = received[found.after - len(line) :]
    extra = f" after {len(lines)} other line{'s' if len(lines) > 1 else ''}" if lines else ""
    return Passed(f"{text}{extra}")
