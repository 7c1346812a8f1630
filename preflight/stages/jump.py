"""Jump hosts: the staged path to a target reached through one or more SSH bastions.

A target with `Target.jump` (OpenSSH `ProxyJump`, checks.yaml `jump:`) is checked hop by hop, the
way `ssh -J` connects: the first jump host gets dns, tcp, banner and auth like any server; every
later hop, and then the target, is reached through the previous hop's `direct-tcpip` channel — its
tcp stage is that channel being opened (the jump host makes the TCP connection and resolves the
name, so there is no local dns stage: it is reported as skipped), its banner is read from the
channel, and auth and sftp run paramiko over the channel. Each stage is bounded like the direct
ones: the channel open and every read wait only for what is left of the stage's budget, and the
watchdog (`watchdog.run_guarded`) shuts down the one real TCP socket at the bottom of the chain
(`chain.carrier`), which ends every transport and channel stacked on it. Results name their hop
(`StageResult.hop`, shown as `jump1.tcp`), and diagnoses say which jump host failed or which one
the failure was seen through.

`plan` lays out these steps for the runner. This module does not import paramiko itself; the
probes load it (through `stages.ssh`) when they run.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, NamedTuple

from preflight.deadline import Budget
from preflight.model import ALL_STAGES, Stage, Target, endpoint
from preflight.phases import At, Phase
from preflight.stages import Connection, Passed, Probe
from preflight.stages.chain import ChainedConnection, carrier, hops_below

__all__ = ["ChainedConnection", "Step", "carrier", "hop_stages", "hop_target", "hops_below", "plan"]

# How long past a channel stage's budget the watchdog waits before shutting the chain down: the
# stage's own bounded reads (and paramiko's 0.1 s polling of a channel open) end first.
CHANNEL_GRACE = 0.2


class Step(NamedTuple):
    """One row of a target's report: a stage of the target (`hop` 0) or of its `hop`th jump
    host, on `conn`. `probe` replaces the stage's usual probe (None: the usual one); with `skip`
    the stage is not run but reported as skipped with that reason."""

    hop: int
    stage: Stage
    conn: Connection
    probe: Probe | None = None
    skip: str | None = None
    hop_label: str = ""  # the jump host's endpoint, for a jump host's own stages
    via: str = ""  # the jump hosts the connection goes through


def hop_stages(target: Target) -> tuple[Stage, ...]:
    """A jump host needs dns..auth before it can open a channel; a dns-only check of the
    target only resolves the jump hosts."""
    if len(target.stages) <= 1:
        return target.stages
    return ALL_STAGES[: ALL_STAGES.index(Stage.AUTH) + 1]


def hop_target(target: Target, index: int) -> Target:
    """The `index`th jump host (from 1) as a target of its own, under `target`'s timeouts
    (but its own tcp timeout when OpenSSH client config gives it one)."""
    hop = target.jump[index - 1]
    timeouts = target.timeouts
    if hop.tcp_timeout is not None:
        timeouts = replace(timeouts, tcp=hop.tcp_timeout)
    return replace(
        target,
        timeouts=timeouts,
        name=f"{target.name} jump{index}",
        host=hop.host,
        port=hop.port,
        user=hop.user,
        auth=hop.auth,
        host_key=hop.host_key,
        stages=hop_stages(target),
        sftp_path=".",
        origin=hop.origin or target.origin,
        jump=(),
        sources=(),
        config_notes=(),
    )


def plan(target: Target) -> tuple[list[Step], list[Connection]]:
    """Every row of `target`'s check in order, and the connections they use (first to last)."""
    if not target.jump:
        conn = Connection(target)
        return [Step(0, stage, conn) for stage in target.stages], [conn]
    steps: list[Step] = []
    conns: list[Connection] = []
    labels: list[str] = []
    previous: Connection | None = None
    for index, hop in enumerate(target.jump, start=1):
        hop_conn = _connection(hop_target(target, index), previous, labels)
        steps.extend(
            _step(index, stage, hop_conn, hop.endpoint, labels) for stage in hop_conn.target.stages
        )
        conns.append(hop_conn)
        labels.append(hop.endpoint)
        previous = hop_conn
    final = _connection(target, previous, labels)
    steps.extend(_step(0, stage, final, "", labels) for stage in target.stages)
    conns.append(final)
    return steps, conns


def _connection(target: Target, via: Connection | None, labels: list[str]) -> Connection:
    if via is None:
        return Connection(target)
    return ChainedConnection(target, via=via, route=" → ".join(labels))


def _step(index: int, stage: Stage, conn: Connection, label: str, labels: list[str]) -> Step:
    via = " → ".join(labels)
    if isinstance(conn, ChainedConnection):
        if stage is Stage.DNS:
            from preflight.diagnose import skipped_through_jump_host

            reason = skipped_through_jump_host(conn.opener, conn.target.host)
            return Step(index, stage, conn, skip=reason, hop_label=label, via=via)
        if stage is Stage.TCP:
            return Step(index, stage, conn, probe_tcp, hop_label=label, via=via)
        if stage is Stage.BANNER:
            return Step(index, stage, conn, probe_banner, hop_label=label, via=via)
    return Step(index, stage, conn, hop_label=label, via=via)


async def probe_tcp(conn: Connection, budget: Budget) -> Passed:
    """The tcp stage through a jump host: ask it to open a `direct-tcpip` channel to the host."""
    from preflight.stages import ssh, watchdog

    assert isinstance(conn, ChainedConnection) and conn.via is not None
    target = conn.target
    destination = endpoint(target.host, target.port)
    conn.phase = At(Phase.CONNECT)
    forward: dict[str, Any] = {"via": conn.opener, "to": destination}
    conn.facts["forward"] = forward
    via = conn.via

    def work() -> Passed:
        started = time.monotonic()
        channel = ssh.open_direct_tcpip(via, (target.host, target.port), budget, forward)
        with conn._lock:
            conn.channel = channel
        elapsed_ms = (time.monotonic() - started) * 1000
        return Passed(
            f"{destination} reached through the jump host {conn.opener} (direct-tcpip) "
            f"in {elapsed_ms:.0f} ms"
        )

    return await watchdog.run_guarded(conn, budget, work, grace=CHANNEL_GRACE)


async def probe_banner(conn: Connection, budget: Budget) -> Passed:
    """The banner stage on a channel: the same judgement as on a socket (`banner`), with each
    read waiting only for what is left of the budget."""
    from preflight.stages import watchdog
    from preflight.stages.banner import READ_SIZE, IdentificationReader, identified

    assert isinstance(conn, ChainedConnection) and conn.channel is not None
    conn.phase = At(Phase.BANNER)
    channel = conn.channel

    def work() -> Passed:
        reader = IdentificationReader()
        while True:
            remaining = budget.remaining()
            if remaining <= 0:
                reader.timed_out(conn.facts, budget)
            channel.settimeout(remaining)
            try:
                chunk = channel.recv(READ_SIZE)
            except TimeoutError:
                reader.timed_out(conn.facts, budget)
            if not chunk:
                reader.closed()
            found = reader.feed(chunk)
            if found is not None:
                return identified(conn, found)

    return await watchdog.run_guarded(conn, budget, work, grace=CHANNEL_GRACE)
