"""The live progress line: drawn on a terminal outside CI, never in logs, erased at the end."""

from __future__ import annotations

import io
import itertools
import time

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
    assert stream.getvalue().endswith("preflight: 2/3 done, 1 failing, 1 running; 0 stages run")
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


def test_it_moves_with_each_stage_and_names_the_attempt():
    stream = Terminal()
    line = ProgressLine(stream, total=1, attempts=5)
    line.MIN_INTERVAL = 0.0
    line.attempt_started(2)
    line.stage_done()
    assert (
        stream.getvalue()
        .rstrip()
        .endswith("preflight: 0/1 done, 0 failing, 1 running; attempt 2/5; 1 stage run")
    )


def test_one_target_checked_again_and_again_never_leaves_the_line_still(tmp_path):
    # Before, the line moved only when a target finished: one target with --attempts 5
    # --interval 1 left the screen blank for 14 s. Now every attempt and every stage redraws
    # it, so the longest still spell is an interval or one stage, never the run.
    draws: list[tuple[float, str]] = []

    class Timed(Terminal):
        def write(self, text: str) -> int:
            if text.startswith("\r") and text.strip():
                draws.append((time.monotonic(), text.strip()))
            return super().write(text)

    with lab.Greeter(b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        argv = [
            "check",
            f"127.0.0.1:{server.port}",
            "--stages",
            "dns,tcp,banner",
            "--attempts",
            "3",
            "--interval",
            "0.5",
        ]
        started = time.monotonic()
        assert cli.run(argv, stdout=io.StringIO(), stderr=Timed(), environ={}) == 0
        ended = time.monotonic()
    shown = [text for _, text in draws]
    assert "preflight: 0/1 done, 0 failing, 1 running; attempt 1/3; 0 stages run" in shown
    assert "preflight: 0/1 done, 0 failing, 1 running; attempt 3/3; 6 stages run" in shown
    assert shown[-1] == "preflight: 1/1 done, 0 failing, 0 running; attempt 3/3; 9 stages run"
    moments = [started] + [moment for moment, _ in draws] + [ended]
    # Generous: an interval is 0.5 s; a whole run without a redraw would be over 1 s.
    assert max(b - a for a, b in itertools.pairwise(moments)) < 0.9 + 0.5


def test_the_line_never_wraps_on_a_narrow_terminal():
    # A line wider than the terminal wraps, and each redraw then leaves a line behind.
    stream = Terminal()
    line = ProgressLine(stream, total=10_000, attempts=5, width=40)
    line.MIN_INTERVAL = 0.0
    line.attempt_started(3)
    assert all(len(drawn) <= 39 for drawn in stream.getvalue().split("\r"))
