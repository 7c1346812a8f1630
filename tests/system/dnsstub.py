"""A tiny authoritative DNS server for tests, run inside a network namespace on 127.0.0.1:53.

`python dnsstub.py` answers UDP queries from a fixed table, one behaviour per name, so that the
system resolver (glibc, through the namespace's own /etc/netns/NAME/resolv.conf) meets each
failure the dns stage must tell apart: an address, NXDOMAIN, a name with no address (NOERROR, no
answers), SERVFAIL, REFUSED, and a query that is never answered (any name starting with "silent").
Prints "ready" once bound. Standard library only, because it runs as a separate process.
"""

from __future__ import annotations

import socket
import struct
import sys

NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
TYPE_A, TYPE_AAAA = 1, 28

ADDRESSES = {"ok.test": "127.0.0.1"}
BEHAVIOUR = {
    "noaddr.test": NOERROR,
    "broken.test": SERVFAIL,
    "flaky.corp.test": SERVFAIL,  # a short name's search-domain form
    "refusing.test": REFUSED,
    "silent.test": None,
}


def parse_question(packet: bytes) -> tuple[str, int, int]:
    """(name, qtype, end offset of the question)."""
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii").lower())
        offset += 1 + length
    qtype = struct.unpack(">H", packet[offset + 1 : offset + 3])[0]
    return ".".join(labels), qtype, offset + 5


def answer(packet: bytes) -> bytes | None:
    name, qtype, end = parse_question(packet)
    (query_id,) = struct.unpack(">H", packet[:2])
    records = b""
    if name in ADDRESSES:
        rcode = NOERROR
        if qtype == TYPE_A:
            address = socket.inet_aton(ADDRESSES[name])
            records = b"\xc0\x0c" + struct.pack(">HHIH", TYPE_A, 1, 60, 4) + address
    elif name in BEHAVIOUR or name.startswith("silent"):
        behaviour = BEHAVIOUR.get(name)
        if behaviour is None:
            return None  # never answer
        rcode = behaviour
    else:
        rcode = NXDOMAIN
    flags = 0x8400 | 0x0100 | rcode  # response, authoritative, recursion desired echoed
    header = struct.pack(">HHHHHH", query_id, flags, 1, 1 if records else 0, 0, 0)
    return header + packet[12:end] + records


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    print("ready", flush=True)
    while True:
        packet, peer = server.recvfrom(4096)
        try:
            reply = answer(packet)
        except (IndexError, UnicodeDecodeError, struct.error):
            continue
        if reply is not None:
            server.sendto(reply, peer)


if __name__ == "__main__":
    sys.exit(main())
