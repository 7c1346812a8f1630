"""Jump hosts without root: the staged path through a bastion, its bounds, diagnoses and reports.

The bastion here is a small paramiko SSH server (`Bastion`) that accepts one key and forwards
`direct-tcpip` channels to loopback ports only; behind it are the lab's misbehaving servers. What
these tests pin down: the rows a target behind a jump host gets, that a stall behind the bastion
ends within the stage's timeout and takes the bastion's connection down with it (the watchdog
shuts the one real socket), how a refused channel maps to diagnosis codes, and how hops appear in
the console, JSON and JUnit reports. The real-OpenSSH version is tests/system/test_jump.py.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko
import pytest
import xmlschema
from checking import FAST, MARGIN, check_one, make_target

from preflight import diagnose, lab
from preflight.model import (
    AuthConfig,
    Diagnosis,
    Hop,
    HostKeyConfig,
    Report,
    Secret,
    SettingSource,
    Stage,
    StageResult,
    Status,
    Target,
    TargetResult,
)
from preflight.report.console import render
from preflight.report.json_reader import from_dict
from preflight.report.json_report import to_dict
from preflight.report.junit import to_xml
from preflight.stages import jump
from preflight.stages.jump import ChainedConnection

CLIENT_KEY = lab.generate_ed25519()
XSD = Path(__file__).parent / "data" / "junit.xsd"


class Bastion(lab.ThreadedServer):
    """An SSH server that authenticates `CLIENT_KEY` as any user and forwards `direct-tcpip`
    channels to 127.0.0.1 ports (anything else is refused without a lookup). `forwarding=False`
    refuses every channel as administratively prohibited. `connections` counts the client
    connections still open."""

    def __init__(self, *, forwarding: bool = True) -> None:
        super().__init__()
        self.forwarding = forwarding
        self.host_key = lab.generate_ed25519()
        self.open_connections = 0
        self._count_lock = threading.Lock()

    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}"

    def handle(self, conn: socket.socket) -> None:
        with self._count_lock:
            self.open_connections += 1
        transport = paramiko.Transport(conn)
        try:
            transport.add_server_key(self.host_key)
            interface = _BastionInterface(self.forwarding)
            transport.start_server(server=interface)
            while transport.is_active() and not self._stopping.is_set():
                channel = transport.accept(0.1)
                if channel is not None:
                    target = interface.pending.pop(channel.get_id(), None)
                    if target is not None:
                        _pump(channel, target)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            transport.close()
            with self._count_lock:
                self.open_connections -= 1


class _BastionInterface(paramiko.ServerInterface):
    def __init__(self, forwarding: bool) -> None:
        self.forwarding = forwarding
        self.pending: dict[int, socket.socket] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = key.asbytes() == CLIENT_KEY.asbytes()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        if not self.forwarding:
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        try:
            loopback = ipaddress.ip_address(destination[0]).is_loopback
        except ValueError:
            loopback = False  # a name: never looked up here
        if not loopback:
            return paramiko.OPEN_FAILED_CONNECT_FAILED
        try:
            self.pending[chanid] = socket.create_connection(destination, timeout=2)
        except OSError:
            return paramiko.OPEN_FAILED_CONNECT_FAILED
        return paramiko.OPEN_SUCCEEDED


def _pump(channel: paramiko.Channel, sock: socket.socket) -> None:
    """Copy both ways until either side closes."""

    def copy(read: Any, write: Any) -> None:
        with contextlib.suppress(Exception):
            while data := read(65536):
                write(data)
        with contextlib.suppress(Exception):
            channel.close()
        with contextlib.suppress(Exception):
            sock.close()

    sock.settimeout(None)
    for args in ((channel.recv, sock.sendall), (sock.recv, channel.sendall)):
        threading.Thread(target=copy, args=args, daemon=True).start()


@pytest.fixture
def bastion() -> Iterator[Bastion]:
    with Bastion() as server:
        yield server


def behind(bastion: Bastion, server: lab.LabServer, **changes: object) -> Target:
    """A target on `server`, reached through `bastion` (host keys not verified: lab keys)."""
    hop = Hop(
        host=bastion.host,
        port=bastion.port,
        user="ops",
        auth=AuthConfig(key=Secret(lab.private_key_text(CLIENT_KEY)), key_source="variable KEY"),
        host_key=HostKeyConfig(known_hosts=bastion.known_hosts_line(), policy="strict"),
    )
    return make_target(server, jump=(hop,), **changes)


def wait_until(condition: Any, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(condition())


# --------------------------------------------------------------------------- the plan


def test_a_target_without_jump_hosts_is_its_stages_on_one_connection():
    target = Target("t", "127.0.0.1")
    steps, conns = jump.plan(target)
    assert [(s.hop, s.stage, s.probe, s.skip) for s in steps] == [
        (0, stage, None, None) for stage in target.stages
    ]
    assert len(conns) == 1 and not isinstance(conns[0], ChainedConnection)


def test_a_target_behind_two_jump_hosts_checks_each_hop_then_itself_through_them():
    target = Target("t", "198.51.100.5", jump=(Hop("b1.example", 2222), Hop("b2.example")))
    steps, conns = jump.plan(target)
    rows = [(s.hop, s.stage.value, s.skip is not None, s.hop_label, s.via) for s in steps]
    assert rows == [
        (1, "dns", False, "b1.example:2222", ""),
        (1, "tcp", False, "b1.example:2222", ""),
        (1, "banner", False, "b1.example:2222", ""),
        (1, "auth", False, "b1.example:2222", ""),
        (2, "dns", True, "b2.example:22", "b1.example:2222"),
        (2, "tcp", False, "b2.example:22", "b1.example:2222"),
        (2, "banner", False, "b2.example:22", "b1.example:2222"),
        (2, "auth", False, "b2.example:22", "b1.example:2222"),
        (0, "dns", True, "", "b1.example:2222 → b2.example:22"),
        (0, "tcp", False, "", "b1.example:2222 → b2.example:22"),
        (0, "banner", False, "", "b1.example:2222 → b2.example:22"),
        (0, "auth", False, "", "b1.example:2222 → b2.example:22"),
        (0, "sftp", False, "", "b1.example:2222 → b2.example:22"),
    ]
    by_row = {(s.hop, s.stage): s for s in steps}
    assert by_row[(0, Stage.TCP)].probe is jump.probe_tcp
    assert by_row[(0, Stage.BANNER)].probe is jump.probe_banner
    assert by_row[(0, Stage.DNS)].skip == (
        "skipped: reached through the jump host b2.example:22, which resolves 198.51.100.5 itself"
    )
    final = conns[-1]
    assert isinstance(final, ChainedConnection) and final.via is conns[1]
    assert jump.carrier(final) is conns[0]


def test_a_dns_only_check_behind_a_jump_host_resolves_only_the_jump_host():
    target = Target("t", "inner", stages=(Stage.DNS,), jump=(Hop("b1"),))
    steps, _ = jump.plan(target)
    assert [(s.hop, s.stage, s.skip is not None) for s in steps] == [
        (1, Stage.DNS, False),
        (0, Stage.DNS, True),
    ]


# --------------------------------------------------------------------------- through a bastion


def test_an_sftp_server_behind_the_bastion_passes_every_row(bastion):
    with lab.SFTPServer() as server:
        result = check_one(
            behind(bastion, server, user="lab", auth=AuthConfig(password=Secret("lab")))
        )
    assert result.ok, [(s.name, s.diagnosis) for s in result.stages]
    assert [s.name for s in result.stages] == [
        "jump1.dns",
        "jump1.tcp",
        "jump1.banner",
        "jump1.auth",
        "dns",
        "tcp",
        "banner",
        "auth",
        "sftp",
    ]
    assert result.stages[3].facts["host_key"]["verified_by"] == "known_hosts given as content"


def test_a_pinned_key_of_another_type_is_found_through_the_bastion_too(bastion):
    # The second connection (for the server's RSA key) is a second channel through the same
    # jump host, which stays up for it and is closed with the target afterwards.
    rsa = lab.generate_rsa()
    with lab.SFTPServer(extra_host_keys=[rsa]) as server:
        pinned = HostKeyConfig(known_hosts=None, fingerprints=(lab.fingerprint(rsa),))
        result = check_one(
            behind(
                bastion,
                server,
                user="lab",
                auth=AuthConfig(password=Secret("lab")),
                host_key=pinned,
            )
        )
    assert result.ok, [(s.name, s.diagnosis) for s in result.stages]
    assert result.stages[-2].facts["host_key"]["type"] == "ssh-rsa"
    assert wait_until(lambda: bastion.open_connections == 0), "the bastion was left connected"


def test_a_key_exchange_stall_behind_the_bastion_ends_on_time_and_closes_the_bastion(bastion):
    with lab.KexStall() as server:
        result = check_one(behind(bastion, server))
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.name, failure.diagnosis.code) == ("auth", "auth.kex_timeout")
    assert failure.diagnosis.summary.startswith(f"via {bastion.host}:{bastion.port}: ")
    assert failure.duration_s <= FAST.auth + MARGIN
    # A retry in small packets would test the bastion's path, not this one: none is made.
    assert "small_packets" not in failure.facts and server.accepted == 1
    assert wait_until(lambda: bastion.open_connections == 0), "the bastion was left connected"


def test_a_listing_stall_behind_the_bastion_is_sftp_timeout(bastion):
    with lab.SFTPServer(stall="listdir") as server:
        result = check_one(
            behind(bastion, server, user="lab", auth=AuthConfig(password=Secret("lab")))
        )
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.name, failure.diagnosis.code) == ("sftp", "sftp.timeout")
    assert failure.duration_s <= FAST.sftp + MARGIN
    assert wait_until(lambda: bastion.open_connections == 0), "the bastion was left connected"


def test_a_tarpit_behind_the_bastion_is_banner_timeout(bastion):
    with lab.Tarpit() as server:
        result = check_one(behind(bastion, server))
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.name, failure.diagnosis.code) == ("banner", "banner.timeout")
    assert failure.duration_s <= FAST.banner + MARGIN


def test_the_bastion_refusing_to_forward_is_tcp_unreachable_via_the_bastion():
    with Bastion(forwarding=False) as refusing, lab.Tarpit() as server:
        result = check_one(behind(refusing, server))
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.name, failure.diagnosis.code) == ("tcp", "tcp.unreachable")
    assert failure.facts["forward"]["refused"] == {"code": 1, "reason": ""}
    assert "AllowTcpForwarding" in failure.diagnosis.hint


def test_a_connect_failure_without_a_reason_is_not_guessed(bastion):
    with lab.RefusedPort() as server:
        result = check_one(behind(bastion, server))
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    # paramiko's server sends no description; OpenSSH's says "Connection refused" (system test).
    assert (failure.name, failure.diagnosis.code) == ("tcp", "tcp.error")
    assert failure.diagnosis.summary.endswith(
        "it gave no reason (channel open failure 2: Connect failed)"
    )


def test_a_wrong_key_for_the_bastion_fails_at_the_jump_host(bastion):
    with lab.Tarpit() as server:
        target = behind(bastion, server)
        stranger = AuthConfig(key=Secret(lab.private_key_text(lab.generate_ed25519())))
        target = replace(target, jump=(replace(target.jump[0], auth=stranger),))
        result = check_one(target)
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None
    assert (failure.name, failure.diagnosis.code) == ("jump1.auth", "auth.denied")
    assert failure.hop == 1
    assert failure.diagnosis.summary == (
        f"jump host {bastion.host}:{bastion.port} rejected ops with publickey "
        "(server allows: publickey)"
    )
    skipped = [s.detail for s in result.stages if s.hop == 0]
    assert skipped == ["skipped: jump1.auth failed"] * 5


# --------------------------------------------------------------------------- diagnoses


def channel_failure(code: int, reason: str, **facts: Any) -> Diagnosis:
    ctx = diagnose.Context(
        Stage.TCP,
        "inner.example",
        22,
        3.0,
        0.05,
        facts={
            "forward": {
                "via": "b:22",
                "to": "inner.example:22",
                "refused": {"code": code, "reason": reason},
            },
            **facts,
        },
        via="b:22",
    )
    return diagnose.diagnose(paramiko.ChannelException(code, "Connect failed"), ctx)


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (1, "open failed", "tcp.unreachable"),
        (2, "Connection refused", "tcp.refused"),
        (2, "Connection timed out", "tcp.timeout"),
        (2, "No route to host", "tcp.unreachable"),
        (2, "Network is unreachable", "tcp.unreachable"),
        (2, "Name or service not known", "dns.nxdomain"),
        (2, "Temporary failure in name resolution", "dns.timeout"),
        (2, "No address associated with hostname", "dns.no_address"),
        (2, "open failed", "tcp.error"),
        (2, "", "tcp.error"),
        (4, "resource shortage", "tcp.error"),
    ],
)
def test_a_refused_channel_maps_to_the_code_its_reason_allows(code, reason, expected):
    found = channel_failure(code, reason)
    assert found.code == expected
    assert found.summary.startswith("via b:22: ")


def test_the_jump_hosts_own_failure_is_named_and_a_failure_beyond_it_says_via():
    base = dict(
        stage=Stage.AUTH, host="b", port=22, timeout=5.0, elapsed=0.1, facts={"user": "ops"}
    )
    own = diagnose.diagnose(
        paramiko.AuthenticationException("x"), diagnose.Context(**base, hop_label="b:22")
    )
    second = diagnose.diagnose(
        paramiko.AuthenticationException("x"),
        diagnose.Context(**base, hop_label="b2:22", via="b1:22"),
    )
    assert own.summary == "jump host b:22 ended the session during authentication of ops"
    assert second.summary.startswith("jump host b2:22 (via b1:22): b:22 ended the session")


# --------------------------------------------------------------------------- reports


def jump_report() -> Report:
    hop = Hop(
        "bastion.example",
        2222,
        "ops",
        auth=AuthConfig(password=Secret("hop-password-42")),
        origin="~/.ssh/config:6",
    )
    target = Target(
        "sftp-prod",
        "198.51.100.5",
        jump=(hop,),
        sources=(SettingSource("port", "22", "built-in default"),),
        config_notes=("~/.ssh/config:9: 'Match exec x' was ignored",),
    )
    denied = Diagnosis(
        "auth.denied", "jump host bastion.example:2222: rejected ops (hop-password-42)", "hint"
    )
    rows = [
        StageResult(Stage.DNS, Status.PASS, 0.01, "bastion.example → 192.0.2.1", hop=1),
        StageResult(Stage.TCP, Status.PASS, 0.02, "connected", hop=1),
        StageResult(Stage.BANNER, Status.PASS, 0.01, "SSH-2.0-OpenSSH_9.6", hop=1),
        StageResult(Stage.AUTH, Status.FAIL, 0.2, denied.summary, denied, hop=1),
        *(
            StageResult(stage, Status.SKIP, 0.0, "skipped: jump1.auth failed")
            for stage in target.stages
        ),
    ]
    return Report([TargetResult(target, rows, 0.3)], datetime(2026, 1, 2, tzinfo=UTC), 0.3)


def test_the_console_names_the_hop_and_keeps_the_columns_aligned():
    text = render(jump_report(), color=False)
    lines = text.splitlines()
    assert lines[0].startswith(
        "sftp-prod  198.51.100.5:22 via bastion.example:2222  FAILED at jump1.auth"
    )
    assert lines[1] == "  settings: port 22 from built-in default"
    assert lines[2] == "  ! ~/.ssh/config:9: 'Match exec x' was ignored"
    assert lines[3].startswith("  ✓ jump1.dns     0.010s  bastion.example")
    assert lines[6].startswith("  ✗ jump1.auth    0.200s  auth.denied: jump host bastion.example")
    assert lines[8] == "  – dns                   skipped: jump1.auth failed"
    assert "hop-password-42" not in text


def test_json_names_each_row_and_its_hop_and_reads_back_unchanged():
    data = to_dict(jump_report())
    target = data["targets"][0]
    assert target["failure"] == {"stage": "auth", "name": "jump1.auth", "code": "auth.denied"}
    assert target["jump"] == [
        {
            "index": 1,
            "host": "bastion.example",
            "port": 2222,
            "user": "ops",
            "origin": "~/.ssh/config:6",
        }
    ]
    assert [(s["name"], (s["hop"] or {}).get("index")) for s in target["stages"]][3:5] == [
        ("jump1.auth", 1),
        ("dns", None),
    ]
    assert "hop-password-42" not in str(data)
    assert to_dict(from_dict(data)) == data


def test_junit_test_names_are_unique_and_the_failure_names_the_jump_host():
    xml = to_xml(jump_report())
    xmlschema.XMLSchema(str(XSD)).validate(xml)
    assert 'name="jump1.auth"' in xml and 'name="auth"' in xml
    assert "failed at: jump host 1 (ops@bastion.example:2222)" in xml
    assert "hop-password-42" not in xml
