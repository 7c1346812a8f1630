"""The commands that reproduce a failed stage by hand, with the same timeouts.

A firewall team does not trust a tool they do not know; they trust `nc` and `ssh -vvv`. For a
failure at each stage this gives the standard commands an engineer would run from the same
runner to see the same thing: `getent`/`dig` for dns, `nc -vz -w T` for tcp, `ssh -vvv` with
`ConnectTimeout` for banner and auth, `sftp -b -` for sftp; behind jump hosts, the same through
them (`-J`, and `ssh -W` in place of `nc`). Arguments are shell-quoted, and no
credential is ever part of a command: a key is named by its file only when that path was written
in checks.yaml, otherwise as a placeholder.
"""

from __future__ import annotations

import math
import os
import shlex

from preflight.model import Stage, Target, endpoint


def _seconds(value: float) -> str:
    """Whole seconds, rounded up: nc, dig and ssh take integers."""
    return str(max(1, math.ceil(value)))


def _ssh_options(target: Target) -> list[str]:
    options = [
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={_seconds(target.timeouts.tcp)}",
    ]
    known_hosts = target.host_key.known_hosts
    if target.host_key.policy == "off":
        options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    elif known_hosts and "\n" not in known_hosts:
        # Expanded here: quoting would stop the shell from expanding a leading ~.
        options += ["-o", f"UserKnownHostsFile={os.path.expanduser(known_hosts)}"]
    if target.host_key.alias and target.host_key.policy != "off":
        options += ["-o", f"HostKeyAlias={target.host_key.alias}"]
    source = target.auth.key_source or ""
    if source.startswith("file "):
        options += ["-i", source.removeprefix("file ")]
    elif target.auth.key:
        options += ["-i", "KEY_FILE"]  # the key came from a variable: never written out here
    return options


def _hop_spec(host: str, port: int, user: str | None) -> str:
    where = endpoint(host.strip("[]"), port)
    return f"{user}@{where}" if user else where


def _jump_options(target: Target) -> list[str]:
    """`-J` with every jump host, as ssh and sftp take it."""
    if not target.jump:
        return []
    return ["-J", ",".join(_hop_spec(hop.host, hop.port, hop.user) for hop in target.jump)]


def _through_jumps(target: Target) -> str:
    """The tcp check through the jump hosts: the last one forwards stdin/stdout (`ssh -W`)."""
    *before, last = target.jump
    options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={_seconds(target.timeouts.tcp)}"]
    if before:
        options += ["-J", ",".join(_hop_spec(h.host, h.port, h.user) for h in before)]
    forward = _hop_spec(target.host, target.port, None)
    destination = f"{last.user}@{last.host}" if last.user else last.host
    return shlex.join(["ssh", "-v", *options, "-W", forward, "-p", str(last.port), destination])


def _destination(target: Target) -> str:
    host = target.host.strip("[]")
    return f"{target.user}@{host}" if target.user else host


def _sftp_quote(path: str) -> str:
    """A path as sftp's own command parser reads it: double quotes around anything unusual,
    with `"` and `\\` escaped."""
    if path and all(ch.isalnum() or ch in "/._-~+,:@" for ch in path):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def commands(target: Target, stage: Stage) -> list[str]:
    """Shell commands reproducing `stage` of `target`, most telling first."""
    host = target.host.strip("[]")
    port = str(target.port)
    quote = shlex.join
    if stage is Stage.DNS:
        return [
            quote(["getent", "ahosts", host]),
            quote(["dig", f"+time={_seconds(target.timeouts.dns)}", "+tries=1", host]),
        ]
    if stage is Stage.TCP:
        if target.jump:  # nc from this runner would test the wrong path
            return [f"{_through_jumps(target)} </dev/null"]
        return [quote(["nc", "-vz", "-w", _seconds(target.timeouts.tcp), host, port])]
    jumps = _jump_options(target)
    ssh = ["ssh", "-vvv", *_ssh_options(target), *jumps, "-p", port, _destination(target)]
    if stage is Stage.BANNER:
        if target.jump:
            return [quote([*ssh, "exit"])]
        return [
            quote(["nc", "-w", _seconds(target.timeouts.banner), host, port]),
            quote([*ssh, "exit"]),
        ]
    if stage is Stage.AUTH:
        return [quote([*ssh, "exit"])]
    # `ls PATH` fails (exit 1) for a path that is missing or not readable; `cd PATH` then fails
    # for a file, which `ls` lists without complaint ('"PATH" is not a directory').
    path = _sftp_quote(target.sftp_path)
    listing = quote(["printf", r"%s\n", f"ls {path}", f"cd {path}"])
    sftp = ["sftp", "-b", "-", *_ssh_options(target), *jumps, "-P", port, _destination(target)]
    return [f"{listing} | {quote(sftp)}"]
