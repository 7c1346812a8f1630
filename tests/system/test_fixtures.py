"""Prove the system-test fixtures work, with real clients and bounded waits.

* the OpenSSH server accepts a generated key from paramiko (host key fingerprint checked,
  SFTP listdir) and from OpenSSH's own ``ssh`` (with and without its known_hosts lines);
* ``sftp=False`` really removes the subsystem;
* a network namespace gives a genuine silent DROP (connect times out) and REJECT (refused,
  unreachable) on its own loopback, for in-process and subprocess clients alike;
* ``/etc/netns`` overrides reach commands run in the namespace;
* sshd can run inside a namespace, and nothing is left behind.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from .conftest import SshdFactory
from .netns import NetNamespace
from .sshd import OpenSSHServer, _descendants

SSH_OPTIONS = [
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "ConnectTimeout=5",
]


def sha256_fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:…`` fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@contextlib.contextmanager
def transport_to(server: OpenSSHServer) -> Iterator[paramiko.Transport]:
    """A connected paramiko Transport, with a watchdog that closes it after 20 s."""
    sock = socket.create_connection((server.host, server.port), timeout=5)
    transport = paramiko.Transport(sock)
    watchdog = threading.Timer(20, transport.close)
    watchdog.daemon = True
    watchdog.start()
    try:
        transport.start_client(timeout=10)
        yield transport
    finally:
        watchdog.cancel()
        transport.close()


def ssh_argv(server: OpenSSHServer, key: Path, *options: str) -> list[str]:
    return ["ssh", *SSH_OPTIONS, *options, "-i", str(key), "-p", str(server.port)]


# -- OpenSSH server ------------------------------------------------------------------------


def test_sshd_paramiko_publickey_and_sftp(
    sshd_server: OpenSSHServer, client_key: tuple[Path, str]
) -> None:
    key = paramiko.Ed25519Key.from_private_key_file(str(client_key[0]))
    with transport_to(sshd_server) as transport:
        host_key = transport.get_remote_server_key()
        assert sshd_server.host_key_fingerprints[host_key.get_name()] == sha256_fingerprint(
            host_key
        )
        assert transport.auth_publickey("root", key) == []
        assert transport.is_authenticated()
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        channel = sftp.get_channel()
        assert channel is not None
        channel.settimeout(10)
        assert isinstance(sftp.listdir("."), list)
        sftp.close()
    assert "Accepted publickey for root" in sshd_server.log


def test_sshd_exposes_both_host_keys(sshd_server: OpenSSHServer) -> None:
    assert set(sshd_server.host_key_fingerprints) == {"ssh-ed25519", "ssh-rsa"}
    assert all(fp.startswith("SHA256:") for fp in sshd_server.host_key_fingerprints.values())
    lines = sshd_server.known_hosts_lines()
    assert len(lines) == 2
    assert all(line.startswith(f"[127.0.0.1]:{sshd_server.port} ssh-") for line in lines)


def test_sshd_rejects_unknown_key(sshd_server: OpenSSHServer, tmp_path: Path) -> None:
    from .sshd import generate_client_key

    other_path, _ = generate_client_key(tmp_path / "other")
    other = paramiko.Ed25519Key.from_private_key_file(str(other_path))
    with transport_to(sshd_server) as transport, pytest.raises(paramiko.AuthenticationException):
        transport.auth_publickey("root", other)


def test_sshd_without_sftp_refuses_subsystem(
    sshd_factory: SshdFactory, client_key: tuple[Path, str]
) -> None:
    server = sshd_factory(authorized_keys=[client_key[1]], sftp=False)
    assert "Subsystem" not in server.config_path.read_text()
    key = paramiko.Ed25519Key.from_private_key_file(str(client_key[0]))
    with transport_to(server) as transport:
        transport.auth_publickey("root", key)
        started = time.monotonic()
        with pytest.raises((paramiko.SSHException, EOFError)):
            paramiko.SFTPClient.from_transport(transport)
        assert time.monotonic() - started < 15


def test_openssh_client_against_sshd(
    sshd_server: OpenSSHServer, client_key: tuple[Path, str], tmp_path: Path
) -> None:
    loose = ssh_argv(
        sshd_server,
        client_key[0],
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    )
    proc = subprocess.run(
        [*loose, "root@127.0.0.1", "true"], capture_output=True, text=True, timeout=15
    )
    assert proc.returncode == 0, proc.stderr + sshd_server.log

    # known_hosts_lines() is a valid known_hosts file for strict checking.
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(sshd_server.known_hosts_lines()) + "\n")
    strict = ssh_argv(
        sshd_server,
        client_key[0],
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
    )
    proc = subprocess.run(
        [*strict, "root@127.0.0.1", "echo", "ok"], capture_output=True, text=True, timeout=15
    )
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr


def test_sshd_extra_config_overrides_defaults(
    sshd_factory: SshdFactory, client_key: tuple[Path, str]
) -> None:
    server = sshd_factory(
        authorized_keys=[client_key[1]],
        extra_config=["PubkeyAuthentication no", "Match User nobody", "  X11Forwarding no"],
    )
    config = server.config_path.read_text().splitlines()
    assert "PubkeyAuthentication no" in config and "PubkeyAuthentication yes" not in config
    assert config[-2:] == ["Match User nobody", "  X11Forwarding no"]
    key = paramiko.Ed25519Key.from_private_key_file(str(client_key[0]))
    with transport_to(server) as transport, pytest.raises(paramiko.AuthenticationException):
        transport.auth_publickey("root", key)


def test_sshd_stop_cleans_up(client_key: tuple[Path, str]) -> None:
    server = OpenSSHServer(authorized_keys=[client_key[1]])
    with server:
        pid = server.pid
        directory = server.directory
        assert pid is not None
        # Leave a connection open so sshd has a per-connection child to clean up.
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.settimeout(5)
        assert sock.recv(64).startswith(b"SSH-2.0-")
        deadline = time.monotonic() + 5
        while not _descendants(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        children = _descendants(pid)
        assert children
    sock.close()
    assert not directory.exists()
    assert "Server listening on 127.0.0.1" in server.log
    for p in [pid, *children]:
        assert not Path(f"/proc/{p}").exists() or "Z" in _state(p)
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rfind(")") + 2 :].split()[0]


# -- network namespaces ------------------------------------------------------------------


def test_netns_has_only_loopback(netns: NetNamespace) -> None:
    proc = netns.run(["ip", "-o", "addr"], timeout=10, check=True)
    addresses = {line.split()[3] for line in proc.stdout.splitlines()}
    assert addresses == {"127.0.0.1/8", "::1/128"}
    assert Path(f"/run/netns/{netns.name}").exists()
    assert netns.name.startswith("pfl-")


def test_netns_drop_and_reject(netns: NetNamespace) -> None:
    with netns.start_tcp_listener(send=b"hello\n") as listener:
        port = listener.port
        assert netns.tcp_connect("127.0.0.1", port, timeout=1) == "connected"

        netns.drop_tcp_port(port)
        started = time.monotonic()
        assert netns.tcp_connect("127.0.0.1", port, timeout=1) == "timeout"
        assert 0.9 < time.monotonic() - started < 3

        netns.reject_tcp_port(port, "tcp reset")  # replaces the drop
        assert netns.tcp_connect("127.0.0.1", port, timeout=1) == "refused"

        netns.reject_tcp_port(port, "icmpx type host-unreachable")
        assert netns.tcp_connect("127.0.0.1", port, timeout=1) == "unreachable"

        netns.allow_tcp_port(port)
        assert netns.tcp_connect("127.0.0.1", port, timeout=1) == "connected"


CLIENT = """
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("connected", s.recv(16).decode().strip())
except TimeoutError:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
"""


def test_netns_subprocess_client(netns: NetNamespace) -> None:
    with netns.start_tcp_listener(send=b"hello\n") as listener:
        port = str(listener.port)
        assert netns.python(CLIENT, port, timeout=10).stdout == "connected hello\n"
        netns.drop_tcp_port(listener.port)
        assert netns.python(CLIENT, port, timeout=10).stdout == "timeout\n"
        netns.reject_tcp_port(listener.port, "tcp reset")
        assert netns.python(CLIENT, port, timeout=10).stdout == "refused\n"


def test_netns_is_isolated_from_host(netns: NetNamespace) -> None:
    # A listener on the host's loopback is not visible inside the namespace.
    with socket.socket() as host_listener:
        host_listener.bind(("127.0.0.1", 0))
        host_listener.listen(1)
        port = host_listener.getsockname()[1]
        assert netns.tcp_connect("127.0.0.1", port, timeout=1) == "refused"
        with netns.socket() as sock:  # a socket created inside, used from this thread
            sock.settimeout(1)
            with pytest.raises(ConnectionRefusedError):
                sock.connect(("127.0.0.1", port))


def test_netns_add_nft_rules(netns: NetNamespace) -> None:
    with netns.start_tcp_listener() as listener:
        # nft 1.0.6 needs the ';' between the two closing braces on one line.
        netns.add_nft_rules(
            "table inet t { chain input { type filter hook input priority 0; "
            f"tcp dport {listener.port} drop; }}; }}\n"
        )
        assert "table inet t" in netns.nft_ruleset()
        assert netns.tcp_connect("127.0.0.1", listener.port, timeout=1) == "timeout"
    with pytest.raises(RuntimeError, match="nft -f failed"):
        netns.add_nft_rules("this is not nft\n")
    with pytest.raises(ValueError):
        netns.reject_tcp_port(22, "tcp reset; drop")


def test_netns_write_etc_hosts(netns: NetNamespace) -> None:
    netns.write_etc("hosts", "127.0.0.1 sftp.preflight.test\n::1 ip6.preflight.test\n")
    code = "import socket; print(socket.gethostbyname('sftp.preflight.test'))"
    assert netns.python(code, timeout=10, check=True).stdout == "127.0.0.1\n"
    host_hosts = Path("/etc/hosts").read_text()
    assert "preflight.test" not in host_hosts


def test_netns_teardown_removes_everything() -> None:
    from .conftest import require
    from .netns import netns_available

    require(netns_available())
    with NetNamespace() as ns:
        ns.write_etc("resolv.conf", "nameserver 127.0.0.1\n")
        listener = ns.start_tcp_listener()
        name = ns.name
        assert Path(f"/etc/netns/{name}").is_dir()
    assert listener.proc.poll() is not None
    assert not Path(f"/run/netns/{name}").exists()
    assert not Path(f"/etc/netns/{name}").exists()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    assert name not in listed.stdout


def test_sshd_inside_netns(
    netns: NetNamespace, sshd_factory: SshdFactory, client_key: tuple[Path, str]
) -> None:
    server = sshd_factory(authorized_keys=[client_key[1]], netns=netns)
    loose = ssh_argv(
        server,
        client_key[0],
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    )
    proc = netns.run([*loose, "root@127.0.0.1", "echo", "inside"], timeout=15)
    assert (proc.returncode, proc.stdout) == (0, "inside\n"), proc.stderr

    # The same port is dropped by the namespace's firewall: ssh's connect times out.
    netns.drop_tcp_port(server.port)
    drop = [a if a != "ConnectTimeout=5" else "ConnectTimeout=1" for a in loose]
    started = time.monotonic()
    proc = netns.run([*drop, "root@127.0.0.1", "true"], timeout=15)
    assert proc.returncode == 255
    assert "timed out" in proc.stderr
    assert time.monotonic() - started < 10


def test_python_runs_inside_netns(netns: NetNamespace) -> None:
    # The preflight CLI will be run like this: this interpreter works inside the namespace.
    proc = netns.run(
        [sys.executable, "-c", "import sys; print(sys.version_info[:2] >= (3, 11))"],
        timeout=15,
        check=True,
    )
    assert proc.stdout == "True\n"
