"""Jump hosts against two real OpenSSH servers, the second reachable only through the first.

Both sshds and preflight run in a network namespace of the test's own. An nftables rule in it
drops every SYN to the inner server's port unless the socket belongs to uid 65534 (`nobody`): the
user the bastion's session runs as when preflight logs in to it as `nobody`. So the inner server
truly cannot be reached directly (the first test proves it: `tcp.timeout`) and can be reached
through the bastion's `direct-tcpip` channel. Then: a bastion that refuses forwarding, a wrong
key on the bastion, the inner server down, dropping or silent behind the bastion, a chain of two
jump hosts, and the command line reading an OpenSSH client config with ProxyJump.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import junitparser
import pytest

from preflight.lab import Tarpit
from preflight.model import (
    AuthConfig,
    Hop,
    HostKeyConfig,
    Report,
    Secret,
    Status,
    Target,
    TargetResult,
    Timeouts,
)
from preflight.report.console import render
from preflight.runner import check

from .conftest import SshdFactory, require
from .netns import NetNamespace
from .sshd import OpenSSHServer, generate_client_key

REPO = Path(__file__).resolve().parents[2]
NOBODY_UID = 65534
TIMEOUTS = Timeouts(dns=2, tcp=2, banner=3, auth=8, sftp=8)


@dataclass
class JumpLab:
    """A bastion and an inner server in `ns`; the inner one reachable only through the bastion."""

    ns: NetNamespace
    bastion: OpenSSHServer
    inner: OpenSSHServer
    key: Path
    known_hosts: Path

    def auth(self, key: Path | None = None) -> AuthConfig:
        key = key or self.key
        return AuthConfig(key=Secret(str(key)), key_source=f"file {key}")

    def hop(self, **changes: object) -> Hop:
        hop = Hop(
            host=self.bastion.host,
            port=self.bastion.port,
            user="nobody",
            auth=self.auth(),
            host_key=HostKeyConfig(known_hosts=str(self.known_hosts)),
        )
        return replace(hop, **changes)  # type: ignore[arg-type]

    def target(self, **changes: object) -> Target:
        target = Target(
            name="behind-bastion",
            host=self.inner.host,
            port=self.inner.port,
            user="root",
            timeouts=TIMEOUTS,
            deadline=30,
            auth=self.auth(),
            host_key=HostKeyConfig(known_hosts=str(self.known_hosts)),
            jump=(self.hop(),),
        )
        return replace(target, **changes)  # type: ignore[arg-type]

    def check(self, target: Target) -> TargetResult:
        """Check `target` from inside the namespace (preflight's sockets live there)."""
        report: Report = self.ns.call(check, [target], timeout=90)
        return report.targets[0]

    def only_nobody_may_reach(self, port: int, *, drop_all: bool = False) -> None:
        who = "" if drop_all else f"meta skuid != {NOBODY_UID} "
        self.ns.add_nft_rules(
            "add table inet jump_test\n"
            "delete table inet jump_test\n"
            "table inet jump_test {\n"
            "  chain output {\n"
            "    type filter hook output priority 0; policy accept;\n"
            f"    tcp dport {port} {who}drop\n"
            "  }\n"
            "}\n"
        )


def bastion_for_nobody(server: OpenSSHServer) -> None:
    """sshd reads authorized_keys as the user logging in: let `nobody` read the server's."""
    os.chmod(server.directory, 0o711)
    os.chmod(server.authorized_keys_path, 0o644)


def nobody_available() -> str | None:
    """The bastion's sessions run as `nobody`: the firewall rule tells them apart by its uid."""
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return "no 'nobody' user to log in to the bastion as"
    if entry.pw_uid != NOBODY_UID:
        return f"'nobody' has uid {entry.pw_uid}, not {NOBODY_UID}"
    return None


@pytest.fixture
def jump_lab(
    netns: NetNamespace, sshd_factory: SshdFactory, client_key: tuple[Path, str], tmp_path: Path
) -> Iterator[Callable[..., JumpLab]]:
    require(nobody_available())

    def make(bastion_config: tuple[str, ...] = ()) -> JumpLab:
        key, line = client_key
        bastion = sshd_factory(authorized_keys=[line], netns=netns, extra_config=bastion_config)
        bastion_for_nobody(bastion)
        inner = sshd_factory(authorized_keys=[line], netns=netns)
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(
            "\n".join(bastion.known_hosts_lines() + inner.known_hosts_lines()) + "\n"
        )
        lab = JumpLab(netns, bastion, inner, key, known_hosts)
        lab.only_nobody_may_reach(inner.port)
        return lab

    yield make


def rows(result: TargetResult) -> list[tuple[str, Status]]:
    return [(row.name, row.status) for row in result.stages]


def failure_of(result: TargetResult) -> tuple[str, str, str]:
    failure = result.failure
    assert failure is not None and failure.diagnosis is not None, render_one(result)
    return failure.name, failure.diagnosis.code, failure.diagnosis.summary


def render_one(result: TargetResult) -> str:
    from datetime import UTC, datetime

    return render(Report([result], datetime.now(UTC)), color=False)


def test_inner_server_is_unreachable_directly_and_passes_through_the_bastion(jump_lab):
    lab = jump_lab()
    direct = lab.check(lab.target(jump=()))
    assert failure_of(direct)[:2] == ("tcp", "tcp.timeout")

    through = lab.check(lab.target())
    assert through.ok, render_one(through)
    assert rows(through) == [
        ("jump1.dns", Status.PASS),
        ("jump1.tcp", Status.PASS),
        ("jump1.banner", Status.PASS),
        ("jump1.auth", Status.PASS),
        ("dns", Status.SKIP),
        ("tcp", Status.PASS),
        ("banner", Status.PASS),
        ("auth", Status.PASS),
        ("sftp", Status.PASS),
    ]
    by_name = {row.name: row for row in through.stages}
    assert by_name["jump1.auth"].facts["user"] == "nobody"
    assert by_name["tcp"].facts["forward"] == {
        "via": f"127.0.0.1:{lab.bastion.port}",
        "to": f"127.0.0.1:{lab.inner.port}",
    }
    assert "direct-tcpip" in by_name["tcp"].detail
    inner_keys = lab.inner.host_key_fingerprints.values()
    assert by_name["auth"].facts["host_key"]["fingerprint"] in inner_keys
    assert by_name["sftp"].facts["resolved_path"] == "/root"
    assert "Accepted publickey for root" in lab.inner.log


def test_a_bastion_that_refuses_forwarding_fails_the_tcp_stage_via_the_bastion(jump_lab):
    lab = jump_lab(bastion_config=("AllowTcpForwarding no",))
    name, code, summary = failure_of(lab.check(lab.target()))
    assert (name, code) == ("tcp", "tcp.unreachable")
    assert summary.startswith(f"via 127.0.0.1:{lab.bastion.port}: the jump host refused")
    assert "administratively prohibited" in summary


def test_a_wrong_key_on_the_bastion_is_auth_denied_at_the_jump_host(jump_lab, tmp_path):
    lab = jump_lab()
    stranger, _ = generate_client_key(tmp_path / "stranger")
    result = lab.check(lab.target(jump=(lab.hop(auth=lab.auth(stranger)),)))
    name, code, summary = failure_of(result)
    assert (name, code) == ("jump1.auth", "auth.denied")
    assert summary == (
        f"jump host 127.0.0.1:{lab.bastion.port} rejected nobody with publickey "
        "(server allows: publickey)"
    )
    assert rows(result)[4:] == [
        ("dns", Status.SKIP),
        ("tcp", Status.SKIP),
        ("banner", Status.SKIP),
        ("auth", Status.SKIP),
        ("sftp", Status.SKIP),
    ]
    assert result.stages[5].detail == "skipped: jump1.auth failed"


def test_the_inner_server_down_is_tcp_refused_via_the_bastion(jump_lab):
    lab = jump_lab()
    lab.inner.stop()
    name, code, summary = failure_of(lab.check(lab.target()))
    assert (name, code) == ("tcp", "tcp.refused")
    assert summary == (
        f"via 127.0.0.1:{lab.bastion.port}: 127.0.0.1:{lab.inner.port} refused the jump host's "
        "connection (TCP reset: Connection refused)"
    )


def test_a_drop_behind_the_bastion_is_tcp_timeout_within_the_tcp_timeout(jump_lab):
    lab = jump_lab()
    lab.only_nobody_may_reach(lab.inner.port, drop_all=True)
    started = time.monotonic()
    result = lab.check(lab.target())
    elapsed = time.monotonic() - started
    name, code, summary = failure_of(result)
    assert (name, code) == ("tcp", "tcp.timeout")
    assert summary.startswith(f"via 127.0.0.1:{lab.bastion.port}: no answer from ")
    tcp = next(row for row in result.stages if row.name == "tcp")
    assert TIMEOUTS.tcp <= tcp.duration_s < TIMEOUTS.tcp + 0.5
    assert elapsed < TIMEOUTS.tcp + 3, f"took {elapsed:.2f}s"


def test_a_silent_server_behind_the_bastion_times_out_the_banner_and_the_chain_is_closed(
    jump_lab,
):
    lab = jump_lab()
    tarpit = Tarpit()
    lab.ns.call(tarpit.start)
    try:
        lab.only_nobody_may_reach(tarpit.port)
        started = time.monotonic()
        result = lab.check(lab.target(port=tarpit.port))
        elapsed = time.monotonic() - started
    finally:
        tarpit.stop()
    name, code, summary = failure_of(result)
    assert (name, code) == ("banner", "banner.timeout")
    assert summary.startswith(f"via 127.0.0.1:{lab.bastion.port}: ")
    assert elapsed < TIMEOUTS.banner + 3, f"took {elapsed:.2f}s"
    # The bastion's session ended with the check: nothing was left open on it.
    login = re.search(
        r"Accepted publickey for nobody from 127\.0\.0\.1 port (\d+)", lab.bastion.log
    )
    assert login is not None, lab.bastion.log
    closing = f"Closing connection to 127.0.0.1 port {login[1]}"
    deadline = time.monotonic() + 5
    while closing not in lab.bastion.log and time.monotonic() < deadline:
        time.sleep(0.1)
    assert closing in lab.bastion.log, lab.bastion.log


def test_a_chain_of_two_jump_hosts(jump_lab):
    lab = jump_lab()
    # The second hop is the bastion again, reached through itself: a chain needs no third server.
    result = lab.check(lab.target(jump=(lab.hop(), lab.hop())))
    assert result.ok, render_one(result)
    assert [name for name, _ in rows(result)] == [
        "jump1.dns",
        "jump1.tcp",
        "jump1.banner",
        "jump1.auth",
        "jump2.dns",
        "jump2.tcp",
        "jump2.banner",
        "jump2.auth",
        "dns",
        "tcp",
        "banner",
        "auth",
        "sftp",
    ]
    second = next(row for row in result.stages if row.name == "jump2.tcp")
    assert second.facts["forward"]["to"] == f"127.0.0.1:{lab.bastion.port}"


def test_a_failure_behind_two_jump_hosts_names_the_route(jump_lab):
    lab = jump_lab()
    lab.inner.stop()
    name, code, summary = failure_of(lab.check(lab.target(jump=(lab.hop(), lab.hop()))))
    bastion = f"127.0.0.1:{lab.bastion.port}"
    assert (name, code) == ("tcp", "tcp.refused")
    assert summary.startswith(f"via {bastion} → {bastion}: ")


def test_the_command_line_follows_proxy_jump_from_an_ssh_config(jump_lab, tmp_path):
    lab = jump_lab()
    config = tmp_path / "ssh_config"
    config.write_text(
        textwrap.dedent(
            f"""\
            Host bastion
                HostName 127.0.0.1
                Port {lab.bastion.port}
                User nobody

            Host inner
                HostName 127.0.0.1
                Port {lab.inner.port}
                User root
                ProxyJump bastion

            Host *
                IdentityFile {lab.key}
                UserKnownHostsFile {lab.known_hosts}
                ConnectTimeout 2
            """
        )
    )
    report_path, junit_path = tmp_path / "report.json", tmp_path / "report.xml"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "SFTP_"))}
    environ["HOME"] = str(tmp_path / "home")  # not where the config is: it shows in full
    argv = [sys.executable, "-m", "preflight", "check", "-F", str(config), "inner"]
    argv += ["--json", str(report_path), "--junit", str(junit_path), "--color", "never"]
    done = lab.ns.run(argv, timeout=90, env=environ, cwd=str(REPO))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"inner  127.0.0.1:{lab.inner.port} via 127.0.0.1:{lab.bastion.port}  OK" in done.stdout
    assert f"port {lab.inner.port} from {config}:8" in done.stdout

    target = json.loads(report_path.read_text())["targets"][0]
    assert [stage["name"] for stage in target["stages"]][:5] == [
        "jump1.dns",
        "jump1.tcp",
        "jump1.banner",
        "jump1.auth",
        "dns",
    ]
    assert target["jump"] == [
        {
            "index": 1,
            "host": "127.0.0.1",
            "port": lab.bastion.port,
            "user": "nobody",
            "origin": f"{config}:10",
        }
    ]
    sources = {s["setting"]: (s["value"], s["source"]) for s in target["config_sources"]}
    assert sources["port"] == (str(lab.inner.port), f"{config}:8")
    assert sources["user"] == ("root", f"{config}:9")
    assert sources["tcp timeout"] == ("2s", f"{config}:15")
    assert sources["key"] == (f"file {lab.key}", f"{config}:13")

    suite = next(iter(junitparser.JUnitXml.fromfile(str(junit_path))))
    names = [case.name for case in suite]
    assert len(names) == len(set(names)) == 9


