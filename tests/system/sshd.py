"""A real OpenSSH ``sshd`` for system tests: the reference server (DESIGN.md §9).

:class:`OpenSSHServer` starts ``/usr/sbin/sshd -D -e -f CONFIG`` in the foreground on
``127.0.0.1`` and a free high port, with everything it needs in a private temporary
directory: its own host keys (ed25519 and rsa), its own ``sshd_config``, its own
``authorized_keys`` and its PidFile. Nothing outside that directory is touched except the
privilege-separation directory ``/run/sshd``, which sshd insists on and which is created
(mode 0755) when missing.

Optionally the server runs inside a :class:`netns.NetNamespace`; it then
listens on the namespace's own loopback and is reachable only from inside it.

Usage::

    key_path, key_line = generate_client_key(tmp_path)
    with OpenSSHServer(authorized_keys=[key_line]) as server:
        ...  # server.host, server.port, server.host_key_fingerprints, server.log

Root is required (the tests log in as ``root``, and sshd refuses to run unprivileged with
privilege separation); :func:`sshd_available` says whether this machine qualifies.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .netns import NetNamespace

__all__ = [
    "SSHD",
    "SSH_KEYGEN",
    "OpenSSHServer",
    "generate_client_key",
    "openssh_version",
    "sshd_available",
]

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
PRIVSEP_DIR = Path("/run/sshd")

#: Host key types generated for every server (ssh-keygen ``-t`` values).
HOST_KEY_TYPES: tuple[str, ...] = ("ed25519", "rsa")

_T = TypeVar("_T")

# Phrases sshd prints when its listening socket cannot be bound (port stolen between our
# probe and sshd's bind): the start is then retried on another port.
_BIND_ERRORS = ("Bind to port", "Cannot bind any address", "Address already in use")


def _run(argv: Sequence[str], *, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a short helper command, capturing text output; never unbounded."""
    return subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@functools.cache
