"""OpenSSH client configuration (ssh_config(5)), read the way `ssh HOST` reads it.

`SshConfig.lookup(host)` answers "what would `ssh HOST` use?" for the settings preflight needs —
HostName, Port, User, IdentityFile, UserKnownHostsFile, HostKeyAlias, ProxyJump (and ProxyCommand,
to say it is not supported), ConnectTimeout, StrictHostKeyChecking — each with the FILE:LINE it
came from, so a report can say "port 2222 from ~/.ssh/config:14". It follows ssh's rules: keywords
are case-insensitive; `Key Value`, `Key=Value` and quoted arguments; the first value obtained for a
keyword wins (IdentityFile accumulates); `Host` patterns with `*`, `?` and `!negation`, matched
against the name as given; `Include` with globs, relative to ~/.ssh (or /etc/ssh for the system
file); `Match host|originalhost|user|localuser|all`; `%` tokens, `${VAR}` and `~` — which is the
home directory of the passwd database (`passwd_home`), as ssh has it, not `$HOME`. What cannot be
evaluated without side effects or information preflight does not have (`Match exec`, `Match
canonical`, `Match localnetwork`…) is not guessed: the block is treated as not matching and a note
in `HostConfig.notes` says so. `SshConfig.jump_chain` resolves ProxyJump into the hosts crossed, as
ssh's nested `-J` invocations would. Pure Python, no paramiko (whose `paramiko.config` pulls in
`invoke`) and no network: the only I/O is reading the configuration files.
"""

from __future__ import annotations

import difflib
import glob
import ipaddress
import os
import re
import socket
from collections.abc import Mapping, Sequence
from typing import Generic, NamedTuple, NoReturn, TypeVar
from urllib.parse import unquote

__all__ = [
    "DEFAULT_IDENTITY_FILES",
    "DEFAULT_KNOWN_HOSTS_FILES",
    "SYSTEM_CONFIG",
    "USER_CONFIG",
    "ConfigFile",
    "HostConfig",
    "JumpHost",
    "JumpSpec",
    "Setting",
    "SshConfig",
    "SshConfigError",
    "parse_jump_spec",
    "passwd_home",
]

USER_CONFIG = "~/.ssh/config"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"
# What ssh tries when no IdentityFile is configured (those paramiko can load).
DEFAULT_IDENTITY_FILES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ed25519")
DEFAULT_KNOWN_HOSTS_FILES = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
MAX_INCLUDE_DEPTH = 16  # readconf.c READCONF_MAX_DEPTH
MAX_JUMP_HOPS = 8

T = TypeVar("T")

# Every keyword of ssh_config(5) (OpenSSH 10, with Debian's GSSAPI additions and the deprecated
# ones ssh still accepts), lower-cased. A keyword outside this list gets a note: ssh itself
# would refuse the file ("Bad configuration option").
_KEYWORDS_TEXT = """
    host match include addkeystoagent addressfamily batchmode bindaddress bindinterface
    canonicaldomains canonicalizefallbacklocal canonicalizehostname canonicalizemaxdots
    canonicalizepermittedcnames casignaturealgorithms certificatefile channeltimeout
    checkhostip ciphers clearallforwardings compression connectionattempts connecttimeout
    controlmaster controlpath controlpersist dynamicforward enableescapecommandline
    enablesshkeysign escapechar exitonforwardfailure fingerprinthash forkafterauthentication
    forwardagent forwardx11 forwardx11timeout forwardx11trusted gatewayports
    globalknownhostsfile gssapiauthentication gssapidelegatecredentials gssapikeyexchange
    gssapiclientidentity gssapiserveridentity gssapirenewalforcesrekey gssapitrustdns
    gssapikexalgorithms hashknownhosts hostbasedacceptedalgorithms hostbasedauthentication
    hostbasedkeytypes hostkeyalgorithms hostkeyalias hostname identitiesonly identityagent
    identityfile ignoreunknown ipqos kbdinteractiveauthentication kbdinteractivedevices
    kexalgorithms knownhostscommand localcommand localforward loglevel logverbose macs
    nohostauthenticationforlocalhost numberofpasswordprompts obscurekeystroketiming
    passwordauthentication permitlocalcommand permitremoteopen pkcs11provider port
    preferredauthentications proxycommand proxyjump proxyusefdpass pubkeyacceptedalgorithms
    pubkeyacceptedkeytypes pubkeyauthentication refuseconnection rekeylimit remotecommand
    remoteforward requesttty requiredrsasize revokedhostkeys securitykeyprovider sendenv
    serveralivecountmax serveraliveinterval sessiontype setenv stdinnull streamlocalbindmask
    streamlocalbindunlink stricthostkeychecking syslogfacility tag tcpkeepalive tunnel
    tunneldevice updatehostkeys usekeychain user userknownhostsfile verifyhostkeydns
    versionaddendum visualhostkey warnweakcrypto xauthlocation
    challengeresponseauthentication cipher compressionlevel dsaauthentication
    globalknownhostsfile2 identityfile2 keepalive kerberosauthentication
    kerberostgtpassing protocol rhostsauthentication rhostsrsaauthentication
    rsaauthentication smartcarddevice useprivilegedport useroaming userknownhostsfile2
    afstokenpassing fallbacktorsh usersh skeyauthentication tisauthentication
"""
_KNOWN_KEYWORDS = frozenset(_KEYWORDS_TEXT.split())

