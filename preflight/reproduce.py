"""The commands that reproduce a failed stage by hand, as preflight checked it.

A firewall team does not trust a tool they do not know; they trust `nc` and `ssh -vvv`. For each
failure this gives the standard commands an engineer would paste on the same runner to see the
same thing: `getent` for dns, `nc -vz -w T` for tcp, `ssh -vvv` for banner and auth, `sftp -b -`
for sftp, `ssh-keygen -y` for a key that does not load, `ssh-keyscan` for pinned fingerprints;
behind jump hosts the same through them. Each must fail the way preflight saw it fail, so each
exercises what preflight did and nothing else:

- the same credential and only that one (`IdentitiesOnly`, `PreferredAuthentications`, no
  `BatchMode` for a password, which it would turn off); a password or passphrase is typed by a
  throw-away `SSH_ASKPASS` script that prints the variable preflight read it from;
- the same host keys: a known_hosts given as a variable's content is written to a temporary file
  first, a key verified by a pin is trusted as such, nothing else is (`GlobalKnownHostsFile`);
- the same OpenSSH client config (`-F none` for a target that used none), jump hosts as written
  in it (`-J alias`), and those of checks.yaml with their own credentials (`ProxyCommand`);
- the same bounds: every command after the tcp stage runs under `timeout` with the time
  preflight allowed, because OpenSSH waits for ever on a server that stalls after its banner.

No credential is ever part of a command: key text and passwords are read from their variables
when the command runs; a key file is named by its path. Temporary files are made with `mktemp`
(mode 0600) and removed when the command ends.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from preflight import keytext
from preflight.model import AuthConfig, Diagnosis, HostKeyConfig, Stage, Target, endpoint


class Raw(str):
    """A piece of a command written as is (`"$kh"`, a variable reference), not quoted."""


Arg = str | Raw


def _seconds(value: float) -> str:
    """Whole seconds, rounded up: nc, timeout and ssh take integers."""
    return str(max(1, math.ceil(value)))


def _quote(arg: Arg) -> str:
    return arg if isinstance(arg, Raw) else shlex.quote(arg)


@dataclass
class _Command:
    """One command line being put together: the temporary files it needs first (written from a
    variable, so that no secret is part of the text), its environment, and its words."""

    setup: list[str] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)

    def temp_file(self, name: str, writer: str) -> Raw:
        """A file made by `writer` (a shell pipeline writing to stdout), named "$name"."""
        if name not in self.temporary:
            self.temporary.append(name)
            self.setup.append(f'{name}=$(mktemp) && {writer} > "${name}"')
        return Raw(f'"${name}"')

    def askpass(self, variable: str) -> None:
        """Answer ssh's password or passphrase prompt with the variable's value."""
        if "ap" in self.temporary:
            return
        self.temporary.append("ap")
        script = f'#!/bin/sh\\nprintf "%%s\\\\n" "${variable}"\\n'
        self.setup.append(f'ap=$(mktemp) && printf \'{script}\' > "$ap" && chmod 700 "$ap"')
        self.environment += ['SSH_ASKPASS="$ap"', "SSH_ASKPASS_REQUIRE=force"]

    def export(self, name: str) -> None:
        """A temporary file's variable that a ProxyCommand (run by ssh's shell) reads."""
        if name not in self.exported:
            self.exported.append(name)

    def render(
        self,
        words: Sequence[Arg],
        *,
        before: str = "",
        after: str = "",
        timeout: float | None = None,
    ) -> str:
        """The command line: `before | words after`, under `timeout`, in a subshell that
        makes and removes the temporary files when there are any."""
        line = " ".join(_quote(word) for word in words) + after
        if timeout is not None:
            line = f"timeout {_seconds(timeout)} {line}"
        if self.environment:
            line = " ".join(self.environment) + " " + line
        if before:
            line = f"{before} | {line}"
        if not self.setup:
            return line
        steps = list(self.setup)
        if self.exported:
            steps.append("export " + " ".join(self.exported))
        removed = " ".join(f'"${name}"' for name in self.temporary)
        # A subshell, so that the files go when the command ends and its status is kept.
        steps.insert(0, f"trap 'rm -f {removed}' EXIT")
        return "(" + " && ".join(steps) + " && " + line + ")"


# --- keys and passwords ---------------------------------------------------------------------------


def _is_key_text(auth: AuthConfig) -> bool:
    if auth.key is None:
        return False
    from_variable = not (auth.key_source or "").startswith("file ")
    return keytext.is_key_text(auth.key.reveal(), from_variable=from_variable)


def _key_writer(auth: AuthConfig) -> str | None:
    """The shell pipeline writing the key text of `auth.key_variable` as ssh reads it, with
    the repairs preflight makes (base64, `\\n` escapes, CRLF); None when there is none."""
    if auth.key is None or auth.key_variable is None or not _is_key_text(auth):
        return None
    value = auth.key.reveal()
    variable = f'"${auth.key_variable}"'
    if keytext.decode_base64_key(value) is not None:
        return f"printf '%s' {variable} | base64 -d"
    if "\n" not in value.strip() and "\\n" in value:
        writer = f"printf '%b\\n' {variable}"
    else:
        writer = f"printf '%s\\n' {variable}"
    return writer + (" | tr -d '\\r'" if "\r" in value else "")


def _key_file(auth: AuthConfig, command: _Command, name: str = "key") -> Arg | None:
    """The key as a file ssh can read: its path, or a temporary file written from the variable
    that holds the key text."""
    if auth.key is None:
        return None
    if _is_key_text(auth):
        # Never the text itself: written from its variable, or a placeholder when the
        # key was given some other way (a library caller's string).
        writer = _key_writer(auth)
        return command.temp_file(name, writer) if writer is not None else "KEY_FILE"
    shown = keytext.shown_path(auth.key_source)
    if shown is not None:
        return os.path.expanduser(shown)
    if auth.key_variable:
        return Raw(f'"${auth.key_variable}"')
    return "KEY_FILE"


def _passphrase(auth: AuthConfig, command: _Command) -> None:
    if auth.passphrase and auth.passphrase_variable:
        command.askpass(auth.passphrase_variable)


def _method_options(auth: AuthConfig, method: str, command: _Command, key_name: str) -> list[Arg]:
    """ssh options presenting one credential the way preflight did: `key`, `agent`, `password`
    or `none` (nothing configured: ssh asks the server which methods it allows)."""
    if method == "password":
        if auth.password_variable:
            command.askpass(auth.password_variable)
        return [
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ]
    if method == "key":
        key = _key_file(auth, command, key_name)
        encrypted = bool(auth.passphrase)
        _passphrase(auth, command)
        return [
            "-o",
            f"BatchMode={'no' if encrypted else 'yes'}",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            key if key is not None else "KEY_FILE",
        ]
    if method == "agent":
        return [
            "-o",
            "BatchMode=yes",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "IdentityFile=none",
        ]
    return ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=none"]


def _methods(auth: AuthConfig) -> list[str]:
    """The credentials preflight offers, in its order."""
    methods = []
    if auth.key:
        methods.append("key")
    if auth.agent:
        methods.append("agent")
    if auth.password:
        methods.append("password")
    return methods or ["none"]


def _method_used(facts: Mapping[str, Any], auth: AuthConfig) -> str:
    """The credential that got preflight in (for a later stage's command), from the auth
    stage's facts: `publickey` is the key unless only the agent was configured."""
    used = str(facts.get("method") or "")
    if "password" in used or "keyboard-interactive" in used:
        return "password"
    if "publickey" in used:
        return "key" if auth.key else "agent"
    return _methods(auth)[0]


# --- host keys ------------------------------------------------------------------------------------


def _host_key_options(
    host_key: HostKeyConfig, facts: Mapping[str, Any], command: _Command, name: str = "kh"
) -> list[Arg]:
    """ssh options that verify the host key as preflight did: the same known_hosts (written
    to a temporary file when it was given as content), the same policy, the key a pin
    verified, and no other file (ssh would also read /etc/ssh/ssh_known_hosts)."""
    if host_key.policy == "off":
        return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    verified = facts.get("host_key") or {}
    known: Arg = "/dev/null"
    value = host_key.known_hosts
    if verified.get("verified_by") == "a pinned fingerprint" and verified.get("line"):
        known = command.temp_file(name, shlex.join(["printf", "%s\\n", verified["line"]]))
    elif value and host_key.known_hosts_variable and _is_content(value):
        variable = host_key.known_hosts_variable
        known = command.temp_file(name, f"printf '%s\\n' \"${variable}\"")
    elif value and _is_content(value):
        lines = [line for line in value.splitlines() if line.strip()]
        known = command.temp_file(name, shlex.join(["printf", "%s\\n", *lines]))
    elif value:
        known = os.path.expanduser(value)
        if host_key.policy == "warn":
            # accept-new would add the key to the file; preflight never writes it.
            source = shlex.quote(known)
            known = command.temp_file(name, f"cat {source} 2>/dev/null || true")
    strictness = "accept-new" if host_key.policy == "warn" else "yes"
    options: list[Arg] = [
        "-o",
        f"StrictHostKeyChecking={strictness}",
        "-o",
        Raw("UserKnownHostsFile=" + _as_word(known)),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
    ]
    if host_key.alias:
        options += ["-o", f"HostKeyAlias={host_key.alias}"]
    return options


def _is_content(value: str) -> bool:
    return "\n" in value or " ssh-" in value or " ecdsa-" in value


def _as_word(arg: Arg) -> Raw:
    return arg if isinstance(arg, Raw) else Raw(shlex.quote(arg))


# --- jump hosts -----------------------------------------------------------------------------------


def _config_options(target: Target) -> list[Arg]:
    """`-F` so that ssh reads the OpenSSH client config preflight applied, and only that."""
    if target.ssh_config == "default":
        return []
    return ["-F", target.ssh_config]


def _jump_options(target: Target, command: _Command, hops: int | None = None) -> list[Arg]:
    """How ssh crosses the first `hops` jump hosts (all by default): `-J` with the entries as
    written when they came from OpenSSH client config (ssh looks them up there again), else a
    ProxyCommand chain carrying each jump host's own credentials and host key options."""
    chain = target.jump[: len(target.jump) if hops is None else hops]
    if not chain:
        return []
    if all(hop.alias for hop in chain):
        return ["-J", ",".join(hop.alias or "" for hop in chain)]
    proxy: str | None = None
    for index in range(len(chain)):
        after = target.jump[index + 1] if index + 1 < len(target.jump) else None
        to = endpoint(after.host, after.port) if after else endpoint(target.host, target.port)
        words = _hop_ssh(target, index + 1, command, proxy, to.replace("[", "").replace("]", ""))
        proxy = " ".join(_quote(word) for word in words)
    assert proxy is not None
    return ["-o", Raw(shlex.quote("ProxyCommand=" + proxy.replace("%", "%%")))]


def _hop_ssh(
    target: Target, index: int, command: _Command, proxy: str | None, forward: str
) -> list[Arg]:
    """`ssh -W` through the `index`th jump host, with its own credentials and host key."""
    hop = target.jump[index - 1]
    words: list[Arg] = ["ssh", *_config_options(target)]
    timeout = hop.tcp_timeout if hop.tcp_timeout is not None else target.timeouts.tcp
    words += ["-o", f"ConnectTimeout={_seconds(timeout)}"]
    words += _method_options(hop.auth, _methods(hop.auth)[0], command, f"key{index}")
    words += _host_key_options(hop.host_key, {}, command, f"kh{index}")
    if proxy is not None:
        words += ["-o", Raw(shlex.quote("ProxyCommand=" + proxy.replace("%", "%%")))]
    words += ["-W", forward, "-p", str(hop.port), _at(hop.user, hop.host)]
    # The ProxyCommand runs in ssh's own shell: it reads the temporary files' variables.
    for name in command.temporary:
        command.export(name)
    return words


def _at(user: str | None, host: str) -> str:
    host = host.strip("[]")
    return f"{user}@{host}" if user else host


# --- the commands ---------------------------------------------------------------------------------


def _budget(target: Target, stage: Stage) -> float:
    """The time preflight gave the check up to and including `stage` (its jump hosts' stages
    too), capped by the target's deadline: how long a printed command may run."""
    own = (Stage.TCP, Stage.BANNER, Stage.AUTH, Stage.SFTP)
    upto = own[: own.index(stage) + 1] if stage in own else own[:1]
    total = sum(target.timeouts.for_stage(name) for name in upto)
    total += len(target.jump) * sum(target.timeouts.for_stage(name) for name in own[:3])
    return min(target.deadline, total)


def _ssh(
    target: Target,
    stage: Stage,
    method: str,
    facts: Mapping[str, Any],
    *,
    program: str = "ssh",
) -> tuple[_Command, list[Arg]]:
    """`ssh -vvv …` (or `sftp -b - …`) to the target with one credential, as preflight did."""
    command = _Command()
    words: list[Arg] = [program, *(["-vvv"] if program == "ssh" else ["-b", "-"])]
    words += _config_options(target)
    words += ["-o", f"ConnectTimeout={_seconds(target.timeouts.tcp)}"]
    words += _method_options(target.auth, method, command, "key")
    words += _host_key_options(target.host_key, facts, command)
    words += _jump_options(target, command)
    words += ["-P" if program == "sftp" else "-p", str(target.port), _at(target.user, target.host)]
    return command, words


def commands(
    target: Target,
    stage: Stage,
    diagnosis: Diagnosis | None = None,
    facts: Mapping[str, Any] | None = None,
) -> list[str]:
    """Shell commands reproducing the failure of `stage` (`diagnosis`), most telling first.
    `facts` are what the target's stages found (the auth method that worked, the host key a
    pin verified), the failed stage's last."""
    facts = facts or {}
    code = diagnosis.code if diagnosis else ""
    host, port = target.host.strip("[]"), str(target.port)
    if stage is Stage.DNS:
        lookup = shlex.join(["getent", "ahosts", host])
        return [f"timeout {_seconds(target.timeouts.dns)} {lookup}"]
    if stage is Stage.TCP:
        if target.jump:  # nc from this runner would test the wrong path
            return [_through_jump_hosts(target)]
        return [shlex.join(["nc", "-vz", "-w", _seconds(target.timeouts.tcp), host, port])]
    budget = _budget(target, stage)
    if code == "auth.bad_key":
        return [_load_key(target.auth)]
    if code == "auth.host_key_mismatch" and _mismatch_by_pins(facts) and not target.jump:
        return [_scan_for_pins(target)]
    if stage is Stage.SFTP:
        command, words = _ssh(
            target, stage, _method_used(facts, target.auth), facts, program="sftp"
        )
        path = _sftp_quote(target.sftp_path)
        # `ls PATH` fails (exit 1) for a path that is missing or not readable; `cd PATH` then
        # fails for a file, which `ls` lists without complaint ('"PATH" is not a directory').
        listing = shlex.join(["printf", r"%s\n", f"ls {path}", f"cd {path}"])
        return [command.render(words, before=listing, timeout=budget)]
    printed = []
    if code == "auth.no_credentials" and target.auth.key is not None:
        shown = keytext.shown_path(target.auth.key_source)
        if shown is not None:
            printed.append(shlex.join(["ls", "-l", os.path.expanduser(shown)]))
    if facts.get("openssh_accepts_banner") and not target.jump:
        # What the line holds, byte by byte (OpenSSH may accept it where paramiko cannot).
        seconds = _seconds(target.timeouts.banner)
        printed.append(f"timeout {seconds} nc {shlex.quote(host)} {port} | head -c 512 | od -c")
    after_banner = stage is Stage.AUTH and code in _AUTHENTICATING
    for method in _methods(target.auth) if after_banner else _methods(target.auth)[:1]:
        if code == "auth.no_credentials":
            method = "none"
        command, words = _ssh(target, stage, method, facts)
        printed.append(command.render([*words, "exit"], timeout=budget))
    return list(dict.fromkeys(printed))


# Failures that happen while authenticating: one command per credential preflight offered.
_AUTHENTICATING = frozenset({"auth.denied", "auth.method_not_allowed", "auth.timeout"})


def _through_jump_hosts(target: Target) -> str:
    """The tcp check through the jump hosts: the last one forwards stdin/stdout (`ssh -W`)."""
    command = _Command()
    *before, last = target.jump
    index = len(target.jump)
    words: list[Arg] = ["ssh", "-v", *_config_options(target)]
    forward = endpoint(target.host, target.port).replace("[", "").replace("]", "")
    if last.alias and all(hop.alias for hop in before):
        # As written in OpenSSH client config: ssh finds their settings there again.
        words += ["-o", "BatchMode=yes"]
        words += ["-J", ",".join(hop.alias or "" for hop in before)] if before else []
        words += ["-W", forward, last.alias]
        return command.render(words, after=" </dev/null", timeout=_budget(target, Stage.TCP))
    timeout = last.tcp_timeout if last.tcp_timeout is not None else target.timeouts.tcp
    words += ["-o", f"ConnectTimeout={_seconds(timeout)}"]
    words += _method_options(last.auth, _methods(last.auth)[0], command, f"key{index}")
    words += _host_key_options(last.host_key, {}, command, f"kh{index}")
    words += _jump_options(target, command, hops=index - 1)
    words += ["-W", forward, "-p", str(last.port), _at(last.user, last.host)]
    return command.render(words, after=" </dev/null", timeout=_budget(target, Stage.TCP))


def _load_key(auth: AuthConfig) -> str:
    """`ssh-keygen -y` loads the key as ssh would and says why it cannot."""
    command = _Command()
    key = _key_file(auth, command)
    passphrase: Arg = Raw(f'"${auth.passphrase_variable}"') if auth.passphrase_variable else ""
    words: list[Arg] = ["ssh-keygen", "-y", "-P", passphrase, "-f", key or "KEY_FILE"]
    return command.render(words, after=" > /dev/null")


def _mismatch_by_pins(facts: Mapping[str, Any]) -> bool:
    expected = (facts.get("host_key") or {}).get("expected") or {}
    return expected.get("by") == "pins"


def _scan_for_pins(target: Target) -> str:
    """The server's host keys, fingerprinted, searched for the pins: exit 1 when none is."""
    host, port = target.host.strip("[]"), str(target.port)
    scan = shlex.join(["ssh-keyscan", "-T", _seconds(target.timeouts.auth), "-p", port, host])
    pins = [arg for pin in target.host_key.fingerprints for arg in ("-e", pin.strip())]
    return f"{scan} 2>/dev/null | ssh-keygen -lf - | {shlex.join(['grep', '-F', *pins])}"


def _sftp_quote(path: str) -> str:
    """A path as sftp's own command parser reads it: double quotes around anything unusual,
    with `"` and `\\` escaped."""
    if path and all(ch.isalnum() or ch in "/._-~+,:@" for ch in path):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
