"""What a stage is waiting for when it fails: named phases, compared as constants.

A diagnosis depends on where a stage was (a timeout during the key exchange is
`auth.kex_timeout`, one during authentication `auth.timeout`), and codes are a stable contract.
So the stages name their phase with a `Phase` constant (and what it concerns: the address
waited for, the path listed) and `diagnose` compares the constants, never the words a report
shows for them: rewording a label here cannot change a code. `At` is a phase with its subject;
its text is the label the reports show ("listdir(/upload)", "key exchange").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Phase(enum.Enum):
    """The steps a stage waits in; each value is its label, `{}` standing for the subject."""

    RESOLVE = "resolve"
    RESOLVER = "the resolver"
    RESOLVER_SLOT = "a free resolver slot ({} lookups are still waiting for the resolver)"
    CONNECT = "connect"
    ANSWER = "an answer from {}"
    FREE_MOMENT = "a free moment before the deadline"
    START = "a chance to start"
    SSH_SLOT = "the wait for a free SSH session slot"
    SOCKET_SLOT = "the wait for a free socket (the open-file limit)"
    BANNER = "banner"
    IDENTIFICATION = "the identification line"
    KEY_EXCHANGE = "key exchange"
    HOST_KEY = "host key verification"
    RECONNECT = "a new connection (to ask for its {} host key)"
    AUTHENTICATION = "authentication"
    SESSION_CHANNEL = "a session channel"
    SUBSYSTEM = "the sftp subsystem"
    SFTP_VERSION = "the SFTP version handshake"
    STAT = "stat({})"
    LISTDIR = "listdir({})"
    STATVFS = "statvfs({})"
    CREATE = "the creation of {}"
    WRITE = "the upload to {}"
    REMOVE = "remove({})"
    # A stage that had not named a step yet when the runner's backstop stopped it; the
    # subject is the stage's name.
    STAGE = "{}"


@dataclass(frozen=True)
class At:
    """A phase and what it concerns (an address, a path, a key type); `str()` is its label."""

    phase: Phase
    subject: str = ""

    def __str__(self) -> str:
        label = self.phase.value
        return label.format(self.subject) if "{}" in label else label

    def is_(self, phase: Phase) -> bool:
        return self.phase is phase


def label(at: At | None) -> str:
    """The label of `at`, or "" when no phase was set."""
    return str(at) if at is not None else ""
