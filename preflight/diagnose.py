"""The one place that turns exceptions into diagnoses: a stable code, the facts, what to do.

Exception types alone do not identify a failure (DESIGN §3: a bare `EOFError` may be a handshake
timeout or a closed connection; `TimeoutError('')` says nothing), so classification uses the stage
that was running, the phase inside it, what the stage had already learned (`facts`) and whether it
was the stage timeout or the deadline that ran out. Stages raise `preflight.errors` exceptions for
what they recognise and let socket, resolver and paramiko exceptions through untouched; nothing
else in preflight maps exceptions to codes. paramiko is only consulted if it is already imported,
so a dns/tcp-only run never loads it. Behind jump hosts the summary names the hop: a jump host's
own failure starts "jump host bastion:22: …", a failure seen through one "via bastion:22: …", and
a `direct-tcpip` channel the jump host could not open maps to the tcp (or dns) code its reason
says, as closely as the SSH reason code and the server's description allow.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from preflight import errors, hostkeys, units
from preflight.model import Diagnosis, Stage
from preflight.phases import At, Phase, label


@dataclass(frozen=True)
class Context:
    """What was going on when a stage failed: facts only (the runner builds it, in one place);
    the words are written here. `deadline` is the limit that bounded the stage: the target's
    own (`deadline_is_the_runs` False) or the run's `--deadline`, in seconds."""

    stage: Stage
    host: str
    port: int
    timeout: float  # the stage's configured timeout
    elapsed: float  # seconds the stage ran
    phase: At | None = None
    address: str | None = None  # the peer, once connected
    facts: dict[str, Any] = field(default_factory=dict)
    deadline: float = 0.0
    deadline_is_the_runs: bool = False
    hop_label: str = ""  # a jump host's own stage: its endpoint ("bastion:22")
    via: str = ""  # the jump hosts this connection goes through ("b1:22 → b2:22")
    # The OpenSSH client config the target read (`Target.ssh_config`): "none", "default" or
    # the file, so that a hint never sends anyone to a file preflight did not read.
    ssh_config: str = "none"

    @property
    def endpoint(self) -> str:
        return self.address or f"{self.host}:{self.port}"

    @property
    def deadline_source(self) -> str:
        if self.deadline_is_the_runs:
            return f"the run's deadline (--deadline {self.deadline:g}s)"
        return f"the target's deadline ({self.deadline:g}s)"

    def at(self, phase: Phase) -> bool:
        return self.phase is not None and self.phase.is_(phase)


def diagnose(exc: BaseException, ctx: Context) -> Diagnosis:
    if isinstance(exc, errors.StageTimeout) and exc.by_deadline:
        found = deadline_exceeded(ctx, exc.phase)
        if ctx.stage is Stage.SFTP:  # an upload cut off may have left its test file
            left = _left_behind(ctx, found.summary)
            found = Diagnosis(found.code, found.summary + left, found.hint)
        return found
    translate = _BY_STAGE[ctx.stage]
    found = _locate(translate(exc, ctx), ctx)
    if found.code == "tcp.timeout" and "trace" in ctx.facts:
        found = _with_trace(found, ctx.facts["trace"])
    if found.code == "auth.kex_timeout" and "small_packets" in ctx.facts:
        found = _with_small_packets(found, ctx.facts["small_packets"])
    return found


def _with_trace(found: Diagnosis, trace: dict[str, Any]) -> Diagnosis:
    """A tcp.timeout with where on the path the traced SYNs stopped getting answers."""
    if trace.get("unavailable"):
        return Diagnosis(
            found.code,
            f"{found.summary}; the path could not be traced: {trace['unavailable']}",
            found.hint,
        )
    hops = trace.get("hops") or []
    reached = [hop for hop in hops if hop["answer"] in ("connected", "refused")]
    last = trace.get("last_answering_hop", 0)
    by_hop = {hop["hop"]: hop for hop in hops}
    if reached:
        first = min(reached, key=lambda hop: hop["hop"])
        said = (
            f"a traced SYN did reach {first['address']} at hop {first['hop']} "
            f"({first['answer']} in {first['rtt_ms']:g} ms): the drop comes and goes"
        )
        hint = found.hint + " The trace got through: look for loss that comes and goes."
        return Diagnosis(found.code, f"{found.summary}; {said}", hint)
    if not last:
        said = (
            f"no hop answered a traced SYN (hop limits 1 to {trace.get('max_hops', 0)} in "
            f"{trace.get('seconds', 0):g}s): the first router drops them, or ICMP time "
            "exceeded is filtered on the way back"
        )
        return Diagnosis(found.code, f"{found.summary}; {said}", found.hint)
    hop = by_hop[last]
    said = (
        f"traced hop by hop, the SYN reaches hop {last} ({hop['address']}, "
        f"{hop['rtt_ms']:g} ms); nothing answers beyond it: the drop is at or after hop {last}"
    )
    hint = (
        f"Show the firewall team the trace: hop {last} ({hop['address']}) is the last that "
        "answers, so the drop is on it or just past it (a hop may also not answer traces: "
        "compare traceroute -T). Ask for this runner's source address to be let through."
    )
    return Diagnosis(found.code, f"{found.summary}; {said}", hint)


_MTU_BLACK_HOLE_HINT = (
    "Small packets pass and large ones vanish: a tunnel or VPN on the way carries smaller "
    "packets than the ends send, and the ICMP that would say so (fragmentation needed, packet "
    "too big) is filtered. Ask the network team to let that ICMP through or to clamp the TCP "
    "MSS on that link. The ping line below shows it without SSH: small packets are answered, "
    "large ones are not."
)


def _with_small_packets(found: Diagnosis, tried: dict[str, Any]) -> Diagnosis:
    """An auth.kex_timeout with what a second key exchange, in small packets, did
    (`stages.mtu`): finished (an MTU black hole), stalled too (no sign of one), or no answer."""
    outcome, seconds = tried.get("outcome"), tried.get("seconds", 0.0)
    limit = (
        f"{tried['packet_bytes']}-byte packets"
        if tried.get("packet_bytes")
        else f"{tried.get('mss')}-byte segments"
    )
    small = f"a second connection limited to {limit}"
    if outcome == "completed":
        first = tried.get("first_packet_bytes")
        lost = f" (the first one's were up to {first} bytes)" if first else ""
        said = (
            f"{small} finished it in {seconds:.2f}s: larger packets{lost} are lost on the path, "
            "an MTU black hole"
        )
        return Diagnosis(found.code, f"{found.summary}; {said}", _MTU_BLACK_HOLE_HINT)
    if outcome == "stalled":
        said = f"nor did {small} in {seconds:.1f}s: no sign that packet size is the cause"
        hint = (
            "The server stalls after its identification even with small packets, so this is "
            "not an MTU problem: an overloaded server (sshd's MaxStartups, a slow host-key "
            "operation), a broken SSH server, or a middlebox holding the connection. Check the "
            "server's sshd log for this connection."
        )
        return Diagnosis(found.code, f"{found.summary}; {said}", hint)
    if outcome == "failed":
        said = f"{small} could not tell ({tried.get('detail', '')})"
        return Diagnosis(found.code, f"{found.summary}; {said}", found.hint)
    said = f"not retried in small packets: {tried.get('detail', '')}"
    return Diagnosis(found.code, f"{found.summary}; {said}", found.hint)


