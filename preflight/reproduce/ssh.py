"""The ssh options that make a printed command do what preflight did, and nothing else.

- **The same credential, alone**: a key with `IdentitiesOnly` (key text from its variable,
  written as preflight repaired it), the agent's keys, a password (typed by `SSH_ASKPASS`
  from its variable; no `BatchMode`, which would turn password login off), or none at all.
- **The same host keys**: the same known_hosts file (or the content a variable holds, written
  to a file first; a copy when `accept-new` would add to it), the key a pin verified, no other
  file; the same policy and HostKeyAlias.
- **The same client config** (`-F`) and **jump hosts**: `-J` with the entries as written in
  ssh_config when ssh takes from there what preflight used, else a ProxyCommand chain with each
  jump host's own credentials and host key options.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import Any

from preflight import keytext
from preflight.model import AuthConfig, HostKeyConfig, Target, endpoint, is_known_hosts_content
from preflight.reproduce.shell import Arg, Command, Raw, seconds, ssh_path, variable

__all__ = [
    "at",
    "config_options",
    "forward_spec",
    "host_key_options",
    "jump_options",
    "key_file",
    "method_options",
    "method_used",
    "methods",
    "prompts",
    "proxy_chain",
]


# --- credentials ---------------------------------------------------------------------------------


def _key_writer(auth: AuthConfig) -> str | None:
    """The pipeline writing the key text of `auth.key_variable` as preflight read it, with the
    repairs it made (base64, `\\n` escapes, CR line ends, blanks around lines); None when the
    key is no text held by a variable."""
    if auth.key is None or auth.key_variable is None or not keytext.is_configured_key_text(auth):
        return None
    value, held = auth.key.reveal(), variable(auth.key_variable)
    decoded = keytext.decode_base64_key(value)
    if decoded is not None:
        steps, text = [f"printf '%s' {held}", "base64 -d"], decoded
    elif "\n" not in value.strip() and "\\n" in value:
        steps, text = [f"printf '%b\\n' {held}"], value.replace("\\n", "\n")
    else:
        steps, text = [f"printf '%s\\n' {held}"], value
    if "\r" in text:
        bare = text.replace("\r\n", "").count("\r")
        steps.append("sed 's/\\r$//' | tr '\\r' '\\n'" if bare else "tr -d '\\r'")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if any(line != line.strip() for line in lines):
        steps.append("sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'")
    if text.lstrip(" \t").startswith(("\n", "\r")):
        steps.append("sed '/./,$!d'")  # leading blank lines
    return " | ".join(steps)


def key_file(auth: AuthConfig, command: Command, name: str = "key") -> Arg | None:
    """The key as a file ssh can read: its path, the variable holding the path, or a temporary
    file written from the variable holding the text; never the text itself."""
    if auth.pkey is not None:
        return "KEY_FILE"  # a key object: nothing to name
    if auth.key is None:
        return None
    if keytext.is_configured_key_text(auth):
        writer = _key_writer(auth)
        return command.temp_file(name, writer) if writer is not None else "KEY_FILE"
    shown = keytext.shown_path(auth.key_source)
    if shown is not None:
        return os.path.expanduser(shown)
    if auth.key_variable:
        return variable(auth.key_variable)
    return "KEY_FILE"


def methods(auth: AuthConfig) -> list[str]:
    """The credentials preflight offers, in its order: `key`, `agent`, `password` (or `none`)."""
    found = []
    if auth.key or auth.pkey is not None:
        found.append("key")
    if auth.agent:
        found.append("agent")
    if auth.password:
        found.append("password")
    return found or ["none"]


def method_used(facts: Mapping[str, Any], auth: AuthConfig) -> str:
    """The credential that logged preflight in, for a later stage's command."""
    credential = str(facts.get("credential") or "")
    if credential == "password" or "password" in str(facts.get("method") or ""):
        return "password"
    if credential == "agent key":
        return "agent"
    if credential == "key" or "publickey" in str(facts.get("method") or ""):
        return "key" if auth.key else "agent"
    return methods(auth)[0]


def prompts(auth: AuthConfig, method: str) -> bool:
    """Whether presenting `method` needs a prompt answered (a password, a key's passphrase)."""
    return method == "password" or (method == "key" and bool(auth.passphrase))


def method_options(
    auth: AuthConfig, method: str, command: Command, key_name: str = "key"
) -> tuple[list[Arg], list[str]]:
    """ssh options presenting one credential the way preflight did, and the environment they
    need (`SSH_ASKPASS` for a password or passphrase)."""
    environment: list[str] = []
    if method == "password":
        if auth.password_variable:
            environment = command.askpass(auth.password_variable)
        return [
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ], environment
    if method == "key":
        key = key_file(auth, command, key_name)
        if auth.passphrase and auth.passphrase_variable:
            environment = command.askpass(auth.passphrase_variable)
        return [
            "-o",
            f"BatchMode={'no' if auth.passphrase else 'yes'}",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "IdentitiesOnly=yes",
            *_identity(key),
        ], environment
    if method == "agent":
        return [
            "-o",
            "BatchMode=yes",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "IdentityFile=none",
        ], environment
    return ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=none"], environment


def _identity(key: Arg | None) -> list[Arg]:
    """`-i KEY`; for a path holding a `%`, `-o IdentityFile=` with the `%` doubled: ssh looks
    for `-i`'s file before it expands the `%` tokens in it, so no spelling of such a path
    works with `-i` (`%%` is not found, `%` is an unknown token)."""
    if key is None:
        return ["-i", "KEY_FILE"]
    if isinstance(key, Raw) or "%" not in key:
        return ["-i", key]
    return ["-o", Raw(shlex.quote("IdentityFile=" + ssh_path(key)))]


