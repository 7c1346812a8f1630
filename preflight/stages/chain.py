"""Connections carried by a jump host: a `direct-tcpip` channel instead of a socket of their own.

A target behind jump hosts (`stages.jump`) is reached hop by hop; each later hop, and the target,
rides on the previous hop's SSH transport. `ChainedConnection` is such a connection, `carrier`
finds the one real TCP socket at the bottom of the chain (shutting it down ends every transport
and channel on it: what the watchdog does), `hops_below` the jump hosts under a connection. No
paramiko here: the SSH stages import it when they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from preflight.model import endpoint
from preflight.stages import Connection

if TYPE_CHECKING:
    import paramiko

__all__ = ["ChainedConnection", "carrier", "hops_below"]


@dataclass
class ChainedConnection(Connection):
    """A connection carried by the previous hop's SSH transport (a `direct-tcpip` channel) instead
    of a socket of its own. `via` is that hop's connection; `route` names every jump host crossed
    ("bastion:22 → inner:22"), for messages."""

    via: Connection | None = None
    channel: paramiko.Channel | None = None
    route: str = ""

    @property
    def opener(self) -> str:
        """The jump host that opens the channel to this connection's host."""
        assert self.via is not None
        return endpoint(self.via.target.host, self.via.target.port)

    def close(self) -> None:
        with self._lock:
            channel = self.channel
        super().close()
        if channel is not None:
            channel.close()


def carrier(conn: Connection) -> Connection:
    """The connection whose TCP socket carries `conn`: `conn` itself, or the first jump host's.
    Shutting that socket down ends every transport and channel of the chain."""
    while isinstance(conn, ChainedConnection) and conn.via is not None:
        conn = conn.via
    return conn


def hops_below(conn: Connection) -> list[Connection]:
    """The jump hosts' connections under `conn`, nearest first."""
    found = []
    while isinstance(conn, ChainedConnection) and conn.via is not None:
        conn = conn.via
        found.append(conn)
    return found
