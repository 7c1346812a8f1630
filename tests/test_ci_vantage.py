"""Specification of the vantage point (`preflight.vantage`): every report says from which runner,
which local source address and which CI job the targets were checked — what a firewall team
needs before it can find the rule that dropped the packets."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import report_samples as samples

from preflight import cli, lab, vantage
from preflight.report.json_report import to_dict
from preflight.report.junit import to_xml


@pytest.mark.parametrize(
    ("environ", "ci", "url"),
    [
        (
            {"GITLAB_CI": "true", "CI_JOB_URL": "https://gitlab.example.com/g/p/-/jobs/9"},
            "gitlab",
            "https://gitlab.example.com/g/p/-/jobs/9",
        ),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_SERVER_URL": "https://github.com/",
                "GITHUB_REPOSITORY": "acme/deploy",
                "GITHUB_RUN_ID": "1234",
            },
            "github",
            "https://github.com/acme/deploy/actions/runs/1234",
        ),
        ({"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "1234"}, "github", None),
        ({}, None, None),
    ],
)
def test_the_ci_job_is_found_from_its_variables(
    environ: dict[str, str], ci: str | None, url: str | None
) -> None:
    found = vantage.detect(environ, hostname="runner-7")
    assert (found.runner, found.ci, found.job_url) == ("runner-7", ci, url)


def test_the_ci_runner_name_is_kept_when_it_differs_from_the_host_name() -> None:
    environ = {"GITLAB_CI": "true", "CI_RUNNER_DESCRIPTION": "shared-eu-1"}
    assert vantage.detect(environ, hostname="runner-7").runner_name == "shared-eu-1"
    assert vantage.detect({"RUNNER_NAME": "box"}, hostname="box").runner_name is None


def test_the_vantage_is_recorded_on_the_failed_stage_so_the_junit_failure_shows_it() -> None:
    report = samples.failing_report()
    here = vantage.Vantage(runner="runner-7", job_url="https://ci.example/jobs/1", shard="2/3")
    vantage.stamp(report, here, route=lambda host, port: "198.51.100.9")
    passing, failing = report.targets
    assert passing.stages[0].facts["vantage"] == {
        "runner": "runner-7",
        "job_url": "https://ci.example/jobs/1",
        "shard": "2/3",
        "source_address": "198.51.100.5:40022",  # what the tcp stage connected from
    }
    assert "vantage" in failing.stages[1].facts and "vantage" not in failing.stages[0].facts
    failure_body = to_xml(report).split('type="tcp.timeout"')[1]
    assert "vantage.runner: runner-7" in failure_body
    assert "vantage.job_url: https://ci.example/jobs/1" in failure_body
    data = to_dict(report)
    assert data["targets"][1]["stages"][1]["facts"]["vantage"]["runner"] == "runner-7"


def test_a_dropped_target_gets_the_source_address_the_routing_table_picks() -> None:
    asked: list[tuple[str, int]] = []

    def route(host: str, port: int) -> str | None:
        asked.append((host, port))
        return "198.51.100.9"

    result = samples.tcp_timeout_result()
    result.stages[1].facts["attempts"] = [
        {"address": "[2001:db8::7]:2222", "result": "timeout"},
        {"address": "203.0.113.7:2222", "result": "timeout"},
    ]
    assert vantage.source_address(result, route) == "198.51.100.9"
    assert asked == [("2001:db8::7", 2222)]


def test_the_route_lookup_sends_nothing_and_never_resolves_names() -> None:
    assert vantage.route_source("127.0.0.1", 22) == "127.0.0.1"
    assert vantage.route_source("::1", 22) in ("::1", None)  # None: no IPv6 on this machine
    assert vantage.route_source("localhost", 22) is None
    assert vantage.route_source("sftp.example.com", 22) is None


def test_the_console_line_names_one_place_or_each_of_several() -> None:
    report = samples.failing_report()
    vantage.stamp(
        report,
        vantage.Vantage(runner="runner-7", job_url="https://ci.example/jobs/1"),
        route=lambda host, port: None,
    )
    assert vantage.describe(report) == (
        "checked from runner-7, job https://ci.example/jobs/1; source address 198.51.100.5"
    )
    report.targets[1].stages[1].facts["vantage"] = {"runner": "runner-8", "shard": "2/2"}
    assert vantage.describe(report) == (
        "checked from 2 places: runner-7, job https://ci.example/jobs/1; runner-8, shard 2/2; "
        "source address 198.51.100.5"
    )


def test_a_report_without_targets_names_the_current_place() -> None:
    empty = samples.passing_report()
    empty.targets = []
    assert vantage.describe(empty) is None
    assert vantage.describe(empty, vantage.Vantage(runner="r", shard="3/3")) == (
        "checked from r, shard 3/3"
    )


def test_every_report_of_a_real_check_names_its_vantage_point(tmp_path: Path) -> None:
    junit, report = tmp_path / "r.xml", tmp_path / "r.json"
    environ = {"GITLAB_CI": "true", "CI_JOB_URL": "https://gitlab.example.com/g/p/-/jobs/9"}
    out = io.StringIO()
    with lab.DroppingPort() as dropping:
        config = tmp_path / "checks.yaml"
        config.write_text(
            "version: 1\ndefaults: {stages: [dns, tcp], timeouts: {tcp: 1}}\n"
            f"targets: [{{name: dropped, host: 127.0.0.1, port: {dropping.port}}}]\n"
        )
        status = cli.run(
            [
                "check",
                "-c",
                str(config),
                "--junit",
                str(junit),
                "--json",
                str(report),
            ],
            stdout=out,
            stderr=io.StringIO(),
            environ=environ,
        )
    assert status == 1
    assert (
        out.getvalue()
        .rstrip()
        .endswith("job https://gitlab.example.com/g/p/-/jobs/9; source address 127.0.0.1")
    )
    tcp = json.loads(report.read_text())["targets"][0]["stages"][1]
    assert tcp["facts"]["vantage"]["source_address"] == "127.0.0.1"
    assert tcp["facts"]["vantage"]["job_url"] == "https://gitlab.example.com/g/p/-/jobs/9"
    assert "vantage.source_address: 127.0.0.1" in junit.read_text()
