"""--attempts: intermittent faults show up as a pattern, per-stage pass rates and latencies."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime

import junitparser

from preflight import cli, lab
from preflight.attempts import combine
from preflight.model import (
    ALL_STAGES,
    Diagnosis,
    Report,
    Stage,
    StageResult,
    Status,
    Target,
    TargetResult,
)

BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"
TARGET = Target(name="t", host="127.0.0.1", stages=ALL_STAGES[:2])


def round_result(ok: bool, tcp_seconds: float) -> Report:
    tcp = (
        StageResult(Stage.TCP, Status.PASS, tcp_seconds, "connected")
        if ok
        else StageResult(
            Stage.TCP,
            Status.FAIL,
            tcp_seconds,
            "dropped",
            Diagnosis("tcp.timeout", "no answer", "ask the firewall team"),
        )
    )
    stages = [StageResult(Stage.DNS, Status.PASS, 0.001, "literal"), tcp]
    return Report([TargetResult(TARGET, stages, 0.1)], datetime.now(UTC), 0.1)


def test_attempts_that_disagree_make_a_flaky_failure_with_the_pattern():
    combined = combine(
        [
            round_result(True, 0.01),
            round_result(False, 1.0),
            round_result(True, 0.03),
            round_result(False, 1.0),
        ]
    )
    result = combined.targets[0]
    assert (result.flaky, result.ok, result.attempts) == (True, False, 4)
    tcp = result.stages[1]
    assert tcp.status is Status.FAIL  # the representative attempt is the first failure
    assert tcp.diagnosis.summary.startswith("2 of 4 attempts failed (✓✗✓✗); the first failure:")
    stats = tcp.facts["rounds"]
    assert (stats["passed"], stats["ran"], stats["of"]) == (2, 4, 4)
    assert stats["codes"] == {"tcp.timeout": 2}
    assert stats["latency_s"]["min"] == 0.01 and stats["latency_s"]["max"] == 1.0


def test_attempts_that_all_pass_are_ok_with_latency_statistics():
    result = combine([round_result(True, s) for s in (0.01, 0.02, 0.03)]).targets[0]
    assert (result.flaky, result.ok) == (False, True)
    assert result.stages[1].facts["rounds"]["latency_s"]["median"] == 0.02


def test_a_consistent_failure_is_not_flaky():
    result = combine([round_result(False, 1.0), round_result(False, 1.0)]).targets[0]
    assert (result.flaky, result.ok) == (False, False)
    assert "each time" in result.stages[1].diagnosis.summary


def interrupted_round() -> Report:
    """A round cut short while tcp was running: tcp is what the interruption left."""
    stages = [
        StageResult(Stage.DNS, Status.PASS, 0.001, "literal"),
        StageResult(Stage.TCP, Status.SKIP, 0.0, "interrupted before this stage finished"),
    ]
    result = TargetResult(TARGET, stages, 0.5, interrupted=True)
    return Report([result], datetime.now(UTC), 0.5, interrupted=True)


def test_an_interrupted_attempt_counts_for_nothing_and_is_never_a_disagreement():
    result = combine([round_result(False, 1.0), interrupted_round()], planned=2).targets[0]
    assert (result.flaky, result.attempts, result.interrupted) == (False, 1, True)
    tcp = result.stages[1]
    assert tcp.diagnosis.summary == (
        "1 of 1 attempt failed (✗), then the run was interrupted during attempt 2 of 2; "
        "the failure: no answer"
    )
    assert tcp.facts["rounds"]["of"] == 1
    assert tcp.diagnosis.hint == "ask the firewall team"  # a steady failure keeps its hint


def test_a_flaky_failure_gets_the_hint_for_intermittent_causes():
    combined = combine([round_result(True, 0.01), round_result(False, 1.0)])
    hint = combined.targets[0].stages[1].diagnosis.hint
    assert hint.startswith("Some connection attempts get through and some do not")


def test_a_stage_not_every_attempt_reached_says_so_beside_skipped():
    from preflight.report.console import render

    def three_stages(ok: bool) -> Report:
        report = round_result(ok, 0.5)
        banner = (
            StageResult(Stage.BANNER, Status.PASS, 0.01, "SSH-2.0-x")
            if ok
            else StageResult(Stage.BANNER, Status.SKIP, 0.0, "skipped: tcp failed")
        )
        report.targets[0].stages.append(banner)
        report.targets[0].target = Target(name="t", host="127.0.0.1", stages=ALL_STAGES[:3])
        return report

    combined = combine([three_stages(True), three_stages(False), three_stages(True)])
    text = render(combined, color=False)
    banner_lines = text.split("banner", 1)[1].splitlines()
    assert "skipped: tcp failed" in banner_lines[0]
    assert banner_lines[1].strip().startswith("2/2 attempts that reached it passed (1 did not)")


def test_ctrl_c_during_the_second_attempt_of_a_steady_failure(tmp_path):
    # The case from the field: a steady tarpit, Ctrl-C while attempt 2 of 2 waits. It is no
    # "FLAKY … 2 of 2 attempts failed (✗✗)": one attempt finished, and it failed.
    import signal

    from test_cli import preflight_process

    with lab.Tarpit() as tarpit:
        config = tmp_path / "checks.yaml"
        config.write_text(
            "version: 1\ndefaults: {stages: [dns, tcp, banner], timeouts: {banner: 1}}\n"
            f"targets: [{{name: tarpit, host: 127.0.0.1, port: {tarpit.port}}}]\n"
        )
        report = tmp_path / "r.json"
        proc = preflight_process(
            "check",
            "-c",
            str(config),
            "--attempts",
            "2",
            "--interval",
            "0",
            "--json",
            str(report),
            "--color",
            "never",
        )
        deadline = time.monotonic() + 20
        while tarpit.accepted < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "FLAKY" not in out
    target = json.loads(report.read_text())["targets"][0]
    assert (target["flaky"], target["attempts"]) == (False, 1)
    banner = target["stages"][2]
    assert banner["diagnosis"]["summary"].startswith(
        "1 of 1 attempt failed (✗), then the run was interrupted during attempt 2 of 2; "
        "the failure: TCP to 127.0.0.1:"
    )


def test_a_server_failing_every_other_connection_is_reported_flaky(tmp_path):
    with lab.Greeter(BANNER) as server, lab.Intermittent(server.address, every=2) as flaky:
        config = tmp_path / "checks.yaml"
        config.write_text(
            "version: 1\ndefaults: {stages: [dns, tcp, banner], timeouts: {banner: 1}}\n"
            f"targets: [{{name: sometimes, host: 127.0.0.1, port: {flaky.port}}}]\n"
        )
        junit, report = tmp_path / "r.xml", tmp_path / "r.json"
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        status = cli.run(
            [
                "check",
                "-c",
                str(config),
                "--attempts",
                "4",
                "--interval",
                "0.2",
                "--junit",
                str(junit),
                "--json",
                str(report),
            ],
            stdout=out,
            stderr=err,
            environ={},
        )
        elapsed = time.monotonic() - started
    assert status == 1, err.getvalue()
    assert "FLAKY at banner" in out.getvalue()
    assert elapsed >= 3 * 0.2  # the interval is honoured between the four rounds
    target = json.loads(report.read_text())["targets"][0]
    assert (target["flaky"], target["attempts"]) == (True, 4)
    banner = target["stages"][2]
    assert banner["facts"]["rounds"]["passed"] == 2
    assert "(✓✗✓✗)" in banner["diagnosis"]["summary"]
    suite = next(iter(junitparser.JUnitXml.fromfile(str(junit))))
    failed = next(case for case in suite if case.name == "banner")
    assert "✓✗✓✗" in failed.result[0].text


def test_attempts_stay_within_the_run_deadline():
    with lab.Tarpit() as tarpit:
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        status = cli.run(
            [
                "check",
                f"127.0.0.1:{tarpit.port}",
                "--stages",
                "dns,tcp,banner",
                "--attempts",
                "50",
                "--interval",
                "0",
                "--deadline",
                "2",
            ],
            stdout=out,
            stderr=err,
            environ={},
        )
    assert status == 1
    assert time.monotonic() - started < 2 + 2


def test_round_statistics_do_not_hide_the_tcp_stage_s_own_attempts():
    rounds = [round_result(False, 1.0), round_result(True, 0.01)]
    rounds[0].targets[0].stages[1].facts["attempts"] = [
        {"address": "[::1]:22", "result": "timeout"}
    ]
    tcp = combine(rounds).targets[0].stages[1]
    assert tcp.facts["attempts"] == [{"address": "[::1]:22", "result": "timeout"}]
    assert tcp.facts["rounds"]["of"] == 2


def test_statistics_keep_a_jump_host_s_rows_apart_from_the_target_s():
    def with_jump(ok: bool) -> Report:
        report = round_result(ok, 0.5)
        stages = report.targets[0].stages
        stages.insert(0, StageResult(Stage.TCP, Status.PASS, 0.001, "bastion", hop=1))
        return report

    result = combine([with_jump(True), with_jump(False)]).targets[0]
    bastion = next(s for s in result.stages if s.name == "jump1.tcp")
    target_tcp = next(s for s in result.stages if s.name == "tcp")
    assert bastion.facts["rounds"]["passed"] == 2
    assert target_tcp.facts["rounds"]["passed"] == 1
