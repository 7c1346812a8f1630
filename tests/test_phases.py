"""Phases (`preflight.phases`) are constants: a diagnosis code never depends on a label's words."""

from __future__ import annotations

import pytest

from preflight import diagnose
from preflight.errors import StageTimeout
from preflight.model import Stage
from preflight.phases import At, Phase, label


def test_a_label_names_its_subject():
    assert str(At(Phase.LISTDIR, "/upload")) == "listdir(/upload)"
    assert str(At(Phase.KEY_EXCHANGE)) == "key exchange"
    assert label(None) == ""


@pytest.mark.parametrize(
    ("phase", "code"),
    [(Phase.KEY_EXCHANGE, "auth.kex_timeout"), (Phase.AUTHENTICATION, "auth.timeout")],
)
def test_rewording_a_phase_for_the_reports_cannot_change_a_code(
    monkeypatch: pytest.MonkeyPatch, phase: Phase, code: str
) -> None:
    # Once, `ctx.phase == "key exchange"` had to match a string in the stage: a reworded
    # label turned auth.kex_timeout into auth.timeout. Now the constant is compared.
    monkeypatch.setattr(At, "__str__", lambda self: "something else entirely")
    at = At(phase)
    ctx = diagnose.Context(Stage.AUTH, "sftp.example.com", 22, 10.0, 10.0, phase=at)
    assert diagnose.diagnose(StageTimeout(at, 10.0), ctx).code == code


# Every label as the reports print it: a change here is a change to every report format.
LABELS = {
    Phase.RESOLVE: "resolve",
    Phase.RESOLVER: "the resolver",
    Phase.RESOLVER_SLOT: "a free resolver slot (3 lookups are still waiting for the resolver)",
    Phase.CONNECT: "connect",
    Phase.ANSWER: "an answer from 3",
    Phase.FREE_MOMENT: "a free moment before the deadline",
    Phase.START: "a chance to start",
    Phase.SSH_SLOT: "the wait for a free SSH session slot",
    Phase.SOCKET_SLOT: "the wait for a free socket (the open-file limit)",
    Phase.BANNER: "banner",
    Phase.IDENTIFICATION: "the identification line",
    Phase.KEY_EXCHANGE: "key exchange",
    Phase.HOST_KEY: "host key verification",
    Phase.RECONNECT: "a new connection (to ask for its 3 host key)",
    Phase.AUTHENTICATION: "authentication",
    Phase.SESSION_CHANNEL: "a session channel",
    Phase.SUBSYSTEM: "the sftp subsystem",
    Phase.SFTP_VERSION: "the SFTP version handshake",
    Phase.STAT: "stat(3)",
    Phase.LISTDIR: "listdir(3)",
    Phase.STATVFS: "statvfs(3)",
    Phase.CREATE: "the creation of 3",
    Phase.WRITE: "the upload to 3",
    Phase.REMOVE: "remove(3)",
    Phase.STAGE: "3",
}


def test_every_phase_has_its_label_pinned():
    assert set(LABELS) == set(Phase)


@pytest.mark.parametrize("phase", list(Phase), ids=lambda phase: phase.name)
def test_each_phase_reads_the_same_in_every_sentence_that_names_it(phase: Phase) -> None:
    at = At(phase, "3")
    words = LABELS[phase]
    assert str(at) == words
    assert diagnose.cut_short(1.5, at) == (
        f"interrupted after 1.50s during {words}, before the stage finished"
    )
    ctx = diagnose.Context(Stage.AUTH, "sftp.example.com", 22, 10.0, 4.0, phase=at, deadline=4.0)
    summary = diagnose.deadline_exceeded(ctx, at).summary
    # The slots' sentences name the way out: "a free SSH slot (--jobs)", the open-file limit.
    waited_for = {
        Phase.SSH_SLOT: "a free SSH slot (--jobs)",
        Phase.SOCKET_SLOT: "a free socket under the open-file limit, before it started",
    }.get(phase, words)
    assert f"cut the auth stage off after 4.0s waiting for {waited_for} " in summary
