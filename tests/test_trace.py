"""The trace (stages/trace.py) on loopback: what a hop's answer means, and what is never said.

The routed cases (which router drops) are in tests/system/test_trace.py."""

from __future__ import annotations

import asyncio
import resource
import socket

from preflight import lab
from preflight.stages import Address
from preflight.stages.trace import HopAnswer, Trace, trace


def run_trace(port: int, seconds: float = 1.0, max_hops: int = 3) -> Trace:
    return asyncio.run(trace(Address(socket.AF_INET, ("127.0.0.1", port)), seconds, max_hops))


def test_a_host_that_answers_tcp_at_every_hop_limit_is_reached_not_silent():
    with lab.RefusedPort() as refused:
        found = run_trace(refused.port)
    assert [(a.ttl, a.kind) for a in sorted(found.answers, key=lambda a: a.ttl)] == [
        (1, "refused"),
        (2, "refused"),
        (3, "refused"),
    ]
    assert found.as_fact()["last_answering_hop"] == 3


def test_the_last_answering_hop_is_the_one_before_the_first_silence():
    answers = (HopAnswer(1, "time exceeded", "a", 1.0), HopAnswer(3, "time exceeded", "c", 1.0))
    assert Trace("d", answers, max_hops=5).last == answers[0]
    assert Trace("d", (), max_hops=5).as_fact()["last_answering_hop"] == 0


def test_no_time_left_is_said_not_traced():
    found = run_trace(9, seconds=0.0)
    assert found.unavailable == "no time was left before the target's deadline"
    assert "hops" not in found.as_fact()


def test_sockets_that_cannot_be_opened_are_never_read_as_silent_hops():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with lab.DroppingPort() as dropping:
        held = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
            while True:  # take every descriptor left
                held.append(socket.socket())
        except OSError:
            pass
        for sock in held[-4:]:  # room for the event loop itself (epoll, its self-pipe), no more
            sock.close()
        del held[-4:]
        try:
            found = run_trace(dropping.port, seconds=0.5)
        finally:
            for sock in held:
                sock.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert found.unavailable is not None and "could not be used" in found.unavailable
    assert found.answers == ()
