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


def test_the_report_files_are_written_before_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in a renderer")

    monkeypatch.setattr(console, "write_console", broken)
    junit, report_file = tmp_path / "r.xml", tmp_path / "r.json"
    wanted = outputs.Outputs(
        stdout=io.StringIO(), color=False, junit=str(junit), json=str(report_file)
    )
    with pytest.raises(RuntimeError):  # a bug is still a bug (exit 3)…
        outputs.write(samples.failing_report(), wanted)
    assert junit.read_text().startswith("<?xml")  # …but the CI job has its reports
    assert json.loads(report_file.read_text())["ok"] is False


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