def _locate(diagnosis: Diagnosis, ctx: Context) -> Diagnosis:
    """Name the hop: "jump host B …" for a jump host's own stage, "via B: …" behind one."""
    summary = diagnosis.summary
    if ctx.hop_label and not ctx.via and summary.startswith(ctx.hop_label + " "):
        summary = f"jump host {summary}"  # "jump host bastion:22 rejected ops with publickey"
    elif ctx.hop_label:
        where = f"jump host {ctx.hop_label}" + (f" (via {ctx.via})" if ctx.via else "")
        summary = f"{where}: {summary}"
    elif ctx.via:
        summary = f"via {ctx.via}: {summary}"
    else:
        return diagnosis
    return Diagnosis(diagnosis.code, summary, diagnosis.hint)


def deadline_exceeded(ctx: Context, phase: At | None = None) -> Diagnosis:
    return _locate(_deadline_exceeded(ctx, phase), ctx)


def _deadline_exceeded(ctx: Context, phase: At | None = None) -> Diagnosis:
    waiting = f" waiting for {phase}" if phase is not None else ""
    if phase is not None and phase.is_(Phase.SSH_SLOT):
        waiting = " waiting for a free SSH slot (--jobs)"
        hint = (
            "Every SSH slot was busy until the deadline: more targets reach the SSH stages than "
            "--jobs lets run at once in the time given. Raise --jobs, or the deadline."
        )
    elif phase is not None and phase.is_(Phase.SOCKET_SLOT):
        waiting = " waiting for a free socket under the open-file limit, before it started"
        hint = (
            "More targets than this process may open sockets for: they were checked a share at "
            "a time, and this one was still waiting when the deadline ran out. Raise the "
            "open-file limit (ulimit -n; a container's nofile), split the targets (--shard), or "
            "raise --deadline."
        )
    else:
        # Name the knob that sets the deadline that ran out: --deadline does not move a
        # target's own, nor `deadline:` the run's.
        knob = (
            "Raise --deadline"
            if ctx.deadline_is_the_runs
            else "Raise the target's `deadline` (checks.yaml, per target or in `defaults:`; "
            "a --timeout given on the command line raises it to fit)"
        )
        hint = (
            "The deadline ran out while this stage was still within its own timeout: it is "
            f"shorter than the stages' timeouts need. {knob}, or lower the timeouts so that a "
            "slow stage fails on its own timeout, with its own diagnosis."
        )
    return Diagnosis(
        "deadline.exceeded",
        f"{ctx.deadline_source} cut the {ctx.stage} stage off after {ctx.elapsed:.1f}s{waiting} "
        f"(its own timeout is {ctx.timeout:g}s)",
        hint,
    )


class Cleanup(NamedTuple):
    """What became of the upload check's test file after an interruption: the time it was
    given (`watchdog.CLEANUP_GRACE` at most) and whether it is gone."""

    file: str
    seconds: float
    removed: bool
    remove_error: str | None = None  # what the server answered to the remove, if it did


def cut_short(elapsed: float, phase: At | None, cleanup: Cleanup | None = None) -> str:
    """What a stage that the run's interruption cut short was doing (it has no diagnosis: it
    did not fail, it was stopped), `elapsed` into it; and, during an upload check, whether its
    test file was removed."""
    doing = f" during {phase}" if phase is not None else ""
    said = f"interrupted after {elapsed:.2f}s{doing}, before the stage finished"
    if cleanup is None:
        return said
    if cleanup.removed:
        return f"{said}; its test file was then removed ({cleanup.seconds:.2f}s)"
    why = (
        f"it could not be removed ({cleanup.remove_error})"
        if cleanup.remove_error
        else f"it was not removed in the {cleanup.seconds:.2f}s after the interruption"
    )
    return (
        f"{said}; its test file {cleanup.file} may be left on the server: {why} (delete it by hand)"
    )


# The detail of a row for a stage that never ran (it has no diagnosis: it did not fail).


def skipped_after(failed: str) -> str:
    """`failed` is the row name of the stage that failed: `tcp`, `jump1.auth`."""
    return f"skipped: {failed} failed"


def skipped_through_jump_host(opener: str, host: str) -> str:
    return f"skipped: reached through the jump host {opener}, which resolves {host} itself"


SKIPPED_PAST_DEADLINE = "skipped: the run's deadline passed"
NEVER_STARTED_BEFORE_INTERRUPTION = "interrupted before this stage finished"


# Why a stage fails only sometimes, by stage: what --attempts shows when attempts disagree.
_INTERMITTENT_HINTS = {
    "dns": "The name resolves only sometimes: one of the DNS servers in resolv.conf failing or "
    "unreachable, a flapping upstream resolver, or a record being changed.",
    "tcp": "Some connection attempts get through and some do not: packet loss on the path, a "
    "firewall or load balancer rate-limiting new connections (SYN flood protection, a full "
    "connection-tracking table), or one of several backends or addresses that does not "
    "answer. Run the commands below a few times, or mtr --tcp to the host, from this runner.",
    "banner": "The server answers some connections and not others: sshd's MaxStartups dropping "
    "unauthenticated connections when many arrive at once, fail2ban or a rate limit on this "
    "runner's address, or one bad backend behind a load balancer.",
    "auth": "Authentication works only sometimes: backends behind a load balancer that differ "
    "(host keys, authorized_keys, accounts), an overloaded PAM/LDAP backend, or MaxStartups.",
    "sftp": "SFTP works only sometimes: backends behind a load balancer that differ, or a slow "
    "or overloaded file system behind the sftp server.",
}


def intermittent_hint(diagnosis: Diagnosis) -> str:
    """The hint for a failure seen in some attempts only (--attempts): the causes of a fault
    that comes and goes, not those of a steady one."""
    stage = diagnosis.code.split(".", 1)[0]
    return _INTERMITTENT_HINTS.get(stage, diagnosis.hint)


# --- dns ---------------------------------------------------------------------------------------


