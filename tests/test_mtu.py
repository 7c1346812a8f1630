"""The retry in small packets after a stalled key exchange (stages/mtu.py), on loopback.

A stall that small packets do not cure is never called an MTU problem, a retry that breaks
concludes nothing, and no time is spent that the deadline does not allow. The black hole
itself (an sshd whose large packets vanish) is in tests/system/test_mtu.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import warnings

from checking import FAST, MARGIN, assert_fails, check_one, make_target

from preflight import diagnose, lab, reproduce
from preflight.errors import StageTimeout
from preflight.model import Diagnosis, Stage
from preflight.phases import At, Phase
from preflight.stages import Address
from preflight.stages.mtu import PROBE_SECONDS, SMALL_MSS, try_small_packets


class StallThenClose(lab.KexStall):
    """Stalls the key exchange of the first connection; closes every later one at once."""

    def handle(self, conn: socket.socket) -> None:
        if self.accepted > 1:
            conn.close()
            return
        super().handle(conn)


def kex_timeout_with(tried: dict[str, object]) -> Diagnosis:
    ctx = diagnose.Context(
        Stage.AUTH,
        "sftp.example.com",
        22,
        10.0,
        10.0,
        phase=At(Phase.KEY_EXCHANGE),
        address="192.0.2.7:22",
        facts={"small_packets": tried},
    )
    return diagnose.diagnose(StageTimeout(At(Phase.KEY_EXCHANGE), 10.0), ctx)


def test_a_stall_that_small_packets_do_not_cure_is_not_called_an_mtu_problem():
    with lab.KexStall() as server:
        result = check_one(make_target(server))
        accepted = server.accepted
    failure = assert_fails(result, Stage.AUTH, "auth.kex_timeout")
    tried = failure.facts["small_packets"]
    assert tried["outcome"] == "stalled" and accepted == 2
    assert tried["mss"] <= SMALL_MSS and tried["packet_bytes"] <= 576
    assert diagnose_words(failure.diagnosis).count("MTU") == 1  # "not an MTU problem"
    assert "not an MTU problem" in failure.diagnosis.hint
    assert "no sign that packet size is the cause" in failure.diagnosis.summary
    assert not any(line.startswith("ping ") for line in failure.facts["reproduce"])
    # The stage keeps its own time; the retry adds at most its own 3 s.
    assert failure.duration_s <= FAST.auth + MARGIN
    assert result.duration_s <= FAST.auth + PROBE_SECONDS + 2 * MARGIN


def diagnose_words(diagnosis: Diagnosis | None) -> str:
    assert diagnosis is not None
    return f"{diagnosis.summary} {diagnosis.hint}"


def test_a_retry_that_breaks_concludes_nothing():
    with StallThenClose() as server:
        result = check_one(make_target(server))
    failure = assert_fails(result, Stage.AUTH, "auth.kex_timeout")
    assert failure.facts["small_packets"]["outcome"] == "failed"
    assert failure.diagnosis is not None
    assert "could not tell (" in failure.diagnosis.summary
    # The hint is the plain key exchange one: every cause still open.
    assert failure.diagnosis.hint == kex_timeout_with({}).hint


def test_no_time_left_means_no_retry_and_says_so():
    with lab.KexStall() as server:
        address = Address(socket.AF_INET, (server.host, server.port))
        tried = asyncio.run(try_small_packets(address, 1448, 0.2))
        assert server.accepted == 0
    assert tried.as_fact() == {
        "outcome": "not tried",
        "mss": SMALL_MSS,
        "first_mss": 1448,
        "first_packet_bytes": 1500,
        "detail": "only 0.2s was left before the target's deadline",
    }
    words = kex_timeout_with(tried.as_fact())
    assert words.summary.endswith(
        "; not retried in small packets: only 0.2s was left before the target's deadline"
    )
    assert asyncio.run(try_small_packets(address, None, 0.0)).detail == (
        "no time was left before the target's deadline"
    )


def test_a_key_exchange_cut_by_the_deadline_is_not_retried():
    with lab.KexStall() as server:
        result = check_one(make_target(server, deadline=1.5))
        accepted = server.accepted
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    assert failure.diagnosis.code == "deadline.exceeded"
    assert "small_packets" not in failure.facts and accepted == 1


def test_a_cured_stall_is_an_mtu_black_hole_with_a_ping_line_that_fails_the_same_way():
    tried = {
        "outcome": "completed",
        "seconds": 0.21,
        "mss": 524,
        "packet_bytes": 576,
        "first_mss": 1448,
        "first_packet_bytes": 1500,
    }
    found = kex_timeout_with(tried)
    assert found.code == "auth.kex_timeout"
    assert found.summary == (
        "key exchange with 192.0.2.7:22 did not finish in 10.0s; a second connection limited "
        "to 576-byte packets finished it in 0.21s: larger packets (the first one's were up to "
        "1500 bytes) are lost on the path, an MTU black hole"
    )
    target = make_target(host="sftp.example.com")
    printed = reproduce.commands(target, Stage.AUTH, found, {"small_packets": tried})
    assert printed[-1] == (
        "ping -c 2 -w 3 -M do -s 548 sftp.example.com && "
        "ping -c 2 -w 3 -M do -s 1472 sftp.example.com"
    )


def test_an_interrupted_retry_closes_its_socket_itself():
    async def interrupted(address: Address) -> None:
        task = asyncio.ensure_future(try_small_packets(address, 1448, 3.0))
        await asyncio.sleep(0.2)  # connecting to a port that never answers
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with lab.DroppingPort() as dropping, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(interrupted(Address(socket.AF_INET, (dropping.host, dropping.port))))
        gc.collect()
    # A socket left to the garbage collector says so: "unclosed <socket…>".
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]
