"""The live progress line: drawn on a terminal outside CI, never in logs, erased at the end."""

from __future__ import annotations

import io

from preflight import cli, lab
from preflight.model import Target, TargetResult
from preflight.report.progress import ProgressLine, wanted


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_only_on_a_terminal_outside_ci():
    assert wanted(Terminal(), {})
    assert not wanted(Terminal(), {"CI": "true"})
    assert not wanted(Terminal(), {"TERM": "dumb"})
    assert not wanted(io.StringIO(), {})


def test_counts_done_failing_running_and_erases_itself():
    stream = Terminal()
    line = ProgressLine(stream, total=3)
    line.MIN_INTERVAL = 0.0
    line.target_done(TargetResult(Target(name="a", host="h")))
    failed = TargetResult(Target(name="b", host="h"), interrupted=True)
    line.target_done(failed)
    assert stream.getvalue().endswith("preflight: 2/3 done, 1 failing, 1 running")
    line.close()
    assert stream.getvalue().endswith("\r")
    assert stream.getvalue().rsplit("\r", 2)[-2].strip() == ""


def test_check_draws_progress_on_a_terminal_and_not_in_ci():
    with lab.RefusedPort() as refused:
        argv = ["check", f"127.0.0.1:{refused.port}", "--stages", "dns,tcp"]
        for environ, drawn in (({}, True), ({"CI": "true"}, False)):
            out, err = io.StringIO(), Terminal()
            assert cli.run(argv, stdout=out, stderr=err, environ=environ) == 1
            assert ("1/1 done, 1 failing" in err.getvalue()) is drawn
            assert "\r" not in out.getvalue()