def run_in(ns: NetNamespace, command: str) -> tuple[int, str]:
    done = ns.run(["sh", "-c", command], timeout=90, check=False)
    return done.returncode, done.stdout + done.stderr


def test_the_printed_commands_cross_the_jump_host_as_preflight_did(jump_lab, tmp_path):
    # The jump host's own key is given only to it (`jump:` with auth); the target's key is
    # wrong. `ssh -J` would give the jump host no key at all; the printed ProxyCommand does,
    # so the command fails where preflight did: at the target's authentication.
    lab = jump_lab()
    stranger, _ = generate_client_key(tmp_path / "stranger")
    target = lab.target(auth=lab.auth(stranger))
    result = lab.check(target)
    name, code, _ = failure_of(result)
    assert (name, code) == ("auth", "auth.denied")
    failure = result.failure
    assert failure is not None
    (command,) = failure.facts["reproduce"]
    assert "ProxyCommand=" in command
    status, output = run_in(lab.ns, command)
    assert status == 255 and "root@127.0.0.1: Permission denied (publickey)" in output, output
    assert "Accepted publickey for nobody" in lab.bastion.log  # it went through the bastion


def test_a_jump_host_from_ssh_config_is_printed_as_written_there(jump_lab, tmp_path):
    # `-J nobody@127.0.0.1:PORT` would lose what ssh_config says for `bastion` (its
    # IdentityFile); `-F FILE -J bastion` keeps it.
    lab = jump_lab()
    config = tmp_path / "ssh_config"
    config.write_text(
        textwrap.dedent(
            f"""\
            Host bastion
                HostName 127.0.0.1
                Port {lab.bastion.port}
                User nobody
                IdentityFile {lab.key}
                UserKnownHostsFile {lab.known_hosts}

            Host inner
                HostName 127.0.0.1
                Port {lab.inner.port}
                User root
                ProxyJump bastion
            """
        )
    )
    lab.inner.stop()
    report_path = tmp_path / "report.json"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "SFTP_"))}
    environ["HOME"] = str(tmp_path / "home")
    argv = [sys.executable, "-m", "preflight", "check", "-F", str(config), "inner"]
    argv += ["--stages", "dns,tcp", "--json", str(report_path)]
    done = lab.ns.run(argv, timeout=90, env=environ, cwd=str(REPO))
    assert done.returncode == 1, done.stdout + done.stderr
    tcp = next(
        s for s in json.loads(report_path.read_text())["targets"][0]["stages"] if s["name"] == "tcp"
    )
    assert tcp["diagnosis"]["code"] == "tcp.refused"
    (command,) = tcp["facts"]["reproduce"]
    assert f"-F {config} " in command and " bastion </dev/null" in command
    status, output = run_in(lab.ns, command)
    assert status == 255 and "Connection refused" in output, output


