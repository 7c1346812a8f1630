"""Pure data types shared by every part of preflight: what a target is, what a stage found.

Nothing here does I/O or imports a network library. `config` builds `Target`s, the stages and
`runner` fill in `StageResult`s, and every report format (`report/`) reads the same `Report`.
Secrets are wrapped in `Secret`, whose `repr` and `str` never show the value, so that a target
can be logged or put in an exception message without leaking a password or key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import paramiko  # for a type only: this module is pure data and imports nothing heavy


class Stage(enum.StrEnum):
    """The probes, in the order they run; a stage runs only if the one before passed."""

    DNS = "dns"
    TCP = "tcp"
    BANNER = "banner"
    AUTH = "auth"
    SFTP = "sftp"


ALL_STAGES: tuple[Stage, ...] = tuple(Stage)
SSH_STAGES: frozenset[Stage] = frozenset({Stage.AUTH, Stage.SFTP})


class Status(enum.StrEnum):
    """`error`: the stage was running when the run was interrupted (SIGINT/SIGTERM) and did not
    finish: neither a verdict on the server nor a stage that was left out."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class Secret:
    """A credential value that refuses to be printed; `reveal()` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Timeouts:
    """Per-stage timeouts in seconds; each stage is also cut off by the target's deadline."""

    dns: float = 3.0
    tcp: float = 3.0
    banner: float = 5.0
    auth: float = 10.0
    sftp: float = 10.0

    def for_stage(self, stage: Stage) -> float:
        return float(getattr(self, stage.value))


@dataclass(frozen=True)
class AuthConfig:
    """How to authenticate. `unset` names the `${VAR}`s that were referenced but empty or unset,
    so that `auth.no_credentials` can say which variable to define."""

    password: Secret | None = None
    key: Secret | None = None  # a file path, or the private key text itself
    passphrase: Secret | None = None
    agent: bool = False
    unset: tuple[str, ...] = ()
    # Where the key came from, for messages that must name it without showing it:
    # "file ~/.ssh/id_ed25519" or "variable SSH_PRIVATE_KEY".
    key_source: str | None = None
    # The environment variables the credentials came from, if they did: a command printed to
    # reproduce a failure refers to them ("$SFTP_PASSWORD") instead of holding the value.
    key_variable: str | None = None
    password_variable: str | None = None
    passphrase_variable: str | None = None
    # A key object a library caller gave (a `paramiko.PKey`), used as it is.
    pkey: paramiko.PKey | None = None

    @property
    def has_credentials(self) -> bool:
        return bool(self.password) or bool(self.key) or self.pkey is not None or self.agent


HostKeyPolicyName = Literal["strict", "warn", "off"]


def is_known_hosts_content(value: str) -> bool:
    """Whether a configured known_hosts is the file's content (a CI variable holding the lines)
    rather than its path: a line break or a key in it."""
    return "\n" in value or " ssh-" in value or " ecdsa-" in value


@dataclass(frozen=True)
class HostKeyConfig:
    """How the server's host key is verified. `known_hosts` is a path or the file's content."""

    known_hosts: str | None = "~/.ssh/known_hosts"
    fingerprints: tuple[str, ...] = ()  # "SHA256:..." ; any match passes
    policy: HostKeyPolicyName = "strict"
    # OpenSSH HostKeyAlias: the name known_hosts is searched for instead of `host` / `[host]:port`.
    alias: str | None = None
    # The environment variable `known_hosts` was read from (its value a path or the content).
    known_hosts_variable: str | None = None


