"""Why the resolver said "try again": ask its DNS servers ourselves, once, on time.

glibc's getaddrinfo answers EAI_AGAIN ("Temporary failure in name resolution") alike for a DNS
server that answered SERVFAIL in 7 ms, one that refused the query, one that nothing listens for,
one there is no route to, and one that never answered: the code alone would be a guess. So when
the dns stage gets EAI_AGAIN with time left, this sends the same questions (A and AAAA for the
name and its search-domain forms, in getaddrinfo's order, recursion desired) to each
`nameserver` of /etc/resolv.conf, all at once over UDP on the event loop, and records what each
did: the worst answer's RCODE (and the name it was for) and how long it took, an ICMP error, or
silence until the budget ran out. Facts only; `diagnose` turns them into words.
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
from typing import Any, NamedTuple

RESOLV_CONF = "/etc/resolv.conf"
DNS_PORT = 53
MAX_SERVERS = 3  # glibc uses the first three nameserver lines
# glibc asks 127.0.0.1 when resolv.conf names no server (resolv.conf(5)).
DEFAULT_SERVER = "127.0.0.1"
# The probe waits no longer than this even with more budget: a server that does not answer in
# a second after it had just answered getaddrinfo's "try again" is silent.
MAX_WAIT = 1.0

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
ERROR_RCODES = frozenset({"SERVFAIL", "REFUSED", "NOTIMP", "FORMERR"})
TYPE_A, TYPE_AAAA = 1, 28
MAX_SEARCH = 3  # search domains asked about, at most


class ResolvConf(NamedTuple):
    servers: list[str]
    configured: bool  # False: resolv.conf names no server, glibc asks 127.0.0.1
    search: list[str]
    ndots: int


def read_resolv_conf(path: str = RESOLV_CONF) -> ResolvConf:
    """What getaddrinfo's DNS lookups use: the servers, the search list and `ndots`."""
    servers: list[str] = []
    search: list[str] = []
    ndots = 1
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                servers.append(fields[1])
            elif fields and fields[0] in ("search", "domain"):
                search = fields[1:]  # the last such line wins
            elif fields and fields[0] == "options":
                for option in fields[1:]:
                    if option.startswith("ndots:") and option[6:].isdigit():
                        ndots = min(int(option[6:]), 15)
    servers = servers[:MAX_SERVERS]
    if not servers:
        return ResolvConf([DEFAULT_SERVER], False, search, ndots)
    return ResolvConf(servers, True, search, ndots)


def questions(name: str, conf: ResolvConf) -> list[str]:
    """The names getaddrinfo asks for, in its order: a name with fewer dots than `ndots` is
    tried with the search domains first, any other one as written first."""
    name = name.rstrip(".")
    searched = [f"{name}.{domain}" for domain in conf.search[:MAX_SEARCH]]
    ordered = [name, *searched] if name.count(".") >= conf.ndots else [*searched, name]
    return list(dict.fromkeys(ordered))


def query(name: str, query_id: int, qtype: int = TYPE_A) -> bytes:
    """A DNS query for `name` (A or AAAA), recursion desired (RFC 1035 §4.1)."""
    header = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    labels = b"".join(
        bytes([len(label)]) + label for label in name.rstrip(".").encode("idna").split(b".")
    )
    return header + labels + b"\x00" + struct.pack(">HH", qtype, 1)


def _sockaddr(server: str) -> tuple[int, tuple[Any, ...]]:
    address, _, scope = server.partition("%")
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        scope_id = socket.if_nametoindex(scope) if scope else 0
        return socket.AF_INET6, (address, DNS_PORT, 0, scope_id)
    return socket.AF_INET, (address, DNS_PORT)


def _worst(answers: dict[int, tuple[str, int]], asked: dict[int, str]) -> dict[str, Any]:
    """One server's answers summed up: an error answer if there is one (with the name it was
    for), else silence if a question went unanswered, else the last answer."""
    for query_id, (rcode_name, _) in answers.items():
        if rcode_name in ERROR_RCODES:
            return {"answer": rcode_name, "name": asked[query_id]}
    if len(answers) < len(asked):
        return {"silent": True}
    rcode_name, _ = next(iter(answers.values()))
    return {"answer": rcode_name}


async def _ask(server: str, names: list[str], wait: float) -> dict[str, Any]:
    """What one server did with the questions: {"server", "answer" (+"name") | "error" |
    "silent", "ms"}."""
    started = time.monotonic()
    record: dict[str, Any] = {"server": server}
    sock: socket.socket | None = None
    try:
        family, sockaddr = _sockaddr(server)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        # Connected, so that an ICMP error (port or host unreachable) comes back as errno.
        sock.connect(sockaddr)
        loop = asyncio.get_running_loop()
        asked: dict[int, str] = {}
        for name in names:
            for qtype in (TYPE_A, TYPE_AAAA):
                query_id = secrets.randbits(16)
                while query_id in asked:
                    query_id = secrets.randbits(16)
                asked[query_id] = name
                await loop.sock_sendall(sock, query(name, query_id, qtype))
        answers: dict[int, tuple[str, int]] = {}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while len(answers) < len(asked):
                    reply = await loop.sock_recv(sock, 4096)
                    if len(reply) >= 4:
                        query_id = struct.unpack(">H", reply[:2])[0]
                        if query_id in asked:
                            rcode = reply[3] & 0x0F
                            answers[query_id] = (RCODES.get(rcode, f"RCODE {rcode}"), rcode)
        record.update(_worst(answers, asked))
    except (ValueError, UnicodeError):
        record["error"] = "not an IP address"
    except OSError as exc:
        record["error"] = os.strerror(exc.errno) if exc.errno else str(exc)
        record["errno"] = exc.errno
    finally:
        if sock is not None:
            sock.close()
    record["ms"] = round((time.monotonic() - started) * 1000, 1)
    return record


async def ask_servers(name: str, budget_left: float) -> dict[str, Any]:
    """Ask every server of resolv.conf what getaddrinfo asked it about `name` (A and AAAA, with
    the search domains), within `budget_left` seconds (at most `MAX_WAIT`):
    {"configured": bool, "servers": [what each did]}."""
    conf = read_resolv_conf()
    try:
        names = questions(name, conf)
        for asked in names:
            query(asked, 0)  # a name that cannot be put in a query: nothing to ask
    except UnicodeError:
        return {"configured": conf.configured, "servers": []}
    wait = max(0.0, min(budget_left, MAX_WAIT))
    answers = await asyncio.gather(*(_ask(server, names, wait) for server in conf.servers))
    return {"configured": conf.configured, "servers": list(answers)}