def _dns(exc: BaseException, ctx: Context) -> Diagnosis:
    host = ctx.host
    if isinstance(exc, errors.StageTimeout) and not (
        exc.phase is not None and exc.phase.is_(Phase.RESOLVER)
    ):
        return Diagnosis(
            "dns.timeout",
            f"no lookup of {host} could start in {exc.waited:.1f}s: waiting for "
            f"{label(exc.phase) or 'the resolver'}",
            "Earlier lookups are hanging: the resolver does not answer at all. Check "
            "/etc/resolv.conf and that its DNS servers are reachable from this runner.",
        )
    if isinstance(exc, errors.StageTimeout):
        return Diagnosis(
            "dns.timeout",
            f"the resolver gave no answer for {host} in {ctx.elapsed:.1f}s",
            "Check the runner's resolver (/etc/resolv.conf): is the DNS server reachable from "
            "this network? A VPN or split-horizon DNS may be needed for internal names.",
        )
    if isinstance(exc, socket.gaierror):
        code = exc.errno
        if code == socket.EAI_NONAME:
            return Diagnosis(
                "dns.nxdomain",
                f"{host} does not exist (the resolver answered NXDOMAIN)",
                "Check the host name for typos. An internal name may only resolve inside the "
                "corporate network or VPN, or needs the full domain.",
            )
        if code in (socket.EAI_NODATA, getattr(socket, "EAI_ADDRFAMILY", None)):
            return Diagnosis(
                "dns.no_address",
                f"{host} exists but has no IPv4 or IPv6 address",
                "The name has no A/AAAA record: check the DNS zone, or use the address itself.",
            )
        if code == socket.EAI_AGAIN:
            return _try_again(host, ctx)
        return Diagnosis(
            "dns.error",
            f"resolving {host} failed: {exc.strerror or exc}",
            "Check the host name and the runner's resolver configuration.",
        )
    if isinstance(exc, UnicodeError):
        return Diagnosis(
            "dns.error",
            f"{host!r} is not a valid host name ({exc})",
            "Fix the host name in the configuration.",
        )
    return _unexpected(exc, ctx, "dns.error")


def _took(seconds: float) -> str:
    return f"in {seconds * 1000:.0f} ms" if seconds < 1 else f"after {seconds:.1f}s"


def _server_failed(record: dict[str, Any]) -> str:
    if record.get("errno") == errno.ECONNREFUSED:
        return "nothing answers on port 53 (ICMP port unreachable)"
    if record.get("errno") in errors.UNREACHABLE_ERRNOS:
        return f"is unreachable ({record['error']})"
    return f"failed: {record.get('error')}"


_RCODE_HINTS = {
    "SERVFAIL": "The DNS server could not get an answer for this name: the zone's own name "
    "servers failing or unreachable from it, a DNSSEC validation failure, or a broken "
    "forwarder. Ask the DNS team; getent below repeats the lookup.",
    "REFUSED": "The DNS server refuses to answer this runner: recursion not allowed for its "
    "address, or a split-horizon view without this name. Use the resolver this network expects.",
}


def _try_again(host: str, ctx: Context) -> Diagnosis:
    """getaddrinfo's EAI_AGAIN, told apart by what the resolver's servers did when asked
    (`stages.dnsprobe`): an error answer, no server reachable, or silence."""
    probe = ctx.facts.get("resolver") or {}
    servers: list[dict[str, Any]] = probe.get("servers") or []
    default = "" if probe.get("configured", True) else "/etc/resolv.conf names none; glibc's "
    said = f"the resolver answered 'try again' for {host} {_took(ctx.elapsed)}"
    unreachable = [r for r in servers if "error" in r]
    errors_ = [
        r for r in servers if r.get("answer") in ("SERVFAIL", "REFUSED", "NOTIMP", "FORMERR")
    ]
    if servers and len(unreachable) == len(servers):
        each = "; ".join(f"{r['server']} {_server_failed(r)}" for r in servers)
        return Diagnosis(
            "dns.error",
            f"no DNS server could be reached to resolve {host}: {default}{each}",
            "This runner cannot reach its DNS servers: check /etc/resolv.conf (a container or "
            "VPN may have left a stale one), the local DNS service it names (systemd-resolved, "
            "dnsmasq, a sidecar), and that UDP and TCP port 53 are allowed out.",
        )
    if errors_ and len(errors_) + len(unreachable) == len(servers):
        first = errors_[0]
        others = "".join(
            f"; {r['server']} answered {r['answer']}"
            if "answer" in r
            else f"; {r['server']} {_server_failed(r)}"
            for r in servers
            if r is not first
        )
        return Diagnosis(
            "dns.error",
            f"the DNS server {first['server']} answered {first['answer']} for "
            f"{first.get('name') or host} in {first['ms']:.0f} ms{others}",
            _RCODE_HINTS.get(
                first["answer"],
                "The DNS server rejected the query: ask the DNS "
                "team what its answer means for this name.",
            ),
        )
    silent = [r["server"] for r in servers if r.get("silent")]
    if silent:
        return Diagnosis(
            "dns.timeout",
            f"{said}; asked again, {', '.join(silent)} did not answer in "
            f"{max(r['ms'] for r in servers) / 1000:.1f}s",
            "Check the runner's resolver (/etc/resolv.conf): is the DNS server reachable from "
            "this network? A VPN or split-horizon DNS may be needed for internal names.",
        )
    answered = [r for r in servers if "answer" in r]
    if answered:
        now = answered[0]
        return Diagnosis(
            "dns.timeout",
            f"{said}; asked again, {now['server']} answered {now['answer']}: a failure that "
            "came and went",
            "The resolver failed for a moment (a flapping upstream, a DNS server restarting): "
            "rerun; if it recurs, ask the DNS team about the resolver's upstreams.",
        )
    return Diagnosis(
        "dns.timeout",
        f"{said} (temporary failure in name resolution)",
        "The DNS server failed (SERVFAIL) or timed out upstream, or none is reachable. Retry; if "
        "it persists, check /etc/resolv.conf and the zone's name servers.",
    )


# --- tcp ---------------------------------------------------------------------------------------


def _attempts_text(ctx: Context) -> str:
    attempts = ctx.facts.get("attempts") or []
    if len(attempts) <= 1:
        return ""
    parts = [f"{a['address']} {a.get('error') or a['result']}" for a in attempts]
    return " (tried " + "; ".join(parts) + ")"


def _tcp(exc: BaseException, ctx: Context) -> Diagnosis:
    forward = ctx.facts.get("forward")
    if forward:
        return _tcp_through_jump_host(exc, ctx, forward)
    attempts = ctx.facts.get("attempts") or []
    last = attempts[-1]["address"] if attempts else f"{ctx.host}:{ctx.port}"
    tried = _attempts_text(ctx)
    if isinstance(exc, errors.StageTimeout):
        return Diagnosis(
            "tcp.timeout",
            f"no answer from {last} in {exc.waited:.1f}s: the SYN was silently dropped{tried}",
            "A firewall or security group is dropping the packets (no reset came back), or the "
            "host is down behind a filter. Ask for this runner's source address to be allowed "
            "to reach the port (the commands below reproduce it from this runner).",
        )
    if isinstance(exc, ConnectionRefusedError):
        return Diagnosis(
            "tcp.refused",
            f"{last} refused the connection (TCP reset){tried}",
            "The host is up but nothing listens on this port, or a firewall rejects it: check "
            "the port number and that the SSH service is running.",
        )
    if isinstance(exc, OSError) and exc.errno in errors.UNREACHABLE_ERRNOS:
        return Diagnosis(
            "tcp.unreachable",
            f"{last} is unreachable: {_os_error_text(exc)}{tried}",
            "No route to the host or network (ICMP unreachable): check the address, the "
            "runner's routes and VPN, and any firewall that rejects with ICMP.",
        )
    if isinstance(exc, OSError):
        return Diagnosis(
            "tcp.error",
            f"connecting to {last} failed: {_os_error_text(exc)}{tried}",
            "Check the address and the runner's network configuration.",
        )
    return _unexpected(exc, ctx, "tcp.error")


