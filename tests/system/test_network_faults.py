"""Real firewall rules in a network namespace, checked by the real command line.

The namespace has only its own loopback; nftables inside it drops or rejects the port, and
`preflight check` runs inside it as a whole process, so these tests measure what a CI job sees:
the exit status, the wall time of the process, and the JUnit file it leaves behind.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import junitparser
import pytest

from .netns import NetNamespace

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, port: int, tcp_timeout: float = 3) -> Path:
    path = tmp_path / "checks.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            defaults:
              stages: [dns, tcp, banner]
              timeouts: {{tcp: {tcp_timeout}, banner: 3}}
            targets:
              - name: behind-firewall
                host: 127.0.0.1
                port: {port}
            """
        )
    )
    return path


def preflight_in(ns: NetNamespace, tmp_path: Path, config: Path) -> tuple[int, float, dict]:
    junit, report = tmp_path / "report.xml", tmp_path / "report.json"
    argv = [sys.executable, "-m", "preflight", "check", "-c", str(config)]
    argv += ["--junit", str(junit), "--json", str(report), "--color", "never"]
    started = time.monotonic()
    done = ns.run(argv, timeout=60, check=False, cwd=str(REPO))
    elapsed = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr
    assert junit.exists() and report.exists(), done.stdout + done.stderr
    return done.returncode, elapsed, json.loads(report.read_text())


def failure_code(report: dict) -> str | None:
    for stage in report["targets"][0]["stages"]:
        if stage["status"] == "fail":
            return stage["diagnosis"]["code"]
    return None


def test_silent_drop_fails_the_whole_process_within_the_tcp_timeout(netns, tmp_path):
    with netns.start_tcp_listener(send=b"SSH-2.0-OpenSSH_9.6\r\n") as listener:
        netns.drop_tcp_port(listener.port)
        status, elapsed, report = preflight_in(
            netns, tmp_path, write_config(tmp_path, listener.port)
        )
    assert status == 1
    assert failure_code(report) == "tcp.timeout"
    # DESIGN: tcp timeout 3 s → the whole process exits in under 4 s (1 s margin for start-up).
    assert elapsed < 3 + 1.5, f"preflight took {elapsed:.2f}s"
    suite = next(iter(junitparser.JUnitXml.fromfile(str(tmp_path / "report.xml"))))
    tcp_case = next(case for case in suite if case.name == "tcp")
    assert "tcp.timeout" in tcp_case.result[0].message


@pytest.mark.parametrize(
    ("reject_with", "code", "words"),
    [
        ("tcp reset", "tcp.refused", "refused the connection (TCP reset)"),
        ("icmp type port-unreachable", "tcp.refused", "refused the connection"),
        # What every peer (nc, ssh, curl) says; not asyncio's "Connect call failed (…)".
        ("icmp type host-unreachable", "tcp.unreachable", "is unreachable: No route to host"),
        ("icmp type admin-prohibited", "tcp.unreachable", "is unreachable: No route to host"),
    ],
)
def test_reject_rules_are_told_apart_from_a_drop(netns, tmp_path, reject_with, code, words):
    with netns.start_tcp_listener(send=b"SSH-2.0-OpenSSH_9.6\r\n") as listener:
        netns.reject_tcp_port(listener.port, with_=reject_with)
        status, elapsed, report = preflight_in(
            netns, tmp_path, write_config(tmp_path, listener.port)
        )
    assert status == 1
    assert failure_code(report) == code
    assert elapsed < 3, f"a rejection must be quick, took {elapsed:.2f}s"
    failed = next(s for s in report["targets"][0]["stages"] if s["status"] == "fail")
    assert words in failed["diagnosis"]["summary"]
    assert "Connect call failed" not in json.dumps(report)
    # nc, pasted in the same place, meets the same rule and says the same thing.
    (command,) = failed["facts"]["reproduce"]
    done = netns.run(["sh", "-c", command], timeout=30, check=False)
    assert done.returncode != 0, command
    said = {"tcp.refused": "refused", "tcp.unreachable": "No route to host"}[code]
    assert said in done.stdout + done.stderr, done.stderr


def test_open_port_passes(netns, tmp_path):
    with netns.start_tcp_listener(send=b"SSH-2.0-OpenSSH_9.6\r\n") as listener:
        status, _, report = preflight_in(netns, tmp_path, write_config(tmp_path, listener.port))
    assert status == 0, report
    assert report["ok"] is True
