"""Specification of the console's grouping (`preflight.report.grouping`): up to a threshold every
target is shown on its own; past it, what repeats is shown once — targets that failed the same
way (stage, code, flaky or not) with a count and the first names, the passed ones on one line —
in the console, GitLab's sections and GitHub's groups alike, unless every target is asked for
(``--verbose``). The files keep every target."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import report_samples as samples

from preflight import cli, lab
from preflight.model import Diagnosis, Hop, Report, TargetResult
from preflight.report import console, github, gitlab
from preflight.report.grouping import GROUP_THRESHOLD, entries


def dropped(name: str) -> TargetResult:
    return samples.tcp_timeout_result(name)


def refused(name: str) -> TargetResult:
    result = samples.tcp_timeout_result(name)
    tcp = result.stages[1]
    result.stages[1] = replace(
        tcp, diagnosis=Diagnosis("tcp.refused", f"{name} refused the connection", "open it")
    )
    return result


def passed(name: str) -> TargetResult:
    result = samples.passing_result(name)
    result.target = samples.target(name)
    return result


def report_of(results: list[TargetResult]) -> Report:
    return Report(results, samples.STARTED_AT, duration_s=3.1)


def test_up_to_the_threshold_every_target_has_its_own_entry() -> None:
    report = report_of([dropped(f"t{n}") for n in range(GROUP_THRESHOLD)])
    assert [entry.kind for entry in entries(report)] == ["target"] * GROUP_THRESHOLD


def test_past_it_failures_alike_are_one_entry_and_a_failure_of_its_own_keeps_its_block() -> None:
    results = [passed("ok-1"), dropped("d-1"), refused("r-1"), passed("ok-2")]
    results += [dropped(f"d-{n}") for n in range(2, GROUP_THRESHOLD)]
    made = entries(report_of(results))
    assert [(e.kind, e.code, len(e.results)) for e in made] == [
        ("failed", "tcp.timeout", GROUP_THRESHOLD - 1),  # where its first target came
        ("target", "", 1),  # the one refused: the target a reader looks for
        ("passed", "", 2),  # at the end
    ]
    assert made[0].first.target.name == "d-1" and made[1].first.target.name == "r-1"


def test_flaky_failures_and_unfinished_targets_are_kinds_of_their_own() -> None:
    flaky = [replace(dropped(f"f{n}"), flaky=True, attempts=3) for n in range(2)]
    unfinished = [replace(passed(f"u{n}"), interrupted=True, stages=[]) for n in range(2)]
    results = [dropped(f"d{n}") for n in range(GROUP_THRESHOLD)] + flaky + unfinished
    made = entries(report_of(results))
    assert [(e.kind, e.flaky, len(e.results)) for e in made] == [
        ("failed", False, GROUP_THRESHOLD),
        ("failed", True, 2),
        ("unfinished", False, 2),
    ]


def test_every_target_asked_for_means_every_target() -> None:
    report = report_of([dropped(f"t{n}") for n in range(GROUP_THRESHOLD + 10)])
    assert len(entries(report, every_target=True)) == GROUP_THRESHOLD + 10


def test_ten_thousand_failures_alike_read_in_a_few_lines() -> None:
    results = [dropped(f"t{n}") for n in range(10_000)] + [passed(f"ok{n}") for n in range(3)]
    text = console.render(report_of(results), color=False)
    lines = text.splitlines()
    assert len(lines) <= 30, text  # not 90,000
    assert lines[0] == "10000 targets  FAILED at tcp (tcp.timeout)  3.02s"
    assert lines[1] == "  t0, t1, t2, t3, t4 and 9995 more (--verbose shows each)"
    assert lines[2] == "  for example:"
    # The first target exactly as its own block shows it: every row, the hint, the commands.
    own = console.render(report_of([dropped("t0")]), color=False).split("\n\n")[0].splitlines()
    assert lines[3 : 3 + len(own)] == [f"  {line}" for line in own]
    assert f"hint: {samples.TCP_HINT}" in text
    assert "3 targets  OK  0.234s\n  ok0, ok1, ok2\n" in text
    assert text.rstrip().endswith("10003 targets: 3 ok, 10000 failed (3.10s)")


def test_notes_and_warnings_are_shown_for_one_and_counted_for_the_others() -> None:
    # A config note (e.g. a ProxyCommand preflight could not follow) or a warning may be the
    # real cause of a group's verdict: one target's are shown, the others' counted.
    noted = [
        replace(passed(f"w{n}"), target=samples.target(f"w{n}", config_notes=(f"note {n}",)))
        for n in range(GROUP_THRESHOLD + 1)
    ]
    text = console.render(report_of(noted), color=False)
    assert f"{GROUP_THRESHOLD + 1} targets  OK" in text
    assert "  for example:\n  w0  sftp.example.com:2222  OK" in text and "note 0" in text
    assert "note 1" not in text
    assert (
        f"! {GROUP_THRESHOLD} of these {GROUP_THRESHOLD + 1} targets have notes or warnings "
        "of their own (--verbose shows each)"
    ) in text


def test_the_same_failure_behind_a_jump_host_is_a_group_of_its_own() -> None:
    direct = [dropped(f"d{n}") for n in range(GROUP_THRESHOLD)]
    hop = Hop(host="bastion", port=22)
    behind = [
        replace(r, target=replace(r.target, jump=(hop,)))
        for r in (dropped(f"j{n}") for n in range(2))
    ]
    made = entries(report_of(direct + behind))
    assert [(e.kind, len(e.results)) for e in made] == [("failed", GROUP_THRESHOLD), ("failed", 2)]


def test_gitlab_sections_and_github_groups_follow_the_entries() -> None:
    results = [dropped(f"t{n}") for n in range(GROUP_THRESHOLD)] + [passed("a"), passed("b")]
    report = report_of(results)
    sections = gitlab.render_sections(report, color=False)
    assert sections.count("section_start:") == 2
    assert (
        "preflight-1-tcp-timeout" in sections and "preflight-2-passed[collapsed=true]" in sections
    )
    groups = github.render_groups(report, color=False)
    assert groups.count("::group::") == 2
    assert f"::group::{GROUP_THRESHOLD} targets  FAILED at tcp (tcp.timeout)" in groups
    every = github.render_groups(report, color=False, every_target=True)
    assert every.count("::group::") == GROUP_THRESHOLD + 2


def test_verbose_on_the_command_line_shows_every_target(tmp_path: Path) -> None:
    count = GROUP_THRESHOLD + 5
    with lab.RefusedPort() as server:
        targets = "".join(
            f"  - {{name: t{n}, host: 127.0.0.1, port: {server.port}}}\n" for n in range(count)
        )
        config = tmp_path / "checks.yaml"
        config.write_text(f"version: 1\ntargets:\n{targets}")
        outputs = {}
        for flags in ((), ("--verbose",)):
            out = io.StringIO()
            argv = ["check", "-c", str(config), "--json", str(tmp_path / "r.json"), *flags]
            assert cli.run(argv, stdout=out, stderr=io.StringIO(), environ={}) == 1
            outputs[flags] = out.getvalue()
            assert len(json.loads((tmp_path / "r.json").read_text())["targets"]) == count
    assert outputs[()].count("FAILED at tcp") == 2  # the group, and its one example
    assert f"{count} targets  FAILED at tcp (tcp.refused)" in outputs[()]
    assert outputs[("--verbose",)].count("FAILED at tcp") == count


def test_the_readme_names_the_threshold_the_code_uses() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"Past {GROUP_THRESHOLD} targets the console shows what repeats once" in readme
