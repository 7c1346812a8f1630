"""Tests for ``preflight.lab``: each lab server proven to behave as its name says.

Only plain sockets and paramiko clients are used (no preflight code), every socket operation has
a timeout, and every server is checked to leave no file descriptors or threads behind on stop.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pytest

from preflight.lab import (
    CloseOnAccept,
    DroppingPort,
    Greeter,
    KexStall,
    LabServer,
    LatencyProxy,
    RefusedPort,
    SFTPServer,
    Tarpit,
    ThreadedServer,
    Trickle,
    generate_ecdsa,
    generate_ed25519,
    generate_rsa,
    kexinit_packet,
    private_key_text,
)
from preflight.lab.sftp import LOG_CHANNEL

CLIENT_LOG = LOG_CHANNEL + ".client"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no ::1")),
]


# -- helpers ------------------------------------------------------------------------------------


def connect(server: LabServer, timeout: float = 3.0) -> socket.socket:
    return socket.create_connection(server.address, timeout=timeout)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return data


def recv_until_eof(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError("no EOF")


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def new_transport(server: LabServer, timeout: float = 3.0) -> paramiko.Transport:
    transport = paramiko.Transport(connect(server, timeout))
    transport.set_log_channel(CLIENT_LOG)
    return transport


def close_transport(transport: paramiko.Transport) -> None:
    transport.close()
    if transport.ident is not None:
        transport.join(5)
    assert not transport.is_alive()


@contextmanager
def ssh(server: SFTPServer) -> Iterator[paramiko.Transport]:
    """A paramiko client transport to ``server`` with key exchange done, closed on exit."""
    transport = new_transport(server)
    try:
        transport.start_client(timeout=5)
        yield transport
    finally:
        close_transport(transport)


@contextmanager
def sftp_session(
    server: SFTPServer, user: str = "lab", password: str = "lab"
) -> Iterator[paramiko.SFTPClient]:
    with ssh(server) as transport:
        transport.auth_password(user, password, fallback=False)
        channel = transport.open_session(timeout=5)
        channel.settimeout(5)
        channel.invoke_subsystem("sftp")
        client = paramiko.SFTPClient(channel)
        try:
            yield client
        finally:
            client.close()


@contextmanager
def close_after(transport: paramiko.Transport, seconds: float) -> Iterator[None]:
    """Close ``transport`` from another thread after ``seconds``: the universal backstop."""
    timer = threading.Timer(seconds, transport.close)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join(5)


def parse_packet(data: bytes) -> tuple[int, bytes]:
    """Check RFC 4253 binary packet framing; return (padding length, payload)."""
    (length,) = struct.unpack(">I", data[:4])
    padding = data[4]
    assert len(data) == 4 + length
    assert (4 + length) % 8 == 0
    assert padding >= 4
    return padding, data[5 : 4 + length - padding]


def parse_kexinit(payload: bytes) -> list[list[str]]:
    assert payload[0] == 20
    offset = 17
    lists = []
    for _ in range(10):
        (n,) = struct.unpack(">I", payload[offset : offset + 4])
        text = payload[offset + 4 : offset + 4 + n].decode("ascii")
        lists.append(text.split(",") if text else [])
        offset += 4 + n
    assert payload[offset:] == b"\x00\x00\x00\x00\x00"
    return lists


# -- the life cycle -----------------------------------------------------------------------------


def test_non_loopback_address_refused() -> None:
    for host in ("0.0.0.0", "192.0.2.1", "example.com", "::"):
        with pytest.raises(ValueError):
            Tarpit(host=host)


def test_port_known_only_while_running() -> None:
    server = Tarpit()
    with pytest.raises(RuntimeError):
        _ = server.port
    with server:
        was_running = server.running
        assert server.port > 0
        assert server.address == ("127.0.0.1", server.port)
        assert server.start() is server  # starting twice is harmless
    assert was_running
    assert not server.running
    server.stop()  # so is stopping twice
    with server:  # and a stopped server can start again
        connect(server).close()


# -- plain-socket servers -----------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_dropping_port_connect_times_out(host: str) -> None:
    with DroppingPort(host=host) as server:
        assert server.fillers
        client = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        client.settimeout(1.0)
        started = time.monotonic()
        with client, pytest.raises(TimeoutError):
            client.connect(server.address)
        assert time.monotonic() - started >= 0.9


def test_refused_port() -> None:
    with RefusedPort() as server:
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            connect(server, timeout=2).close()
        assert time.monotonic() - started < 0.5
        # The port stays taken while the server runs.
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(server.address)


@pytest.mark.parametrize("host", HOSTS)
def test_tarpit_accepts_and_stays_silent(host: str) -> None:
    with Tarpit(host=host) as server:
        client = connect(server)
        client.settimeout(0.5)
        client.sendall(b"SSH-2.0-client\r\n")
        with pytest.raises(TimeoutError):
            client.recv(1)
        assert server.accepted == 1
    # stop() closed the connection: EOF.
    client.settimeout(2)
    with client:
        assert client.recv(1) == b""


def test_trickle_sends_one_byte_per_interval() -> None:
    data = b"SSH-2.0-Slow\r\n"
    with Trickle(data, interval=0.05) as server, connect(server) as client:
        received = b""
        arrivals = []
        while len(received) < len(data):
            chunk = client.recv(100)
            assert len(chunk) == 1
            received += chunk
            arrivals.append(time.monotonic())
        assert received == data
        assert arrivals[-1] - arrivals[0] >= 0.04 * (len(data) - 1)
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.recv(1)


def test_trickle_default_is_slow() -> None:
    with Trickle() as server, connect(server) as client:
        assert client.recv(100) == b"S"
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(100)


GREETINGS = [
    b"HTTP/1.1 400 Bad Request\r\n\r\n",
    b"220 mail.example.com ESMTP\r\n",
    b"SSH-1.5-OldServer\r\n",
    b"Welcome!\r\nAuthorised use only\r\nSSH-2.0-OpenSSH_9.6\r\n",
    b"\x1b[31mred\x1b[0m \x00\x07\xff\xfe\xc3(\r\n",
    b"A" * 65536,
]


@pytest.mark.parametrize("greeting", GREETINGS, ids=lambda g: repr(g[:12]))
def test_greeter_sends_greeting_then_silence(greeting: bytes) -> None:
    with Greeter(greeting) as server, connect(server) as client:
        assert recv_exactly(client, len(greeting)) == greeting
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.recv(1)


def test_greeter_then_close() -> None:
    greeting = b"SSH-2.0-Bye\r\n"
    with Greeter(greeting, then="close") as server, connect(server) as client:
        client.sendall(b"SSH-2.0-client\r\n")  # unread input must not turn the FIN into an RST
        assert recv_until_eof(client) == greeting


def test_greeter_then_reset() -> None:
    greeting = b"SSH-2.0-Abort\r\n"
    with Greeter(greeting, then="reset") as server, connect(server) as client:
        assert recv_exactly(client, len(greeting)) == greeting
        with pytest.raises(ConnectionResetError):
            client.recv(1)


def test_greeter_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError):
        Greeter(b"x", then="explode")  # type: ignore[arg-type]


def test_close_on_accept_eof() -> None:
    with CloseOnAccept() as server, connect(server) as client:
        client.sendall(b"SSH-2.0-client\r\n")
        assert recv_until_eof(client) == b""


def test_close_on_accept_reset() -> None:
    # The RST may even overtake the client's connect() on loopback: either way, a reset.
    with (
        CloseOnAccept(reset=True) as server,
        pytest.raises(ConnectionResetError),
        connect(server) as client,
    ):
        client.recv(1)


def test_kexinit_packet_is_well_formed() -> None:
    for _ in range(20):  # random padding: check several
        _padding, payload = parse_packet(kexinit_packet())
        lists = parse_kexinit(payload)
        assert lists[0] == ["curve25519-sha256", "curve25519-sha256@libssh.org"]
        assert lists[1] == ["ssh-ed25519"]
        assert lists[2] == lists[3] == ["aes128-ctr"]
        assert lists[4] == lists[5] == ["hmac-sha2-256"]
        assert lists[6] == lists[7] == ["none"]
        assert lists[8] == lists[9] == []


def test_kex_stall_protocol() -> None:
    with KexStall() as server, connect(server) as client:
        banner = client.recv(255)
        assert banner.startswith(b"SSH-2.0-") and banner.endswith(b"\r\n")
        client.sendall(b"SSH-2.0-rawclient\r\n")
        header = recv_exactly(client, 4)
        (length,) = struct.unpack(">I", header)
        packet = header + recv_exactly(client, length)
        parse_kexinit(parse_packet(packet)[1])
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.recv(1)
        assert server.client_banners == [b"SSH-2.0-rawclient"]


def test_kex_stall_hangs_paramiko_after_kexinit() -> None:
    with KexStall() as server:
        transport = new_transport(server)
        started = time.monotonic()
        try:
            # start_client's timeout expiring is silent; the failure shows up afterwards.
            transport.start_client(timeout=1)
            assert 0.9 <= time.monotonic() - started < 3
            assert transport.is_active()
            assert transport.remote_version.startswith("SSH-2.0-OpenSSH_9.6")
            with pytest.raises(paramiko.SSHException, match="No existing session"):
                transport.get_remote_server_key()
        finally:
            close_transport(transport)


def test_kex_stall_then_close() -> None:
    with KexStall(then="close") as server:
        transport = new_transport(server)
        started = time.monotonic()
        try:
            with pytest.raises((paramiko.SSHException, EOFError)):
                transport.start_client(timeout=3)
            assert time.monotonic() - started < 2
        finally:
            close_transport(transport)


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generate", "name"),
    [
        (generate_ed25519, "ssh-ed25519"),
        (lambda: generate_rsa(1024), "ssh-rsa"),
        (generate_ecdsa, "ecdsa-sha2-nistp256"),
    ],
)
def test_private_key_text_round_trip(generate: Callable[[], paramiko.PKey], name: str) -> None:
    key = generate()
    assert key.get_name() == name
    assert key.can_sign()
    text = private_key_text(key)
    assert text.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert type(key).from_private_key(io.StringIO(text)).asbytes() == key.asbytes()

    encrypted = private_key_text(key, passphrase="s3cret")
    assert encrypted.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert encrypted != text
    loaded = type(key).from_private_key(io.StringIO(encrypted), password="s3cret")
    assert loaded.asbytes() == key.asbytes()
    with pytest.raises(paramiko.PasswordRequiredException):
        type(key).from_private_key(io.StringIO(encrypted))
    with pytest.raises(paramiko.SSHException):
        type(key).from_private_key(io.StringIO(encrypted), password="wrong")


def test_private_key_text_needs_private_part() -> None:
    public = paramiko.Ed25519Key(data=generate_ed25519().asbytes())
    with pytest.raises(ValueError):
        private_key_text(public)


# -- the SFTP server ----------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_sftp_password_login_and_host_key(host: str) -> None:
    with SFTPServer(host=host) as server:
        assert server.host_key.get_name() == "ssh-ed25519"
        line = server.known_hosts_line()
        assert line.startswith(f"[{host}]:{server.port} ssh-ed25519 AAAA")
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line)
        assert entry is not None
        assert entry.hostnames == [f"[{host}]:{server.port}"]
        assert entry.key.asbytes() == server.host_key.asbytes()

        with sftp_session(server) as sftp:
            channel = sftp.get_channel()
            assert channel is not None
            remote_key = channel.get_transport().get_remote_server_key()
            assert remote_key.asbytes() == server.host_key.asbytes()
            assert server.fingerprint == remote_key.fingerprint
            assert server.fingerprint.startswith("SHA256:")
            assert not server.fingerprint.endswith("=")
            assert sorted(sftp.listdir(".")) == ["data.csv", "hello.txt", "upload"]
            with sftp.open("hello.txt") as f:
                assert f.read() == b"hello from the preflight lab\n"


def test_known_hosts_line_port_22_is_plain() -> None:
    server = SFTPServer(host_key=generate_ed25519())
    line = server.known_hosts_line(host="127.0.0.1", port=22)
    assert line == f"127.0.0.1 ssh-ed25519 {server.host_key.get_base64()}"


def test_sftp_concurrent_sessions() -> None:
    with SFTPServer() as server, sftp_session(server) as one, sftp_session(server) as two:
        with one.open("upload/from-one.txt", "w") as f:
            f.write(b"1")
        assert two.listdir("upload") == ["from-one.txt"]
        assert server.accepted == 2


def test_stop_closes_every_connection() -> None:
    with Tarpit() as server:
        clients = [connect(server) for _ in range(5)]
        assert wait_for(lambda: server.accepted == 5)
    for client in clients:
        with client:
            assert client.recv(1) == b""


def test_sftp_custom_host_key() -> None:
    key = generate_ecdsa()
    with SFTPServer(host_key=key) as server, ssh(server) as transport:
        assert transport.get_remote_server_key().asbytes() == key.asbytes()
        assert server.known_hosts_line().split()[1] == "ecdsa-sha2-nistp256"


def test_sftp_temporary_root_removed_on_stop() -> None:
    server = SFTPServer()
    with server:
        root = server.root
        assert (Path(root) / "upload").is_dir()
    assert not os.path.exists(root)


def test_sftp_file_operations(tmp_path: Path) -> None:
    (tmp_path / "existing.txt").write_bytes(b"12345")
    with SFTPServer(root=str(tmp_path)) as server, sftp_session(server) as sftp:
        assert sftp.normalize(".") == "/"
        assert sftp.stat("existing.txt").st_size == 5
        assert sftp.lstat("/existing.txt").st_size == 5

        with sftp.open("/new.txt", "w") as f:
            f.write(b"written over sftp")
        assert (tmp_path / "new.txt").read_bytes() == b"written over sftp"
        with sftp.open("new.txt", "a") as f:
            f.write(b"!")
        with sftp.open("new.txt") as f:
            assert f.read() == b"written over sftp!"
            assert f.stat().st_size == 18

        sftp.mkdir("dir")
        assert (tmp_path / "dir").is_dir()
        sftp.rename("new.txt", "dir/moved.txt")
        assert sftp.listdir("dir") == ["moved.txt"]
        with pytest.raises(OSError):  # v3 rename does not overwrite
            sftp.rename("existing.txt", "dir/moved.txt")
        sftp.posix_rename("existing.txt", "dir/moved.txt")
        assert (tmp_path / "dir" / "moved.txt").read_bytes() == b"12345"
        sftp.remove("dir/moved.txt")
        sftp.rmdir("dir")
        assert sorted(os.listdir(tmp_path)) == []

        with pytest.raises(FileNotFoundError):
            sftp.stat("missing")
        with pytest.raises(FileNotFoundError):
            sftp.listdir("missing")
        with pytest.raises(FileNotFoundError):
            sftp.open("missing/file.txt", "w")
        with pytest.raises(FileNotFoundError):
            sftp.remove("missing")


def test_sftp_confined_to_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (root / "inside.txt").write_bytes(b"inside")
    (root / "escape").symlink_to(outside)
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    (root / "ok-link.txt").symlink_to("inside.txt")

    with SFTPServer(root=str(root)) as server, sftp_session(server) as sftp:
        assert sorted(sftp.listdir("../../..")) == sorted(os.listdir(root))
        assert sftp.listdir("/..") == sftp.listdir("/")
        with sftp.open("../../inside.txt") as f:
            assert f.read() == b"inside"
        with sftp.open("ok-link.txt") as f:
            assert f.read() == b"inside"
        with pytest.raises(PermissionError):
            sftp.listdir("escape")
        with pytest.raises(PermissionError):
            sftp.open("escape/secret.txt")
        with pytest.raises(PermissionError):
            sftp.open("secret-link.txt")
        with pytest.raises(PermissionError):
            sftp.stat("secret-link.txt")
        with pytest.raises(PermissionError):
            sftp.open("escape/planted.txt", "w")
        with pytest.raises(PermissionError):
            sftp.mkdir("escape/newdir")
        with pytest.raises(PermissionError):
            sftp.rmdir("/")
        # The link itself may be inspected and removed; its target stays untouched.
        assert sftp.lstat("secret-link.txt").st_size == len(str(outside / "secret.txt"))
        sftp.remove("secret-link.txt")
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_sftp_unlistable_path() -> None:
    with SFTPServer(unlistable=["upload", "/"]) as server, sftp_session(server) as sftp:
        with pytest.raises(PermissionError):
            sftp.listdir("/upload")
        with pytest.raises(PermissionError):
            sftp.listdir(".")
        assert sftp.stat("upload").st_mode is not None
        with sftp.open("upload/file.txt", "w") as f:
            f.write(b"still writable")


def test_sftp_wrong_password() -> None:
    with SFTPServer(users={"deploy": "right"}) as server, ssh(server) as transport:
        with pytest.raises(paramiko.AuthenticationException) as info:
            transport.auth_password("deploy", "wrong", fallback=False)
        assert not isinstance(info.value, paramiko.BadAuthenticationType)
        assert not transport.is_authenticated()
    with (
        SFTPServer(users={"deploy": "right"}) as server,
        ssh(server) as transport,
        pytest.raises(paramiko.AuthenticationException),
    ):
        transport.auth_password("nobody", "right", fallback=False)


def test_sftp_public_key_auth() -> None:
    key = generate_ed25519()
    other = generate_ecdsa()
    server = SFTPServer(authorized_keys={"ci": [generate_rsa(1024), key]})
    with server:
        with ssh(server) as transport:
            transport.auth_publickey("ci", key)
            assert transport.is_authenticated()
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            assert "hello.txt" in sftp.listdir(".")
            sftp.close()
        with ssh(server) as transport, pytest.raises(paramiko.AuthenticationException):
            transport.auth_publickey("ci", other)
        # Key text as a CI variable holds it, passphrase-protected, loads and logs in.
        text = private_key_text(key, passphrase="pp")
        loaded = paramiko.Ed25519Key.from_private_key(io.StringIO(text), password="pp")
        with ssh(server) as transport:
            transport.auth_publickey("ci", loaded)
            assert transport.is_authenticated()


def test_sftp_keys_only_server_rejects_password_method() -> None:
    server = SFTPServer(authorized_keys={"ci": [generate_ed25519()]})
    assert server.users == {}
    with server, ssh(server) as transport:
        with pytest.raises(paramiko.BadAuthenticationType) as info:
            transport.auth_password("ci", "anything", fallback=False)
        assert info.value.allowed_types == ["publickey"]


def test_sftp_allowed_auths_per_user() -> None:
    server = SFTPServer(users={"pw": "x"}, authorized_keys={"key": [generate_ed25519()]})
    assert server.allowed_auths("pw") == ["password"]
    assert server.allowed_auths("key") == ["publickey"]
    assert server.allowed_auths("stranger") == ["password", "publickey"]
    with server, ssh(server) as transport:
        with pytest.raises(paramiko.BadAuthenticationType) as info:
            transport.auth_password("key", "x", fallback=False)
        assert info.value.allowed_types == ["publickey"]
    with server, ssh(server) as transport:
        with pytest.raises(paramiko.BadAuthenticationType) as info:
            transport.auth_none("pw")
        assert info.value.allowed_types == ["password"]


def test_sftp_subsystem_disabled() -> None:
    with SFTPServer(subsystem=False) as server, ssh(server) as transport:
        transport.auth_password("lab", "lab", fallback=False)
        channel = transport.open_session(timeout=5)
        channel.settimeout(5)
        started = time.monotonic()
        with pytest.raises(paramiko.SSHException):
            channel.invoke_subsystem("sftp")
        assert time.monotonic() - started < 2


def test_sftp_stall_auth() -> None:
    with SFTPServer(stall="auth") as server, ssh(server) as transport:
        transport.auth_timeout = 1
        started = time.monotonic()
        with pytest.raises(paramiko.AuthenticationException):
            transport.auth_password("lab", "lab", fallback=False)
        assert 0.9 <= time.monotonic() - started < 3
        assert not transport.is_authenticated()
        # stop() unblocks the stalled check_auth_password promptly.
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2


def test_sftp_stall_subsystem() -> None:
    with SFTPServer(stall="subsystem") as server, ssh(server) as transport:
        transport.auth_password("lab", "lab", fallback=False)
        channel = transport.open_session(timeout=5)
        started = time.monotonic()
        # invoke_subsystem has no timeout at all: only closing the transport ends it.
        with close_after(transport, 1.0), pytest.raises((paramiko.SSHException, EOFError)):
            channel.invoke_subsystem("sftp")
        assert 0.9 <= time.monotonic() - started < 3


def test_sftp_stall_version() -> None:
    with SFTPServer(stall="version") as server, ssh(server) as transport:
        transport.auth_password("lab", "lab", fallback=False)
        channel = transport.open_session(timeout=5)
        channel.settimeout(1)
        channel.invoke_subsystem("sftp")  # accepted...
        started = time.monotonic()
        with pytest.raises((TimeoutError, paramiko.SSHException, EOFError)):
            paramiko.SFTPClient(channel)  # ...but VERSION never comes
        assert 0.9 <= time.monotonic() - started < 3


def test_sftp_stall_listdir() -> None:
    with SFTPServer(stall="listdir") as server, ssh(server) as transport:
        transport.auth_password("lab", "lab", fallback=False)
        channel = transport.open_session(timeout=5)
        channel.settimeout(1)
        channel.invoke_subsystem("sftp")
        sftp = paramiko.SFTPClient(channel)
        assert sftp.stat("hello.txt").st_size == len(b"hello from the preflight lab\n")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            sftp.listdir(".")
        assert 0.9 <= time.monotonic() - started < 3


def test_sftp_stall_write_creates_the_file_and_never_acknowledges_its_data() -> None:
    with SFTPServer(stall="write") as server, ssh(server) as transport:
        transport.auth_password("lab", "lab", fallback=False)
        channel = transport.open_session(timeout=5)
        channel.settimeout(1)
        channel.invoke_subsystem("sftp")
        sftp = paramiko.SFTPClient(channel)
        handle = sftp.open("upload/x.tmp", "wb")
        assert os.path.exists(os.path.join(server.root, "upload", "x.tmp"))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            handle.write(b"data")
            handle.flush()
        assert 0.9 <= time.monotonic() - started < 3


def test_sftp_upload_faults_slow_short_and_kept() -> None:
    options = {"write_delay": 0.2, "short_writes": True, "keep_files": True}
    with SFTPServer(**options) as server, ssh(server) as transport:
        transport.auth_password("lab", "lab", fallback=False)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        started = time.monotonic()
        with sftp.open("upload/x.tmp", "wb") as handle:
            handle.write(b"12345678")
        assert time.monotonic() - started >= 0.2  # the write waited for the "disk"
        assert sftp.stat("upload/x.tmp").st_size == 4  # half of what was acknowledged
        with pytest.raises(PermissionError):
            sftp.remove("upload/x.tmp")


def test_sftp_rejects_unknown_stall() -> None:
    with pytest.raises(ValueError):
        SFTPServer(stall="kex")  # type: ignore[arg-type]


def test_sftp_paramiko_logging_is_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    # A client that sends garbage after its banner makes the server transport fail and log.
    with SFTPServer() as server, connect(server) as client:
        client.sendall(b"SSH-2.0-garbage\r\n" + b"\xff" * 64)
        client.settimeout(3)
        recv_until_eof(client)
    _out, err = capfd.readouterr()
    assert "Traceback" not in err
    assert err == ""


# -- no leaks -----------------------------------------------------------------------------------


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _open_plain(server: LabServer) -> Callable[[], None]:
    client = connect(server)
    assert isinstance(server, ThreadedServer)
    assert wait_for(lambda: server.accepted >= 1)
    return client.close


def _open_kex(server: LabServer) -> Callable[[], None]:
    transport = new_transport(server)
    transport.start_client(timeout=0.5)
    assert transport.is_active()
    return lambda: close_transport(transport)


def _open_sftp(stall: str | None) -> Callable[[LabServer], Callable[[], None]]:
    def open_session(server: LabServer) -> Callable[[], None]:
        assert isinstance(server, SFTPServer)
        transport = new_transport(server)
        transport.start_client(timeout=5)
        if stall == "auth":
            transport.auth_timeout = 0.3
            with pytest.raises(paramiko.AuthenticationException):
                transport.auth_password("lab", "lab", fallback=False)
            return lambda: close_transport(transport)
        transport.auth_password("lab", "lab", fallback=False)
        channel = transport.open_session(timeout=5)
        channel.settimeout(0.3)
        if stall == "subsystem":
            with close_after(transport, 0.3), pytest.raises((paramiko.SSHException, EOFError)):
                channel.invoke_subsystem("sftp")
            return lambda: close_transport(transport)
        channel.invoke_subsystem("sftp")
        if stall == "version":
            with pytest.raises((TimeoutError, paramiko.SSHException, EOFError)):
                paramiko.SFTPClient(channel)
            return lambda: close_transport(transport)
        sftp = paramiko.SFTPClient(channel)
        handle = sftp.open("upload/open.txt", "w")  # an open server-side file, too
        handle.write(b"x")
        if stall == "listdir":
            with pytest.raises(TimeoutError):
                sftp.listdir(".")
        return lambda: close_transport(transport)

    return open_session


def _no_connection(server: LabServer) -> Callable[[], None]:
    return lambda: None


def _dropped_connection(server: LabServer) -> Callable[[], None]:
    client = socket.socket()
    client.settimeout(0.2)
    with client, pytest.raises(TimeoutError):
        client.connect(server.address)
    return lambda: None


LEAK_CASES: list[tuple[str, Callable[[], LabServer], Callable[[LabServer], Callable[[], None]]]] = [
    ("dropping", DroppingPort, _dropped_connection),
    ("refused", RefusedPort, _no_connection),
    ("tarpit", Tarpit, _open_plain),
    ("trickle", Trickle, _open_plain),
    ("greeter-silence", lambda: Greeter(b"HTTP/1.1 400 Bad Request\r\n\r\n"), _open_plain),
    ("greeter-close", lambda: Greeter(b"SSH-2.0-x\r\n", then="close"), _open_plain),
    ("greeter-reset", lambda: Greeter(b"SSH-2.0-x\r\n", then="reset"), _open_plain),
    ("greeter-64k", lambda: Greeter(b"A" * 65536), _open_plain),
    ("close-on-accept", CloseOnAccept, _open_plain),
    ("close-on-accept-reset", lambda: CloseOnAccept(reset=True), _open_plain),
    ("kex-stall", KexStall, _open_kex),
    ("kex-stall-close", lambda: KexStall(then="close"), _open_plain),
    ("sftp", SFTPServer, _open_sftp(None)),
    ("sftp-no-subsystem", lambda: SFTPServer(subsystem=False), _open_plain),
    ("sftp-stall-auth", lambda: SFTPServer(stall="auth"), _open_sftp("auth")),
    ("sftp-stall-subsystem", lambda: SFTPServer(stall="subsystem"), _open_sftp("subsystem")),
    ("sftp-stall-version", lambda: SFTPServer(stall="version"), _open_sftp("version")),
    ("sftp-stall-listdir", lambda: SFTPServer(stall="listdir"), _open_sftp("listdir")),
]


@pytest.fixture(scope="module")
def warmed_up() -> None:
    """Run one full SFTP session first so lazy imports and caches do not count as leaks."""
    with SFTPServer() as server, sftp_session(server) as sftp:
        sftp.listdir(".")


@pytest.mark.parametrize(
    ("make", "open_connection"),
    [pytest.param(make, open_, id=name) for name, make, open_ in LEAK_CASES],
)
def test_stop_leaves_no_fds_or_threads(
    warmed_up: None,
    make: Callable[[], LabServer],
    open_connection: Callable[[LabServer], Callable[[], None]],
) -> None:
    fds = _fds()
    threads = threading.active_count()
    thread_set = set(threading.enumerate())
    server = make().start()
    close_client = open_connection(server)
    started = time.monotonic()
    server.stop()  # with the connection (and any stall) still open
    assert time.monotonic() - started < 2.5
    close_client()
    # Compare identities as well as counts, so that a thread or descriptor left over by some other
    # test finishing meanwhile cannot hide (or fake) a leak.
    assert wait_for(lambda: not set(threading.enumerate()) - thread_set, timeout=2), [
        t.name for t in set(threading.enumerate()) - thread_set
    ]
    assert threading.active_count() <= threads
    after = _fds()
    assert not after - fds, sorted(after - fds)
    assert len(after) <= len(fds)


def test_latency_proxy_delays_each_direction() -> None:
    with Greeter(b"SSH-2.0-Far\r\n") as far, LatencyProxy(far.address, delay=0.3) as proxy:
        started = time.monotonic()
        with connect(proxy) as client:
            assert recv_exactly(client, 13) == b"SSH-2.0-Far\r\n"
        assert 0.3 <= time.monotonic() - started < 2.0
