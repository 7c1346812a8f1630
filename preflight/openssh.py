"""What the OpenSSH client on this runner would offer a server, to compare with paramiko.

When a server and paramiko share no algorithm, the next question is whether the job's own
client would: an `ssh` command may get through where a paramiko-based job cannot (a server that
allows only algorithms newer than paramiko supports), or fail just the same (one that allows only
legacy ones). `ssh -G -F none HOST` prints the client's defaults without connecting, without a
lookup (no canonicalisation under `-F none`) and without running anything from a user's config
(`Match exec`): those defaults are what is compared, and said so. Asked once per process, under
a short timeout; None when there is no OpenSSH client here or it does not answer.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from typing import NamedTuple

# `ssh -G` keywords → the kinds of algorithm paramiko negotiates (its error names the first
# kind that had nothing in common).
KINDS = {
    "key exchange": "kexalgorithms",
    "host key": "hostkeyalgorithms",
    "cipher": "ciphers",
    "MAC": "macs",
}
QUERY_TIMEOUT = 2.0


class OpenSSHClient(NamedTuple):
    version: str  # "OpenSSH_9.2p1"
    algorithms: dict[str, tuple[str, ...]]  # KINDS key → the client's default list


@functools.cache
def client(timeout: float = QUERY_TIMEOUT) -> OpenSSHClient | None:
    """This runner's OpenSSH client and its default algorithms, or None."""
    ssh = shutil.which("ssh")
    if ssh is None:
        return None
    try:
        shown = subprocess.run(
            [ssh, "-G", "-F", "none", "preflight.invalid"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        version = subprocess.run(
            [ssh, "-V"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    options = dict(line.split(" ", 1) for line in shown.stdout.splitlines() if " " in line)
    algorithms = {
        kind: tuple(options[keyword].split(","))
        for kind, keyword in KINDS.items()
        if keyword in options
    }
    if shown.returncode != 0 or not algorithms:
        return None
    found = re.search(r"OpenSSH_[\w.]+", version.stderr + version.stdout)
    return OpenSSHClient(found.group(0) if found else "OpenSSH", algorithms)