def openssh_version() -> tuple[int, int] | None:
    """Return the installed sshd's ``(major, minor)`` version, or None if unknown."""
    if not os.path.exists(SSHD):
        return None
    try:
        # OpenSSH >= 9.x prints its version for -V; older ones print it in the usage text.
        proc = _run([SSHD, "-V"], timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", proc.stdout + proc.stderr)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _root_account_locked() -> bool:
    """True if root's password field marks the account locked (``!``...).

    With ``UsePAM no`` sshd refuses *every* login, public key included, to a locked account
    ("User root not allowed because account is locked"). ``*`` (no password) is fine.
    """
    try:
        for line in Path("/etc/shadow").read_text(errors="replace").splitlines():
            fields = line.split(":")
            if fields and fields[0] == "root" and len(fields) > 1:
                return fields[1].startswith("!") or fields[1].startswith("*LK*")
    except OSError:
        return False
    return False


def sshd_available() -> str | None:
    """Return None if a real OpenSSH sshd can run here for the tests, else the reason why not."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a real sshd needs root (tests log in as root and sshd needs privilege separation)"
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} not found (apt-get install openssh-server)"
    if not os.access(SSH_KEYGEN, os.X_OK):
        return "ssh-keygen not found (apt-get install openssh-client)"
    if _root_account_locked():
        return (
            "root's account is locked in /etc/shadow ('!'): with UsePAM no, sshd refuses "
            "every login to it (fix: usermod -p '*' root)"
        )
    return None


def generate_client_key(
    directory: str | os.PathLike[str],
    kind: str = "ed25519",
    *,
    passphrase: str = "",
    name: str | None = None,
    comment: str = "preflight-test",
) -> tuple[Path, str]:
    """Generate a client key pair with ssh-keygen in *directory*.

    Returns ``(private_key_path, public_key_line)``; the public line (``ssh-ed25519 AAAA…
    comment``) is ready for ``authorized_keys``. The private key is in OpenSSH format with
    mode 0600 (OpenSSH's ``ssh -i`` refuses anything looser).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"id_{kind}")
    if path.exists():
        raise FileExistsError(path)
    argv = [SSH_KEYGEN, "-q", "-N", passphrase, "-t", kind, "-C", comment, "-f", str(path)]
    if kind == "rsa":
        argv[1:1] = ["-b", "2048"]  # fast to generate, still accepted by OpenSSH
    proc = _run(argv, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"ssh-keygen -t {kind} failed: {proc.stderr.strip()}")
    path.chmod(0o600)
    return path, Path(f"{path}.pub").read_text().strip()


def _fingerprint(pub_path: Path) -> str:
    """Return the ``SHA256:…`` fingerprint of a public key file (``ssh-keygen -lf``)."""
    proc = _run([SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(pub_path)], timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"ssh-keygen -lf {pub_path} failed: {proc.stderr.strip()}")
    # "256 SHA256:abc… comment (ED25519)"
    return proc.stdout.split()[1]


def _free_port(host: str = "127.0.0.1") -> int:
    """Pick a currently free TCP port on *host* (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _read_banner(host: str, port: int, timeout: float) -> bytes | None:
    """Connect and read the server's first line under an absolute deadline.

    Returns the bytes read (possibly empty), or None if the connection could not be opened.
    Sends a client identification before closing so that sshd logs a plain disconnect.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    with sock:
        data = b""
        with contextlib.suppress(OSError):
            while b"\n" not in data and len(data) < 4096:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"SSH-"):
                sock.sendall(b"SSH-2.0-preflight_fixture_probe\r\n")
        return data


def _descendants(pid: int) -> list[int]:
    """Return all descendant pids of *pid* (read from /proc; best effort)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 2:
            children.setdefault(int(fields[1]), []).append(int(entry))
    result: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            result.append(child)
            todo.append(child)
    return result


def _pid_alive(pid: int) -> bool:
    """True if *pid* exists and is not a zombie (PID 1 in a container may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[:1] != ["Z"]


def _wait_gone(pids: Sequence[int], timeout: float) -> None:
    """Wait up to *timeout* seconds for all *pids* to exit."""
    deadline = time.monotonic() + timeout
    while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


class OpenSSHServer:
    """A real OpenSSH sshd on a loopback high port, as a context manager.

    Parameters:
        authorized_keys: public key lines written to the server's own ``authorized_keys``
            (used for every user; tests log in as ``root``).
        sftp: if False, the config has no ``Subsystem sftp`` line at all, so opening the
            sftp subsystem fails.
        extra_config: additional ``sshd_config`` lines, placed before the defaults; a default
            with the same keyword is left out, so they override it (e.g.
            ``"PasswordAuthentication yes"``, ``"MaxStartups 1"``).
            Lines from the first ``Match`` onwards go at the end of the file, where sshd
            requires Match blocks to be.
        netns: run sshd inside this network namespace (it listens on the namespace's
            loopback; readiness is checked from inside the namespace).
        start_timeout: how long to wait for sshd to send ``SSH-2.0-`` after starting.
        passwords: user → password, e.g. ``{"nobody": "s3cret"}``; turns on
            ``PasswordAuthentication``. This sshd alone sees them: it runs in a mount
            namespace with a copy of ``/etc/shadow`` bind-mounted over the real one.

    Attributes after start: ``host``, ``port``, ``host_key_fingerprints`` (key type as in
    the .pub file, e.g. ``"ssh-ed25519"``/``"ssh-rsa"`` — the same as paramiko's
    ``PKey.get_name()`` — to ``SHA256:…``), ``host_public_keys`` (key type to
    ``"type base64"``), ``directory``, ``config_path``, ``pid``; ``log`` holds sshd's stderr
    (``-e``, ``LogLevel VERBOSE``), also after :meth:`stop`.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        authorized_keys: Sequence[str] = (),
        *,
        sftp: bool = True,
        extra_config: Sequence[str] = (),
        netns: NetNamespace | None = None,
        start_timeout: float = 10.0,
        passwords: Mapping[str, str] | None = None,
    ) -> None:
        self.authorized_keys = list(authorized_keys)
        self.sftp = sftp
        self.extra_config = list(extra_config)
        self.netns = netns
        self.start_timeout = start_timeout
        self.passwords = dict(passwords or {})
        self.port = 0
        self.host_key_fingerprints: dict[str, str] = {}
        self.host_public_keys: dict[str, str] = {}
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._final_log: str | None = None

    # -- paths ---------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The server's private temporary directory (keys, config, log)."""
        if self._dir is None:
            raise RuntimeError("server not started")
        return self._dir

    @property
    def config_path(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def authorized_keys_path(self) -> Path:
        return self.directory / "authorized_keys"

    @property
    def log_path(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log(self) -> str:
        """sshd's stderr so far (kept after stop)."""
        if self._final_log is not None:
            return self._final_log
        if self._dir is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def known_hosts_lines(self) -> list[str]:
        """``[127.0.0.1]:PORT type base64`` for every host key, for a known_hosts file."""
        return [f"[{self.host}]:{self.port} {key}" for key in self.host_public_keys.values()]

    def set_authorized_keys(self, lines: Sequence[str]) -> None:
        """Replace the authorized_keys content (sshd reads it on every authentication)."""
        self.authorized_keys = list(lines)
        self.authorized_keys_path.write_text("".join(f"{line}\n" for line in lines))

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> OpenSSHServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Create keys and config, start sshd and wait until it sends its banner."""
        if self._proc is not None:
            raise RuntimeError("server already started")
        reason = sshd_available()
        if reason is not None:
            raise RuntimeError(reason)
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="preflight-sshd-"))
        self._final_log = None
        try:
            self._make_host_keys()
            self.set_authorized_keys(self.authorized_keys)
            last_log = ""
            for _attempt in range(5):
                self.port = self._call(_free_port, self.host)
                self._write_config()
                self._check_config()
                if self._launch():
                    if self.netns is not None:
                        self.netns.add_cleanup(self.stop)
                    return
                last_log = self.log
            raise RuntimeError(f"sshd could not bind a free port after 5 attempts:\n{last_log}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop sshd (and any per-connection children) and remove the temp dir. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            self._terminate(proc)
        if self._dir is not None:
            self._final_log = self.log
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- internals -----------------------------------------------------------------------

    def _call(self, fn: Callable[..., _T], *args: object) -> _T:
        """Run *fn* in the server's network namespace (or here, without one)."""
        if self.netns is None:
            return fn(*args)
        return self.netns.call(fn, *args, timeout=self.start_timeout + 5)

    def _make_host_keys(self) -> None:
        for kind in HOST_KEY_TYPES:
            path = self.directory / f"ssh_host_{kind}_key"
            argv = [SSH_KEYGEN, "-q", "-N", "", "-t", kind, "-f", str(path)]
            if kind == "rsa":
                argv[1:1] = ["-b", "2048"]  # 3072 (the default) takes up to a second
            proc = _run(argv, timeout=60)
            if proc.returncode != 0:
                raise RuntimeError(f"ssh-keygen -t {kind} failed: {proc.stderr.strip()}")
            pub = Path(f"{path}.pub")
            key_type, key_b64 = pub.read_text().split()[:2]
            self.host_public_keys[key_type] = f"{key_type} {key_b64}"
            self.host_key_fingerprints[key_type] = _fingerprint(pub)

    def _write_config(self) -> None:
        d = self.directory
        extra_head: list[str] = []
        extra_tail: list[str] = []
        for line in self.extra_config:
            in_match = bool(extra_tail) or line.strip().lower().startswith("match ")
            (extra_tail if in_match else extra_head).append(line)
        defaults = [
            f"ListenAddress {self.host}",
            f"Port {self.port}",
            *(f"HostKey {d / f'ssh_host_{kind}_key'}" for kind in HOST_KEY_TYPES),
            f"AuthorizedKeysFile {self.authorized_keys_path}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if self.passwords else 'no'}",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            f"PidFile {d / 'sshd.pid'}",
            "MaxStartups 200:30:400",
            "LogLevel VERBOSE",
            "UseDNS no",
            "PrintMotd no",
        ]
        # Some keywords (MaxStartups among them) take the *last* value, not the first: leave
        # out every default that an extra line sets, so the extra line wins either way.
        overridden = {line.split()[0].lower() for line in extra_head if line.split()}
        lines = [
            "# generated by tests/system/sshd.py",
            *extra_head,
            *(line for line in defaults if line.split()[0].lower() not in overridden),
        ]
        version = openssh_version()
        if version is not None and version >= (9, 8):
            # 9.8+ penalises sources that fail auth or disconnect early; tests do both a lot
            # from 127.0.0.1 and would then be refused.
            lines.append("PerSourcePenalties no")
        if self.sftp:
            lines.append("Subsystem sftp internal-sftp")
        lines.extend(extra_tail)
        self.config_path.write_text("\n".join(lines) + "\n")

    def _check_config(self) -> None:
        proc = _run([SSHD, "-t", "-f", str(self.config_path)], timeout=15)
        if proc.returncode != 0:
            raise RuntimeError(
                f"sshd -t rejected the config ({self.config_path}):\n{proc.stderr.strip()}\n"
                f"--- config ---\n{self.config_path.read_text()}"
            )

    def _launch(self) -> bool:
        """Start sshd; True once it serves a banner, False if it could not bind its port."""
        argv = [SSHD, "-D", "-e", "-f", str(self.config_path)]
        if self.passwords:
            # sshd (UsePAM no) checks passwords against /etc/shadow: give this sshd, and it
            # alone, a copy with the test's passwords, bind-mounted in a mount namespace of its
            # own. The machine's /etc/shadow is never touched.
            shadow = self._shadow_with_passwords()
            argv = [
                "unshare",
                "--mount",
                "--",
                "sh",
                "-c",
                'mount --bind "$0" /etc/shadow && exec "$@"',
                str(shadow),
                *argv,
            ]
        if self.netns is not None:
            argv = [*self.netns.exec_prefix(), *argv]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                log_text = self.log
                self._proc = None
                if any(marker in log_text for marker in _BIND_ERRORS):
                    return False
                raise RuntimeError(f"sshd exited with status {rc}:\n{log_text}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            banner = self._call(_read_banner, self.host, self.port, min(2.0, remaining))
            if banner is not None and banner.startswith(b"SSH-2.0-"):
                return True
            if banner:  # something else owns the port
                break
            time.sleep(0.05)
        log_text = self.log
        proc, self._proc = self._proc, None
        if proc is not None:
            self._terminate(proc)
        raise RuntimeError(
            f"sshd did not send an SSH-2.0 banner on {self.host}:{self.port} within "
            f"{self.start_timeout:g} s:\n{log_text}"
        )

    def _shadow_with_passwords(self) -> Path:
        """A copy of /etc/shadow where each user of `passwords` has that password."""
        lines = []
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields and fields[0] in self.passwords:
                # On stdin, not argv: a password on a command line is visible in `ps`.
                proc = subprocess.run(
                    ["openssl", "passwd", "-6", "-stdin"],
                    input=self.passwords[fields[0]] + "\n",
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                )
                if proc.returncode != 0:
                    raise RuntimeError(f"openssl passwd failed: {proc.stderr.strip()}")
                fields[1] = proc.stdout.strip()
                line = ":".join(fields)
            lines.append(line)
        path = self.directory / "shadow"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        # Per-connection sshd children call setsid(), so they are not in sshd's process
        # group. Let them finish (a client that just disconnected), then end them deepest
        # first while their parents are alive to reap them, and only then the master:
        # orphans would otherwise linger as zombies until PID 1 gets round to them.
        children = _descendants(proc.pid)
        _wait_gone(children, 1.0)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in reversed(children):
                if _pid_alive(pid):
                    with contextlib.suppress(OSError):
                        os.kill(pid, sig)
                    _wait_gone([pid], 1.0)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
