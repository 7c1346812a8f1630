"""The commands that reproduce a failed stage by hand, as preflight checked it.

A firewall team does not trust a tool they do not know; they trust `nc` and `ssh -vvv`. For each
failure this gives the standard commands an engineer would paste on the same runner to see the
same thing: `getent` for dns, `nc -vz -w T` for tcp, `ssh -vvv` for banner and auth, `sftp -b -`
for sftp, `ssh-keygen -y` for a key that does not load, `ssh-keyscan` for pinned fingerprints,
`od -c` for a banner OpenSSH accepts and paramiko does not; behind jump hosts the same through
them. Each must fail the way preflight saw it fail, so each does what preflight did and nothing
else (`reproduce.ssh`: the same credential, host keys, client config and jump hosts), runs under
the time preflight allowed, and holds no secret (`reproduce.shell`). Where a failure is one no
OpenSSH command shares, the diagnosis says so; the command then shows what was seen.
"""

from __future__ import annotations

import math
import posixpath
import shlex
from collections.abc import Mapping
from typing import Any

from preflight.model import AuthConfig, Diagnosis, Stage, Target
from preflight.reproduce import ssh
from preflight.reproduce.shell import Arg, Command, Raw, join, seconds, variable

__all__ = ["commands"]

# Failures that happen while authenticating: one command per credential preflight offered.
_AUTHENTICATING = frozenset({"auth.denied", "auth.method_not_allowed", "auth.timeout"})


def commands(
    target: Target,
    stage: Stage,
    diagnosis: Diagnosis | None = None,
    facts: Mapping[str, Any] | None = None,
) -> list[str]:
    """Shell commands reproducing the failure of `stage` (`diagnosis`), most telling first.
    `target` is what was checked (a jump host's own stage: the jump host, behind the jump hosts
    before it); `facts` are what its stages found (the credential that logged in, the host key
    a pin verified), the failed stage's last."""
    facts = facts or {}
    code = diagnosis.code if diagnosis else ""
    host, port = target.host.strip("[]"), str(target.port)
    if stage is Stage.DNS:
        lookup = shlex.join(["getent", "ahosts", host])
        return [f"timeout {seconds(target.timeouts.dns)} {lookup}"]
    if stage is Stage.TCP:
        if target.jump:  # nc from this runner would test the wrong path
            return [_through_jump_hosts(target)]
        printed = [shlex.join(["nc", "-vz", "-w", seconds(target.timeouts.tcp), host, port])]
        if (facts.get("trace") or {}).get("hops") is not None:
            # The same trace by hand (as root: traceroute -T sends its SYNs from a raw socket).
            hops = str(facts["trace"].get("max_hops") or 20)
            printed.append(
                shlex.join(["traceroute", "-T", "-p", port, "-m", hops, "-q", "1", "-w", "1", host])
            )
        return printed
    budget = _budget(target, stage)
    if code == "auth.bad_key":
        return [_load_key(target.auth)]
    if code == "auth.host_key_mismatch" and _mismatch_by_pins(facts) and not target.jump:
        return [_scan_for_pins(target)]
    if stage is Stage.SFTP:
        return [_sftp(target, code, facts, budget)]
    printed = []
    if code == "auth.no_credentials":
        from preflight import keytext

        shown = keytext.shown_path(target.auth.key_source)
        if shown is not None:
            printed.append(shlex.join(["ls", "-l", shown]))
    if facts.get("openssh_accepts_banner") and not target.jump:
        # What the line holds, byte by byte: OpenSSH accepts it where paramiko cannot.
        banner_seconds = seconds(target.timeouts.banner)
        printed.append(
            f"timeout {banner_seconds} nc {shlex.quote(host)} {port} | head -c 512 | od -c"
        )
    offered = ssh.methods(target.auth)
    if code == "auth.no_credentials":
        offered = ["none"]
    elif not (stage is Stage.AUTH and code in _AUTHENTICATING):
        offered = offered[:1]  # it failed before any credential was presented
    for method in offered:
        command, words, environment = _ssh(target, method, facts)
        printed.append(command.render([*words, "exit"], environment=environment, timeout=budget))
    retried = facts.get("small_packets") or {}
    small, first = retried.get("mss"), retried.get("first_mss")
    if code == "auth.kex_timeout" and retried.get("outcome") == "completed" and small and first:
        # Only on a direct connection: `small_packets` is never tried behind jump hosts.
        printed.append(_pings(host, int(small), int(first)))
    return list(dict.fromkeys(printed))


# A ping's echo request carries its payload, 8 bytes of ICMP header and the IP header: 24 bytes
# more than a TCP segment's payload (20 bytes of header and 12 of timestamp option) matches it.
_PING_OVER = 20 + 12 - 8


