"""The dns stage against a resolver we control, through the system resolver, in a namespace.

The namespace gets its own /etc/netns/NAME/resolv.conf pointing at a stub DNS server on its
loopback (dnsstub.py) and its own hosts file; `preflight check` runs inside it as a process, so
glibc's real getaddrinfo meets NXDOMAIN, an empty answer, SERVFAIL and silence.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .netns import NetNamespace, _readline_bounded

REPO = Path(__file__).resolve().parents[2]
STUB = Path(__file__).resolve().parent / "dnsstub.py"


@pytest.fixture
def dns_netns(netns: NetNamespace) -> Iterator[NetNamespace]:
    netns.write_etc("resolv.conf", "nameserver 127.0.0.1\n")
    netns.write_etc("hosts", "127.0.0.1 localhost\n::1 dual.test\n127.0.0.1 dual.test\n")
    stub = netns.popen([sys.executable, str(STUB)], stdout=subprocess.PIPE, text=True)
    assert stub.stdout is not None
    assert _readline_bounded(stub.stdout, timeout=10.0).strip() == "ready"
    yield netns


def preflight(ns: NetNamespace, tmp_path: Path, host: str, port: int = 22, **kw: str) -> tuple:
    config = tmp_path / "checks.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            defaults:
              stages: [{kw.get("stages", "dns")}]
              timeouts: {{dns: 1, tcp: 1}}
            targets:
              - {{name: t, host: {host}, port: {port}}}
            """
        )
    )
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "preflight", "check", "-c", str(config), "--json", str(report)]
    started = time.monotonic()
    done = ns.run(argv, timeout=60, check=False, cwd=str(REPO))
    elapsed = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, elapsed, json.loads(report.read_text())["targets"][0]


def failure(target: dict) -> dict:
    return next(s for s in target["stages"] if s["status"] == "fail")


def test_name_that_resolves_passes(dns_netns, tmp_path):
    status, _, target = preflight(dns_netns, tmp_path, "ok.test")
    assert status == 0
    assert target["stages"][0]["facts"]["addresses"] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("host", "code", "words"),
    [
        ("missing.test", "dns.nxdomain", "does not exist"),
        ("noaddr.test", "dns.no_address", "no IPv4 or IPv6 address"),
        # glibc says "try again" for both: asking the server says which it was, and when.
        (
            "broken.test",
            "dns.error",
            "the DNS server 127.0.0.1 answered SERVFAIL for broken.test in",
        ),
        ("refusing.test", "dns.error", "the DNS server 127.0.0.1 answered REFUSED for"),
    ],
)
def test_resolver_answers_are_told_apart(dns_netns, tmp_path, host, code, words):
    status, _, target = preflight(dns_netns, tmp_path, host)
    assert status == 1
    stage = failure(target)
    assert stage["diagnosis"]["code"] == code
    assert words in stage["diagnosis"]["summary"]
    # The printed lookup fails too, through the same resolver (getent exits 2: not found).
    for command in stage["facts"]["reproduce"]:
        done = dns_netns.run(["sh", "-c", command], timeout=30, check=False)
        assert done.returncode != 0, (command, done.stdout)


def test_a_short_names_search_domain_form_is_asked_about_as_glibc_asks(dns_netns, tmp_path):
    # `flaky` has no dot: glibc asks for flaky.corp.test first, which gets SERVFAIL; asking
    # for `flaky` alone (NXDOMAIN) would have called a lasting fault one that came and went.
    dns_netns.write_etc("resolv.conf", "nameserver 127.0.0.1\nsearch corp.test\n")
    status, _, target = preflight(dns_netns, tmp_path, "flaky")
    assert status == 1
    diagnosis = failure(target)["diagnosis"]
    assert diagnosis["code"] == "dns.error"
    assert "answered SERVFAIL for flaky.corp.test in" in diagnosis["summary"]


def test_no_dns_server_reachable_is_said_so_not_called_a_timeout(netns, tmp_path):
    # Nothing listens on 127.0.0.2:53, and the namespace has no route to 198.51.100.53:
    # getaddrinfo gives up at once with "try again"; asking the servers says why.
    netns.write_etc("resolv.conf", "nameserver 127.0.0.2\nnameserver 198.51.100.53\n")
    netns.write_etc("hosts", "127.0.0.1 localhost\n")
    status, _, target = preflight(netns, tmp_path, "anything.test")
    assert status == 1
    diagnosis = failure(target)["diagnosis"]
    assert diagnosis["code"] == "dns.error"
    assert diagnosis["summary"] == (
        "no DNS server could be reached to resolve anything.test: 127.0.0.2 nothing answers on "
        "port 53 (ICMP port unreachable); 198.51.100.53 is unreachable (Network is unreachable)"
    )
    assert "timeout" not in diagnosis["summary"]


def test_silent_resolver_fails_at_the_dns_timeout_not_the_resolver_s(dns_netns, tmp_path):
    # glibc alone waits 5 s per try, twice; preflight stops waiting at 1 s and exits.
    status, elapsed, target = preflight(dns_netns, tmp_path, "silent.test")
    assert status == 1
    assert failure(target)["diagnosis"]["code"] == "dns.timeout"
    assert elapsed < 1 + 2.0, f"the whole process took {elapsed:.2f}s"
    # The printed lookup stops waiting when preflight did (timeout 1, exit 124).
    (command,) = failure(target)["facts"]["reproduce"]
    done = dns_netns.run(["sh", "-c", command], timeout=30, check=False)
    assert done.returncode == 124, (command, done.stdout, done.stderr)


def test_dropped_ipv6_address_falls_through_to_ipv4(dns_netns, tmp_path):
    with dns_netns.start_tcp_listener(send=b"SSH-2.0-OpenSSH_9.6\r\n") as listener:
        dns_netns.add_nft_rules(
            "table inet v6drop {\n  chain input {\n"
            "    type filter hook input priority -10; policy accept;\n"
            f"    meta nfproto ipv6 tcp dport {listener.port} drop\n  }}\n}}\n"
        )
        status, _, target = preflight(
            dns_netns, tmp_path, "dual.test", listener.port, stages="dns, tcp, banner"
        )
    assert status == 0, target
    attempts = target["stages"][1]["facts"]["attempts"]
    assert [(a["address"], a["result"]) for a in attempts] == [
        (f"[::1]:{listener.port}", "timeout"),
        (f"127.0.0.1:{listener.port}", "connected"),
    ]


def test_hung_lookups_hold_their_slots_and_queued_targets_say_so(dns_netns, tmp_path):
    # 40 names the resolver never answers fill every lookup slot for as long as glibc waits;
    # a target queued behind them is told that, not that its own name went unanswered.
    config = tmp_path / "checks.yaml"
    hung = "\n".join(f"  - {{name: hung-{i}, host: silent-{i}.test}}" for i in range(40))
    config.write_text(
        "version: 1\ndefaults: {stages: [dns], timeouts: {dns: 1}}\n"
        f"targets:\n{hung}\n  - {{name: queued, host: ok.test}}\n"
    )
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "preflight", "check", "-c", str(config), "--json", str(report)]
    done = dns_netns.run(argv, timeout=60, check=False, cwd=str(REPO))
    assert done.returncode == 1, done.stderr
    targets = {t["name"]: t for t in json.loads(report.read_text())["targets"]}
    queued = failure(targets["queued"])["diagnosis"]
    assert queued["code"] == "dns.timeout"
    assert "could start" in queued["summary"]
    assert failure(targets["hung-0"])["diagnosis"]["summary"].startswith("the resolver gave no")