# The keywords this module interprets, for "did you mean" on a misspelt one.
_USED_KEYWORDS = (
    "Host",
    "Match",
    "Include",
    "HostName",
    "Port",
    "User",
    "IdentityFile",
    "UserKnownHostsFile",
    "HostKeyAlias",
    "ProxyJump",
    "ProxyCommand",
    "ConnectTimeout",
    "StrictHostKeyChecking",
    "IgnoreUnknown",
)

_STRICT_VALUES = {
    "yes": "yes",
    "true": "yes",
    "ask": "ask",
    "accept-new": "accept-new",
    "no": "no",
    "false": "no",
    "off": "no",
}
# Match criteria with an argument that need something preflight cannot know, or must not do
# (run a command); `canonical` and `final` (no argument) need a second pass it does not make.
_UNSUPPORTED_MATCH = ("exec", "localnetwork", "tagged", "version", "sessiontype", "command")
_TIME_PART = re.compile(r"([0-9]+)([sSmMhHdDwW]?)")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SshConfigError(Exception):
    """The ssh configuration cannot be used as ssh would; `file`:`line` says where."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(file, line, message)
        self.file = file
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class Setting(NamedTuple, Generic[T]):
    """A value from the configuration and where it was written ("~/.ssh/config:14")."""

    value: T
    origin: str


class JumpSpec(NamedTuple):
    """One entry of a ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`."""

    host: str
    user: str | None = None
    port: int | None = None


class HostConfig(NamedTuple):
    """What ssh_config says for one host name; every setting carries its origin.

    `hostname` has its tokens expanded; `identity_files` and `known_hosts_files` are expanded
    paths (tokens, `${VAR}`, `~`) in the order given. `proxy_jump` is `()` for `ProxyJump none`;
    `known_hosts_files` is `()` for `UserKnownHostsFile none`."""

    name: str
    hostname: Setting[str] | None = None
    port: Setting[int] | None = None
    user: Setting[str] | None = None
    identity_files: tuple[Setting[str], ...] = ()
    known_hosts_files: Setting[tuple[str, ...]] | None = None
    proxy_jump: Setting[tuple[JumpSpec, ...]] | None = None
    proxy_command: Setting[str] | None = None
    connect_timeout: Setting[int] | None = None
    strict_host_key_checking: Setting[str] | None = None
    host_key_alias: Setting[str] | None = None  # lower-cased, as ssh does
    notes: tuple[str, ...] = ()

    @property
    def jumps(self) -> tuple[JumpSpec, ...]:
        return self.proxy_jump.value if self.proxy_jump is not None else ()


class JumpHost(NamedTuple):
    """A jump host as ssh would reach it: its ProxyJump entry, where that was written, and the
    configuration for its name (its own HostName, Port, User, IdentityFile…)."""

    spec: JumpSpec
    origin: str
    config: HostConfig

    @property
    def written(self) -> str:
        """The ProxyJump entry as written (`ops@bastion:2222`), for `ssh -J` to look up again."""
        spec = self.spec
        host = f"[{spec.host}]" if ":" in spec.host else spec.host
        user = f"{spec.user}@" if spec.user else ""
        port = f":{spec.port}" if spec.port is not None else ""
        return f"{user}{host}{port}"


class ConfigFile(NamedTuple):
    """A configuration file to read: `path` (may start with `~`), whether it is a user file
    (relative Includes are then in ~/.ssh, else /etc/ssh), and whether it must exist (`-F`)."""

    path: str
    user: bool = True
    required: bool = False


class _Line(NamedTuple):
    """One keyword line of a file, split as ssh splits it."""

    number: int
    keyword: str  # lower-cased
    written: str  # as written, for messages
    args: list[str]
    rest: str  # the raw text after the keyword (ProxyCommand keeps it whole)


class _State:
    """Settings collected so far for one lookup: the first value of each keyword wins."""

    __slots__ = ("first", "identity", "ignore_unknown", "notes")

    def __init__(self) -> None:
        self.first: dict[str, tuple[list[str], str, int, str]] = {}
        self.identity: list[tuple[str, str, int, str]] = []
        self.notes: list[str] = []
        self.ignore_unknown: str | None = None


def parse_jump_spec(text: str) -> JumpSpec | None:
    """`[user@]host[:port]`, `[user@][v6]:port` or `ssh://[user@]host[:port]`; None if invalid."""
    if not text or any(ch.isspace() for ch in text):
        return None
    is_uri = text[:6].lower() == "ssh://"
    rest = text[6:] if is_uri else text
    if is_uri:
        rest = rest.removesuffix("/")
        if "/" in rest or "?" in rest or "#" in rest:
            return None
    user_part, at, hostport = rest.rpartition("@")
    user = (unquote(user_part) if is_uri else user_part) if at else None
    if at and not user:
        return None
    port_text: str | None = None
    if hostport.startswith("["):
        host, bracket, after = hostport[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            return None
        port_text = after[1:] if after else None
    elif hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
    elif ":" in hostport:
        return None  # a bare IPv6 address needs brackets to carry a port
    else:
        host = hostport
    if not host or "@" in host:
        return None
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            return None
        port = int(port_text)
    return JumpSpec(host=host, user=user, port=port)


def match_pattern(name: str, pattern: str) -> bool:
    """ssh's match_pattern: `*` any run, `?` one character, case-sensitive, whole string."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


def match_pattern_list(name: str, patterns: str, *, lower: bool = False) -> bool:
    """ssh's match_pattern_list: comma-separated patterns; a matching `!pattern` vetoes."""
    matched = False
    for raw in patterns.split(","):
        pattern = raw.lower() if lower else raw
        negated = pattern.startswith("!")
        if match_pattern(name, pattern[1:] if negated else pattern):
            if negated:
                return False
            matched = True
    return matched


def _split_args(text: str) -> list[str] | None:
    """readconf's argv_split: whitespace-separated, "double" and 'single' quotes, backslash
    escapes for quotes, backslash and (outside quotes) space; `#` starting an argument ends
    the line. None when a quote is not closed."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        arg: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if (
                c == "\\"
                and i + 1 < n
                and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " "))
            ):
                arg.append(text[i + 1])
                i += 2
                continue
            if not quote and c in " \t":
                break
            if not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                arg.append(c)
            i += 1
        if quote:
            return None
        args.append("".join(arg))
    return args


def _split_line(raw: str) -> tuple[str, str] | None:
    """(keyword, rest) of a line: the keyword ends at whitespace or `=`; then whitespace and
    at most one `=` are skipped. None for a blank or comment line."""
    line = raw.strip(" \t\r\n\f")
    if not line or line.startswith("#"):
        return None
    match = re.match(r"([^\s=]+)[ \t]*(?:=[ \t]*)?(.*)$", line, re.DOTALL)
    if match is None:
        return None
    return match.group(1), match.group(2)


def convtime(text: str) -> int | None:
    """ssh's convtime: `30`, `30s`, `1m30s`, `2h`… as seconds; None if malformed."""
    if not text:
        return None
    total, position = 0, 0
    for match in _TIME_PART.finditer(text):
        if match.start() != position:
            return None
        total += int(match.group(1)) * _TIME_UNITS[match.group(2).lower()]
        position = match.end()
    return total if position == len(text) else None


def passwd_home() -> str | None:
    """The home directory `ssh` expands `~` to and finds ~/.ssh/config in: the passwd
    database's entry for this user. OpenSSH ignores $HOME (`HOME=/tmp/x ssh -G h` reads the
    passwd home's config), and where the two differ (containers, `sudo -E`, CI images) preflight
    must read what ssh reads. None when this user has no passwd entry (an arbitrary container
    uid, where ssh itself refuses to run)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir or None
    except (ImportError, KeyError):
        return None


class SshConfig:
    """The configuration files ssh would read, parsed once, looked up per host name.

    `files` are read in order (the first value obtained wins): by default the user's
    ~/.ssh/config then /etc/ssh/ssh_config (missing ones are skipped), or one `-F` file.
    `home`, `local_user` and `environ` stand in for the process's own, for tests. `notes` are
    said with every host's lookup (which home was read, when $HOME points elsewhere)."""

    def __init__(
        self,
        files: Sequence[ConfigFile],
        *,
        home: str,
        local_user: str,
        environ: Mapping[str, str] | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        self.notes = tuple(notes)
        self.files = tuple(files)
        self.home = home.rstrip("/") or "/"
        self.local_user = local_user
        # For `Target.ssh_config`: one file that must exist is a `-F FILE`; else ssh's own.
        only = self.files[0] if len(self.files) == 1 and self.files[0].required else None
        self.option = self.expand_home(only.path) if only is not None else "default"
        self.environ = dict(os.environ if environ is None else environ)
        self._parsed: dict[str, list[_Line] | None] = {}

    @classmethod
    def default_files(cls) -> tuple[ConfigFile, ...]:
        return (ConfigFile(USER_CONFIG, user=True), ConfigFile(SYSTEM_CONFIG, user=False))

    # -- paths

    def expand_home(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            return self.home + path[1:]
        return path

    def display(self, path: str) -> str:
        """A path for messages: the home directory written as `~`."""
        if path == self.home or path.startswith(self.home + "/"):
            return "~" + path[len(self.home) :]
        return path

    # -- reading

    def _lines(self, path: str, *, required: bool, shown: str) -> list[_Line] | None:
        if path in self._parsed:
            return self._parsed[path]
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            if required:
                raise SshConfigError(shown, 1, "ssh config file not found") from None
            self._parsed[path] = None
            return None
        except IsADirectoryError:
            raise SshConfigError(shown, 1, "is a directory, not an ssh config file") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SshConfigError(shown, 1, f"cannot read the ssh config file: {reason}") from None
        text = data.decode("utf-8", errors="replace")
        lines: list[_Line] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            split = _split_line(raw)
            if split is None:
                continue
            keyword, rest = split
            args = _split_args(rest)
            if args is None:
                raise SshConfigError(shown, number, "invalid quotes (a quote is not closed)")
            lines.append(_Line(number, keyword.lower(), keyword, args, rest))
        self._parsed[path] = lines
        return lines

    # -- lookup

    def lookup(
        self,
        host: str,
        *,
        user: str | None = None,
        port: int | None = None,
        default_user: str | None = None,
        default_port: int = 22,
    ) -> HostConfig:
        """What ssh would use for `host` (the name as given). `user` and `port` are values
        given on the command line (they win, as ssh's own -l/-p and user@ do, and `Match user`
        sees them); `default_user`/`default_port` are what applies when neither the command
        line nor the configuration sets one (for `%r`, `%p`; by default the local user, 22)."""
        state = _State()
        state.notes.extend(self.notes)
        lookup = _Lookup(self, host, state, user)
        for config in self.files:
            path = self.expand_home(config.path)
            lookup.read(path, config.user, required=config.required, depth=0, never=False)
        return lookup.result(user, port, default_user or self.local_user, default_port)

    def jump_chain(self, config: HostConfig, *, depth: int = 0) -> tuple[JumpHost, ...]:
        """The jump hosts crossed to reach the host of `config`, first to last.

        As ssh does (a ProxyJump of `a,b` runs `ssh -J a -W … b`): each hop is looked up in the
        configuration with its own user and port from the ProxyJump entry, and the *first*
        hop's own ProxyJump (if any) is followed recursively; later hops' own ProxyJump is
        overridden by the list, as `-J` overrides it for them."""
        if config.proxy_jump is None or not config.proxy_jump.value:
            return ()
        origin = config.proxy_jump.origin
        specs = config.proxy_jump.value
        if depth + len(specs) > MAX_JUMP_HOPS:
            file, _, line = origin.rpartition(":")
            raise SshConfigError(
                file or origin,
                int(line) if line.isdigit() else 1,
                f"ProxyJump leads through more than {MAX_JUMP_HOPS} jump hosts (a ProxyJump loop?)",
            )
        hops: list[JumpHost] = []
        for index, spec in enumerate(specs):
            hop_config = self.lookup(spec.host, user=spec.user, port=spec.port)
            if index == 0:
                hops.extend(self.jump_chain(hop_config, depth=depth + len(specs)))
            hops.append(JumpHost(spec, origin, hop_config))
        return tuple(hops)


class _Lookup:
    """One pass over the files for one host name (readconf.c's read_config_file_depth)."""

    def __init__(self, config: SshConfig, host: str, state: _State, user: str | None) -> None:
        self.config = config
        self.host = host
        self.state = state
        self.command_line_user = user
        self.active = True

    def fail(self, origin: tuple[str, int], message: str) -> NoReturn:
        raise SshConfigError(origin[0], origin[1], message)

    def read(self, path: str, user_file: bool, *, required: bool, depth: int, never: bool) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            raise SshConfigError(
                self.config.display(path), 1, "too many nested Includes (an Include loop?)"
            )
        shown = self.config.display(path)
        lines = self.config._lines(path, required=required, shown=shown)
        if lines is None:
            return
        for line in lines:
            self.line(line, shown, user_file, depth, never)

    def line(self, line: _Line, shown: str, user_file: bool, depth: int, never: bool) -> None:
        origin = (shown, line.number)
        keyword, args = line.keyword, line.args
        if keyword == "host":
            if not args:
                self.fail(origin, "Host needs at least one pattern")
            self.active = not never and self.host_matches(args)
            return
        if keyword == "match":
            matched = self.match(args, origin, never)
            self.active = not never and matched
            return
        if keyword == "include":
            self.include(args, origin, user_file, depth, never)
            return
        if keyword not in _KNOWN_KEYWORDS:
            self.unknown(line, origin)
            return
        if keyword in _HANDLERS:
            _HANDLERS[keyword](self, line, origin)

    def host_matches(self, patterns: list[str]) -> bool:
        matched = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            if match_pattern(self.host, pattern[1:] if negated else pattern):
                if negated:
                    return False
                matched = True
        return matched

    def current_hostname(self) -> str:
        found = self.state.first.get("hostname")
        if found is None:
            return self.host
        return _expand_tokens(found[0][0], {"h": self.host}, (found[1], found[2]), "HostName")

    def current_user(self) -> str:
        if self.command_line_user is not None:
            return self.command_line_user
        found = self.state.first.get("user")
        return found[0][0] if found is not None else self.config.local_user

    def match(self, args: list[str], origin: tuple[str, int], never: bool) -> bool:
        """readconf.c's match_cfg_line for the criteria preflight can evaluate. A block that
        needs one it cannot evaluate (and that the others do not already rule out) does not
        match, and a note says its settings were not applied."""
        result = True
        unsupported: list[str] = []
        criteria = 0
        i = 0
        while i < len(args):
            attribute = args[i]
            negate = attribute.startswith("!")
            name = (attribute[1:] if negate else attribute).lower()
            i += 1
            if name == "all":
                if criteria > 1 or i < len(args):
                    self.fail(origin, f"'{attribute}' cannot be combined with other Match criteria")
                criteria += 1
                if negate:
                    result = False
                break
            criteria += 1
            if name in ("canonical", "final"):
                unsupported.append(attribute)
                continue
            if i >= len(args):
                self.fail(origin, f"Match {attribute} needs an argument")
            value = args[i]
            i += 1
            if name == "host":
                hit = match_pattern_list(self.current_hostname().lower(), value, lower=True)
            elif name == "originalhost":
                hit = match_pattern_list(self.host.lower(), value, lower=True)
            elif name == "user":
                hit = match_pattern_list(self.current_user(), value)
            elif name == "localuser":
                hit = match_pattern_list(self.config.local_user, value)
            elif name in _UNSUPPORTED_MATCH:
                unsupported.append(attribute)
                continue
            else:
                self.fail(origin, f"unsupported Match criterion '{attribute}'")
            if hit == negate:
                result = False
        if criteria == 0:
            self.fail(origin, "Match needs at least one criterion")
        if unsupported and result and not never:
            # The criteria's arguments are not repeated: a `Match exec` command may hold a token.
            self.state.notes.append(
                f"{origin[0]}:{origin[1]}: a Match block was ignored: preflight cannot evaluate "
                f"{' '.join(repr(u) for u in unsupported)}, so its settings were not applied"
            )
        return result and not unsupported

    def include(
        self, args: list[str], origin: tuple[str, int], user_file: bool, depth: int, never: bool
    ) -> None:
        if not args:
            self.fail(origin, "Include needs a file name")
        for arg in args:
            if arg.startswith("~") and not user_file:
                self.fail(origin, f"bad include path {arg} ('~' only in a user config file)")
            if not arg.startswith(("/", "~")):
                arg = ("~/.ssh/" if user_file else "/etc/ssh/") + arg
            pattern = _expand_env(self.config.expand_home(arg), self.config.environ, origin)
            saved = self.active
            for path in sorted(glob.glob(pattern)):
                self.read(
                    path, user_file, required=False, depth=depth + 1, never=never or not saved
                )
                self.active = saved

    def unknown(self, line: _Line, origin: tuple[str, int]) -> None:
        ignored = self.state.ignore_unknown
        if ignored is not None and match_pattern_list(line.keyword, ignored, lower=True):
            return
        close = difflib.get_close_matches(line.written, _USED_KEYWORDS, n=1, cutoff=0.75)
        if not close:
            close = difflib.get_close_matches(
                line.written.lower(), [k.lower() for k in _USED_KEYWORDS], n=1, cutoff=0.75
            )
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        self.state.notes.append(
            f"{origin[0]}:{origin[1]}: unknown keyword '{line.written}' ignored{hint}; "
            "ssh itself refuses a file with an unknown keyword"
        )

    # -- keyword handlers (every value is checked; it is kept only in an active block, and only
    #    if that keyword has no value yet)

    def first(self, key: str, args: list[str], origin: tuple[str, int], written: str) -> None:
        if self.active and key not in self.state.first:
            self.state.first[key] = (args, origin[0], origin[1], written)

    def single(self, line: _Line, origin: tuple[str, int]) -> str:
        if not line.args or not line.args[0]:
            self.fail(origin, f"{line.written} needs a value")
        if len(line.args) > 1:
            self.fail(origin, f"{line.written}: extra arguments at the end of the line")
        return line.args[0]

    def on_hostname(self, line: _Line, origin: tuple[str, int]) -> None:
        self.single(line, origin)
        self.first("hostname", line.args, origin, line.written)

    def on_port(self, line: _Line, origin: tuple[str, int]) -> None:
        value = self.single(line, origin)
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            self.fail(origin, f"Port: expected a number 1..65535, got '{value}'")
        self.first("port", line.args, origin, line.written)

    def on_user(self, line: _Line, origin: tuple[str, int]) -> None:
        self.single(line, origin)
        self.first("user", line.args, origin, line.written)

    def on_identityfile(self, line: _Line, origin: tuple[str, int]) -> None:
        value = self.single(line, origin)
        if self.active:
            self.state.identity.append((value, origin[0], origin[1], line.written))

    def on_userknownhostsfile(self, line: _Line, origin: tuple[str, int]) -> None:
        if not line.args:
            self.fail(origin, f"{line.written} needs a file name")
        self.first("userknownhostsfile", line.args, origin, line.written)

    def on_hostkeyalias(self, line: _Line, origin: tuple[str, int]) -> None:
        self.single(line, origin)
        self.first("hostkeyalias", line.args, origin, line.written)

    def on_proxyjump(self, line: _Line, origin: tuple[str, int]) -> None:
        text = ",".join(line.args)
        if not line.args or text.lower() != "none":
            entries = [entry.strip() for entry in text.split(",")]
            for entry in entries:
                if parse_jump_spec(entry) is None:
                    self.fail(
                        origin,
                        f"invalid ProxyJump entry '{entry}' (expected [user@]host[:port] or "
                        "ssh://[user@]host[:port], several separated by commas)",
                    )
        # ProxyJump and ProxyCommand share one slot: whichever comes first wins.
        if "proxycommand" not in self.state.first:
            self.first("proxyjump", [text], origin, line.written)

    def on_proxycommand(self, line: _Line, origin: tuple[str, int]) -> None:
        if not line.rest.strip():
            self.fail(origin, "ProxyCommand needs a command")
        if "proxyjump" not in self.state.first:
            self.first("proxycommand", [line.rest.strip()], origin, line.written)

    def on_connecttimeout(self, line: _Line, origin: tuple[str, int]) -> None:
        value = self.single(line, origin)
        if value.lower() != "none" and convtime(value) is None:
            self.fail(origin, f"ConnectTimeout: invalid time value '{value}'")
        self.first("connecttimeout", line.args, origin, line.written)

    def on_stricthostkeychecking(self, line: _Line, origin: tuple[str, int]) -> None:
        value = self.single(line, origin)
        if value.lower() not in _STRICT_VALUES:
            self.fail(
                origin,
                f"StrictHostKeyChecking: unsupported value '{value}' "
                "(yes, accept-new, no, off or ask)",
            )
        self.first("stricthostkeychecking", line.args, origin, line.written)

    def on_ignoreunknown(self, line: _Line, origin: tuple[str, int]) -> None:
        value = self.single(line, origin)
        if self.active and self.state.ignore_unknown is None:
            self.state.ignore_unknown = value

    # -- the result

    def result(
        self, user: str | None, port: int | None, default_user: str, default_port: int
    ) -> HostConfig:
        first = self.state.first

        def origin_of(key: str) -> str:
            _, file, line, _ = first[key]
            return f"{file}:{line}"

        def where(key: str) -> tuple[str, int]:
            _, file, line, _ = first[key]
            return file, line

        hostname_setting = None
        final_host = self.host
        if "hostname" in first:
            expanded = _expand_tokens(
                first["hostname"][0][0], {"h": self.host}, where("hostname"), "HostName"
            )
            final_host = expanded if _is_address(expanded) else expanded.lower()
            hostname_setting = Setting(final_host, origin_of("hostname"))
        port_setting = (
            Setting(int(first["port"][0][0]), origin_of("port")) if "port" in first else None
        )
        final_port = port or (port_setting.value if port_setting else default_port)
        local_host = socket.gethostname()
        base_tokens = {
            "d": self.config.home,
            "i": str(os.getuid()) if hasattr(os, "getuid") else "0",
            "L": local_host.split(".", 1)[0],
            "l": local_host,
            "n": self.host,
            "u": self.config.local_user,
        }
        user_setting = None
        if "user" in first:
            written = first["user"][0][0]
            tokens = {**base_tokens, "h": final_host, "p": str(final_port)}
            user_setting = Setting(
                _expand_tokens(written, tokens, where("user"), "User"), origin_of("user")
            )
        final_user = user or (user_setting.value if user_setting else default_user)
        tokens = {
            **base_tokens,
            "h": final_host,
            "k": final_host,
            "p": str(final_port),
            "r": final_user,
        }

        def path(value: str, origin: tuple[str, int], keyword: str) -> str:
            expanded = _expand_env(value, self.config.environ, origin)
            expanded = self.config.expand_home(expanded)
            return _expand_tokens(expanded, tokens, origin, keyword)

        identities: list[Setting[str]] = []
        for value, file, line, written in self.state.identity:
            expanded = path(value, (file, line), written)
            if all(existing.value != expanded for existing in identities):
                identities.append(Setting(expanded, f"{file}:{line}"))
        known_hosts = None
        if "userknownhostsfile" in first:
            values = first["userknownhostsfile"][0]
            if len(values) == 1 and values[0].lower() == "none":
                files: tuple[str, ...] = ()
            else:
                files = tuple(
                    path(v, where("userknownhostsfile"), "UserKnownHostsFile") for v in values
                )
            known_hosts = Setting(files, origin_of("userknownhostsfile"))
        proxy_jump = None
        if "proxyjump" in first:
            text = first["proxyjump"][0][0]
            specs: tuple[JumpSpec, ...] = ()
            if text.lower() != "none":
                parsed = [parse_jump_spec(entry.strip()) for entry in text.split(",")]
                specs = tuple(spec for spec in parsed if spec is not None)
            proxy_jump = Setting(specs, origin_of("proxyjump"))
        proxy_command = None
        if "proxycommand" in first and first["proxycommand"][0][0].lower() != "none":
            proxy_command = Setting(first["proxycommand"][0][0], origin_of("proxycommand"))
        timeout = None
        if "connecttimeout" in first:
            seconds = convtime(first["connecttimeout"][0][0])
            if seconds:  # "none" or 0: no timeout of its own, so the default applies
                timeout = Setting(seconds, origin_of("connecttimeout"))
        strict = None
        if "stricthostkeychecking" in first:
            word = first["stricthostkeychecking"][0][0].lower()
            strict = Setting(_STRICT_VALUES[word], origin_of("stricthostkeychecking"))
        alias = None
        if "hostkeyalias" in first:
            alias = Setting(first["hostkeyalias"][0][0].lower(), origin_of("hostkeyalias"))
        return HostConfig(
            name=self.host,
            hostname=hostname_setting,
            port=port_setting,
            user=user_setting,
            identity_files=tuple(identities),
            known_hosts_files=known_hosts,
            proxy_jump=proxy_jump,
            proxy_command=proxy_command,
            connect_timeout=timeout,
            strict_host_key_checking=strict,
            host_key_alias=alias,
            notes=tuple(self.state.notes),
        )


_HANDLERS = {
    "hostname": _Lookup.on_hostname,
    "port": _Lookup.on_port,
    "user": _Lookup.on_user,
    "identityfile": _Lookup.on_identityfile,
    "userknownhostsfile": _Lookup.on_userknownhostsfile,
    "hostkeyalias": _Lookup.on_hostkeyalias,
    "proxyjump": _Lookup.on_proxyjump,
    "proxycommand": _Lookup.on_proxycommand,
    "connecttimeout": _Lookup.on_connecttimeout,
    "stricthostkeychecking": _Lookup.on_stricthostkeychecking,
    "ignoreunknown": _Lookup.on_ignoreunknown,
}


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _expand_tokens(
    text: str, tokens: Mapping[str, str], origin: tuple[str, int], keyword: str
) -> str:
    """ssh's percent_expand: `%%` and the given `%x` tokens; any other is an error."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(text):
            raise SshConfigError(origin[0], origin[1], f"{keyword}: a lone '%' at the end")
        key = text[i + 1]
        if key == "%":
            out.append("%")
        elif key in tokens:
            out.append(tokens[key])
        else:
            known = ", ".join(f"%{k}" for k in sorted(tokens))
            raise SshConfigError(
                origin[0], origin[1], f"{keyword}: unknown token %{key} (known: %%, {known})"
            )
        i += 2
    return "".join(out)


def _expand_env(text: str, environ: Mapping[str, str], origin: tuple[str, int]) -> str:
    """`${VAR}` from the environment, as ssh expands it in file names; unset is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise SshConfigError(
                origin[0], origin[1], f"environment variable ${{{name}}} is not set"
            )
        return environ[name]

    return _ENV_REF.sub(value, text)
