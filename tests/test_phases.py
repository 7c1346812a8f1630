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
