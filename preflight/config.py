"""The config layer: `checks.yaml` (DESIGN §6) and command-line TARGETs into merged `Target`s.

`load_config` / `parse_config` read the file with a line-tracking YAML reader (`yamlnodes`),
check every key and value against the schema, expand `${VAR}` / `${VAR:-default}` from the
environment, and merge built-in defaults ← the file's `defaults:` ← each target (nested mappings
key by key; an explicit `null` goes back to the built-in default). Whatever is wrong with the file
— unreadable, not UTF-8, not YAML, unknown key, wrong type, out of range, duplicate target — is
raised as one `ConfigError` carrying `FILE:LINE: message`, which the CLI prints before exiting 2;
no other exception leaves this module for bad input. Credentials are only ever taken from
environment variables, kept in `Secret`s, and never put into a message: an unset credential
variable is not an error here (the `auth` stage reports `auth.no_credentials`), but a password
written literally in the file is. `builtin_defaults` gives the defaults when there is no file, and
`target_from_spec` turns `user@host:port` or `sftp://user@host:port/path` into a `Target`.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import getpass
import ipaddress
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, NamedTuple, NoReturn, TypedDict
from urllib.parse import unquote

from preflight import keytext, sshconfig, units
from preflight.model import (
    ALL_STAGES,
    UPLOAD_NOTE,
    AuthConfig,
    Hop,
    HostKeyConfig,
    HostKeyPolicyName,
    Secret,
    SettingSource,
    Stage,
    Target,
    Timeouts,
    WriteCheck,
    endpoint,
    is_known_hosts_content,
)
from preflight.yamlnodes import YamlError, YMap, YNode, YScalar, YSeq, paused_gc

__all__ = [
    "COMMAND_LINE",
    "Config",
    "ConfigError",
    "builtin_defaults",
    "load_config",
    "parse_config",
    "target_from_spec",
]

COMMAND_LINE: Final = "command line"  # ConfigError.file for a bad TARGET argument

CONFIG_VERSION: Final = 1
MAX_TIMEOUT: Final = 3600.0
MAX_DEADLINE: Final = 86400.0

# Environment variables picked up when the config does not mention the key at all.
ENV_PASSWORD: Final = "SFTP_PASSWORD"
ENV_KEY: Final = "SSH_PRIVATE_KEY"
ENV_PASSPHRASE: Final = "SSH_KEY_PASSPHRASE"
ENV_KNOWN_HOSTS: Final = "SSH_KNOWN_HOSTS"
DEFAULT_KNOWN_HOSTS: Final = "~/.ssh/known_hosts"

_POLICIES: Final[tuple[HostKeyPolicyName, ...]] = ("strict", "warn", "off")

# Schema: the scalar keys, and the nested mappings with their sub-keys (merged key by key).
_SCALAR_KEYS: Final = ("port", "user", "stages", "deadline", "jump", "ssh_config", "trace")
_SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    "timeouts": ("dns", "tcp", "banner", "auth", "sftp"),
    "auth": ("password", "key", "passphrase", "agent"),
    "host_key": ("known_hosts", "fingerprints", "policy"),
    "sftp": ("path", "list", "write", "min_free"),
}
_TARGET_KEYS: Final = ("name", "host", *_SCALAR_KEYS, *_SECTIONS)
_DEFAULTS_KEYS: Final = (*_SCALAR_KEYS, *_SECTIONS)
_TOP_KEYS: Final = ("version", "defaults", "targets")
_SECTION_EXAMPLES: Final = {
    "timeouts": "{dns: 3, tcp: 3, banner: 5, auth: 10, sftp: 10}",
    "auth": '{password: "${SFTP_PASSWORD}"}',  # quoted: in { } an unquoted ${ is YAML syntax
    "host_key": "{policy: strict}",
    "sftp": "{path: /upload, write: true}",
}
# A `jump:` mapping (one jump host); `auth` and `host_key` take the sub-keys of the sections.
_HOP_KEYS: Final = ("host", "port", "user", "auth", "host_key")
MAX_JUMP_HOPS: Final = sshconfig.MAX_JUMP_HOPS

_REF_TOKEN = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_REF_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_SINGLE_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
_FINGERPRINT = re.compile(r"SHA256:([A-Za-z0-9+/]{43})=?")
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
# What no host name can hold: whitespace, path and bracket characters, and any other ASCII
# but letters, digits, '.', '-', '_' (glibc refuses those names without asking a resolver, so a
# lookup would fail with a false "does not exist"); ':' and '%' belong to IPv6 addresses.
_BAD_HOST_CHAR = re.compile(r"[\x00-\x7f](?<![A-Za-z0-9._:%-])")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# A check that writes more than this is a transfer, not a check (and likely a unit slip).
MAX_WRITE: Final = 10 * 1024**3
MAX_MIN_FREE: Final = 1024**6


class ConfigError(Exception):
    """The configuration (file or command-line target) is unusable; printed as FILE:LINE: message.

    Messages name the key path (`targets[2].port`), what was expected and what was found, and
    never contain a credential."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(file, line, message)
        self.file = file
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Config:
    """A loaded config file: its targets with every default merged in, and the merged defaults
    (as a Target named "defaults" with an empty host) for targets given on the command line."""

    path: str
    targets: tuple[Target, ...]
    defaults: Target
    # Flat keys (`port`, `auth.key`…) the file's `defaults:` sets, to say where a value came from.
    defaults_set: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- public functions


