"""Local servers that behave well or badly, for the test suite and ``preflight demo``.

Every server binds loopback only (``127.0.0.1`` port 0 by default, ``::1`` allowed), exposes
``host``, ``port`` and ``address``, is a context manager and has ``start()``/``stop()``; ``stop()``
leaves no sockets or threads behind. The plain-socket servers in :mod:`preflight.lab.raw` each
reproduce one network or banner failure; :class:`SFTPServer` (:mod:`preflight.lab.sftp`) is a real
paramiko SSH/SFTP server that can also stall at a chosen point; :mod:`preflight.lab.keys` makes
throw-away keys and their OpenSSH private key text; :class:`LatencyProxy`
(:mod:`preflight.lab.proxy`) puts a slow link in front of any of them, :class:`Intermittent` one
that fails every other connection.
"""

from preflight.lab.base import POLL_INTERVAL, LabServer, ThreadedServer
from preflight.lab.keys import (
    fingerprint,
    generate_ecdsa,
    generate_ed25519,
    generate_rsa,
    private_key_text,
)
from preflight.lab.proxy import Intermittent, LatencyProxy
from preflight.lab.raw import (
    CloseOnAccept,
    DroppingPort,
    Greeter,
    KexStall,
    RefusedPort,
    Tarpit,
    Trickle,
    kexinit_packet,
)
from preflight.lab.sftp import DEFAULT_USERS, SFTPServer

__all__ = [
    "DEFAULT_USERS",
    "POLL_INTERVAL",
    "CloseOnAccept",
    "DroppingPort",
    "Greeter",
    "Intermittent",
    "KexStall",
    "LabServer",
    "LatencyProxy",
    "RefusedPort",
    "SFTPServer",
    "Tarpit",
    "ThreadedServer",
    "Trickle",
    "fingerprint",
    "generate_ecdsa",
    "generate_ed25519",
    "generate_rsa",
    "kexinit_packet",
    "private_key_text",
]
