"""Specification of the console report (`preflight.report.console`): what an on-call engineer
reads in a terminal or a CI log, and when it is coloured (DESIGN §5)."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
import report_samples as samples

from preflight.model import Report, Stage, StageResult, Status, TargetResult
from preflight.report.console import color_enabled, format_duration, render, write_console

SGR = re.compile(r"\x1b\[[0-9;]*m")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def single(result: TargetResult, **changes: object) -> Report:
    report = Report(targets=[result], started_at=samples.STARTED_AT, duration_s=3.0213)
    for name, value in changes.items():
        setattr(report, name, value)
    return report


# --- when to colour -----------------------------------------------------------------------------


def test_auto_colours_a_terminal() -> None:
    assert color_enabled(FakeTTY(), "auto", {"TERM": "xterm-256color"})


def test_auto_does_not_colour_a_pipe_or_file() -> None:
    assert not color_enabled(io.StringIO(), "auto", {"TERM": "xterm"})


def test_auto_does_not_colour_a_dumb_terminal() -> None:
    assert not color_enabled(FakeTTY(), "auto", {"TERM": "dumb"})


def test_no_color_turns_colour_off_on_a_terminal() -> None:
    assert not color_enabled(FakeTTY(), "auto", {"NO_COLOR": "1"})


def test_an_empty_no_color_is_ignored() -> None:
    assert color_enabled(FakeTTY(), "auto", {"NO_COLOR": ""})


def test_force_color_colours_a_pipe() -> None:
    assert color_enabled(io.StringIO(), "auto", {"FORCE_COLOR": "1"})


@pytest.mark.parametrize("value", ["", "0"])
def test_force_color_empty_or_zero_is_ignored(value: str) -> None:
    assert not color_enabled(io.StringIO(), "auto", {"FORCE_COLOR": value})


def test_no_color_wins_over_force_color() -> None:
    assert not color_enabled(FakeTTY(), "auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"})


def test_never_wins_over_everything() -> None:
    assert not color_enabled(FakeTTY(), "never", {"FORCE_COLOR": "1", "TERM": "xterm"})


def test_always_wins_over_everything() -> None:
    assert color_enabled(io.StringIO(), "always", {"NO_COLOR": "1", "TERM": "dumb"})


def test_a_closed_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    stream.close()
    assert not color_enabled(stream, "auto", {})


# --- layout -------------------------------------------------------------------------------------


def test_failing_target_reads_as_specified() -> None:
    text = render(single(samples.tcp_timeout_result()), color=False)
    assert text == (
        "sftp-dr  sftp-dr.example.com:2222  FAILED at tcp  3.02s\n"
        "  ✓ dns     0.012s  sftp-dr.example.com → 203.0.113.7\n"
        f"  ✗ tcp     3.00s   tcp.timeout: {samples.TCP_SUMMARY}\n"
        f"                    hint: {samples.TCP_HINT}\n"
        "  – banner          skipped: tcp failed\n"
        "  – auth            skipped: tcp failed\n"
        "  – sftp            skipped: tcp failed\n"
        "\n"
        "1 target: 0 ok, 1 failed (3.02s)\n"
    )


def test_header_names_target_endpoint_verdict_and_time() -> None:
    header = render(samples.passing_report(), color=False).splitlines()[0]
    assert header == "sftp-prod  sftp.example.com:2222  OK  0.234s"


def test_one_line_per_configured_stage_in_order() -> None:
    lines = render(samples.passing_report(), color=False).splitlines()
    stage_lines = [line for line in lines if line.startswith("  ✓ ")]
    assert [line.split()[1] for line in stage_lines] == [stage.value for stage in Stage]


def test_stage_columns_are_aligned() -> None:
    lines = render(samples.failing_report(), color=False).splitlines()
    stage_lines = [line for line in lines if line[:4].strip() in {"✓", "✗", "–"}]
    with_detail = [line for line in stage_lines if len(line) > 20]
    assert len(with_detail) == 10  # the failed tcp stage shows its verdict in the column
    for line in with_detail:  # every detail starts in the same column
        assert line[18:20] == "  " and line[20] != " "


def test_warnings_are_marked_with_an_exclamation_mark() -> None:
    text = render(samples.passing_report(), color=False)
    assert "  ! host key not verified (host_key.policy: off)\n" in text


def test_skipped_stages_show_their_reason() -> None:
    text = render(samples.failing_report(), color=False)
    assert "  – banner          skipped: tcp failed\n" in text


def test_summary_counts_targets_and_total_time() -> None:
    last = render(samples.failing_report(), color=False).splitlines()[-1]
    assert last == "2 targets: 1 ok, 1 failed (3.02s)"


def test_an_interrupted_run_says_so() -> None:
    text = render(samples.interrupted_report(), color=False)
    assert "sftp-dr  sftp.example.com:2222  INTERRUPTED  1.20s" in text
    assert text.splitlines()[-1] == "2 targets: 1 ok, 0 failed, 1 not finished (1.25s), interrupted"


def test_stages_that_never_reported_are_shown_as_not_run() -> None:
    text = render(samples.interrupted_report(), color=False)
    assert "  – tcp             skipped: not run: interrupted\n" in text
    assert "  – banner          skipped: not run: interrupted\n" in text


def test_an_ipv6_endpoint_is_bracketed() -> None:
    result = samples.passing_result()
    result.target = samples.target(host="2001:db8::7", port=22)
    assert "[2001:db8::7]:22" in render(single(result), color=False)


def test_an_empty_run_still_has_a_summary() -> None:
    report = Report(targets=[], started_at=samples.STARTED_AT)
    assert render(report, color=False) == "0 targets: 0 ok, 0 failed (0.000s)\n"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.0, "0.000s"), (0.0123, "0.012s"), (3.0021, "3.00s"), (42.5, "42.50s"), (134.2, "134.2s")],
)
def test_durations_are_short_and_precise_enough(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_a_nonsense_duration_does_not_break_the_report() -> None:
    assert format_duration(float("nan")) == "0.000s"


# --- colour -------------------------------------------------------------------------------------


def test_without_colour_there_is_no_escape_code_at_all() -> None:
    assert "\x1b" not in render(samples.failing_report(), color=False)


def test_colour_marks_pass_green_fail_red_warning_yellow_skip_dim() -> None:
    text = render(samples.failing_report(), color=True)
    assert "\x1b[32m✓\x1b[0m" in text
    assert "\x1b[31m✗\x1b[0m" in text
    assert "\x1b[33mhost key not verified" in text
    assert "\x1b[2m–\x1b[0m" in text


def test_colour_does_not_change_the_layout() -> None:
    report = samples.failing_report()
    assert SGR.sub("", render(report, color=True)) == render(report, color=False)


def test_write_console_to_a_pipe_writes_the_rendered_text() -> None:
    stream = io.StringIO()
    report = samples.failing_report()
    write_console(report, stream, color=color_enabled(stream, "auto", {}))
    assert stream.getvalue() == render(report, color=False)
    assert "\x1b" not in stream.getvalue()


def test_write_console_falls_back_to_ascii_marks_on_an_ascii_stream() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    write_console(samples.failing_report(), stream, color=False)
    text = raw.getvalue().decode("ascii")
    assert "  + dns " in text
    assert "  x tcp " in text
    assert "  - banner " in text


# --- hostile input ------------------------------------------------------------------------------


def test_hostile_strings_cannot_inject_escapes_or_extra_lines() -> None:
    text = render(samples.hostile_report(), color=False)
    assert "\x1b" not in text
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    # header, 5 stages, code line, hint line, warning line, blank, summary
    assert len(text.splitlines()) == 11


def test_hostile_strings_keep_their_colour_codes_out_of_a_coloured_report() -> None:
    text = render(samples.hostile_report(), color=True)
    assert "\x1b[2J" not in text
    assert "\x1b]0;" not in text
    assert "\x1b[31mRED" not in text


def test_very_long_values_are_cut_for_the_terminal() -> None:
    text = render(samples.hostile_report(), color=False)
    assert max(len(line) for line in text.splitlines()) < 500
    assert "…" in text


def test_credentials_never_appear() -> None:
    text = render(samples.secrets_report(), color=False)
    assert samples.PASSWORD not in text
    assert "open-sesame-phrase" not in text
    assert "tried password ***" in text


def test_a_failed_stage_without_diagnosis_still_renders() -> None:
    result = TargetResult(
        target=samples.target(stages=(Stage.DNS,)),
        stages=[StageResult(Stage.DNS, Status.FAIL, 0.5, "resolver crashed")],
    )
    text = render(single(result), color=False)
    assert "  ✗ dns     0.500s  resolver crashed\n" in text


@pytest.mark.parametrize("color", [False, True])
def test_no_line_ends_in_whitespace(color: bool) -> None:
    for report in (samples.failing_report(), samples.interrupted_report()):
        for line in SGR.sub("", render(report, color=color)).splitlines():
            assert line == line.rstrip()


def test_a_reproduce_command_is_printed_with_its_spaces_as_they_are() -> None:
    result = samples.tcp_timeout_result()
    # Collapsed, the pasted command would list "/srv/a b"; an escape sequence still goes.
    result.stages[1].facts["reproduce"] = ["printf 'ls \"/srv/a  b\"' | sftp -b - x@y\x1b[2K"]
    text = render(single(result), color=False)
    assert "try: printf 'ls \"/srv/a  b\"' | sftp -b - x@y\n" in text


def test_a_detail_repeating_the_summary_is_not_printed_twice() -> None:
    result = samples.tcp_timeout_result()
    result.stages[1].detail = samples.TCP_SUMMARY
    text = render(single(result), color=False)
    assert text.count(samples.TCP_SUMMARY) == 1
    assert f"  ✗ tcp     3.00s   tcp.timeout: {samples.TCP_SUMMARY}\n" in text


def test_a_reason_that_already_says_skipped_is_not_prefixed_again() -> None:
    result = samples.tcp_timeout_result()
    result.stages[2].detail = "skipped: tcp failed"
    text = render(single(result), color=False)
    assert "  – banner          skipped: tcp failed\n" in text


def test_a_target_named_as_its_endpoint_is_not_named_twice() -> None:
    result = samples.tcp_timeout_result()
    result.target = replace(result.target, name="sftp-dr.example.com:2222")
    header = render(single(result), color=False).splitlines()[0]
    assert header.startswith("sftp-dr.example.com:2222  FAILED at tcp")
    assert header.count("sftp-dr.example.com") == 1


@pytest.mark.parametrize(
    "piece",
    [
        "[127.0.0.1]:22027 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH+kmBRLS5QYmlcGMcdKCIk3u0wq9Cc",
        "host_key.fingerprints: [SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s]",
        "`ssh-keygen -p -f KEY`",
        "chmod 600 /home/ci/.ssh/id_ed25519",
        "-F /etc/ssh/other_config",
        "0 ms",
    ],
)
def test_a_piece_meant_to_be_pasted_is_never_wrapped_in_two(piece: str) -> None:
    from preflight.report.console import _fill

    for lead in range(0, 60, 7):  # wherever the piece falls on the line
        text = "word " * lead + piece + " and then some more words to wrap around it"
        lines = _fill(text, 20, 80)
        assert any(piece in line for line in lines), lines