def load_config(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    *,
    ssh_config: str | None = None,
) -> Config:
    """Read and check a config file; every problem is a `ConfigError`. `ssh_config` is the
    command line's `-F FILE` (or `none`): it then applies to every target of the file."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ConfigError(filename, 1, "config file not found") from None
    except IsADirectoryError:
        raise ConfigError(filename, 1, "is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(filename, 1, "cannot read the config file: permission denied") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(filename, 1, f"cannot read the config file: {reason}") from None
    except ValueError:  # a NUL in the path: no file can have that name
        raise ConfigError(filename, 1, "not a file name (it holds a NUL character)") from None
    return parse_config(data, filename, environ, ssh_config=ssh_config)


def parse_config(
    text: str | bytes,
    filename: str,
    environ: Mapping[str, str] | None = None,
    *,
    ssh_config: str | None = None,
) -> Config:
    """Check config text (bytes must be UTF-8) as if read from `filename`. OpenSSH client
    config applies to a target with `ssh_config: true` (or a path), or to every target when
    `ssh_config` (`-F FILE`) is given; `ssh_config="none"` turns it off for all."""
    env = os.environ if environ is None else environ
    if isinstance(text, bytes):
        text = _decode(text, filename)
    text = text.removeprefix("\ufeff")
    # Imported here: PyYAML costs more start-up than the rest of the config layer together,
    # and a check of command-line TARGETs reads no YAML at all.
    from preflight.yamlreader import read_yaml

    with paused_gc():
        try:
            root = read_yaml(text)
        except YamlError as exc:
            raise ConfigError(filename, exc.line, exc.message) from None
        return _Parser(filename, env, ssh_config).config(root)


def builtin_defaults(environ: Mapping[str, str] | None = None) -> Target:
    """The defaults when there is no config file (credentials from the usual CI variables)."""
    env = os.environ if environ is None else environ
    return _build_target(_builtin_values(env), "defaults", "", None)


def open_ssh_config(
    option: str | None, environ: Mapping[str, str] | None = None
) -> sshconfig.SshConfig | None:
    """The OpenSSH client configuration `ssh` would read: `option` is `-F FILE` (which must
    exist), `none` for no configuration at all, or None for ~/.ssh/config then
    /etc/ssh/ssh_config (either may be missing). `~` is ssh's: the passwd home, not $HOME;
    where $HOME holds an ssh config of its own, a note says which one was read."""
    env = os.environ if environ is None else environ
    if option is not None and option.strip().lower() == "none":
        return None
    if option is None:
        files = sshconfig.SshConfig.default_files()
    else:
        files = (sshconfig.ConfigFile(_expand_user(option, env), user=True, required=True),)
    home = sshconfig.passwd_home() or env.get("HOME") or os.path.expanduser("~")
    notes = []
    other = env.get("HOME", "").rstrip("/")
    user_config = sshconfig.USER_CONFIG.removeprefix("~")
    if (
        option is None
        and other
        and os.path.realpath(other) != os.path.realpath(home)
        and os.path.isfile(other + user_config)
    ):
        notes.append(
            f"read {home}{user_config} as ssh does (the home directory of the passwd "
            f"database), not {other}{user_config} ($HOME); "
            f"-F {shlex.quote(other + user_config)} reads that one"
        )
    return sshconfig.SshConfig(
        files, home=home, local_user=_default_user(env) or "", environ=env, notes=notes
    )


def target_from_spec(
    spec: str,
    defaults: Target,
    ssh_config: sshconfig.SshConfig | None = None,
    *,
    defaults_set: frozenset[str] = frozenset(),
) -> Target:
    """A command-line TARGET with `defaults` for everything it does not say.

    With `ssh_config`, what OpenSSH client config says for the host applies too: the TARGET's
    own user and port win over it, and it wins over `defaults` (`defaults_set` names the keys
    the file's `defaults:` set, so the report can say where each value came from).

    Accepted: `host`, `host:port`, `user@host`, `user@host:port`, `[2001:db8::1]:2222`, a bare
    IPv6 address, `ssh://user@host:port` and `sftp://user@host:port/path` (sets the SFTP path;
    `/~/dir` is relative to the login directory). The target is named by the spec as typed."""

    def fail(message: str) -> NoReturn:
        raise ConfigError(COMMAND_LINE, 1, f"target '{spec}': {message}")

    if not spec or spec != spec.strip():
        fail("expected host, host:port, user@host:port or sftp://user@host:port/path")
    if _holds_password(spec):
        # Checked before anything else can fail and repeat the spec: it holds a password.
        raise ConfigError(
            COMMAND_LINE,
            1,
            "a password in a TARGET would show in process lists and CI logs; "
            f"remove it and set {ENV_PASSWORD} instead",
        )
    netloc = spec
    sftp_path = defaults.sftp_path
    is_url = False
    scheme = _SCHEME.match(spec)
    if scheme:
        is_url = True
        if scheme[1].lower() not in ("sftp", "ssh"):
            fail(f"unknown scheme '{scheme[1]}://' (use sftp://user@host:port/path or ssh://…)")
        rest = spec[scheme.end() :]
        if "?" in rest or "#" in rest:
            fail("a URL query or fragment is not supported")
        netloc, slash, url_path = rest.partition("/")
        if slash:
            if scheme[1].lower() == "ssh":
                if url_path:
                    fail("an ssh:// URL takes no path; use sftp://host/path to list a directory")
            else:
                sftp_path = _sftp_url_path("/" + url_path)
    userinfo, at, hostport = netloc.rpartition("@")
    user = defaults.user
    if at:
        user = unquote(userinfo) if is_url else userinfo
        if not user:
            fail("empty user name before '@'")
    host, port_text = _split_host_port(hostport, fail)
    if is_url:
        host = unquote(host)
    if not host:
        fail("empty host name")
    problem = _host_problem(host)
    if problem:
        fail(f"host '{host}' {problem}")
    port = defaults.port
    if port_text is not None:
        if port_text.startswith("/"):
            fail("scp-style host:/path is not supported; use sftp://host/path")
        if not _DIGITS.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
            fail(f"port must be a number 1..65535, got '{port_text}'")
        port = int(port_text)
    target = replace(
        defaults,
        name=spec,
        host=host,
        port=port,
        user=user,
        sftp_path=sftp_path,
        origin=COMMAND_LINE,
    )
    if (
        target.host_key.known_hosts == DEFAULT_KNOWN_HOSTS
        and "host_key.known_hosts" not in defaults_set
    ):
        # The built-in default is ssh's own file, in ssh's home (the passwd one, not $HOME),
        # written out in full so that no report leaves it to the reader which `~` it meant.
        home = ssh_config.home if ssh_config else sshconfig.passwd_home() or os.path.expanduser("~")
        known = home.rstrip("/") + DEFAULT_KNOWN_HOSTS.removeprefix("~")
        target = replace(target, host_key=replace(target.host_key, known_hosts=known))
    if ssh_config is None:
        return target
    explicit = {"user"} if at else set()
    if port_text is not None:
        explicit.add("port")
    return _apply_ssh_config(
        target,
        ssh_config,
        explicit=frozenset(explicit),
        explicit_origin=COMMAND_LINE,
        base_source=_base_source(defaults, defaults_set),
    )


# --------------------------------------------------------------------------- helpers


def _decode(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
            "save the file as UTF-8"
        )
        raise ConfigError(filename, line, message) from None


def _split_host_port(hostport: str, fail: Callable[[str], NoReturn]) -> tuple[str, str | None]:
    if hostport.startswith("["):
        inside, bracket, after = hostport[1:].partition("]")
        if not bracket:
            fail("missing ']' after an IPv6 address")
        if after and not after.startswith(":"):
            fail("expected ':PORT' after ']'")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            fail(f"'{inside}' in [brackets] is not an IPv6 address")
        return inside, after[1:] if after else None
    if hostport.count(":") >= 2:
        return hostport, None  # a bare IPv6 address; use [addr]:port for a port
    host, colon, port = hostport.partition(":")
    if not host:
        fail("empty host name")
    return host, port if colon else None


def _sftp_url_path(path: str) -> str:
    """URL path → SFTP path; `/~/dir` (draft-ietf-secsh-scp-sftp-ssh-uri) is home-relative."""
    path = unquote(path)
    if path in ("/~", "/~/"):
        return "."
    if path.startswith("/~/"):
        return path[3:]
    return path


def _host_problem(host: str) -> str | None:
    """Why `host` (not empty, brackets removed) cannot be a host name or address, as a phrase
    to follow the host in a message ("… looks like a URL"); None if it can."""
    if "://" in host:
        return "looks like a URL; give only the host name (port, user and path are separate)"
    if "@" in host:
        return "contains '@'; give the user name separately"
    if not host.isprintable() or _BAD_HOST_CHAR.search(host):
        return "is not a valid host name or IP address"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            if host.count(":") == 1:
                return "looks like HOST:PORT; give the port separately"
            return "is not a valid IPv6 address"
    return None


def _holds_password(spec: str) -> bool:
    """Whether `[scheme://]user:password@host…` has a password before its '@' (a spec that
    holds one is refused without being repeated)."""
    scheme = _SCHEME.match(spec)
    return ":" in spec[scheme.end() if scheme else 0 :].rpartition("@")[0]


def _not_a_target_mapping(path: str, item: YNode) -> str:
    """What is wrong with a target written as something else than a mapping; for a string that
    reads as `[user@]host[:port]`, the mapping it means, which loads in a block list and in
    `[ ]` alike. A password before the '@' is not repeated."""
    if not (isinstance(item, YScalar) and isinstance(item.value, str)):
        return f"{path}: expected a mapping with 'host', got {_got(item)}"
    value = item.value.strip()
    if _holds_password(value):
        return (
            f"{path}: expected a mapping with 'host', got a string holding a password (not "
            "shown), which would be committed with this file: write {host: HOST, user: USER} "
            'and the password as auth: {password: "${SFTP_PASSWORD}"}'
        )
    got = f"{path}: expected a mapping with 'host', got {_got(item)}"
    scheme = _SCHEME.match(value)
    if (scheme and scheme.group(1).lower() != "ssh") or "/" in value.removeprefix("ssh://"):
        return got  # a URL, a path: no one mapping says what was meant
    spec = sshconfig.parse_jump_spec(value)
    if spec is None:
        return got
    fields = [f"host: {_flow_value(spec.host)}"]
    if spec.port is not None:
        fields.append(f"port: {spec.port}")
    if spec.user is not None:
        fields.append(f"user: {_flow_value(spec.user)}")
    return f"{got} (write {{{', '.join(fields)}}})"


def _flow_value(text: str) -> str:
    """`text` as a YAML value inside `{ }`: plain where it reads back as that string, else
    single-quoted."""
    import yaml

    if re.fullmatch(r"[A-Za-z0-9._-]+", text) and yaml.safe_load(text) == text:
        return text
    return "'" + text.replace("'", "''") + "'"


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Keys that other tools' configs (ssh_config, Ansible, CI templates) spell differently, and
# what this file calls them: `hostname` is one edit from `name` but means `host`.
_OTHER_WORDS: Final[dict[str, tuple[str, str]]] = {
    "hostname": ("host", "did you mean 'host'?"),
    "address": ("host", "did you mean 'host'?"),
    "username": ("user", "did you mean 'user'?"),
    "login": ("user", "did you mean 'user'?"),
    **{
        alias: ("auth", "a key file is written under 'auth:' as key: PATH")
        for alias in ("ssh_key", "private_key", "identity_file", "identityfile", "key_file")
    },
}


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else ""


def _expand_user(path: str, environ: Mapping[str, str]) -> str:
    if path == "~" or path.startswith("~/"):
        home = environ.get("HOME") or os.path.expanduser("~")
        return home + path[1:]
    return os.path.expanduser(path) if path.startswith("~") else path


def _display_name(host: str, port: int) -> str:
    return host if port == 22 else endpoint(host, port)


class FromVariable(str):
    """A string value that came whole from an environment variable (`${SSH_KNOWN_HOSTS}`),
    which it remembers in `variable`: a printed command can then refer to the variable."""

    variable: str

    def __new__(cls, value: str, variable: str) -> FromVariable:
        text = super().__new__(cls, value)
        text.variable = variable
        return text


class _Clear:
    """An explicit `null`: the key goes back to its built-in default."""

    def __repr__(self) -> str:
        return "CLEAR"


CLEAR: Final = _Clear()


class _Ref(NamedTuple):
    name: str
    missing: bool  # unset or empty, and no non-empty default


class _Text(NamedTuple):
    """A string value after `${VAR}` expansion, with the text as written. (A NamedTuple, not a
    dataclass: one is made for every string of the file.)"""

    value: str
    raw: str
    refs: tuple[_Ref, ...] = ()

    def shown(self) -> str:
        """The value for a message: as written; an expansion is never shown (it may be secret)."""
        if self.refs:
            return f"'{_short(self.raw)}' (expanded from the environment; value not shown)"
        return f"'{_short(self.raw)}'"


@dataclass(frozen=True)
class _Cred:
    """A resolved credential field."""

    secret: Secret | None = None
    unset: tuple[str, ...] = ()
    source: str | None = None  # for the key: "file PATH" or "variable NAME"
    variable: str | None = None  # the environment variable the whole value came from


def _got(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    assert isinstance(node, YScalar)
    if node.value is None:
        return "null"
    if isinstance(node.value, str):
        return f"'{_short(node.value)}'"
    return _short(node.raw)


def _key_value(value: str, name: str | None, environ: Mapping[str, str]) -> _Cred:
    """`key` after expansion: key text or a key file path. `name` is the variable the whole
    value came from (None for a path written in the file); such a value is secret, and is
    never used in a message unless it is plainly a path (keytext decides which it is)."""
    if keytext.is_key_text(value, from_variable=name is not None):
        return _Cred(
            Secret(value), source=f"variable {name}" if name else "variable", variable=name
        )
    path = _expand_user(value, environ)
    return _Cred(Secret(path), source=keytext.key_source(path, name), variable=name)


def _builtin_values(environ: Mapping[str, str]) -> dict[str, Any]:
    def from_env(name: str) -> _Cred:
        value = environ.get(name)
        return _Cred(Secret(value), source=f"variable {name}", variable=name) if value else _Cred()

    known_hosts = environ.get(ENV_KNOWN_HOSTS)

    key_text = environ.get(ENV_KEY)
    timeouts = Timeouts()
    return {
        "port": 22,
        "user": _default_user(environ),
        "stages": ALL_STAGES,
        "deadline": 30.0,
        **{f"timeouts.{stage}": timeouts.for_stage(stage) for stage in ALL_STAGES},
        "auth.password": from_env(ENV_PASSWORD),
        "auth.key": _key_value(key_text, ENV_KEY, environ) if key_text else _Cred(),
        "auth.passphrase": from_env(ENV_PASSPHRASE),
        "auth.agent": False,
        "host_key.known_hosts": (
            FromVariable(known_hosts, ENV_KNOWN_HOSTS) if known_hosts else DEFAULT_KNOWN_HOSTS
        ),
        "host_key.fingerprints": (),
        "host_key.policy": "strict",
        "sftp.path": ".",
        "sftp.list": True,
        "sftp.write": None,
        "sftp.min_free": None,
        "jump": (),
        "ssh_config": False,
        "trace": False,
    }


def _default_user(environ: Mapping[str, str]) -> str | None:
    user = environ.get("USER")
    if user:
        return user
    try:
        return getpass.getuser() or None
    except (OSError, KeyError, ImportError):  # no passwd entry (containers), no pwd module
        return None


def _merge(values: dict[str, Any], layer: dict[str, Any], builtin: dict[str, Any]) -> None:
    """Apply a parsed `defaults:` or target layer over `values` in place."""
    for key, value in layer.items():
        if value is CLEAR:
            if key in _SECTIONS:
                for sub in _SECTIONS[key]:
                    values[f"{key}.{sub}"] = builtin[f"{key}.{sub}"]
            else:
                values[key] = builtin[key]
        else:
            values[key] = value


def _build_target(
    values: dict[str, Any],
    name: str,
    host: str,
    origin: str | None,
    shared: dict[tuple[Any, ...], Any] | None = None,
) -> Target:
    """A Target from merged flat values. `shared` lets targets of one file share equal (frozen)
    parts instead of building thousands of identical ones."""
    cache: dict[tuple[Any, ...], Any] = {} if shared is None else shared
    timeouts_key = ("timeouts", *(values[f"timeouts.{stage}"] for stage in ALL_STAGES))
    timeouts = cache.get(timeouts_key)
    if timeouts is None:
        timeouts = cache[timeouts_key] = Timeouts(*timeouts_key[1:])
    creds: tuple[_Cred, _Cred, _Cred] = (
        values["auth.password"],
        values["auth.key"],
        values["auth.passphrase"],
    )
    auth_key = ("auth", *creds, values["auth.agent"])
    auth = cache.get(auth_key)
    if auth is None:
        password, key, passphrase = creds
        auth = cache[auth_key] = AuthConfig(
            password=password.secret,
            key=key.secret,
            passphrase=passphrase.secret,
            agent=values["auth.agent"],
            unset=tuple(dict.fromkeys(var for cred in creds for var in cred.unset)),
            key_source=key.source if key.secret is not None else None,
            **_variables(password, key, passphrase),
        )
    host_key_key = (
        "host_key",
        values["host_key.known_hosts"],
        values["host_key.fingerprints"],
        values["host_key.policy"],
    )
    host_key = cache.get(host_key_key)
    if host_key is None:
        known_hosts = host_key_key[1]
        host_key = cache[host_key_key] = HostKeyConfig(
            *host_key_key[1:], known_hosts_variable=getattr(known_hosts, "variable", None)
        )
    jump: tuple[Hop, ...] = ()
    if values["jump"]:
        password, key, passphrase = creds
        inherited = _without_password(auth, key.unset + passphrase.unset)
        jump = tuple(
            _build_hop(spec, values["user"], inherited, host_key) for spec in values["jump"]
        )
    return Target(
        name=name,
        host=host,
        port=values["port"],
        user=values["user"],
        stages=values["stages"],
        timeouts=timeouts,
        deadline=values["deadline"],
        auth=auth,
        host_key=host_key,
        sftp_path=values["sftp.path"],
        sftp_list=values["sftp.list"],
        sftp_write=values["sftp.write"],
        sftp_min_free=values["sftp.min_free"],
        trace=values["trace"],
        origin=origin,
        jump=jump,
    )


# --------------------------------------------------------------------------- jump hosts, ssh_config


class _HopSpec(NamedTuple):
    """A `jump:` entry as written; it becomes a `Hop` once the target's values are known.
    `auth`/`host_key` hold the mapping's flat keys (`auth.key`…), None when not given."""

    host: str
    port: int | None
    user: str | None
    auth: dict[str, Any] | None
    host_key: dict[str, Any] | None
    origin: str


class _Variables(TypedDict):
    password_variable: str | None
    key_variable: str | None
    passphrase_variable: str | None


def _variables(password: _Cred, key: _Cred, passphrase: _Cred) -> _Variables:
    """AuthConfig's `*_variable` fields: which environment variable held each credential."""
    return {
        "password_variable": password.variable if password.secret is not None else None,
        "key_variable": key.variable if key.secret is not None else None,
        "passphrase_variable": passphrase.variable if passphrase.secret is not None else None,
    }


def _without_password(auth: AuthConfig, unset: tuple[str, ...]) -> AuthConfig:
    """The target's credentials a jump host inherits: its key and agent, never its password
    (a password is meant for the server it was issued for; give a jump host its own)."""
    return AuthConfig(
        key=auth.key,
        passphrase=auth.passphrase,
        agent=auth.agent,
        unset=unset,
        key_source=auth.key_source,
        key_variable=auth.key_variable,
        passphrase_variable=auth.passphrase_variable,
    )


def _build_hop(
    spec: _HopSpec, user: str | None, inherited: AuthConfig, host_key: HostKeyConfig
) -> Hop:
    if spec.auth is None:
        auth = inherited
    else:
        creds = [
            spec.auth.get(f"auth.{name}", _Cred()) for name in ("password", "key", "passphrase")
        ]
        creds = [cred if isinstance(cred, _Cred) else _Cred() for cred in creds]
        password, key, passphrase = creds
        agent = spec.auth.get("auth.agent", False)
        auth = AuthConfig(
            password=password.secret,
            key=key.secret,
            passphrase=passphrase.secret,
            agent=agent if isinstance(agent, bool) else False,
            unset=tuple(dict.fromkeys(var for cred in creds for var in cred.unset)),
            key_source=key.source if key.secret is not None else None,
            **_variables(password, key, passphrase),
        )
    given = spec.host_key or {}

    def pick(key: str, default: Any) -> Any:
        value = given.get(key, default)
        return default if value is CLEAR else value

    return Hop(
        host=spec.host,
        port=spec.port or 22,
        user=spec.user or user,
        auth=auth,
        host_key=HostKeyConfig(
            known_hosts=(known_hosts := pick("host_key.known_hosts", host_key.known_hosts)),
            fingerprints=pick("host_key.fingerprints", ()),
            policy=pick("host_key.policy", host_key.policy),
            known_hosts_variable=(
                getattr(known_hosts, "variable", None)
                if "host_key.known_hosts" in given
                else host_key.known_hosts_variable
            ),
        ),
        origin=spec.origin,
    )


# ssh_config's StrictHostKeyChecking → host_key.policy: `accept-new` accepts an unknown key
# and refuses a changed one (preflight's warn); `no`/`off` accept both (off); `ask` cannot ask.
_STRICTNESS: Final[dict[str, HostKeyPolicyName]] = {
    "yes": "strict",
    "ask": "strict",
    "accept-new": "warn",
    "no": "off",
}

# Flat config keys → the names of the settings that OpenSSH client config can also set.
_SSH_SETTINGS: Final = {
    "port": "port",
    "user": "user",
    "auth.key": "key",
    "host_key.known_hosts": "known_hosts",
    "host_key.policy": "policy",
    "timeouts.tcp": "timeouts.tcp",
    "jump": "jump",
}


def _base_source(defaults: Target, defaults_set: frozenset[str]) -> Callable[[str], str]:
    """Where a setting not given for the target itself came from: the file's `defaults:`,
    the environment (the credential variables), or preflight's built-in default."""

    def source(key: str) -> str:
        if key in defaults_set and defaults.origin:
            return f"defaults ({defaults.origin})"
        if key == "auth.key" and defaults.auth.key_variable:
            return "environment"
        return "built-in default"

    return source


def _first_existing(paths: tuple[str, ...]) -> str | None:
    return next((path for path in paths if os.path.exists(path)), paths[0] if paths else None)


def _with_identity(
    auth: AuthConfig, found: sshconfig.HostConfig, ssh: sshconfig.SshConfig
) -> tuple[AuthConfig, str | None, str | None]:
    """The key `ssh` would offer first: the first IdentityFile that exists (or the first one
    named, so that a missing file is reported), else — when nothing else is configured — the
    first of ssh's default identity files that exists. Returns the origin (None if unchanged)
    and, when ssh would go on to offer more keys than that one, a note that says so."""
    if found.identity_files:
        paths = tuple(setting.value for setting in found.identity_files)
        chosen = _first_existing(paths)
        origin = next(s.origin for s in found.identity_files if s.value == chosen)
    elif not auth.has_credentials:
        paths = tuple(ssh.expand_home(path) for path in sshconfig.DEFAULT_IDENTITY_FILES)
        chosen = next((path for path in paths if os.path.exists(path)), None)
        origin = "ssh's default identity files"
        if chosen is None:
            return auth, None, None
    else:
        return auth, None, None
    assert chosen is not None
    existing = [path for path in dict.fromkeys(paths) if os.path.exists(path)]
    note = None
    if len(existing) > 1:
        shown = ", ".join(ssh.display(path) for path in existing)
        note = (
            f"ssh offers each of {shown} in turn; preflight offers only the first, "
            f"{ssh.display(existing[0])}: if the server refuses it, name the key to check with "
            "IdentityFile or $SSH_PRIVATE_KEY"
        )
    # The full path: messages and reproduce commands must work in any shell, as written.
    key_source = f"file {chosen}"
    return replace(auth, key=Secret(chosen), key_source=key_source), origin, note


def _host_key_from_ssh(
    host_key: HostKeyConfig, found: sshconfig.HostConfig, ssh: sshconfig.SshConfig
) -> tuple[HostKeyConfig, str | None, str | None]:
    known_origin = policy_origin = None
    if found.known_hosts_files is not None:
        files = found.known_hosts_files.value
        host_key = replace(host_key, known_hosts=_first_existing(files))
        known_origin = found.known_hosts_files.origin
    if found.strict_host_key_checking is not None:
        policy = _STRICTNESS[found.strict_host_key_checking.value]
        host_key = replace(host_key, policy=policy)
        policy_origin = found.strict_host_key_checking.origin
    if found.host_key_alias is not None:
        host_key = replace(host_key, alias=found.host_key_alias.value)
    return host_key, known_origin, policy_origin


def _hop_from_ssh(
    jump: sshconfig.JumpHost,
    ssh: sshconfig.SshConfig,
    inherited: AuthConfig,
    host_key: HostKeyConfig,
    *,
    tcp_timeout_set: bool,
) -> Hop:
    """A ProxyJump host as `ssh -J` reaches it: its own HostName, Port, User, IdentityFile,
    UserKnownHostsFile, StrictHostKeyChecking and ConnectTimeout (unless the target's tcp
    timeout was set explicitly, which then applies to every hop); the user defaults to the
    local one."""
    found = jump.config
    auth, _, _ = _with_identity(inherited, found, ssh)
    hop_host_key, _, _ = _host_key_from_ssh(replace(host_key, fingerprints=()), found, ssh)
    own_timeout = found.connect_timeout
    # `ssh -J entry` takes the jump host's settings from ssh_config alone (no -i, no -o): a
    # printed command may name the hop so only when that is what preflight used for it.
    default_known = ssh.expand_home(DEFAULT_KNOWN_HOSTS)
    inherited_known = host_key.known_hosts
    alike = (
        (bool(found.identity_files) or not inherited.has_credentials)
        and not inherited.passphrase
        and (
            found.known_hosts_files is not None
            or (
                inherited_known is not None
                and not is_known_hosts_content(inherited_known)
                and ssh.expand_home(inherited_known) == default_known
            )
        )
        and (found.strict_host_key_checking is not None or host_key.policy == "strict")
    )
    return Hop(
        host=found.hostname.value if found.hostname else jump.spec.host,
        port=jump.spec.port or (found.port.value if found.port else 22),
        user=jump.spec.user or (found.user.value if found.user else ssh.local_user or None),
        auth=auth,
        host_key=hop_host_key,
        origin=jump.origin,
        tcp_timeout=(
            float(own_timeout.value) if own_timeout is not None and not tcp_timeout_set else None
        ),
        alias=jump.written if alike else None,
    )


def _route(hops: tuple[Hop, ...]) -> str:
    return " → ".join(f"{hop.user}@{hop.endpoint}" if hop.user else hop.endpoint for hop in hops)


def _apply_ssh_config(
    target: Target,
    ssh: sshconfig.SshConfig,
    *,
    explicit: frozenset[str],
    explicit_origin: str,
    base_source: Callable[[str], str],
) -> Target:
    """`target` with what OpenSSH client config says for its host, in the order of precedence
    given for the target itself (`explicit`, flat keys) > ssh_config > defaults, and — when the
    ssh config had anything to say about this host — the source of every setting recorded in
    `Target.sources`."""
    try:
        found = ssh.lookup(
            target.host,
            user=target.user if "user" in explicit else None,
            port=target.port if "port" in explicit else None,
            default_user=target.user,
            default_port=target.port,
        )
        chain = () if "jump" in explicit else ssh.jump_chain(found)
    except sshconfig.SshConfigError as exc:
        raise ConfigError(exc.file, exc.line, exc.message) from None
    sources: list[SettingSource] = []

    def pick(key: str, current: Any, setting: sshconfig.Setting[Any] | None) -> tuple[Any, str]:
        if key in explicit:
            return current, explicit_origin
        if setting is not None:
            return setting.value, setting.origin
        return current, base_source(key)

    host = found.hostname.value if found.hostname else target.host
    sources.append(
        SettingSource(
            "hostname", host, found.hostname.origin if found.hostname else explicit_origin
        )
    )
    port, origin = pick("port", target.port, found.port)
    sources.append(SettingSource("port", str(port), origin))
    user, origin = pick("user", target.user, found.user)
    sources.append(SettingSource("user", user or "(none)", origin))

    auth = target.auth
    key_origin = explicit_origin
    identity_note = None
    if "auth.key" not in explicit:
        auth, identity_origin, identity_note = _with_identity(target.auth, found, ssh)
        key_origin = identity_origin or base_source("auth.key")
    if auth.key:
        shown = auth.key_source or "(configured)"
        if shown.startswith("file "):
            shown = "file " + ssh.display(shown.removeprefix("file "))
        sources.append(SettingSource("key", shown, key_origin))

    host_key = target.host_key
    known_origin = policy_origin = None
    if not {"host_key.known_hosts", "host_key.policy"} <= explicit:
        updated, known_origin, policy_origin = _host_key_from_ssh(host_key, found, ssh)
        if "host_key.known_hosts" not in explicit:
            host_key = replace(host_key, known_hosts=updated.known_hosts)
        else:
            known_origin = None
        if "host_key.policy" not in explicit:
            host_key = replace(host_key, policy=updated.policy)
        else:
            policy_origin = None
    if found.host_key_alias is not None:  # checks.yaml has no alias of its own to win over it
        host_key = replace(host_key, alias=found.host_key_alias.value)
    known_hosts = host_key.known_hosts
    shown_known = ssh.display(known_hosts) if known_hosts and "\n" not in known_hosts else None
    sources.append(
        SettingSource(
            "known_hosts",
            shown_known or ("(content)" if known_hosts else "none"),
            known_origin
            or (explicit_origin if "host_key.known_hosts" in explicit else None)
            or base_source("host_key.known_hosts"),
        )
    )
    if found.host_key_alias is not None:
        sources.append(
            SettingSource("host key alias", found.host_key_alias.value, found.host_key_alias.origin)
        )
    sources.append(
        SettingSource(
            "host key policy",
            host_key.policy,
            policy_origin
            or (explicit_origin if "host_key.policy" in explicit else None)
            or base_source("host_key.policy"),
        )
    )

    timeouts = target.timeouts
    seconds, origin = pick(
        "timeouts.tcp",
        timeouts.tcp,
        found.connect_timeout,
    )
    timeouts = replace(timeouts, tcp=float(seconds))
    sources.append(SettingSource("tcp timeout", f"{float(seconds):g}s", origin))

    notes = list(found.notes)
    if identity_note is not None:
        notes.append(identity_note)
    jump = target.jump
    if "jump" in explicit:
        jump_origin = explicit_origin
    elif found.proxy_jump is not None:
        unset = tuple(v for v in target.auth.unset if v != ENV_PASSWORD)
        inherited = _without_password(target.auth, unset)
        jump = tuple(
            _hop_from_ssh(
                hop,
                ssh,
                inherited,
                target.host_key,
                tcp_timeout_set="timeouts.tcp" in explicit,
            )
            for hop in chain
        )
        jump_origin = found.proxy_jump.origin
        for hop in chain:
            notes.extend(note for note in hop.config.notes if note not in notes)
    else:
        jump_origin = base_source("jump")
    if jump or found.proxy_jump is not None:
        sources.append(SettingSource("jump", _route(jump) or "none", jump_origin))
    if "jump" not in explicit and found.proxy_jump is not None:
        # The hops came from ssh config: a hop with its own ConnectTimeout says where from.
        for index, (built, jump_host) in enumerate(zip(jump, chain, strict=True), start=1):
            setting = jump_host.config.connect_timeout
            if built.tcp_timeout is not None and setting is not None:
                sources.append(
                    SettingSource(
                        f"jump{index} tcp timeout", f"{built.tcp_timeout:g}s", setting.origin
                    )
                )
    if found.proxy_command is not None and "jump" not in explicit:
        notes.append(
            f"{found.proxy_command.origin}: ProxyCommand is not supported by preflight (it would "
            "run a command); the host is checked without it, which may not be the way ssh "
            "reaches it. Use ProxyJump, or checks.yaml `jump:`, for a jump host"
        )
    said_something = (
        any(
            setting is not None
            for setting in (
                found.hostname,
                found.port,
                found.user,
                found.known_hosts_files,
                found.proxy_jump,
                found.proxy_command,
                found.connect_timeout,
                found.strict_host_key_checking,
                found.host_key_alias,
            )
        )
        or bool(found.identity_files)
        or auth is not target.auth
        or bool(notes)
    )
    return replace(
        target,
        host=host,
        port=port,
        user=user,
        auth=auth,
        host_key=host_key,
        timeouts=timeouts,
        jump=jump,
        ssh_config=ssh.option,
        # Only worth a line in the report when the ssh config had something to say here.
        sources=tuple(sources) if said_something else (),
        config_notes=tuple(notes),
    )


# --------------------------------------------------------------------------- the file parser


_FieldParser = Callable[["_Parser", YNode, int, str], Any]

# Keys whose explicit `null` is a value rather than "back to the built-in default": no
# known_hosts file, and no credential (not even the one the environment would supply).
_NULL_VALUES: Final[dict[str, Any]] = {
    "host_key.known_hosts": None,
    "auth.password": _Cred(),
    "auth.key": _Cred(),
    "auth.passphrase": _Cred(),
}


class _Parser:
    """Walks the YAML tree of one file; `fail` raises ConfigError at a line of that file."""

    def __init__(
        self, filename: str, environ: Mapping[str, str], ssh_option: str | None = None
    ) -> None:
        self.filename = filename
        self.environ = environ
        self.shared: dict[tuple[Any, ...], Any] = {}
        # The command line's -F FILE / none: applies to every target, whatever the file says.
        self.ssh_option = ssh_option
        self.ssh_configs: dict[str | None, sshconfig.SshConfig | None] = {}
        self.defaults_set: frozenset[str] = frozenset()
        self.defaults_target: Target | None = None

    def fail(self, line: int, message: str) -> NoReturn:
        raise ConfigError(self.filename, line, message)

    # -- document structure

    def config(self, root: YNode | None) -> Config:
        if root is None:
            self.fail(1, "empty file: expected 'version: 1' and a list of 'targets'")
        if not isinstance(root, YMap):
            self.fail(
                root.line,
                "expected a mapping with 'version' and 'targets' at the top level, "
                f"got {_got(root)}",
            )
        entries = root.entries
        if "version" in entries:
            self.version(*entries["version"])
        self.check_keys(root, _TOP_KEYS, "", extension_prefix="x-")
        if "version" not in entries:
            self.fail(root.line, "missing 'version: 1' (the version of this file's format)")
        if "targets" not in entries:
            self.fail(root.line, "missing 'targets' (a list of hosts to check)")
        builtin = _builtin_values(self.environ)
        values = dict(builtin)
        defaults_origin = None
        if "defaults" in entries:
            line, node = entries["defaults"]
            defaults_origin = f"{self.filename}:{line}"
            if not (isinstance(node, YScalar) and node.value is None):
                if not isinstance(node, YMap):
                    self.fail(line, f"defaults: expected a mapping, got {_got(node)}")
                layer = self.layer(node, "defaults", _DEFAULTS_KEYS)
                self.defaults_set = frozenset(layer)
                _merge(values, layer, builtin)
        defaults = _build_target(values, "defaults", "", defaults_origin)
        self.defaults_target = defaults
        targets = self.targets(*entries["targets"], values, builtin)
        return Config(
            path=self.filename, targets=targets, defaults=defaults, defaults_set=self.defaults_set
        )

    def version(self, line: int, node: YNode) -> None:
        value = node.value if isinstance(node, YScalar) else None
        if isinstance(value, int) and not isinstance(value, bool):
            if value != CONFIG_VERSION:
                self.fail(
                    line,
                    f"version: unsupported version {value}; this preflight reads version "
                    f"{CONFIG_VERSION}",
                )
            return
        self.fail(line, f"version: expected the number {CONFIG_VERSION}, got {_got(node)}")

    def check_keys(
        self, node: YMap, allowed: tuple[str, ...], path: str, extension_prefix: str | None = None
    ) -> None:
        """Reject unknown keys; `extension_prefix` keys (top-level `x-…`, a home for anchors,
        as in Compose files) are allowed and ignored."""
        for key, (line, _value) in node.entries.items():
            if key in allowed or (extension_prefix and key.startswith(extension_prefix)):
                continue
            where = f"{path}: unknown key" if path else "unknown key"
            homes = [s for s, subs in _SECTIONS.items() if key in subs and s in allowed]
            meant = _OTHER_WORDS.get(key.lower())
            section, dot, sub = key.partition(".")
            if dot and section in allowed and sub in _SECTIONS.get(section, ()):
                # As the reports and hints name a setting (`host_key.fingerprints`).
                hint = f"a nested key: write {section}: {{{sub}: …}}"
            elif path == "defaults" and key in ("name", "host"):
                hint = "it is set per target, not in defaults"
            elif homes:
                # Before any near miss: `path` is sftp's, however close it looks to `auth`.
                hint = f"it belongs under '{homes[0]}:'"
            elif meant is not None and meant[0] in allowed:
                hint = meant[1]
            elif path == "defaults" and meant is not None and meant[0] in ("name", "host"):
                hint = f"'{meant[0]}' is set per target, not in defaults"
            elif hint := _suggest(key, allowed):
                pass
            else:
                hint = "expected one of: " + ", ".join(allowed)
            self.fail(line, f"{where} '{key}' ({hint})")

    def targets(
        self, line: int, node: YNode, defaults: dict[str, Any], builtin: dict[str, Any]
    ) -> tuple[Target, ...]:
        is_null = isinstance(node, YScalar) and node.value is None
        if not (is_null or isinstance(node, YSeq)):
            self.fail(line, f"targets: expected a list of targets, got {_got(node)}")
        items = node.items if isinstance(node, YSeq) else []
        if not items:
            self.fail(line, "targets: expected at least one target")
        result: list[Target] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            path = f"targets[{index}]"
            if not isinstance(item, YMap):
                self.fail(item.line, _not_a_target_mapping(path, item))
            target = self.target(item, path, defaults, builtin)
            name_line = item.entries["name"][0] if "name" in item.entries else item.line
            if target.name in seen:
                self.fail(
                    name_line,
                    f"{path}: duplicate target name '{_short(target.name)}' (first defined at "
                    f"line {seen[target.name]}); give each target a distinct 'name'",
                )
            seen[target.name] = name_line
            result.append(target)
        return tuple(result)

    def target(
        self, node: YMap, path: str, defaults: dict[str, Any], builtin: dict[str, Any]
    ) -> Target:
        layer = self.layer(node, path, _TARGET_KEYS)
        if "host" not in node.entries:
            self.fail(node.line, f"{path}: missing 'host' (the name or address to check)")
        host_line, host_node = node.entries["host"]
        host = self.host(host_node, host_line, f"{path}.host")
        values = dict(defaults)
        _merge(values, layer, builtin)
        name = _display_name(host, values["port"])
        name_entry = node.entries.get("name")
        if name_entry is not None:
            name_node = name_entry[1]
            if not (isinstance(name_node, YScalar) and name_node.value is None):
                name = self.string(name_node, name_entry[0], f"{path}.name").value
        origin = f"{self.filename}:{node.line}"
        target = _build_target(values, name, host, origin, self.shared)
        ssh = self.ssh_config_for(values["ssh_config"])
        if ssh is None:
            return target
        assert self.defaults_target is not None
        return _apply_ssh_config(
            target,
            ssh,
            explicit=frozenset(key for key in layer if key in _SSH_SETTINGS),
            explicit_origin=origin,
            base_source=_base_source(self.defaults_target, self.defaults_set),
        )

    def ssh_config_for(self, setting: bool | str) -> sshconfig.SshConfig | None:
        """The OpenSSH client config for a target whose `ssh_config` is `setting` (False, True
        for the usual files, or a path), unless the command line said which (-F)."""
        if self.ssh_option is not None:
            option: str | None = self.ssh_option
        elif setting is False:
            return None
        else:
            option = None if setting is True else str(setting)
        if option not in self.ssh_configs:
            self.ssh_configs[option] = open_ssh_config(option, self.environ)
        return self.ssh_configs[option]

    def layer(self, node: YMap, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        """Parse the merge-able keys of a `defaults:` or target mapping into flat keys."""
        self.check_keys(node, allowed, path)
        layer: dict[str, Any] = {}
        for key, (line, value) in node.entries.items():
            if key in ("name", "host"):
                continue
            is_null = isinstance(value, YScalar) and value.value is None
            if key in _SECTIONS:
                if is_null:
                    layer[key] = CLEAR
                    continue
                layer.update(self.section(key, line, value, path))
            elif is_null:
                layer[key] = CLEAR
            else:
                layer[key] = _FIELDS[key](self, value, line, f"{path}.{key}")
        return layer

    # -- values

    def expand(self, raw: str, line: int, path: str) -> _Text:
        """`${VAR}` / `${VAR:-default}` / `$$`; unset variables are reported, not rejected."""
        if "\x00" in raw:
            # No host, path or user name can hold one (the system would refuse it later).
            self.fail(line, f"{path}: contains a NUL character (\\0)")
        if "$" not in raw:
            return _Text(raw, raw)
        parts: list[str] = []
        refs: list[_Ref] = []
        position = 0
        for match in _REF_TOKEN.finditer(raw):
            parts.append(raw[position : match.start()])
            position = match.end()
            token = match.group(0)
            if token == "$$":
                parts.append("$")
                continue
            body = match.group(1)
            if body is None:
                self.fail(line, f"{path}: '${{' without a closing '}}'")
            ref = _REF_BODY.fullmatch(body)
            if ref is None:
                self.fail(
                    line,
                    f"{path}: bad variable reference '{_short(token)}' "
                    "(expected ${NAME} or ${NAME:-default})",
                )
            name, default = ref.group(1), ref.group(2)
            value = self.environ.get(name)
            if not value and default is not None:
                value = default
            refs.append(_Ref(name, missing=not value))
            parts.append(value or "")
        parts.append(raw[position:])
        return _Text("".join(parts), raw, tuple(refs))

    def string(self, node: YNode, line: int, path: str, what: str = "a string") -> _Text:
        """A non-credential string: numbers are taken as written, unset variables are errors."""
        if isinstance(node, YScalar):
            if isinstance(node.value, str):
                text = self.expand(node.value, line, path)
                for ref in text.refs:
                    if ref.missing:
                        state = "empty" if ref.name in self.environ else "not set"
                        self.fail(
                            line,
                            f"{path}: environment variable '{ref.name}' is {state} "
                            f"(set it, or write ${{{ref.name}:-default}})",
                        )
                if not text.value:
                    self.fail(line, f"{path}: expected {what}, got an empty string")
                return text
            if isinstance(node.value, int | float) and not isinstance(node.value, bool):
                return _Text(node.raw, node.raw)
        self.fail(line, f"{path}: expected {what}, got {_got(node)}")

    def host(self, node: YNode, line: int, path: str) -> str:
        text = self.string(node, line, path, "a host name or IP address")
        host = text.value
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                self.fail(line, f"{path}: {text.shown()} in [brackets] is not an IPv6 address")
        problem = _host_problem(host)
        if problem:
            self.fail(line, f"{path}: {text.shown()} {problem}")
        return host

    def user(self, node: YNode, line: int, path: str) -> str:
        return self.string(node, line, path, "a user name").value

    def number_text(self, node: YNode, line: int, path: str, what: str) -> _Text | None:
        """The text of a number: as written for a YAML number (so `0022` is 22, not octal 18),
        or after expansion for a string such as `${SFTP_PORT}`; None for other kinds of value."""
        if not isinstance(node, YScalar) or isinstance(node.value, bool) or node.value is None:
            return None
        if isinstance(node.value, str):
            return self.string(node, line, path, what)
        return _Text(node.raw, node.raw)

    def port(self, node: YNode, line: int, path: str) -> int:
        text = self.number_text(node, line, path, "an integer 1..65535")
        if text is not None and _DIGITS.fullmatch(text.value) and 1 <= int(text.value) <= 65535:
            return int(text.value)
        got = _got(node) if text is None or not text.refs else text.shown()
        self.fail(line, f"{path}: expected an integer 1..65535, got {got}")

    def seconds(self, node: YNode, line: int, path: str, limit: float) -> float:
        text = self.number_text(node, line, path, "a number of seconds")
        if text is not None and _NUMBER.fullmatch(text.value) and 0 < float(text.value) <= limit:
            return float(text.value)
        got = _got(node) if text is None or not text.refs else text.shown()
        self.fail(line, f"{path}: expected a number of seconds > 0 and <= {limit:g}, got {got}")

    def timeout(self, node: YNode, line: int, path: str) -> float:
        return self.seconds(node, line, path, MAX_TIMEOUT)

    def deadline(self, node: YNode, line: int, path: str) -> float:
        return self.seconds(node, line, path, MAX_DEADLINE)

    def flag(self, node: YNode, line: int, path: str) -> bool:
        if isinstance(node, YScalar):
            if isinstance(node.value, bool):
                return node.value
            if isinstance(node.value, str):
                text = self.string(node, line, path, "true or false")
                word = text.value.strip().lower()
                if word in ("true", "yes", "on", "1"):
                    return True
                if word in ("false", "no", "off", "0"):
                    return False
                self.fail(line, f"{path}: expected true or false, got {text.shown()}")
        self.fail(line, f"{path}: expected true or false, got {_got(node)}")

    def stages(self, node: YNode, line: int, path: str) -> tuple[Stage, ...]:
        names = ", ".join(ALL_STAGES)
        if not isinstance(node, YSeq):
            self.fail(line, f"{path}: expected a list of stages like [dns, tcp], got {_got(node)}")
        if not node.items:
            self.fail(line, f"{path}: expected at least one stage, starting with 'dns'")
        stages: list[Stage] = []
        for item in node.items:
            text = self.string(item, item.line, path, f"a stage name ({names})")
            try:
                stage = Stage(text.value)
            except ValueError:
                hint = _suggest(text.value, list(ALL_STAGES)) or f"expected one of {names}"
                self.fail(item.line, f"{path}: unknown stage {text.shown()} ({hint})")
            if stage in stages:
                self.fail(item.line, f"{path}: '{stage}' is listed twice")
            expected = ALL_STAGES[len(stages)]
            if stage is not expected:
                if not stages:
                    self.fail(item.line, f"{path}: must start with 'dns', got '{stage}'")
                missing = ALL_STAGES[len(stages) : ALL_STAGES.index(stage)]
                needed = " and ".join(f"'{s}'" for s in missing)
                self.fail(
                    item.line,
                    f"{path}: '{stage}' needs {needed} before it (stages run in the order "
                    f"{names}, each only if the one before passed)",
                )
            stages.append(stage)
        return tuple(stages)

    def credential(self, node: YNode, line: int, path: str) -> _Cred:
        """`password` / `passphrase`: only a `${VAR}` reference, never the secret itself."""
        field = path.rsplit(".", 1)[1]
        variable = ENV_PASSWORD if field == "password" else ENV_PASSPHRASE
        if isinstance(node, YMap | YSeq):
            self.fail(line, f"{path}: expected ${{{variable}}}, got {_got(node)}")
        assert isinstance(node, YScalar)
        if not (isinstance(node.value, str) and _SINGLE_REF.fullmatch(node.value)):
            # The literal is not repeated: it is a secret, even if a misplaced one.
            self.fail(
                line,
                f"{path}: a literal {field} in a config file would be committed with it; "
                f'reference an environment variable instead: {field}: "${{{variable}}}"',
            )
        text = self.expand(node.value, line, path)
        ref = text.refs[0]
        if ref.missing:
            return _Cred(unset=(ref.name,))
        return _Cred(Secret(text.value), source=f"variable {ref.name}", variable=ref.name)

    def key(self, node: YNode, line: int, path: str) -> _Cred:
        """`key`: a path, or `${VAR}` holding a path or the key text."""
        if not (isinstance(node, YScalar) and isinstance(node.value, str)):
            self.fail(line, f"{path}: expected a key file path or ${{{ENV_KEY}}}, got {_got(node)}")
        if keytext.looks_like_key_text(node.value):
            self.fail(
                line,
                f"{path}: a private key written in a config file would be committed with it; "
                f'put it in a CI variable and write key: "${{{ENV_KEY}}}"',
            )
        text = self.expand(node.value, line, path)
        missing = tuple(ref.name for ref in text.refs if ref.missing)
        if missing:
            return _Cred(unset=missing)
        if not text.value:
            self.fail(line, f"{path}: expected a key file path or ${{{ENV_KEY}}}, got ''")
        whole = len(text.refs) == 1 and re.fullmatch(r"\$\{[^}]*\}", text.raw.strip())
        return _key_value(text.value, text.refs[0].name if whole else None, self.environ)

    def known_hosts(self, node: YNode, line: int, path: str) -> str:
        text = self.string(node, line, path, "a known_hosts path or content")
        whole = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}", text.raw.strip())
        if whole and text.refs and not text.refs[0].missing and self.environ.get(whole[1]):
            return FromVariable(text.value, whole[1])
        return text.value

    def fingerprints(self, node: YNode, line: int, path: str) -> tuple[str, ...]:
        if not isinstance(node, YSeq):
            self.fail(line, f"{path}: expected a list of 'SHA256:…' fingerprints, got {_got(node)}")
        result: list[str] = []
        for item in node.items:
            text = self.string(item, item.line, path, "a 'SHA256:…' fingerprint")
            match = _FINGERPRINT.fullmatch(text.value.strip())
            valid = False
            if match:
                try:
                    valid = len(base64.b64decode(match[1] + "=", validate=True)) == 32
                except binascii.Error:
                    valid = False
            if not match or not valid:
                hint = (
                    "only SHA256 fingerprints are supported: ssh-keygen -l -E sha256 -f KEYFILE"
                    if text.value.upper().startswith("MD5:") or text.value.count(":") > 2
                    else "expected 'SHA256:' and 43 base64 characters, as ssh-keygen -l prints"
                )
                self.fail(item.line, f"{path}: malformed fingerprint {text.shown()} ({hint})")
            fingerprint = "SHA256:" + match[1]
            if fingerprint not in result:
                result.append(fingerprint)
        return tuple(result)

    def policy(self, node: YNode, line: int, path: str) -> HostKeyPolicyName:
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            text = _Text(node.raw.lower(), node.raw)  # YAML 1.1 reads a bare `off` as false
        else:
            text = self.string(node, line, path, "strict, warn or off")
        for policy in _POLICIES:
            if text.value == policy:
                return policy
        hint = _suggest(text.value, list(_POLICIES))
        hint = f" ({hint})" if hint else ""
        self.fail(line, f"{path}: expected strict, warn or off, got {text.shown()}{hint}")

    def sftp_path(self, node: YNode, line: int, path: str) -> str:
        return self.string(node, line, path, "a remote directory path").value

    def write(self, node: YNode, line: int, path: str) -> WriteCheck | None:
        """`true` (a line of text), `false`, or a size to upload (`1MiB`): the rate is then
        measured."""
        expected = "true, false or a size to upload like 1MiB"
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return WriteCheck(len(UPLOAD_NOTE)) if node.value else None
        text = self.number_text(node, line, path, expected)
        if text is None:
            self.fail(line, f"{path}: expected {expected}, got {_got(node)}")
        word = text.value.strip().lower()
        if word in ("true", "yes", "on"):
            return WriteCheck(len(UPLOAD_NOTE))
        if word in ("false", "no", "off"):
            return None
        size = self.size_of(text, line, path, expected, MAX_WRITE)
        return WriteCheck(size, sized=True)

    def min_free(self, node: YNode, line: int, path: str) -> int:
        expected = "a size like 5GiB"
        text = self.number_text(node, line, path, expected)
        if text is None:
            self.fail(line, f"{path}: expected {expected}, got {_got(node)}")
        return self.size_of(text, line, path, expected, MAX_MIN_FREE)

    def size_of(self, text: _Text, line: int, path: str, expected: str, limit: int) -> int:
        """Bytes from `1048576`, `1MiB`, `1.5 GB`: IEC units count in 1024s, SI ones in 1000s."""
        try:
            size = units.parse_size(text.value)
        except units.SizeError as exc:
            self.fail(line, f"{path}: expected {expected}, got {text.shown()} ({exc})")
        if not 0 < size <= limit:
            self.fail(
                line,
                f"{path}: a size must be above 0 and at most {units.format_size(limit)}, got "
                f"{text.shown()}",
            )
        return size

    def ssh_config(self, node: YNode, line: int, path: str) -> bool | str:
        """`true` (~/.ssh/config and /etc/ssh/ssh_config, as ssh reads them), `false`, or the
        path of an ssh config file (relative to this file's directory)."""
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        text = self.string(node, line, path, "true, false or the path of an ssh config file")
        word = text.value.strip().lower()
        if word in ("true", "yes", "on"):
            return True
        if word in ("false", "no", "off"):
            return False
        if word == "none":
            return False
        file = _expand_user(text.value, self.environ)
        if not os.path.isabs(file):
            file = os.path.join(os.path.dirname(os.path.abspath(self.filename)), file)
        return file

    def jump(self, node: YNode, line: int, path: str) -> tuple[_HopSpec, ...]:
        """`jump:` — one jump host (`user@bastion:22`, or a mapping with `host`, `port`, `user`,
        `auth`, `host_key`), or a list of them crossed in order (a chain)."""
        if isinstance(node, YSeq):
            items = [(item, item.line, f"{path}[{n}]") for n, item in enumerate(node.items)]
        else:
            items = [(node, line, path)]
        if len(items) > MAX_JUMP_HOPS:
            self.fail(line, f"{path}: more than {MAX_JUMP_HOPS} jump hosts")
        return tuple(self.hop(item, item_line, item_path) for item, item_line, item_path in items)

    def hop(self, node: YNode, line: int, path: str) -> _HopSpec:
        if isinstance(node, YMap):
            self.check_keys(node, _HOP_KEYS, path)
            if "host" not in node.entries:
                self.fail(node.line, f"{path}: missing 'host' (the jump host's name or address)")
            host = self.host(node.entries["host"][1], node.entries["host"][0], f"{path}.host")
            port = user = None
            if "port" in node.entries:
                port_line, port_node = node.entries["port"]
                port = self.port(port_node, port_line, f"{path}.port")
            if "user" in node.entries:
                user_line, user_node = node.entries["user"]
                user = self.user(user_node, user_line, f"{path}.user")
            return _HopSpec(
                host,
                port,
                user,
                self.hop_section(node, "auth", path),
                self.hop_section(node, "host_key", path),
                f"{self.filename}:{node.line}",
            )
        if not (isinstance(node, YScalar) and isinstance(node.value, str)):
            self.fail(
                line,
                f"{path}: expected a jump host like 'user@bastion:22', a mapping with 'host', or "
                f"a list of them, got {_got(node)}",
            )
        text = self.string(node, line, path, "a jump host like 'user@bastion:22'")
        value = text.value.strip()
        if _holds_password(value):
            # Not repeated: the part before '@' holds a password.
            self.fail(
                line,
                f"{path}: a password in a jump host would be committed with this file; give the "
                f'jump host an auth mapping with password: "${{{ENV_PASSWORD}}}" or a key instead',
            )
        spec = sshconfig.parse_jump_spec(value)
        if spec is None:
            self.fail(
                line,
                f"{path}: {text.shown()} is not a jump host (expected [user@]host[:port] or "
                "ssh://user@host:port)",
            )
        problem = _host_problem(spec.host)
        if problem:
            self.fail(line, f"{path}: jump host '{_short(spec.host)}' {problem}")
        return _HopSpec(spec.host, spec.port, spec.user, None, None, f"{self.filename}:{line}")

    def hop_section(self, node: YMap, key: str, path: str) -> dict[str, Any] | None:
        """A jump host's `auth` or `host_key` mapping as flat keys; None when not given (the
        jump host then inherits the target's key and agent, or known_hosts and policy)."""
        entry = node.entries.get(key)
        if entry is None:
            return None
        line, value = entry
        if isinstance(value, YScalar) and value.value is None:
            return {}
        return self.section(key, line, value, path)

    def section(self, key: str, line: int, value: YNode, path: str) -> dict[str, Any]:
        """A `timeouts`/`auth`/`host_key`/`sftp` mapping as flat keys (`auth.key`…); a key set
        to null clears what it would inherit."""
        section_path = f"{path}.{key}"
        if not isinstance(value, YMap):
            self.fail(
                line,
                f"{section_path}: expected a mapping like {_SECTION_EXAMPLES[key]}, "
                f"got {_got(value)}",
            )
        self.check_keys(value, _SECTIONS[key], section_path)
        flat_values: dict[str, Any] = {}
        for sub, (sub_line, sub_value) in value.entries.items():
            flat = f"{key}.{sub}"
            if isinstance(sub_value, YScalar) and sub_value.value is None:
                flat_values[flat] = _NULL_VALUES.get(flat, CLEAR)
            else:
                flat_values[flat] = _FIELDS[flat](self, sub_value, sub_line, f"{path}.{flat}")
        return flat_values


_FIELDS: Final[dict[str, _FieldParser]] = {
    "port": _Parser.port,
    "user": _Parser.user,
    "stages": _Parser.stages,
    "deadline": _Parser.deadline,
    **{f"timeouts.{stage}": _Parser.timeout for stage in ALL_STAGES},
    "auth.password": _Parser.credential,
    "auth.key": _Parser.key,
    "auth.passphrase": _Parser.credential,
    "auth.agent": _Parser.flag,
    "host_key.known_hosts": _Parser.known_hosts,
    "host_key.fingerprints": _Parser.fingerprints,
    "host_key.policy": _Parser.policy,
    "sftp.path": _Parser.sftp_path,
    "sftp.list": _Parser.flag,
    "sftp.write": _Parser.write,
    "sftp.min_free": _Parser.min_free,
    "jump": _Parser.jump,
    "ssh_config": _Parser.ssh_config,
    "trace": _Parser.flag,
}