def endpoint(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets: how hosts are named in messages."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Hop:
    """A jump host on the way to a target (OpenSSH `ProxyJump`, checks.yaml `jump:`): preflight
    logs in to it and opens a `direct-tcpip` channel through it to the next hop or the target."""

    host: str
    port: int = 22
    user: str | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    host_key: HostKeyConfig = field(default_factory=HostKeyConfig)
    origin: str | None = None  # where it was configured: "checks.yaml:14", "~/.ssh/config:3"
    # The hop's own ConnectTimeout from OpenSSH client config, as `ssh -J` would apply it when
    # connecting to this hop; None: the target's tcp timeout.
    tcp_timeout: float | None = None
    # The ProxyJump entry as written in OpenSSH client config ("bastion", "ops@b:2222"): ssh
    # looks it up again there (its IdentityFile…), so a printed `ssh -J` names it so.
    alias: str | None = None

    @property
    def endpoint(self) -> str:
        return endpoint(self.host, self.port)


@dataclass(frozen=True)
class SettingSource:
    """Where one of a target's settings came from: "port 2222 from ~/.ssh/config:14"."""

    setting: str  # "hostname", "port", "user", "identity file", "jump"…
    value: str  # never a secret: a key is named by its path or variable
    source: str  # "~/.ssh/config:14", "command line", "checks.yaml:3", "built-in default"

    def __str__(self) -> str:
        return f"{self.setting} {self.value} from {self.source}"


# What `sftp.write: true` writes: a file found on a server must say what it is.
UPLOAD_NOTE = b"written by preflight to check that uploads work; safe to delete\n"


@dataclass(frozen=True)
class WriteCheck:
    """`sftp.write`: upload a test file of `size` bytes. `sized` says the user asked for a size
    (`write: 1MiB`), so the report gives the upload rate; `write: true` writes a line of text
    that says what the file is, should it ever stay behind."""

    size: int
    sized: bool = False


@dataclass(frozen=True)
class Target:
    """One host to check, with every default already merged in."""

    name: str
    host: str
    port: int = 22
    user: str | None = None
    stages: tuple[Stage, ...] = ALL_STAGES
    timeouts: Timeouts = field(default_factory=Timeouts)
    deadline: float = 30.0  # seconds, all stages of this target together
    auth: AuthConfig = field(default_factory=AuthConfig)
    host_key: HostKeyConfig = field(default_factory=HostKeyConfig)
    sftp_path: str = "."
    # The sftp stage lists `sftp_path`; without, it only checks that the path is a directory
    # (a drop box may be written and not listed).
    sftp_list: bool = True
    # `sftp.write`: the sftp stage also uploads a test file to `sftp_path` (and removes it).
    sftp_write: WriteCheck | None = None
    # `sftp.min_free`: bytes that must be free under `sftp_path` (statvfs@openssh.com).
    sftp_min_free: int | None = None
    # `trace`: after a tcp.timeout, find the last hop that answers (`stages.trace`).
    trace: bool = False
    origin: str | None = None  # "checks.yaml:12" where it was defined, for messages
    # Jump hosts in the order they are crossed; the last one opens the channel to this target.
    jump: tuple[Hop, ...] = ()
    # Where the settings came from, when OpenSSH client config was applied (else empty).
    sources: tuple[SettingSource, ...] = ()
    # Parts of the OpenSSH client config that were not applied, and why.
    config_notes: tuple[str, ...] = ()
    # Which OpenSSH client config applied: "none", "default" (~/.ssh/config and
    # /etc/ssh/ssh_config, as ssh reads them) or the one file given (-F, `ssh_config: PATH`).
    # A printed ssh command reads the same (`-F none`, nothing, `-F PATH`).
    ssh_config: str = "none"

    @property
    def needs_ssh(self) -> bool:
        return any(stage in SSH_STAGES for stage in self.stages)


@dataclass(frozen=True)
class Diagnosis:
    """Why a stage failed: a stable `code` (DESIGN §4), the measured facts, what to do."""

    code: str
    summary: str
    hint: str


@dataclass
class StageResult:
    """What one stage of one target found. `facts` holds structured details for the JSON report
    (addresses tried, banner, host key fingerprint, allowed auth methods…); `detail` is the one-line
    human version of a pass or the reason for a skip."""

    stage: Stage
    status: Status
    duration_s: float = 0.0
    detail: str = ""
    diagnosis: Diagnosis | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # 0 for the target itself, N for the target's Nth jump host (`Target.jump[N - 1]`).
    hop: int = 0

    @property
    def name(self) -> str:
        """Unique within a target: `tcp` for the target, `jump1.tcp` for its first jump host."""
        # str(), not .value: a StrEnum's value is the string itself, and .value is a property
        # (10,000 targets' reports ask for 100,000 names).
        return f"jump{self.hop}.{self.stage}" if self.hop else str(self.stage)


@dataclass
class TargetResult:
    """One target's outcome. With `--attempts N` (`attempts` > 1) `stages` are those of one
    representative attempt (the first that failed, else the last), each stage's `facts["rounds"]`
    holds the statistics over all attempts, and `flaky` says the attempts did not all agree."""

    target: Target
    stages: list[StageResult] = field(default_factory=list)
    duration_s: float = 0.0
    interrupted: bool = False
    attempts: int = 1
    flaky: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(s.status is not Status.FAIL for s in self.stages)

    @property
    def failure(self) -> StageResult | None:
        return next((s for s in self.stages if s.status is Status.FAIL), None)


@dataclass
class Report:
    """One run: every target's result, in the order they were given. `vantage` says where the
    whole run happened (runner, CI job, shard: `vantage.Vantage.as_fact`), so that even a shard
    without targets is accounted for when reports are merged; None for a merged report."""

    targets: list[TargetResult]
    started_at: datetime
    duration_s: float = 0.0
    interrupted: bool = False
    vantage: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(t.ok for t in self.targets)