def _pings(host: str, small: int, first: int) -> str:
    """Two pings that must not be fragmented (-M do), as large as the small-packet retry's
    packets (`small`-byte segments) and the stalled connection's (`first`): on an MTU black
    hole the first is answered and the second is not, so the line fails as the key exchange
    did."""
    return " && ".join(
        shlex.join(["ping", "-c", "2", "-w", "3", "-M", "do", "-s", str(size + _PING_OVER), host])
        for size in (small, first)
    )


def _budget(target: Target, stage: Stage) -> float:
    """The time preflight gave the check up to and including `stage` (its jump hosts' stages
    too), capped by the target's deadline: how long a printed command may run."""
    own = (Stage.TCP, Stage.BANNER, Stage.AUTH, Stage.SFTP)
    upto = own[: own.index(stage) + 1] if stage in own else own[:1]
    total = sum(target.timeouts.for_stage(name) for name in upto)
    total += len(target.jump) * sum(target.timeouts.for_stage(name) for name in own[:3])
    return min(target.deadline, total)


def _ssh(
    target: Target, method: str, facts: Mapping[str, Any], *, program: str = "ssh"
) -> tuple[Command, list[Arg], list[str]]:
    """`ssh -vvv …` (or `sftp -b - …`) to the target with one credential, as preflight did;
    the command, its words and its environment."""
    command = Command()
    sftp = program == "sftp"
    words: list[Arg] = [program, *(["-b", "-"] if sftp else ["-vvv"])]
    if sftp and ssh.prompts(target.auth, method):
        words += command.interactive_sftp()
    words += ssh.config_options(target)
    words += ["-o", f"ConnectTimeout={seconds(target.timeouts.tcp)}"]
    options, environment = ssh.method_options(target.auth, method, command)
    words += options
    words += ssh.host_key_options(target.host_key, facts, command)
    words += ssh.jump_options(target, command)
    words += ["-P" if sftp else "-p", str(target.port), ssh.at(target.user, target.host, sftp=sftp)]
    return command, words, environment


def _sftp(target: Target, code: str, facts: Mapping[str, Any], budget: float) -> str:
    command, words, environment = _ssh(
        target, ssh.method_used(facts, target.auth), facts, program="sftp"
    )
    path = _sftp_quote(target.sftp_path)
    if code == "sftp.no_space" and "upload" not in facts and target.sftp_min_free:
        # sftp's df shows the free space preflight compared, in KiB; awk applies min_free.
        shown = shlex.join(["printf", r"%s\n", f"df {path}"])
        need = math.ceil(target.sftp_min_free / 1024)
        compare = (
            '{ print } $1 ~ /^[0-9]+$/ { avail = $3 } END { if (avail == "") exit 2; '
            f'if (avail < {need}) {{ print "Avail " avail " KiB is less than sftp.min_free '
            f'{need} KiB" > "/dev/stderr"; exit 1 }} }}'
        )
        return command.render(
            words,
            environment=environment,
            before=shown,
            after=f" | awk {shlex.quote(compare)}",
            timeout=budget,
        )
    if "upload" in facts or code in _UPLOAD_CODES:
        stopped = bool(facts.get("upload", {}).get("stopped_early"))
        return _upload(target, code, command, words, environment, budget, stopped=stopped)
    # `ls PATH` fails (exit 1) for a path that is missing or not readable; `cd PATH` then fails
    # for a file, which `ls` lists without complaint ('"PATH" is not a directory'). Without
    # the listing (sftp.list: false), `cd` alone: a drop box cannot be listed.
    batch = [f"ls {path}", f"cd {path}"] if target.sftp_list else [f"cd {path}"]
    listing = shlex.join(["printf", r"%s\n", *batch])
    return command.render(words, environment=environment, before=listing, timeout=budget)


_UPLOAD_CODES = frozenset({"sftp.not_writable", "sftp.read_only", "sftp.size_mismatch"})
_HALFWAY_CODES = frozenset({"sftp.no_space", "sftp.timeout", "sftp.error"})
REPRODUCE_FILE = ".preflight-check.tmp"  # a fixed name: a second try replaces the first's