def test_a_failure_at_the_second_jump_host_is_reproduced_through_the_first(jump_lab, tmp_path):
    # From this runner the second hop (the bastion again, as another user) is reached only
    # through the first: its printed command must cross the first, not dial it directly.
    lab = jump_lab()
    stranger, _ = generate_client_key(tmp_path / "stranger")
    second = lab.hop(auth=lab.auth(stranger))
    result = lab.check(lab.target(jump=(lab.hop(), second)))
    name, code, _ = failure_of(result)
    assert (name, code) == ("jump2.auth", "auth.denied")
    failure = result.failure
    assert failure is not None
    (command,) = failure.facts["reproduce"]
    assert "ProxyCommand=" in command and f"-i {stranger} " in command
    logins_before = lab.bastion.log.count("Accepted publickey for nobody")
    status, output = run_in(lab.ns, command)
    assert status == 255 and "nobody@127.0.0.1: Permission denied (publickey)" in output, output
    # The first hop logged in (as preflight's did), the second refused the stranger's key.
    assert lab.bastion.log.count("Accepted publickey for nobody") > logins_before


def test_a_jump_host_from_ssh_config_that_takes_the_targets_key_is_not_printed_as_j(
    jump_lab, tmp_path
):
    # ssh_config names no IdentityFile for `bastion`: preflight gives it the target's key (as
    # ssh -J would not: -J passes no -i). The printed command carries the key itself.
    lab = jump_lab()
    config = tmp_path / "ssh_config"
    config.write_text(
        textwrap.dedent(
            f"""\
            Host bastion
                HostName 127.0.0.1
                Port {lab.bastion.port}
                User nobody
                UserKnownHostsFile {lab.known_hosts}

            Host inner
                HostName 127.0.0.1
                Port {lab.inner.port}
                User root
                UserKnownHostsFile {lab.known_hosts}
                ProxyJump bastion
            """
        )
    )
    lab.inner.stop()
    report_path = tmp_path / "report.json"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "SFTP_"))}
    environ["HOME"] = str(tmp_path / "home")
    environ["SSH_PRIVATE_KEY"] = str(lab.key)
    argv = [sys.executable, "-m", "preflight", "check", "-F", str(config), "inner"]
    argv += ["--stages", "dns,tcp", "--json", str(report_path)]
    done = lab.ns.run(argv, timeout=90, env=environ, cwd=str(REPO))
    assert done.returncode == 1, done.stdout + done.stderr
    stages = json.loads(report_path.read_text())["targets"][0]["stages"]
    tcp = next(s for s in stages if s["name"] == "tcp")
    assert tcp["diagnosis"]["code"] == "tcp.refused"
    (command,) = tcp["facts"]["reproduce"]
    assert " -J " not in command and f"-i {lab.key} " in command
    status, output = run_in(lab.ns, command)
    assert status == 255 and "Connection refused" in output, output