def _os_error_text(exc: OSError) -> str:
    """What the system calls this error ("No route to host"). asyncio's connect errors carry
    "Connect call failed ('192.0.2.1', 22)" as their strerror, which names no cause."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


# SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1).
_ADMINISTRATIVELY_PROHIBITED = 1
_CONNECT_FAILED = 2

# What a jump host's sshd says when its connection attempt failed (strerror / gai_strerror
# text, as OpenSSH sends it), in order: the first that matches decides the code.
_OPEN_FAILURE_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("refused",), "tcp.refused"),
    (("timed out",), "tcp.timeout"),
    (("no route", "unreachable", "network is down", "host is down"), "tcp.unreachable"),
    (("permission denied",), "tcp.unreachable"),
    (("name or service not known", "not known", "nodename nor servname"), "dns.nxdomain"),
    (("no address associated",), "dns.no_address"),
    (("temporary failure in name resolution",), "dns.timeout"),
)


def _tcp_through_jump_host(exc: BaseException, ctx: Context, forward: dict[str, Any]) -> Diagnosis:
    """The tcp stage behind a jump host: its `direct-tcpip` channel could not be opened."""
    to = forward.get("to") or f"{ctx.host}:{ctx.port}"
    on_jump_host = "`nc -vz -w 3 HOST PORT` run on the jump host"
    if isinstance(exc, errors.StageTimeout):
        return Diagnosis(
            "tcp.timeout",
            f"no answer from {to} in {exc.waited:.1f}s: the jump host's connection attempt "
            "was not answered (the SYN is dropped beyond the jump host)",
            "A firewall between the jump host and the target drops the packets, or the target "
            f"is down behind a filter; compare with {on_jump_host}. A jump host that is itself "
            "overloaded can also be slow to answer channel requests.",
        )
    if _is_paramiko(exc, "ChannelException"):
        code = getattr(exc, "code", 0)
        reason = str((forward.get("refused") or {}).get("reason") or "").strip()
        said = f" ({reason})" if reason else ""
        if code == _ADMINISTRATIVELY_PROHIBITED:
            return Diagnosis(
                "tcp.unreachable",
                f"the jump host refused to open a connection to {to}: administratively "
                f"prohibited{said}",
                "The jump host's sshd does not allow TCP forwarding for this user "
                "(AllowTcpForwarding no, DisableForwarding, PermitOpen, or a restrict / "
                "permitopen option in authorized_keys). Ask its owners to allow forwarding "
                f"to {to}.",
            )
        if code == _CONNECT_FAILED and reason:
            lowered = reason.lower()
            found = next(
                (c for words, c in _OPEN_FAILURE_WORDS if any(w in lowered for w in words)), None
            )
            if found == "tcp.refused":
                return Diagnosis(
                    "tcp.refused",
                    f"{to} refused the jump host's connection (TCP reset: {reason})",
                    "The target is up but nothing listens on this port, or a firewall rejects "
                    "the jump host: check the port number and that the SSH service is running "
                    f"there; compare with {on_jump_host}.",
                )
            if found == "tcp.timeout":
                return Diagnosis(
                    "tcp.timeout",
                    f"the jump host got no answer from {to} ({reason})",
                    "A firewall between the jump host and the target drops the packets, or the "
                    f"target is down behind a filter; compare with {on_jump_host}.",
                )
            if found == "tcp.unreachable":
                return Diagnosis(
                    "tcp.unreachable",
                    f"{to} is unreachable from the jump host: {reason}",
                    "The jump host has no route to the target (or a firewall rejects with "
                    "ICMP): check the address and the jump host's network.",
                )
            if found is not None:  # the jump host could not resolve the name
                return Diagnosis(
                    found,
                    f"the jump host could not resolve {ctx.host}: {reason}",
                    "The name is resolved by the jump host, not by this runner: check the name "
                    "and the jump host's resolver (internal names may need the full domain).",
                )
        kind = getattr(exc, "text", "") or "unknown reason code"
        return Diagnosis(
            "tcp.error",
            f"the jump host could not open a connection to {to}: "
            f"{reason or 'it gave no reason'} (channel open failure {code}: {kind})",
            "Check the jump host's sshd log for this request (the connection attempt, "
            "MaxSessions, resource limits).",
        )
    if isinstance(exc, (EOFError, OSError)) or _is_paramiko(exc, "SSHException"):
        return Diagnosis(
            "tcp.error",
            f"the jump host's SSH connection ended while opening a channel to {to} "
            f"({_describe(exc)})",
            "The jump host closed the session: check its sshd log (idle or session limits).",
        )
    return _unexpected(exc, ctx, "tcp.error")


# --- banner ------------------------------------------------------------------------------------


def first_line(data: bytes, limit: int = 120) -> str:
    """The first line of what a peer sent, printable, for summaries (reports sanitise again)."""
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    text = line.decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in text)
    return text[:limit] + ("…" if len(text) > limit else "")


def _escaped(data: bytes, limit: int = 120) -> str:
    """Bytes as a reader can tell them apart: printable ASCII as is, anything else as `\\xNN`
    (a NUL, an escape, a byte that is not UTF-8 are the point when a line is malformed)."""
    text = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data[:limit])
    return text + ("…" if len(data) > limit else "")


# How an identification line breaks the protocol (`BannerMalformed.defect`), and OpenSSH's
# verdict on it (kex.c).
_OPENSSH_REFUSES_INVALID = "OpenSSH refuses it: banner line contains invalid characters"
_MALFORMED = {
    "nul": ("contains a NUL byte", _OPENSSH_REFUSES_INVALID),
    "cr": ("contains a carriage return inside the line", _OPENSSH_REFUSES_INVALID),
    "utf8": (
        "is not valid UTF-8",
        "OpenSSH accepts it, paramiko (preflight's SSH library, and that of a Python job) "
        "cannot read it",
    ),
    "form": (
        "does not have the form SSH-protoversion-softwareversion",
        "OpenSSH refuses it: Bad remote protocol version identification",
    ),
}


def _banner(exc: BaseException, ctx: Context) -> Diagnosis:
    where = ctx.endpoint
    if isinstance(exc, errors.StageTimeout):
        so_far = ctx.facts.get("received_so_far")
        before = ctx.facts.get("lines_before")
        count = ctx.facts.get("pre_banner_lines") or len(before or ())
        partial = f" (only {len(so_far)} bytes of it: {so_far!r})" if so_far else ""
        if before:
            sent = f"{count} line{'s' if count != 1 else ''} of text"
            partial += (
                f"; {'before that ' if so_far else ''}it sent {sent}, the first {before[0]!r}"
            )
        if so_far:
            hint = (
                "The server started to answer but its identification did not arrive in time: "
                "an overloaded sshd or host, a throttled or lossy link, or a tarpit that trickles "
                "bytes on purpose. Compare with the banner timeout, and check the server's load."
            )
        elif before:
            hint = (
                "Something here talks but never identifies as SSH (OpenSSH's sshd sends its "
                "identification first, never lines before it): another service, a proxy or "
                "appliance with a notice of its own, or a tarpit. Check what listens on this "
                "port; the lines it sent are above."
            )
        else:
            hint = (
                "Something accepts connections but does not speak: a tarpit, a proxy or load "
                "balancer holding the connection, or a service that waits for the client to "
                "speak first (HTTP, TLS). Check what listens on this port."
            )
        return Diagnosis(
            "banner.timeout",
            f"TCP to {where} opened but no SSH identification arrived in {exc.waited:.1f}s"
            f"{partial}",
            hint,
        )
    if isinstance(exc, (errors.BannerClosed, ConnectionResetError)):
        reset = isinstance(exc, ConnectionResetError) or getattr(exc, "reset", False)
        how = "reset" if reset else "closed"
        lines = getattr(exc, "lines", None)
        said = f"; it said {first_line(lines[0])!r}" if lines else ""
        return Diagnosis(
            "banner.closed",
            f"{where} {how} the connection before identifying itself{said}",
            "The server refuses this client before SSH starts: MaxStartups reached, "
            "tcp_wrappers/hosts.deny, fail2ban or a load balancer without a healthy backend. "
            "Check the server's log for this runner's address.",
        )
    if isinstance(exc, errors.BannerNotSSH):
        shown = first_line(exc.received) if exc.received else ""
        return Diagnosis(
            "banner.not_ssh",
            f"{where} is not an SSH server: {exc.reason}; first line: {shown!r}",
            "The port is served by something else: check the port number (22, or the one the "
            "SFTP provider documents) and what listens there.",
        )
    if isinstance(exc, errors.BannerMalformed):
        shown = _escaped(exc.line.rstrip(b"\r\n"))
        reason, judged = _MALFORMED[exc.defect]
        if exc.defect == "utf8":
            reason += f" (byte 0x{exc.line[exc.position]:02x} at position {exc.position})"
        if exc.openssh_refuses:
            hint = (
                "The server (or a proxy or load balancer in front of it) sends an "
                "identification line that SSH clients refuse. Check the server's version "
                "string (e.g. a VersionAddendum) and whatever rewrites the connection."
            )
        else:
            hint = (
                "RFC 4253 asks for printable US-ASCII in the identification line. An OpenSSH "
                "client gets through (the ssh command below does), but a job using paramiko "
                "fails on this server as preflight did: fix the server's version string (e.g. "
                "a VersionAddendum, or an appliance's banner), or use an OpenSSH-based client."
            )
        return Diagnosis(
            "banner.malformed",
            f"{where} identifies with a line that {reason}: '{shown}'; {judged}",
            hint,
        )
    if isinstance(exc, errors.BannerIncompatible):
        return Diagnosis(
            "banner.incompatible",
            f"{where} only speaks SSH protocol 1: {exc.banner!r}",
            "SSH-1 is obsolete and insecure; paramiko and OpenSSH refuse it. The server must be "
            "upgraded to SSH-2.",
        )
    if isinstance(exc, OSError):
        return Diagnosis(
            "banner.closed",
            f"reading from {where} failed: {exc.strerror or exc}",
            "The connection broke before the server identified itself.",
        )
    return _unexpected(exc, ctx, "banner.closed")


# --- auth --------------------------------------------------------------------------------------


def _paramiko() -> Any:
    return sys.modules.get("paramiko")


def _is_paramiko(exc: BaseException, name: str) -> bool:
    paramiko = _paramiko()
    return paramiko is not None and isinstance(exc, getattr(paramiko, name))


_BAD_KEY_HINTS = {
    "unreadable": "preflight runs as a user who may not read the key file: check its owner and "
    "mode (ls -l; ssh wants 0600 and the job's user as owner), or point auth.key at a copy "
    "this user can read.",
    "directory": "auth.key (or IdentityFile) must name the private key file itself, e.g. "
    "~/.ssh/id_ed25519, not the directory holding it.",
    "public_key": "Point auth.key at the private key: the same name without .pub (the file that "
    "starts with -----BEGIN OPENSSH PRIVATE KEY-----). The .pub half goes into the server's "
    "authorized_keys.",
    "not_a_key": "auth.key must name a private key file (its first line is -----BEGIN … "
    "PRIVATE KEY-----) or be ${VAR} holding the key text: check the path and the file's content.",
    "no_passphrase": "The key is encrypted: give its passphrase as auth.passphrase: "
    "${SSH_KEY_PASSPHRASE} (a CI variable), or store a key without a passphrase for this job.",
    "wrong_passphrase": "The passphrase does not decrypt this key: check that the passphrase "
    "variable (e.g. SSH_KEY_PASSPHRASE) belongs to this key and has no stray whitespace or "
    "line break; `ssh-keygen -y -f KEY` asks for it and says if it is wrong.",
    "paramiko_type": "OpenSSH loads this key (the ssh-keygen command below does, so no command "
    "fails as preflight did), but paramiko, which preflight and Python jobs use, supports only "
    "ed25519, ECDSA and RSA keys: give this job a key of one of those types.",
    "unsupported": "Store the key in OpenSSH or PEM format with its BEGIN/END lines (ed25519, "
    "ECDSA or RSA); `ssh-keygen -p -f KEY` rewrites it in OpenSSH format.",
}


_PIN_MISMATCH_HINT = (
    "None of the server's host keys is the pinned one: a reinstalled server, a new load-balancer "
    "backend, a pin copied wrong, or a man-in-the-middle. Confirm the fingerprints with the "
    "server's owners (ssh-keygen -lf on its host keys) before changing host_key.fingerprints."
)


def _auth(exc: BaseException, ctx: Context) -> Diagnosis:
    where, user = ctx.endpoint, ctx.facts.get("user", "")
    in_kex = ctx.at(Phase.KEY_EXCHANGE)
    if isinstance(exc, errors.StageTimeout):
        if in_kex:
            return Diagnosis(
                "auth.kex_timeout",
                f"key exchange with {where} did not finish in {exc.waited:.1f}s",
                "The server stalled after the identification: an overloaded server, a "
                "middlebox that breaks large packets (MTU), or a broken SSH server.",
            )
        return Diagnosis(
            "auth.timeout",
            f"{where} did not answer {label(exc.phase)} in {exc.waited:.1f}s",
            "The server accepted the connection but stalls on authentication: a slow PAM/LDAP "
            "backend or an overloaded server. Check the server's auth log.",
        )
    if isinstance(exc, errors.HostKeyRevoked):
        return Diagnosis(
            "auth.host_key_revoked",
            f"{where} presented {exc.key_type} key {exc.fingerprint}, which {exc.source} marks "
            "as revoked (@revoked)",
            "This key was withdrawn by the server's owners: a stolen key being used to "
            "impersonate the host, or a server still running with the key it should have "
            "replaced. Do not trust this server; ask its owners for its current host key.",
        )
    if isinstance(exc, errors.HostKeyMismatch) and exc.pinned:
        shown = " and ".join(f"{kind} key {fp}" for kind, fp in exc.presented)
        pins = ", ".join(exc.expected)
        plural = len(exc.expected) > 1
        asked = (
            f"; asking for its other host keys on a new connection failed "
            f"({_describe(exc.search_failed)})"
            if exc.search_failed is not None
            else ""
        )
        return Diagnosis(
            "auth.host_key_mismatch",
            f"{where} presented {shown}, but the pinned fingerprint{'s are' if plural else ' is'} "
            f"{pins}{asked}",
            _PIN_MISMATCH_HINT
            if exc.search_failed is None
            else "The host key the server showed is not the pinned one, and its other host keys "
            "could not be asked for (see above). Rerun; if it persists, compare the pins with "
            "the server's keys (ssh-keygen -lf on its host keys, with its owners).",
        )
    if isinstance(exc, errors.HostKeyMismatch):
        expected = ", ".join(exc.expected)
        return Diagnosis(
            "auth.host_key_mismatch",
            f"{where} presented {exc.key_type} key {exc.fingerprint}, but {exc.source} "
            f"expects {expected}",
            "The server's host key changed: a reinstalled server, a new load-balancer backend, "
            "or a man-in-the-middle. Confirm the new fingerprint with the server's owners before "
            "updating known_hosts or the pinned fingerprints.",
        )
    if isinstance(exc, errors.HostKeyUnknown) and exc.known_as:
        return Diagnosis(
            "auth.host_key_unknown",
            f"{where} presented {exc.key_type} key {exc.fingerprint}: {exc.known_in} has this key "
            f"for {', '.join(exc.known_as)} but nothing for {exc.name} (the name checked)",
            "ssh looks a host up under the name (and port) it was given, not under the address "
            "it resolves to or another port: check by the name known_hosts knows, or, once "
            f"the fingerprint is confirmed, add this line for the name checked: {exc.pin_line}",
        )
    if isinstance(exc, errors.HostKeyUnknown):
        known_to = (
            f"which is not in {exc.checked}"
            if exc.checked != hostkeys.NOTHING_CHECKED
            else "and no known_hosts or pinned fingerprint was given to check it against"
        )
        return Diagnosis(
            "auth.host_key_unknown",
            f"{where} presented {exc.key_type} key {exc.fingerprint}, {known_to}",
            f"Verify the fingerprint with the server's owners, then pin it "
            f"(host_key.fingerprints: [{exc.fingerprint}]) or add this line to known_hosts: "
            f"{exc.pin_line}",
        )
    if isinstance(exc, errors.NoCredentials):
        if exc.missing_file:
            what = f"{exc.missing_file} does not exist"
            hint = (
                "Point auth.key (or IdentityFile in the ssh config) at a key that exists; a "
                "relative path is relative to the directory preflight runs in."
            )
        elif exc.unset:
            what = "unset or empty: " + ", ".join(f"${{{v}}}" for v in exc.unset)
            hint = (
                "Define the CI variable(s) for this job (protected variables are only passed to "
                "protected branches), or point checks.yaml at another: auth.key: a key file's "
                "path or ${VAR}; auth.password: ${VAR} (never the password itself)."
            )
        else:
            what = "no password, key or agent is configured"
            if ctx.ssh_config == "none":
                identity = (
                    "or an IdentityFile, which preflight reads only with -F FILE or "
                    "`ssh_config:` (this target read no ssh_config)"
                )
            elif ctx.ssh_config == "default":
                identity = "or an IdentityFile in ~/.ssh/config"
            else:
                identity = f"or an IdentityFile in {ctx.ssh_config}"
            hint = (
                "Give preflight a credential: the variable SSH_PRIVATE_KEY (a key or its path) or "
                "SFTP_PASSWORD; in checks.yaml auth.key (a path or ${VAR}), auth.password: "
                f"${{VAR}} or auth.agent: true; {identity}."
            )
        return Diagnosis(
            "auth.no_credentials",
            f"nothing to authenticate {user or 'the user'} with: {what}",
            hint,
        )
    if isinstance(exc, errors.BadKey):
        return Diagnosis(
            "auth.bad_key",
            f"the private key from {exc.source} {exc.reason}",
            _BAD_KEY_HINTS.get(exc.kind, _BAD_KEY_HINTS["unsupported"]),
        )
    if isinstance(exc, errors.AuthMethodNotAllowed) and exc.accepted:
        return Diagnosis(
            "auth.method_not_allowed",
            f"{where} accepted {user}'s {' and '.join(exc.accepted)} but also requires one of: "
            f"{', '.join(exc.allowed) or 'nothing it names'}",
            "The server requires several methods (AuthenticationMethods); configure the "
            "missing credential too (e.g. auth.password as well as auth.key).",
        )
    if isinstance(exc, errors.AuthMethodNotAllowed):
        return Diagnosis(
            "auth.method_not_allowed",
            f"{where} does not accept {', '.join(exc.offered)} for {user}; it allows: "
            f"{', '.join(exc.allowed) or 'nothing'}",
            "Configure a credential of an allowed kind (e.g. a key for publickey).",
        )
    if isinstance(exc, errors.AuthDenied):
        return Diagnosis(
            "auth.denied",
            f"{where} rejected {user} with {', '.join(exc.tried)} (server allows: "
            f"{', '.join(exc.allowed)})",
            "Check the user name, that the public key is in the server's authorized_keys for "
            "this user (or the password is current), and that the account is not locked.",
        )
    if _is_paramiko(exc, "AuthenticationException"):
        return Diagnosis(
            "auth.denied",
            f"{where} ended the session during authentication of {user}",
            "The server closed the connection while authenticating: too many failed attempts, "
            "or the account is refused (AllowUsers/DenyUsers). Check the server's auth log.",
        )
    if isinstance(exc, errors.NoCommonAlgorithm):
        return _no_common_algorithm(exc, where)
    if _is_paramiko(exc, "IncompatiblePeer") or (
        _is_paramiko(exc, "SSHException") and "incompatible" in str(exc).lower()
    ):
        return Diagnosis(
            "auth.kex_failed",
            f"no common algorithm with {where}: {exc}",
            "The server and paramiko share no key-exchange, cipher, MAC or host-key algorithm: "
            "compare the server's KexAlgorithms, Ciphers, MACs and HostKeyAlgorithms with what "
            "paramiko speaks (ssh -vvv shows the server's offer).",
        )
    if (in_kex and isinstance(exc, (EOFError, OSError))) or (
        in_kex and _is_paramiko(exc, "SSHException")
    ):
        return Diagnosis(
            "auth.kex_failed",
            f"{where} closed the connection during key exchange ({_describe(exc)})",
            "The server gave up on the handshake: usually no common algorithm (see the "
            "server's log for 'no matching'), sometimes MaxStartups or an intrusion filter.",
        )
    if in_kex:
        return _unexpected(exc, ctx, "auth.kex_failed")
    if isinstance(exc, (EOFError, OSError)) or _is_paramiko(exc, "SSHException"):
        return Diagnosis(
            "auth.denied",
            f"{where} ended the session during {label(ctx.phase) or 'authentication'} "
            f"({_describe(exc)})",
            "The server dropped the connection instead of answering: too many failed "
            "attempts, an intrusion filter (fail2ban), or the account is refused "
            "(AllowUsers/DenyUsers). Check the server's auth log for this runner's address.",
        )
    return _unexpected(exc, ctx, "auth.denied")


def _names(names: tuple[str, ...], limit: int = 5) -> str:
    shown = ", ".join(names[:limit]) or "nothing"
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _no_common_algorithm(exc: errors.NoCommonAlgorithm, where: str) -> Diagnosis:
    keyword = _SSHD_KEYWORD[exc.kind]
    summary = (
        f"{where} and paramiko {exc.paramiko_version} share no {exc.kind} algorithm: the server "
        f"offers {_names(exc.server)}; paramiko speaks {_names(exc.ours, 3)}"
    )
    if exc.openssh_common:
        summary += (
            f"; {exc.openssh_version} on this runner would use {exc.openssh_common[0]}: "
            "an ssh command gets through, a job using paramiko does not"
        )
        hint = (
            f"The server allows only {exc.kind} algorithms that paramiko does not implement: "
            "OpenSSH clients connect, paramiko-based ones (preflight, a Python job) cannot. "
            f"Ask the server's owners to add one that paramiko speaks to its {keyword}."
        )
    elif exc.openssh_version is not None:
        summary += f"; {exc.openssh_version} on this runner accepts none of them either"
        hint = (
            "Neither paramiko nor this runner's OpenSSH (by default) accepts what the server "
            "allows; such algorithms are usually legacy ones that clients disabled (ssh-rsa "
            f"signs with SHA-1, ssh-dss, diffie-hellman-group1). The server's {keyword} needs a "
            "current algorithm added; re-enabling a legacy one in the client is a security "
            "decision, not a fix."
        )
    else:
        hint = (
            f"The server and paramiko have no {exc.kind} algorithm in common (there is no "
            f"OpenSSH client on this runner to compare with): compare the server's {keyword} "
            "with the lists above."
        )
    return Diagnosis("auth.kex_failed", summary, hint)


_SSHD_KEYWORD = {
    "key exchange": "KexAlgorithms",
    "host key": "HostKeyAlgorithms (and HostKey files)",
    "cipher": "Ciphers",
    "MAC": "MACs",
    "compression": "Compression setting",
}


# --- sftp --------------------------------------------------------------------------------------


_FILE_KINDS = {
    stat.S_IFREG: "a regular file",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
}


def _sftp(exc: BaseException, ctx: Context) -> Diagnosis:
    where = ctx.endpoint
    path = ctx.facts.get("path", ".")
    if isinstance(exc, errors.UploadError):
        found = _upload(exc, ctx)
        return Diagnosis(found.code, found.summary + _left_behind(ctx, found.summary), found.hint)
    if isinstance(exc, (errors.StageTimeout, TimeoutError)):
        at = exc.phase if isinstance(exc, errors.StageTimeout) else ctx.phase
        waited = exc.waited if isinstance(exc, errors.StageTimeout) else ctx.elapsed
        hint = (
            "SSH works but the SFTP server stalls: an overloaded or hung sftp-server, a slow "
            "or hung filesystem behind it (NFS), or a very large directory."
        )
        if at is not None and at.phase in _UPLOAD_PHASES:
            hint = (
                "The server stopped answering during the upload: a hung or very slow file "
                "system behind it (NFS, a full disk on a server that blocks rather than "
                "fails), or an sftp-server that is stuck. Check the server's disk and its log "
                "for this session."
            )
        summary = f"{where} did not answer {label(at)} in {waited:.1f}s"
        return Diagnosis("sftp.timeout", summary + _left_behind(ctx, summary), hint)
    if isinstance(exc, errors.SFTPUnavailable):
        return Diagnosis(
            "sftp.unavailable",
            f"{where}: {exc.detail}",
            "SSH login works but SFTP does not: the server needs `Subsystem sftp …` in "
            "sshd_config, or this account is restricted (ForceCommand, a shell-only or "
            "SCP-only account).",
        )
    if isinstance(exc, errors.SFTPNotADirectory):
        kind = _FILE_KINDS.get(stat.S_IFMT(exc.mode), "something other than a directory")
        return Diagnosis(
            "sftp.not_a_directory",
            f"{exc.path} on {where} is {kind}, not a directory",
            "sftp.path must name a directory to list: point it at the directory the job "
            "uploads to (the one holding this file, or the one the file was meant to be).",
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOENT:
        return Diagnosis(
            "sftp.not_found",
            f"{path} does not exist on {where}",
            "Check sftp.path: relative paths start in the user's home or chroot directory.",
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        return Diagnosis(
            "sftp.permission_denied",
            f"{path} on {where} is not listable by this user",
            "Ask the server's owners for read and execute permission on the directory, or "
            "point sftp.path at one this user may list. A drop box the job only uploads to "
            "(written, never listed: mode 0733) is checked with sftp.list: false and "
            "sftp.write: true, which writes a test file instead of listing.",
        )
    if isinstance(exc, EOFError) or _is_paramiko(exc, "SSHException"):
        return Diagnosis(
            "sftp.unavailable",
            f"{where} closed the SFTP channel ({_describe(exc)})",
            "The SFTP server process ended: check the server's log for this session.",
        )
    if isinstance(exc, OSError):
        doing = label(ctx.phase) or f"listdir({path})"
        summary = f"{doing} on {where} failed: {_describe(exc)}"
        return Diagnosis(
            "sftp.error",
            summary + _left_behind(ctx, summary),
            "See the server's SFTP log for this request.",
        )
    return _unexpected(exc, ctx, "sftp.error")


_UPLOAD_PHASES = frozenset({Phase.STATVFS, Phase.CREATE, Phase.WRITE, Phase.REMOVE})


def _left_behind(ctx: Context, summary: str) -> str:
    """What a failed upload check left on the server, if anything (the file named once)."""
    upload = ctx.facts.get("upload") or {}
    if not upload.get("created") or upload.get("removed"):
        return ""
    reason = upload.get("remove_error") or "the check ended before it could be removed"
    named = "" if upload["file"] in summary else f" {upload['file']}"
    return f"; the test file{named} may be left behind ({reason})"


def _upload(exc: errors.UploadError, ctx: Context) -> Diagnosis:
    where = ctx.endpoint
    directory = exc.directory
    if isinstance(exc, errors.UploadNotWritable):
        return _not_writable(exc, where)
    if isinstance(exc, errors.UploadReadOnly) and exc.by == "mount":
        return Diagnosis(
            "sftp.read_only",
            f"{directory} on {where} is on a read-only file system: {exc.evidence}; the "
            "upload was refused",
            "The disk or export behind the server is mounted read-only: a file system "
            "remounted read-only after errors, a read-only NFS export, a maintenance mode. "
            "Only the server's owners can fix it; nothing in this job can.",
        )
    if isinstance(exc, errors.UploadReadOnly):
        return Diagnosis(
            "sftp.read_only",
            f"{where} refused to create a file in {directory} (permission denied), though "
            f"{exc.evidence}",
            "Most likely the SFTP server itself is read-only for this account: OpenSSH's "
            "`internal-sftp -R` or `sftp-server -R` (in sshd_config's Subsystem or "
            "ForceCommand), a policy that denies writes (`-P`), or an appliance's read-only "
            "share. Else something beyond the mode bits refuses it: an ACL, SELinux or "
            "AppArmor, an immutable directory (chattr +i), or an NFS export that maps this "
            "user to nobody (root_squash, for root). Ask the server's owners to let this "
            "account write.",
        )
    if isinstance(exc, errors.UploadNoSpace) and exc.by_min_free:
        return Diagnosis(
            "sftp.no_space",
            f"{directory} on {where} has {units.format_size(exc.free)} free, less than "
            f"sftp.min_free {units.format_size(exc.needed)} (statvfs)",
            "Too little room for the job's uploads: free space on the server (old uploads "
            "never collected, logs) or grow its volume; lower sftp.min_free only if the job "
            "needs less.",
        )
    if isinstance(exc, errors.UploadNoSpace):
        room = (
            "has no free file slots (inodes) left"
            if exc.no_inodes
            else f"has {units.format_size(exc.free)} free"
        )
        written = f" after {units.format_size(exc.written)}" if exc.written else ""
        return Diagnosis(
            "sftp.no_space",
            f"the upload of {units.format_size(exc.needed)} to {directory} on {where} failed"
            f"{written}: the file system {room} (statvfs)",
            "The server's disk is full (or this account's share of it): free space on the "
            "server or grow its volume. A job's upload would fail the same way, possibly "
            "half-written.",
        )
    if isinstance(exc, errors.UploadSizeMismatch):
        reported = f"{exc.reported} bytes" if exc.reported is not None else "no size"
        return Diagnosis(
            "sftp.size_mismatch",
            f"{exc.file} on {where} has {reported} after preflight wrote {exc.written}",
            "The server did not store what was sent: a file system or appliance that "
            "truncates or rewrites uploads (a quota that cuts files short, a scanner, a "
            "conversion). OpenSSH's sftp does not compare sizes after a put: the command below "
            "puts a file as big and compares the size the server then reports (ls -ln).",
        )
    if isinstance(exc, errors.UploadTooSlow):
        rate = exc.written / exc.seconds if exc.seconds > 0 else 0.0
        at_rate = f"; at this rate 1 GiB takes {_duration(1024**3 / rate)}" if rate > 0 else ""
        limit = ctx.deadline_source if exc.by_deadline else f"the sftp timeout ({ctx.timeout:g}s)"
        return Diagnosis(
            "sftp.timeout",
            f"the upload to {directory} on {where} reached {units.format_size(exc.written)} "
            f"of {units.format_size(exc.size)} in {exc.seconds:.1f}s "
            f"({units.format_rate(exc.written, exc.seconds)}) and was stopped to finish "
            f"within {limit}{at_rate}",
            "Uploads from this runner to this server are this slow: a congested or shaped "
            "link, a slow disk behind the server. Compare with an upload from elsewhere; "
            "give the check more time (timeouts.sftp) or write less (sftp.write) to measure "
            "the rate without failing.",
        )
    assert isinstance(exc, errors.UploadFailed)
    free = f"; statvfs shows {units.format_size(exc.free)} free" if exc.free is not None else ""
    done = (
        f" after {units.format_size(exc.written)} of {units.format_size(exc.size)}"
        if exc.step == "write" and exc.written
        else ""
    )
    doing = {
        "create": "creating a file in",
        "write": "writing to",
        "close": "closing a file in",
        "stat": "checking the size of the file written to",
    }
    return Diagnosis(
        "sftp.error",
        f"{doing.get(exc.step, exc.step)} {directory} on {where} failed{done}: the server "
        f"answered {exc.reason!r}{free}",
        "SFTP version 3 gives most refusals as a bare 'Failure'; the server's log says "
        "which it was: a disk quota, a file-name or file-type policy, a file system error.",
    )


def _not_writable(exc: errors.UploadNotWritable, where: str) -> Diagnosis:
    user = exc.user or "this user"
    if exc.mode is None:
        found = "its mode and owner could not be read"
    else:
        found = f"it is mode {stat.S_IMODE(exc.mode):04o}, owned by {_owner(exc.owner, exc.uid)}"
        if exc.gid is not None:
            found += f", group {_owner(exc.group, exc.gid, 'gid')}"
    hint = (
        "This user may not create files in this directory. Ask the server's owners for write "
        "and search (x) permission for this account (as the owner, through a group, or a drop "
        "box's mode 0733), or point sftp.path at the directory the job is meant to upload to "
        "(behind a chroot, the path the server shows, not the one on its disk)."
    )
    mode = exc.mode if exc.mode is not None else 0
    group_may = mode & (stat.S_IWGRP | stat.S_IXGRP) == stat.S_IWGRP | stat.S_IXGRP
    unsearchable = any(
        mode & write and not mode & search
        for write, search in (
            (stat.S_IWUSR, stat.S_IXUSR),
            (stat.S_IWGRP, stat.S_IXGRP),
            (stat.S_IWOTH, stat.S_IXOTH),
        )
    )
    if exc.user == "root":
        hint = (
            "root may create files in any directory its file system lets it, so the refusal "
            "is likelier the server's: an SFTP server that refuses writes (internal-sftp -R, a "
            "policy), or an NFS export that squashes root. Ask the server's owners which."
        )
    elif group_may:
        group = exc.group or f"gid {exc.gid}"
        hint = (
            f"Its group {group} may create files there: if {user} is in that group, the "
            "server itself refuses writes (internal-sftp -R, a policy); if not, ask for "
            f"{user} to be added to it, or for another way to write there."
        )
    elif unsearchable:
        hint = (
            "Creating a file takes write *and* search (x) permission on the directory, and "
            "its mode gives write without search. Ask the server's owners to add the x bit "
            "(e.g. mode 0733 for a drop box), or point sftp.path at the directory the job is "
            "meant to upload to."
        )
    return Diagnosis(
        "sftp.not_writable",
        f"{where} refused {user} a new file in {exc.directory} (permission denied): {found}",
        hint,
    )


def _owner(name: str | None, number: int | None, kind: str = "uid") -> str:
    if name is not None:
        return f"{name} ({kind} {number})"
    return f"{kind} {number}" if number is not None else f"an unknown {kind}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


# --- shared ------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _unexpected(exc: BaseException, ctx: Context, code: str) -> Diagnosis:
    during = label(ctx.phase) or "the stage"
    return Diagnosis(
        code,
        f"{ctx.stage} stage failed against {ctx.endpoint} during {during}: {_describe(exc)}",
        "An unusual failure: rerun with the same timeouts; if it persists, run the commands "
        "below from the same runner and compare.",
    )


_BY_STAGE = {
    Stage.DNS: _dns,
    Stage.TCP: _tcp,
    Stage.BANNER: _banner,
    Stage.AUTH: _auth,
    Stage.SFTP: _sftp,
}
