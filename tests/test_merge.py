"""Specification of reading JSON reports back (`preflight.report.json_reader`) and of combining
shards (`preflight.shard.merge_reports`, ``preflight merge REPORT.json ...``): the JSON round trip
loses nothing, and the merge of the shards' reports says what one unsharded run says."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import ci_lab
import junitparser
import pytest
import report_samples as samples
import xmlschema

from preflight import cli, vantage
from preflight.model import Report
from preflight.report.json_reader import ReportFormatError, from_dict, read_json
from preflight.report.json_report import to_dict, to_json
from preflight.shard import merge_reports

XSD = Path(__file__).parent / "data" / "junit.xsd"

SAMPLES: dict[str, Callable[[], Report]] = {
    "passing": samples.passing_report,
    "failing": samples.failing_report,
    "hostile": samples.hostile_report,
    "secrets": samples.secrets_report,
    "interrupted": samples.interrupted_report,
    "duplicate names": samples.duplicate_names_report,
    "empty": lambda: Report(targets=[], started_at=samples.STARTED_AT),
}


# --- the JSON reader ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_a_json_report_reads_back_to_the_same_report(name: str) -> None:
    written = to_dict(SAMPLES[name]())
    assert to_dict(from_dict(json.loads(json.dumps(written)))) == written


def test_what_comes_back_is_a_report_the_other_formats_can_write() -> None:
    report = from_dict(to_dict(samples.failing_report()))
    tcp = report.targets[1].stages[1]
    assert (tcp.stage, tcp.status, tcp.diagnosis and tcp.diagnosis.code) == (
        "tcp",
        "fail",
        "tcp.timeout",
    )
    assert report.started_at == samples.STARTED_AT
    assert report.targets[0].target.origin == "checks.yaml:12"


def test_credentials_were_never_in_the_json_and_do_not_come_back() -> None:
    report = from_dict(to_dict(samples.secrets_report()))
    text = to_json(report)
    assert samples.PASSWORD not in text and "open-sesame-phrase" not in text
    assert json.loads(text)["targets"][0]["auth_methods_configured"] == ["password", "key"]


def test_a_real_run_round_trips(tmp_path: Path) -> None:
    with ci_lab.trio() as lab:
        config = lab.write_config(tmp_path / "checks.yaml")
        report_path = tmp_path / "report.json"
        cli.run(
            ["check", "-c", str(config), "--json", str(report_path)],
            stdout=io.StringIO(),
            stderr=io.StringIO(),
            environ={"SSH_PRIVATE_KEY": lab.key_text},
        )
    written = json.loads(report_path.read_text())
    assert to_dict(read_json(report_path)) == written


def broken(**changes: Any) -> dict[str, Any]:
    data = to_dict(samples.failing_report())
    for path, value in changes.items():
        node: Any = data
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is KeyError:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "the document: expected an object"),
        (broken(version=2), "version 2 is not supported (this preflight reads version 1)"),
        (broken(targets=KeyError), "targets: expected a list"),
        (broken(targets__1__name=KeyError), "targets[1].name: missing"),
        (broken(targets__1__port="22"), 'targets[1].port: expected a whole number, got "22"'),
        (
            broken(targets__1__stages__1__status="ok"),
            "targets[1].stages[1].status: expected one of pass, fail, skip, error, got 'ok'",
        ),
        (
            broken(targets__0__stages__0__stage="ping"),
            "targets[0].stages[0].stage: expected one of dns, tcp, banner, auth, sftp",
        ),
        (broken(started_at="yesterday"), "started_at: expected an ISO 8601 time"),
        (broken(targets__1__stages__1__diagnosis={"code": "x"}), "diagnosis.summary: missing"),
    ],
)
def test_a_document_that_is_not_a_report_is_refused_saying_where(data: Any, message: str) -> None:
    with pytest.raises(ReportFormatError) as raised:
        from_dict(data)
    assert message in str(raised.value)


# --- merging --------------------------------------------------------------------------------------


def test_merged_targets_follow_the_file_and_the_run_spans_all_inputs() -> None:
    first = Report([samples.tcp_timeout_result("b")], samples.STARTED_AT, duration_s=3.0)
    a = samples.passing_result("a")
    a.target = samples.target("a", origin="checks.yaml:5")
    second = Report([a], samples.STARTED_AT + timedelta(seconds=10), duration_s=1.5)
    merged = merge_reports([first, second])
    assert [t.target.name for t in merged.targets] == ["a", "b"]  # line 5 before line 12
    assert merged.started_at == samples.STARTED_AT
    assert merged.duration_s == pytest.approx(11.5)
    assert merged.ok is False and merged.interrupted is False


def test_an_interrupted_input_makes_the_merge_interrupted() -> None:
    merged = merge_reports([samples.passing_report(), samples.interrupted_report()])
    assert merged.interrupted and not merged.ok


def test_the_same_target_from_two_runners_is_kept_twice_named_by_runner() -> None:
    reports = []
    for runner in ("runner-a", "runner-b"):
        report = samples.passing_report()
        vantage.stamp(report, vantage.Vantage(runner=runner), route=lambda host, port: None)
        reports.append(report)
    merged = merge_reports(reports)
    assert [t.target.name for t in merged.targets] == [
        "sftp-prod @ runner-a",
        "sftp-prod @ runner-b",
    ]


def run_cli(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.run(list(argv), stdout=out, stderr=err, environ=environ or {})
    return status, out.getvalue(), err.getvalue()


def verdicts(data: dict[str, Any]) -> dict[str, list[tuple[str, str, str | None]]]:
    """What a run found, without the parts that differ between two runs (times, ports)."""
    return {
        t["name"]: [
            (s["stage"], s["status"], s["diagnosis"] and s["diagnosis"]["code"])
            for s in t["stages"]
        ]
        for t in data["targets"]
    }


def test_the_merge_of_the_shards_equals_the_unsharded_run(tmp_path: Path) -> None:
    with ci_lab.trio() as lab:
        config = lab.write_config(tmp_path / "checks.yaml")
        environ = {"SSH_PRIVATE_KEY": lab.key_text}
        status, _, _ = run_cli(
            "check", "-c", str(config), "--json", str(tmp_path / "all.json"), environ=environ
        )
        assert status == 1
        shard_paths = []
        for index in (1, 2):
            path = tmp_path / f"shard-{index}.json"
            run_cli(
                "check",
                "-c",
                str(config),
                "--shard",
                f"{index}/2",
                "--json",
                str(path),
                environ=environ,
            )
            shard_paths.append(str(path))
    junit, merged_json = tmp_path / "merged.xml", tmp_path / "merged.json"
    status, out, err = run_cli(
        "merge", *shard_paths, "--junit", str(junit), "--json", str(merged_json)
    )
    assert (status, err) == (1, "")
    unsharded = json.loads((tmp_path / "all.json").read_text())
    merged = json.loads(merged_json.read_text())
    assert verdicts(merged) == verdicts(unsharded)
    assert list(verdicts(merged)) == list(ci_lab.EXPECTED)  # the order of checks.yaml
    assert [t["ok"] for t in merged["targets"]] == [t["ok"] for t in unsharded["targets"]]
    assert merged["ok"] is unsharded["ok"] is False
    # Each target still says which shard (runner, job) checked it.
    shards = [
        stage["facts"]["vantage"]["shard"]
        for target in merged["targets"]
        for stage in target["stages"]
        if "vantage" in stage["facts"]
    ]
    assert sorted(shards) == ["1/2", "1/2", "2/2"]
    assert "checked from 2 places: " in out and "3 targets: 1 ok, 2 failed" in out
    xmlschema.XMLSchema(str(XSD)).validate(str(junit))
    suites = {suite.name for suite in junitparser.JUnitXml.fromfile(str(junit))}
    assert suites == set(ci_lab.EXPECTED)


def test_merge_exit_status_follows_the_merged_verdict(tmp_path: Path) -> None:
    passing = tmp_path / "passing.json"
    passing.write_text(to_json(samples.passing_report()))
    failing = tmp_path / "failing.json"
    failing.write_text(to_json(Report([samples.tcp_timeout_result()], samples.STARTED_AT)))
    assert run_cli("merge", str(passing))[0] == 0
    assert run_cli("merge", str(passing), str(failing))[0] == 1


def test_a_missing_or_foreign_input_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junit.xml"
    junk.write_text("<testsuites/>")
    status, out, err = run_cli("merge", str(junk))
    assert status == 2 and out == ""
    assert err.startswith(f"preflight: {junk}: not a preflight JSON report: not JSON")
    status, _, err = run_cli("merge", str(tmp_path / "nope.json"))
    assert status == 2 and "nope.json: No such file or directory" in err


def shard_report(tmp_path: Path, shard: str, report: Report | None = None) -> Path:
    report = report or samples.passing_report()
    vantage.stamp(report, vantage.Vantage(runner="r", shard=shard), route=lambda host, port: None)
    path = tmp_path / f"shard-{shard.replace('/', '-of-')}.json"
    path.write_text(to_json(report))
    return path


def test_a_shard_without_a_report_fails_the_merge(tmp_path: Path) -> None:
    # Every run records its shard, even one that had no targets: a missing one is missing.
    first = shard_report(tmp_path, "1/3")
    empty = shard_report(tmp_path, "2/3", Report(targets=[], started_at=samples.STARTED_AT))
    status, _, err = run_cli("merge", str(first), str(empty))
    assert status == 1
    assert err == (
        "preflight merge: no report from shard 3/3: its targets are missing from this merge\n"
    )
    third = shard_report(tmp_path, "3/3")
    assert run_cli("merge", str(first), str(empty), str(third))[:3:2] == (0, "")


def test_a_report_from_before_runs_recorded_their_shard_only_warns(tmp_path: Path) -> None:
    path = shard_report(tmp_path, "1/3")
    data = json.loads(path.read_text())
    del data["vantage"]  # as written before the run's own vantage was recorded
    path.write_text(json.dumps(data))
    status, _, err = run_cli("merge", str(path))
    assert status == 0
    assert err == (
        "preflight merge: no targets from shard 2/3, 3/3 among the reports: if they had "
        "targets, they are missing here\n"
    )


def test_the_same_report_given_twice_is_a_usage_error(tmp_path: Path) -> None:
    path = shard_report(tmp_path, "1/1")
    copy = tmp_path / "copy.json"
    copy.write_text(path.read_text())
    status, out, err = run_cli("merge", str(path), str(copy))
    assert (status, out) == (2, "")
    assert err == f"preflight: {copy}: the same run as {path} (a report given twice?)\n"


def test_the_same_target_from_two_runs_that_checked_everything_is_kept_with_a_warning(
    tmp_path: Path,
) -> None:
    # Several vantage points do this on purpose; parallel jobs whose split did not happen (a
    # `parallel: 2` run without --shard) do it by mistake. Either way no verdict is dropped.
    paths = []
    for runner in ("runner-a", "runner-b"):
        report = samples.passing_report()
        vantage.stamp(report, vantage.Vantage(runner=runner), route=lambda host, port: None)
        paths.append(tmp_path / f"{runner}.json")
        paths[-1].write_text(to_json(report))
    status, out, err = run_cli("merge", *map(str, paths))
    assert status == 0
    assert "sftp-prod @ runner-a" in out and "sftp-prod @ runner-b" in out
    assert err == (
        "preflight merge: 1 target (sftp-prod) came from more than one run that checked every "
        "target (runners runner-a, runner-b); each verdict is kept, named `TARGET @ RUNNER` "
        "(`#2`… when the runner repeats). If those runs were meant to split the targets, give "
        "each one --shard I/N (the GitLab template passes CI_NODE_INDEX/CI_NODE_TOTAL)\n"
    )
    one_of_each = [shard_report(tmp_path, "1/1"), tmp_path / "runner-a.json"]
    assert "came from more than one run" in run_cli("merge", *map(str, one_of_each))[2]
