"""Where the SYN dies (stages/trace.py): a routed chain of namespaces made by the test.

client → router 1 → router 2 → server, joined by veth pairs, with documentation addresses
(198.51.100.0/26 and .64/26, 203.0.113.0/24; 2001:db8:1::/64, :2::/64, :3::/64) and forwarding
on in the routers. nftables on one router drops the SYNs to the server's port; preflight, run
inside the client namespace, must name that router as the last hop that answers, for IPv4 and
IPv6, and stay within the target's deadline. `traceroute -T`, printed under the failure, shows
the same hops (run where it is installed: CI installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import require
from .netns import IP, NetNamespace, netns_available

REPO = Path(__file__).resolve().parents[2]
PORT = 2222
SERVER = {4: "203.0.113.10", 6: "2001:db8:3::10"}
ROUTERS = {1: {4: "198.51.100.1", 6: "2001:db8:1::1"}, 2: {4: "198.51.100.66", 6: "2001:db8:2::2"}}


@dataclass
class Chain:
    client: NetNamespace
    routers: dict[int, NetNamespace]

    def drop_syns_on(self, router: int) -> None:
        self.routers[router].add_nft_rules(
            "table inet trace_test {\n"
            "  chain forward {\n"
            "    type filter hook forward priority 0; policy accept;\n"
            f"    tcp dport {PORT} drop\n"
            "  }\n"
            "}\n"
        )

    def check(self, target: str, *, trace: bool = True) -> tuple[int, dict[str, object], str]:
        """`preflight check TARGET --stages tcp [--trace]` inside the client namespace."""
        report = Path(f"/tmp/preflight-trace-{self.client.name}.json")
        options = ["--trace"] if trace else []
        proc = self.client.run(
            [
                sys.executable,
                "-m",
                "preflight",
                "check",
                "-c",
                "none",
                target,
                "--stages",
                "tcp",
                *options,
                "--timeout",
                "tcp=1",
                "--json",
                str(report),
            ],
            cwd=REPO,
            timeout=60,
        )
        data = json.loads(report.read_text())
        report.unlink()
        return proc.returncode, data, proc.stdout + proc.stderr


def _ip(*argv: str) -> None:
    proc = subprocess.run([IP, *argv], capture_output=True, text=True, timeout=15, check=False)
    assert proc.returncode == 0, f"ip {' '.join(argv)}: {proc.stderr}"


@pytest.fixture
def chain() -> Iterator[Chain]:
    require(netns_available())
    spaces = [NetNamespace(prefix="pft-") for _ in range(4)]
    try:
        for space in spaces:
            space.create()
        client, r1, r2, server = (space.name for space in spaces)
        links = [  # (namespace, its end, its addresses), twice per veth pair
            (
                (client, "c0", "198.51.100.2/26", "2001:db8:1::2/64"),
                (r1, "r1a", "198.51.100.1/26", "2001:db8:1::1/64"),
            ),
            (
                (r1, "r1b", "198.51.100.65/26", "2001:db8:2::1/64"),
                (r2, "r2a", "198.51.100.66/26", "2001:db8:2::2/64"),
            ),
            (
                (r2, "r2b", "203.0.113.1/24", "2001:db8:3::1/64"),
                (server, "s0", "203.0.113.10/24", "2001:db8:3::10/64"),
            ),
        ]
        for left, right in links:
            _ip(
                "link",
                "add",
                left[1],
                "netns",
                left[0],
                "type",
                "veth",
                "peer",
                "name",
                right[1],
                "netns",
                right[0],
            )
            for space, device, v4, v6 in (left, right):
                _ip("-n", space, "addr", "add", v4, "dev", device)
                _ip("-n", space, "-6", "addr", "add", v6, "dev", device, "nodad")
                _ip("-n", space, "link", "set", device, "up")
        for router in (r1, r2):
            subprocess.run(
                [
                    IP,
                    "netns",
                    "exec",
                    router,
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                    "net.ipv6.conf.all.forwarding=1",
                ],
                check=True,
                timeout=15,
            )
        routes = [
            (client, "default", "198.51.100.1", "2001:db8:1::1"),
            (r1, "default", "198.51.100.66", "2001:db8:2::2"),
            (server, "default", "203.0.113.1", "2001:db8:3::1"),
        ]
        for space, where, v4, v6 in routes:
            _ip("-n", space, "route", "add", where, "via", v4)
            _ip("-n", space, "-6", "route", "add", where, "via", v6)
        _ip("-n", r2, "route", "add", "198.51.100.0/26", "via", "198.51.100.65")
        _ip("-n", r2, "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:2::1")
        yield Chain(spaces[0], {1: spaces[1], 2: spaces[2]})
    finally:
        for space in reversed(spaces):
            space.close()


def target_of(version: int) -> str:
    return f"[{SERVER[6]}]:{PORT}" if version == 6 else f"{SERVER[4]}:{PORT}"


@pytest.mark.parametrize("router", [2, 1])
@pytest.mark.parametrize("version", [4, 6])
def test_the_last_hop_that_answers_is_the_router_that_drops(chain, router, version):
    chain.drop_syns_on(router)
    status, data, output = chain.check(target_of(version))
    assert status == 1, output
    [target] = data["targets"]
    tcp = target["stages"][1]
    assert tcp["diagnosis"]["code"] == "tcp.timeout"
    trace = tcp["facts"]["trace"]
    assert trace["last_answering_hop"] == router, trace
    hops = trace["hops"]
    assert [hop["address"] for hop in hops] == [ROUTERS[n][version] for n in range(1, router + 1)]
    assert all(hop["answer"] == "time exceeded" for hop in hops)
    assert (
        f"traced hop by hop, the SYN reaches hop {router} ({ROUTERS[router][version]}, "
        in tcp["diagnosis"]["summary"]
    )
    assert f"the drop is at or after hop {router}" in tcp["diagnosis"]["summary"]
    # The tcp stage keeps its own time; the trace adds at most 2 s, within the deadline.
    assert tcp["duration_s"] < 1.5
    assert trace["seconds"] <= 2.5
    assert target["duration_s"] <= 1.0 + 2.0 + 1.0


def test_without_trace_nothing_is_traced_and_nothing_added(chain):
    chain.drop_syns_on(2)
    status, data, output = chain.check(target_of(4), trace=False)
    assert status == 1, output
    tcp = data["targets"][0]["stages"][1]
    assert "trace" not in tcp["facts"]
    assert data["targets"][0]["duration_s"] < 1.5


def test_the_printed_traceroute_shows_the_same_last_hop(chain):
    if shutil.which("traceroute") is None:
        require("traceroute not found (apt-get install traceroute)")
    chain.drop_syns_on(2)
    _, data, _ = chain.check(target_of(4))
    printed = data["targets"][0]["stages"][1]["facts"]["reproduce"]
    [command] = [line for line in printed if line.startswith("traceroute ")]
    proc = chain.client.run(["sh", "-c", f"timeout 60 {command}"], timeout=90)
    lines = proc.stdout.splitlines()
    assert f" 2  {ROUTERS[2][4]} " in "\n".join(lines), proc.stdout
    assert lines[3].strip() == "3  *", proc.stdout  # nothing answers past router 2
