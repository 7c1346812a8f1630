"""An MTU black hole (stages/mtu.py): a real sshd whose large packets vanish on the way.

Inside a namespace made by the test, nftables drops every packet above 900 bytes on its way out
(`meta length > 900 drop`, no ICMP back): the banner passes, the key exchange stalls, as on a
tunnel with a small MTU whose "fragmentation needed" is filtered. preflight must report
`auth.kex_timeout` with the finding that a second connection in small packets finished the key
exchange, print a ping line that fails the same way, and stay within its deadline; OpenSSH's
own client stalls at the same point. Without the rule the same check passes: the rule, not the
server, is what the finding is about.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import require
from .netns import NetNamespace

REPO = Path(__file__).resolve().parents[2]
BLACK_HOLE = (
    "table inet black_hole {\n"
    "  chain output {\n"
    "    type filter hook output priority 0; policy accept;\n"
    "    meta length > 900 drop\n"
    "  }\n"
    "}\n"
)


def check(ns: NetNamespace, tmp_path: Path, server, key: Path) -> tuple[int, dict, str]:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(server.known_hosts_lines()) + "\n")
    config = tmp_path / "checks.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            targets:
              - name: behind-a-tunnel
                host: 127.0.0.1
                port: {server.port}
                user: root
                timeouts: {{tcp: 2, banner: 2, auth: 3, sftp: 3}}
                deadline: 12
                auth: {{key: {key}}}
                host_key: {{known_hosts: {known_hosts}}}
            """
        )
    )
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "preflight", "check", "-c", str(config), "--json", str(report)]
    done = ns.run(argv, timeout=60, check=False, cwd=str(REPO))
    return done.returncode, json.loads(report.read_text()), done.stdout + done.stderr


@pytest.fixture
def server(netns, sshd_factory, client_key):
    return sshd_factory(authorized_keys=[client_key[1]], netns=netns)


def test_a_black_hole_for_large_packets_is_found_by_a_retry_in_small_ones(
    netns, server, client_key, tmp_path
):
    netns.add_nft_rules(BLACK_HOLE)
    status, report, output = check(netns, tmp_path, server, client_key[0])
    assert status == 1, output
    [target] = report["targets"]
    auth = target["stages"][3]
    assert auth["diagnosis"]["code"] == "auth.kex_timeout", output
    retried = auth["facts"]["small_packets"]
    assert retried["outcome"] == "completed", retried
    assert retried["packet_bytes"] <= 576 < 900 < retried["first_packet_bytes"]
    summary = auth["diagnosis"]["summary"]
    assert "a second connection limited to 576-byte packets finished it in " in summary
    assert "are lost on the path, an MTU black hole" in summary
    assert "MSS" in auth["diagnosis"]["hint"] and "ICMP" in auth["diagnosis"]["hint"]
    # The stage keeps its own 3 s; the retry takes well under its 3 s; all within 12 s.
    assert auth["duration_s"] < 4.0
    assert retried["seconds"] < 3.0
    assert target["duration_s"] < 12.0
    assert "MTU black hole" in " ".join(output.split())


def test_the_printed_commands_fail_the_way_the_check_did(netns, server, client_key, tmp_path):
    if shutil.which("ping") is None:
        require("ping not found (apt-get install iputils-ping)")
    netns.add_nft_rules(BLACK_HOLE)
    _, report, _ = check(netns, tmp_path, server, client_key[0])
    printed = report["targets"][0]["stages"][3]["facts"]["reproduce"]
    [ssh] = [line for line in printed if " ssh -vvv " in f" {line}"]
    [pings] = [line for line in printed if line.startswith("ping ")]
    # OpenSSH stalls where paramiko did: its KEXINIT sent, the server's never seen.
    done = netns.run(["sh", "-c", ssh], timeout=60, check=False)
    assert done.returncode != 0
    assert "SSH2_MSG_KEXINIT sent" in done.stderr
    assert "SSH2_MSG_KEXINIT received" not in done.stderr
    # The small ping is answered, the large one is not: the line fails at its second ping.
    small, large = pings.split(" && ")
    assert netns.run(shlex.split(small), timeout=30, check=False).returncode == 0
    assert netns.run(shlex.split(large), timeout=30, check=False).returncode != 0
    assert netns.run(["sh", "-c", pings], timeout=30, check=False).returncode != 0


def test_without_the_black_hole_the_same_check_passes(netns, server, client_key, tmp_path):
    status, report, output = check(netns, tmp_path, server, client_key[0])
    assert status == 0, output
    assert all("small_packets" not in stage["facts"] for stage in report["targets"][0]["stages"])
