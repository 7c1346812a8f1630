"""The table of outputs (`preflight.report.outputs`): what a run writes, in which order, and
that no line of the console report can cost a CI job its report files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import report_samples as samples

from preflight.report import console, github, gitlab, outputs


def test_a_block_with_an_empty_line_inside_stays_one_target_in_every_ci_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The blocks are made by the console renderer, not found by splitting its text on blank
    # lines: an empty line inside a target's block (a future field, a renderer's bug) once
    # split it in two, failed a guard and ended the CI run with exit 3 and no reports.
    real = console._render_target

    def with_a_gap(*args: Any, **kwargs: Any) -> list[str]:
        lines = real(*args, **kwargs)
        return [lines[0], "", *lines[1:]]

    monkeypatch.setattr(console, "_render_target", with_a_gap)
    report = samples.failing_report()
    sections = gitlab.render_sections(report, color=False)
    assert sections.count("section_start:") == sections.count("section_end:") == 2
    groups = github.render_groups(report, color=False)
    assert groups.count("::group::") == groups.count("::endgroup::") == 2
    # Each target's lines, the empty one included, are inside its own group.
    first = groups.split("::endgroup::")[0]
    assert "sftp-prod" in first and "sftp-dr" not in first and "\n\n" in first


def _broken(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("a bug in a renderer")


def test_a_bug_in_the_console_renderer_costs_no_report_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "write_console", _broken)
    junit, report_file = tmp_path / "r.xml", tmp_path / "r.json"
    wanted = outputs.Outputs(
        stdout=io.StringIO(), color=False, junit=str(junit), json=str(report_file)
    )
    with pytest.raises(RuntimeError):  # a bug is still a bug (exit 3)…
        outputs.write(samples.failing_report(), wanted)
    assert junit.read_text().startswith("<?xml")  # …but the CI job has its reports
    assert json.loads(report_file.read_text())["ok"] is False


def test_a_bug_in_the_junit_writer_costs_neither_the_json_file_nor_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from preflight.report import junit as junit_report

    monkeypatch.setattr(junit_report, "write_junit", _broken)
    report_file = tmp_path / "r.json"
    wanted = outputs.Outputs(
        stdout=io.StringIO(), color=False, junit=str(tmp_path / "r.xml"), json=str(report_file)
    )
    with pytest.raises(RuntimeError):
        outputs.write(samples.failing_report(), wanted)
    assert json.loads(report_file.read_text())["ok"] is False
    assert "2 targets: 1 ok, 1 failed" in wanted.stdout.getvalue()  # type: ignore[attr-defined]


def test_a_bug_raised_after_a_file_could_not_be_written_carries_that_problem_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "write_console", _broken)
    wanted = outputs.Outputs(stdout=io.StringIO(), color=False, json=str(tmp_path))  # a directory
    with pytest.raises(RuntimeError) as raised:
        outputs.write(samples.failing_report(), wanted)
    assert [note.split(":")[0] for note in raised.value.__notes__] == [
        f"could not write the JSON report to {tmp_path}"
    ]


def test_an_empty_report_path_writes_no_file(tmp_path: Path) -> None:
    # `--junit "$REPORT"` with REPORT unset: no file, and not an error (as before #11).
    wanted = outputs.Outputs(stdout=io.StringIO(), color=False, junit="", json="")
    assert outputs.write(samples.failing_report(), wanted) == []


def test_a_format_that_cannot_be_written_does_not_stop_the_others(tmp_path: Path) -> None:
    wanted = outputs.Outputs(
        stdout=io.StringIO(),
        color=False,
        junit=str(tmp_path),  # a directory: cannot be written
        json=str(tmp_path / "r.json"),
    )
    problems = outputs.write(samples.failing_report(), wanted)
    assert len(problems) == 1 and problems[0].startswith(
        f"could not write the JUnit report to {tmp_path}: "
    )
    assert (tmp_path / "r.json").exists()
    assert "2 targets: 1 ok, 1 failed" in wanted.stdout.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("ci", ["GITLAB_CI", "GITHUB_ACTIONS"], ids=["gitlab", "github"])
def test_an_empty_line_in_a_block_cannot_break_a_ci_run(
    ci: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from preflight import cli, lab

    real = console._render_target
    monkeypatch.setattr(
        console, "_render_target", lambda *a, **k: [(lines := real(*a, **k))[0], "", *lines[1:]]
    )
    junit, report_file = tmp_path / "r.xml", tmp_path / "r.json"
    environ = {ci: "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    stdout, stderr = io.StringIO(), io.StringIO()
    with lab.RefusedPort() as refused:
        argv = ["check", f"127.0.0.1:{refused.port}", "--stages", "dns,tcp"]
        argv += ["--junit", str(junit), "--json", str(report_file)]
        status = cli.run(argv, stdout=stdout, stderr=stderr, environ=environ)
    assert status == 1, stderr.getvalue()  # the check failed; nothing else did
    assert junit.exists() and json.loads(report_file.read_text())["ok"] is False
    assert "tcp.refused" in stdout.getvalue()