# --- host keys -----------------------------------------------------------------------------------


def host_key_options(
    host_key: HostKeyConfig, facts: Mapping[str, Any], command: Command, name: str = "kh"
) -> list[Arg]:
    """ssh options that verify the host key as preflight did."""
    if host_key.policy == "off":
        return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    verified = facts.get("host_key") or {}
    value = host_key.known_hosts
    known: Raw
    if verified.get("verified_by") == "a pinned fingerprint" and verified.get("line"):
        known = command.temp_file(name, shlex.join(["printf", "%s\\n", verified["line"]]))
    elif value and is_known_hosts_content(value) and host_key.known_hosts_variable:
        known = command.temp_file(name, f"printf '%s\\n' {variable(host_key.known_hosts_variable)}")
    elif value and is_known_hosts_content(value):
        lines = [line for line in value.splitlines() if line.strip()]
        known = command.temp_file(name, shlex.join(["printf", "%s\\n", *lines]))
    elif value and (host_key.policy == "warn" or '"' in value or "\\" in value):
        # accept-new would add the key to the file, which preflight never writes; and a path
        # ssh cannot be given in quotes is read through a copy too.
        source = shlex.quote(os.path.expanduser(value))
        known = command.temp_file(name, f"cat {source} 2>/dev/null || true")
    elif value:
        known = Raw(shlex.quote(ssh_path(os.path.expanduser(value))))
    else:
        known = Raw("/dev/null")
    strictness = "accept-new" if host_key.policy == "warn" else "yes"
    options: list[Arg] = [
        "-o",
        f"StrictHostKeyChecking={strictness}",
        "-o",
        Raw("UserKnownHostsFile=" + known),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
    ]
    if host_key.alias:
        options += ["-o", f"HostKeyAlias={host_key.alias}"]
    return options


# --- client config and jump hosts ----------------------------------------------------------------


def config_options(target: Target) -> list[Arg]:
    """`-F` so that ssh reads the OpenSSH client config preflight applied, and only that."""
    if target.ssh_config == "default":
        return []
    return ["-F", target.ssh_config]


def at(user: str | None, host: str, *, sftp: bool = False) -> str:
    """`user@host` as ssh takes it (an IPv6 address bare) or sftp (in brackets)."""
    host = host.strip("[]")
    if sftp and ":" in host:
        host = f"[{host}]"
    return f"{user}@{host}" if user else host


def forward_spec(host: str, port: int) -> str:
    """`ssh -W` takes `host:port`, an IPv6 address in brackets."""
    return endpoint(host.strip("[]"), port)


def jump_options(target: Target, command: Command) -> list[Arg]:
    """How ssh crosses the target's jump hosts: `-J` with the entries as written in OpenSSH
    client config when ssh finds there what preflight used for each (`Hop.alias`), else a
    ProxyCommand chain carrying each jump host's own credentials and host key options."""
    if not target.jump:
        return []
    if all(hop.alias for hop in target.jump):
        return ["-J", ",".join(hop.alias or "" for hop in target.jump)]
    proxy = proxy_chain(target, command, len(target.jump))
    assert proxy is not None
    return ["-o", Raw(shlex.quote("ProxyCommand=" + proxy.replace("%", "%%")))]


def proxy_chain(target: Target, command: Command, hops: int) -> str | None:
    """The ProxyCommand crossing the first `hops` jump hosts to the next one (or the target)."""
    proxy: str | None = None
    for index in range(hops):
        after = target.jump[index + 1] if index + 1 < len(target.jump) else None
        to = (
            forward_spec(after.host, after.port)
            if after
            else forward_spec(target.host, target.port)
        )
        proxy = _proxy_command(target, index + 1, command, proxy, to)
    return proxy


def hop_command(
    target: Target,
    index: int,
    command: Command,
    proxy: str | None,
    forward: str,
    *,
    verbose: str = "",
) -> tuple[str, list[str]]:
    """`ssh -W forward` through the `index`th jump host with its own credentials and host key,
    reached through `proxy` (the ProxyCommand of the hops before it): the line, and the
    `VAR=value` words it needs in front (`Command.render(environment=…)` puts them before a
    `timeout`, which would take them for the program to run)."""
    hop = target.jump[index - 1]
    words: list[Arg] = ["ssh", *([verbose] if verbose else []), *config_options(target)]
    timeout = hop.tcp_timeout if hop.tcp_timeout is not None else target.timeouts.tcp
    words += ["-o", f"ConnectTimeout={seconds(timeout)}"]
    options, environment = method_options(hop.auth, methods(hop.auth)[0], command, f"key{index}")
    words += options
    words += host_key_options(hop.host_key, {}, command, f"kh{index}")
    if proxy is not None:
        words += ["-o", Raw(shlex.quote("ProxyCommand=" + proxy.replace("%", "%%")))]
    words += ["-W", forward, "-p", str(hop.port), at(hop.user, hop.host)]
    return " ".join(_quoted(word) for word in words), environment


def _proxy_command(
    target: Target, index: int, command: Command, proxy: str | None, forward: str
) -> str:
    """`hop_command` as a ProxyCommand, run in ssh's own shell, which sees only exported
    variables."""
    line, environment = hop_command(target, index, command, proxy, forward)
    for name in command.temporary:
        command.export(name)
    # ssh runs a ProxyCommand as `exec COMMAND`, which takes no VAR=value prefix: `env` sets
    # this hop's own askpass, or clears the target's, so that no hop answers another's prompt.
    if environment:
        return "env " + " ".join(environment) + " " + line
    return "env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE " + line


def _quoted(word: Arg) -> str:
    return word if isinstance(word, Raw) else shlex.quote(word)