def _upload(
    target: Target,
    code: str,
    command: Command,
    words: list[Arg],
    environment: list[str],
    budget: float,
    *,
    stopped: bool = False,
) -> str:
    """`put` a file as big as preflight's and `rm` it, as the check did. A put that may stop
    halfway (no space, a stall, a refused write) ends sftp's batch before the `rm`, or is
    ended by `timeout`: a second sftp then removes what it left, and the line keeps the first
    one's exit status. An upload preflight `stopped` as too slow is timed, and fails when it
    took longer than the sftp timeout; a size the server misreports is compared by awk, as
    OpenSSH's sftp does not compare."""
    size = target.sftp_write.size if target.sftp_write is not None else 1
    local = command.temp_file("f", f"head -c {size} /dev/zero")
    remote = _sftp_quote(posixpath.join(target.sftp_path, REPRODUCE_FILE))
    # printf fills in the local file's name when the line runs: "$f" is not known before.
    steps = ['put "%s" %s']
    if code == "sftp.size_mismatch":
        steps.append("ls -ln %s")  # OpenSSH's sftp does not compare: this shows the size
    halfway = code in _HALFWAY_CODES
    if not halfway:
        steps.append("rm %s")
    arguments = " ".join([local, *(shlex.quote(remote) for _ in steps)])
    newline = "\\n"  # printf's escape, written out: the command stays on one line
    batch = f"printf {shlex.quote(newline.join(steps) + newline)} {arguments}"
    if code == "sftp.size_mismatch":
        compare = (
            '{ print } $1 ~ /^-/ { size = $5 } END { if (size == "") exit 2; '
            f'if (size != {size}) {{ print "the server reports " size " bytes of the {size} '
            'written" > "/dev/stderr"; exit 1 } }'
        )
        after = f" | awk {shlex.quote(compare)}"
        return command.render(
            words, environment=environment, before=batch, after=after, timeout=budget
        )
    if not halfway:
        return command.render(words, environment=environment, before=batch, timeout=budget)
    again = [*environment, f"timeout {seconds(budget)}", join(words)]
    removal = f"printf 'rm %s\\n' {shlex.quote(remote)} | {' '.join(again)} >/dev/null 2>&1"
    timed = ""
    if stopped:
        limit = seconds(target.timeouts.sftp)
        took = "$(( ($(date +%s%N) - s) / 1000000 ))"
        timed = (
            f'ms={took}; if [ $rc -eq 0 ] && [ "$ms" -gt {limit}000 ]; then echo "the login and '
            f'upload took $ms ms, more than the sftp timeout ({limit}s)" >&2; rc=1; fi; '
        )
        batch = f"s=$(date +%s%N); {batch}"
    return command.render(
        words,
        environment=environment,
        before=batch,
        after=f"; rc=$?; {timed}{removal}; exit $rc",
        timeout=budget,
    )


def _through_jump_hosts(target: Target) -> str:
    """The tcp check through the jump hosts: the last one forwards stdin/stdout (`ssh -W`)."""
    command = Command()
    *before, last = target.jump
    forward = ssh.forward_spec(target.host, target.port)
    timeout = _budget(target, Stage.TCP)
    if last.alias and all(hop.alias for hop in before):
        # As written in OpenSSH client config: ssh finds their settings there again.
        words: list[Arg] = ["ssh", "-v", *ssh.config_options(target), "-o", "BatchMode=yes"]
        words += ["-J", ",".join(hop.alias or "" for hop in before)] if before else []
        words += ["-W", forward, last.alias]
        return command.render(words, after=" </dev/null", timeout=timeout)
    proxy = ssh.proxy_chain(target, command, len(before))
    line, environment = ssh.hop_command(
        target, len(target.jump), command, proxy, forward, verbose="-v"
    )
    return command.render(
        [Raw(line)], environment=environment, after=" </dev/null", timeout=timeout
    )


def _load_key(auth: AuthConfig) -> str:
    """`ssh-keygen -y` loads the key as ssh would and says why it cannot."""
    command = Command()
    key = ssh.key_file(auth, command)
    passphrase: Arg = variable(auth.passphrase_variable) if auth.passphrase_variable else ""
    words: list[Arg] = ["ssh-keygen", "-y", "-P", passphrase, "-f", key or "KEY_FILE"]
    return command.render(words, after=" > /dev/null")


def _mismatch_by_pins(facts: Mapping[str, Any]) -> bool:
    expected = (facts.get("host_key") or {}).get("expected") or {}
    return bool(expected.get("by") == "pins")


def _scan_for_pins(target: Target) -> str:
    """The server's host keys, fingerprinted, searched for the pins: exit 1 when none is."""
    host, port = target.host.strip("[]"), str(target.port)
    scan = shlex.join(["ssh-keyscan", "-T", seconds(target.timeouts.auth), "-p", port, host])
    pins = [arg for pin in target.host_key.fingerprints for arg in ("-e", pin.strip())]
    return f"{scan} 2>/dev/null | ssh-keygen -lf - | {shlex.join(['grep', '-F', *pins])}"


def _sftp_quote(path: str) -> str:
    """A path as sftp's own command parser reads it: double quotes around anything unusual,
    with `"` and `\\` escaped."""
    if path and all(ch.isalnum() or ch in "/._-~+,:@" for ch in path):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'
