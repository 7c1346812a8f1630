"""Putting a reproduce command together as a shell line that can be pasted as it is.

A command may need files first: key text or known_hosts lines held in a variable, a script that
types a password (`SSH_ASKPASS`), a wrapper that lets `sftp -b` ask for one. They are written
with `mktemp` (mode 0600) from the variables when the command runs, so no secret is ever part of
the text, and removed when it ends: the line is then a subshell with traps for its exit and for
Ctrl-C, HUP and TERM, which keeps the command's own exit status. Words are shell-quoted, except
`Raw` ones (`"$kh"`, a variable reference); every command after the tcp stage runs under
`timeout` with the seconds preflight allowed.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field


class Raw(str):
    """A piece of a command written as is (`"$kh"`, a variable reference), not quoted."""


Arg = str | Raw


def seconds(value: float) -> str:
    """Whole seconds, rounded up: nc, timeout and ssh take integers."""
    return str(max(1, math.ceil(value)))


def quote(arg: Arg) -> str:
    return arg if isinstance(arg, Raw) else _quoted(arg)


# A fleet's commands share most of their words (the options, a user, often a host): 10,000
# tarpits made 180,000 quotes, nearly all of words quoted before. (Never a Raw one: Raw("x")
# == "x", and a Raw word is not to be quoted.)
_quoted = functools.lru_cache(maxsize=4096)(shlex.quote)


def join(words: Sequence[Arg]) -> str:
    return " ".join(quote(word) for word in words)


def variable(name: str) -> Raw:
    """A reference to an environment variable, expanded when the command runs."""
    return Raw(f'"${name}"')


def ssh_path(path: str) -> str:
    """A path as ssh reads it in an option value: `%` doubled (ssh expands `%` tokens in
    IdentityFile and UserKnownHostsFile), double quotes around one with a space (ssh splits
    UserKnownHostsFile into several files at spaces) or a single quote (which ssh reads as
    the start of a quoted word: "invalid quotes"). A path with a double quote or a backslash
    cannot be written so; the callers read such a file through a copy."""
    path = path.replace("%", "%%")
    return f'"{path}"' if re.search(r"[\s']", path) else path


@dataclass
class Command:
    """One command line being put together: the temporary files it needs first and the
    variables a ProxyCommand (run by ssh's own shell) must see."""

    setup: list[str] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)

    def temp_file(self, name: str, writer: str, *, executable: bool = False) -> Raw:
        """A file written by `writer` (a shell pipeline writing to stdout), named "$name"."""
        if name not in self.temporary:
            self.temporary.append(name)
            # A list goes in braces, so that the redirect takes all of it: `cat F || true >
            # "$kh"` sent the file to the terminal and left "$kh" empty. (A pipeline's last
            # command is the one that writes: the redirect after it is right as it is.)
            if "||" in writer or "&&" in writer or ";" in writer:
                writer = f"{{ {writer}; }}"
            made = f'{name}=$(mktemp) && {writer} > "${name}"'
            if executable:
                made += f' && chmod 700 "${name}"'
            self.setup.append(made)
        return variable(name)

    def askpass(self, secret_variable: str) -> list[str]:
        """The environment that makes ssh read a password or passphrase prompt's answer from
        `secret_variable` (a script printing it; OpenSSH 8.4+), one script per variable."""
        name = "ap_" + secret_variable.lower()
        script = f'#!/bin/sh\\nprintf "%%s\\\\n" "${secret_variable}"\\n'
        self.temp_file(name, f"printf '{script}'", executable=True)
        return [f'SSH_ASKPASS="${name}"', "SSH_ASKPASS_REQUIRE=force"]

    def interactive_sftp(self) -> list[Arg]:
        """`sftp -b` turns ssh's BatchMode on, which forbids password and passphrase prompts;
        an ssh program that turns it off again first (ssh takes the first value) keeps them."""
        script = '#!/bin/sh\\nexec ssh -o BatchMode=no "$@"\\n'
        return ["-S", self.temp_file("sx", f"printf '{script}'", executable=True)]

    def export(self, name: str) -> None:
        if name not in self.exported:
            self.exported.append(name)

    def render(
        self,
        words: Sequence[Arg],
        *,
        environment: Sequence[str] = (),
        before: str = "",
        after: str = "",
        timeout: float | None = None,
    ) -> str:
        """The line: `before | environment [timeout N] words after`, in a subshell that makes
        the temporary files first and removes them however it ends."""
        line = join(words) + after
        if timeout is not None:
            line = f"timeout {seconds(timeout)} {line}"
        if environment:
            line = " ".join(environment) + " " + line
        if before:
            line = f"{before} | {line}"
        if not self.setup:
            return line
        removed = " ".join(f'"${name}"' for name in self.temporary)
        # An interrupted command must not leave a key behind: Ctrl-C, HUP and TERM exit the
        # subshell (after the command in front of it), and the EXIT trap removes the files.
        steps = [f"trap 'rm -f {removed}' EXIT", "trap 'exit 130' INT HUP TERM", *self.setup]
        if self.exported:
            steps.append("export " + " ".join(self.exported))
        return "(" + " && ".join(steps) + " && " + line + ")"
