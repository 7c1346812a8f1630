"""Why the resolver said "try again": ask its DNS servers ourselves, once, on time.

glibc's getaddrinfo answers EAI_AGAIN ("Temporary failure in name resolution") alike for a DNS
server that answered SERVFAIL in 7 ms, one that refused the query, one that nothing listens for,
one there is no route to, and one that never answered: the code alone would be a guess. So when
the dns stage gets EAI_AGAIN with time left, this sends the same question (an A query for the
name, recursion desired) to each `nameserver` of /etc/resolv.conf, all at once over UDP on the
event loop, and records what each did: the answer's RCODE and how long it took, an ICMP error,
or silence until the budget ran out. Facts only; `diagnose` turns them into words.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import socket
import struct
import time
from typing import Any

RESOLV_CONF = "/etc/resolv.conf"
DNS_PORT = 53
MAX_SERVERS = 3  # glibc uses the first three nameserver lines
# glibc asks 127.0.0.1 when resolv.conf names no server (resolv.conf(5)).
DEFAULT_SERVER = "127.0.0.1"
# The probe waits no longer than this even with more budget: a server that does not answer in
# a second after it had just answered getaddrinfo's "try again" is silent.
MAX_WAIT = 1.0

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def nameservers(path: str = RESOLV_CONF) -> tuple[list[str], bool]:
    """The servers getaddrinfo asks, and whether resolv.conf named any (else glibc's default)."""
    servers: list[str] = []
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                servers.append(fields[1])
    servers = servers[:MAX_SERVERS]
    return (servers, True) if servers else ([DEFAULT_SERVER], False)


def query(name: str, query_id: int) -> bytes:
    """A DNS query for the A record of `name`, recursion desired (RFC 1035 §4.1)."""
    header = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    labels = b"".join(
        bytes([len(label)]) + label for label in name.rstrip(".").encode("idna").split(b".")
    )
    return header + labels + b"\x00" + struct.pack(">HH", 1, 1)


def _sockaddr(server: str) -> tuple[int, tuple[Any, ...]]:
    address, _, scope = server.partition("%")
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        scope_id = socket.if_nametoindex(scope) if scope else 0
        return socket.AF_INET6, (address, DNS_PORT, 0, scope_id)
    return socket.AF_INET, (address, DNS_PORT)


async def _ask(server: str, packet: bytes, query_id: int, wait: float) -> dict[str, Any]:
    """What one server did with the query: {"server", "answer" | "error" | "silent", "ms"}."""
    started = time.monotonic()
    record: dict[str, Any] = {"server": server}
    try:
        family, sockaddr = _sockaddr(server)
    except (ValueError, OSError):
        record["error"] = "not an IP address"
        return record
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        # Connected, so that an ICMP error (port or host unreachable) comes back as errno.
        sock.connect(sockaddr)
        await loop.sock_sendall(sock, packet)
        async with asyncio.timeout(wait):
            while True:
                reply = await loop.sock_recv(sock, 4096)
                if len(reply) >= 4 and struct.unpack(">H", reply[:2])[0] == query_id:
                    break
        record["answer"] = RCODES.get(reply[3] & 0x0F, f"RCODE {reply[3] & 0x0F}")
    except TimeoutError:
        record["silent"] = True
    except OSError as exc:
        record["error"] = os.strerror(exc.errno) if exc.errno else str(exc)
        record["errno"] = exc.errno
    finally:
        sock.close()
    record["ms"] = round((time.monotonic() - started) * 1000, 1)
    return record


async def ask_servers(name: str, budget_left: float) -> dict[str, Any]:
    """Ask every server of resolv.conf for `name`, within `budget_left` seconds (at most
    `MAX_WAIT`): {"configured": bool, "servers": [what each did]}."""
    servers, configured = nameservers()
    query_id = secrets.randbits(16)
    try:
        packet = query(name, query_id)
    except UnicodeError:
        return {"configured": configured, "servers": []}
    wait = max(0.0, min(budget_left, MAX_WAIT))
    answers = await asyncio.gather(*(_ask(server, packet, query_id, wait) for server in servers))
    return {"configured": configured, "servers": list(answers)}
