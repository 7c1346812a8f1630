"""Specification of the JUnit report (`preflight.report.junit`, DESIGN §7): what GitLab, GitHub
and Jenkins read. Every document must validate against tests/data/junit.xsd and read back with
junitparser to the same suites, cases, results and messages."""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import report_samples as samples
import xmlschema
from junitparser import Error, Failure, JUnitXml, Skipped

from preflight.model import Report, Stage, Status
from preflight.report import stage_results
from preflight.report.junit import to_xml, write_junit
from preflight.report.sanitize import clean_text

XSD = Path(__file__).parent / "data" / "junit.xsd"

ALL_SAMPLES: dict[str, Callable[[], Report]] = {
    "passing": samples.passing_report,
    "failing": samples.failing_report,
    "hostile": samples.hostile_report,
    "secrets": samples.secrets_report,
    "interrupted": samples.interrupted_report,
    "cut short": samples.cut_short_report,
    "duplicate names": samples.duplicate_names_report,
    "empty": lambda: Report(targets=[], started_at=samples.STARTED_AT),
}


@pytest.fixture(scope="module")
def schema() -> Any:
    return xmlschema.XMLSchema(str(XSD))


def parse(report: Report) -> JUnitXml:
    return JUnitXml.fromstring(to_xml(report))


def cases_of(report: Report) -> list[Any]:
    return [case for suite in parse(report) for case in suite]


def failure_of(report: Report) -> Failure:
    for case in cases_of(report):
        for result in case.result:
            if isinstance(result, Failure):
                return result
    raise AssertionError("no <failure> in the report")


# --- the document is valid and reads back -------------------------------------------------------


@pytest.mark.parametrize("make", ALL_SAMPLES.values(), ids=ALL_SAMPLES.keys())
def test_validates_against_the_junit_xsd(make: Callable[[], Report], schema: Any) -> None:
    schema.validate(to_xml(make()))


@pytest.mark.parametrize("make", ALL_SAMPLES.values(), ids=ALL_SAMPLES.keys())
def test_reads_back_with_junitparser_as_the_same_suites_cases_and_results(
    make: Callable[[], Report],
) -> None:
    report = make()
    expected = []
    names: list[str] = []
    for result in report.targets:
        name = clean_text(result.target.name, one_line=True, max_len=200)
        names.append(name)
        if names.count(name) > 1:  # a repeated target name is suffixed "#2", "#3"…
            name = f"{name}#{names.count(name)}"
        for stage in stage_results(result, interrupted=report.interrupted):
            expected.append((name, f"preflight.{name}", stage.stage.value, stage.status.value))

    actual = []
    for suite in parse(report):
        for case in suite:
            status = "pass"
            if any(isinstance(r, Failure) for r in case.result):
                status = "fail"
            elif any(isinstance(r, Error) for r in case.result):
                status = "error"
            elif any(isinstance(r, Skipped) for r in case.result):
                status = "skip"
            actual.append((suite.name, case.classname, case.name, status))
    assert actual == expected


def test_starts_with_an_xml_declaration_and_ends_with_a_newline() -> None:
    xml = to_xml(samples.passing_report())
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')
    assert xml.endswith("</testsuites>\n")


# --- suites and cases ---------------------------------------------------------------------------


def test_one_testsuite_per_target_named_after_it() -> None:
    suites = list(parse(samples.failing_report()))
    assert [suite.name for suite in suites] == ["sftp-prod", "sftp-dr"]
    assert [suite.tests for suite in suites] == [5, 5]
    assert [suite.failures for suite in suites] == [0, 1]
    assert [suite.skipped for suite in suites] == [0, 3]


def test_one_testcase_per_stage_in_configured_order_with_preflight_classname() -> None:
    suite = next(iter(parse(samples.passing_report())))
    assert [case.name for case in suite] == [stage.value for stage in Stage]
    assert {case.classname for case in suite} == {"preflight.sftp-prod"}


def test_classname_and_name_stay_unique_when_two_targets_share_a_name() -> None:
    pairs = [(case.classname, case.name) for case in cases_of(samples.duplicate_names_report())]
    assert len(pairs) == len(set(pairs)) == 10
    assert ("preflight.same#2", "tcp") in pairs


def test_suite_carries_timestamp_hostname_and_target_properties() -> None:
    suite = list(parse(samples.failing_report()))[1]
    assert suite.timestamp == "2025-03-04T05:06:07Z"
    assert suite.hostname == clean_text(socket.gethostname(), one_line=True)
    properties = {prop.name: prop.value for prop in suite.properties()}  # type: ignore[no-untyped-call]
    assert properties == {
        "host": "sftp-dr.example.com",
        "port": "2222",
        "user": "ingest",
        "origin": "checks.yaml:12",
    }


def test_times_are_seconds_with_millisecond_precision() -> None:
    root = ET.fromstring(to_xml(samples.failing_report()))
    assert root.get("time") == "3.021"
    suite = root.findall("testsuite")[1]
    assert suite.get("time") == "3.017"  # the target's wall time, not a sum of floats
    times = [case.get("time") for case in suite.findall("testcase")]
    assert times == ["0.012", "3.002", "0.000", "0.000", "0.000"]


def test_totals_on_testsuites_add_up() -> None:
    root = ET.fromstring(to_xml(samples.failing_report()))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("10", "1", "0")


# --- failures, skips, passes --------------------------------------------------------------------


def test_failure_message_is_code_and_summary_and_type_is_the_code() -> None:
    failure = failure_of(samples.failing_report())
    assert failure.type == "tcp.timeout"
    assert failure.message == f"tcp.timeout: {samples.TCP_SUMMARY}"


def test_failure_body_starts_with_code_and_summary_then_the_hint_for_gitlab() -> None:
    # GitLab keeps the body alone: without the code in it, the code would be seen nowhere.
    body = failure_of(samples.failing_report()).text
    lines = body.splitlines()
    assert lines[0] == f"tcp.timeout: {samples.TCP_SUMMARY}"
    assert lines[1] == f"hint: {samples.TCP_HINT}"


def test_each_reproduce_command_is_a_line_of_its_own_under_the_hint() -> None:
    report = samples.failing_report()
    tcp = report.targets[1].stages[1]
    tcp.facts["reproduce"] = ["nc -vz -w 3 203.0.113.7 2222", "ssh -vvv -p 2222 x@y exit"]
    lines = failure_of(report).text.splitlines()
    assert lines[2:4] == ["try: nc -vz -w 3 203.0.113.7 2222", "try: ssh -vvv -p 2222 x@y exit"]
    assert not any(line.startswith("reproduce") for line in lines)


def test_a_reproduce_command_keeps_its_spaces_and_loses_its_controls() -> None:
    # Two spaces inside a quoted path are two: collapsed, the pasted command checks another
    # directory. A control character still goes (it could fake a line of the body).
    report = samples.failing_report()
    command = "printf '%s\\n' 'ls \"/srv/a  b\"' | sftp -b - x@y\x1b[2K"
    report.targets[1].stages[1].facts["reproduce"] = [command]
    lines = failure_of(report).text.splitlines()
    assert lines[2] == "try: printf '%s\\n' 'ls \"/srv/a  b\"' | sftp -b - x@y"


def test_failure_body_carries_the_target_and_the_facts_gathered() -> None:
    body = failure_of(samples.failing_report()).text
    assert "target: sftp-dr (ingest@sftp-dr.example.com:2222, defined at checks.yaml:12)" in body
    assert "addresses_tried[0]: address=203.0.113.7:2222, result=timeout, seconds=3.0" in body
    assert "timeout_s: 3.0" in body


def test_failure_body_carries_warnings() -> None:
    body = failure_of(samples.secrets_report()).text
    assert "warning: password was ***" in body


def test_skipped_stages_carry_their_reason() -> None:
    skipped = [
        result
        for case in cases_of(samples.failing_report())
        for result in case.result
        if isinstance(result, Skipped)
    ]
    assert [s.message for s in skipped] == ["tcp failed"] * 3


def test_stages_missing_after_an_interrupt_are_skipped_not_dropped() -> None:
    suite = list(parse(samples.interrupted_report()))[1]
    assert [case.name for case in suite] == ["dns", "tcp", "banner"]
    assert [case.result[0].message for case in list(suite)[1:]] == ["not run: interrupted"] * 2


def test_a_stage_cut_short_by_an_interruption_is_an_error_with_its_time() -> None:
    suite = next(iter(parse(samples.cut_short_report())))
    tcp = next(case for case in suite if case.name == "tcp")
    error = tcp.result[0]
    assert isinstance(error, Error) and error.type == "interrupted"
    assert error.message == "interrupted after 1.19s during connect, before the stage finished"
    assert tcp.time == 1.19
    assert (suite.errors, suite.failures, suite.skipped) == (1, 0, 1)


def test_passed_stages_carry_their_detail_and_facts_as_system_out() -> None:
    auth = next(iter(parse(samples.passing_report())))
    case = next(case for case in auth if case.name == "auth")
    assert case.is_passed
    assert case.system_out == (
        "detail: publickey accepted for ingest\n"
        "host_key.type: ssh-ed25519\n"
        "host_key.fingerprint: SHA256:abc123\n"
        "warning: host key not verified (host_key.policy: off)"
    )


def test_a_failed_stage_without_diagnosis_is_still_a_failure() -> None:
    report = samples.passing_report()
    report.targets[0].stages[0].status = Status.FAIL
    failure = failure_of(report)
    assert failure.type == "dns.failed"
    assert failure.message == "dns.failed: sftp.example.com → 203.0.113.7"


# --- hostile input and secrets ------------------------------------------------------------------


def test_hostile_banner_cannot_break_the_document(schema: Any) -> None:
    xml = to_xml(samples.hostile_report())
    schema.validate(xml)
    assert "\x1b" not in xml and "\x00" not in xml and "\x07" not in xml
    assert "<script>" not in xml  # escaped as text, never markup
    failure = failure_of(samples.hostile_report())
    assert failure.type == "banner.not_ssh"
    assert "]]> <script>alert(1)</script>" in failure.text
    assert "\ufffd" in failure.text  # undecodable bytes were replaced, not dropped silently


def test_hostile_text_reads_back_exactly_as_cleaned() -> None:
    report = samples.hostile_report()
    case = next(case for case in cases_of(report) if case.name == "auth")
    reason = report.targets[0].stages[3].detail
    assert case.result[0].message == clean_text(reason, one_line=True, max_len=1000)


def test_hostile_names_are_cleaned_in_suite_and_classname() -> None:
    suite = next(iter(parse(samples.hostile_report())))
    assert suite.name == "evilname"
    assert {case.classname for case in suite} == {"preflight.evilname"}


def test_huge_values_are_bounded() -> None:
    xml = to_xml(samples.hostile_report())
    assert len(xml) < 64 * 1024  # 64 KiB banner, quoted five times, still a small file
    assert "…" in xml


def test_credentials_never_appear() -> None:
    xml = to_xml(samples.secrets_report())
    assert samples.PASSWORD not in xml
    assert "open-sesame-phrase" not in xml
    for line in samples.KEY_TEXT.splitlines():
        assert line not in xml


# --- writing ------------------------------------------------------------------------------------


def test_write_junit_creates_directories_and_writes_utf8(tmp_path: Path, schema: Any) -> None:
    path = tmp_path / "reports" / "nested" / "preflight.xml"
    report = samples.hostile_report()
    write_junit(report, path)
    schema.validate(str(path))
    assert path.read_text(encoding="utf-8") == to_xml(report)
    assert os.listdir(path.parent) == ["preflight.xml"]  # no temporary file left behind


def test_failure_body_does_not_repeat_a_detail_equal_to_the_summary() -> None:
    report = samples.failing_report()
    report.targets[1].stages[1].detail = samples.TCP_SUMMARY
    assert failure_of(report).text.count(samples.TCP_SUMMARY) == 1


# --- byte for byte what junit-xml and ElementTree write ------------------------------------------


def junit_xml_document(report: Report) -> str:
    """The document as preflight wrote it through `junit-xml` (TestSuite.build_xml_doc) and
    ElementTree until 10,000 targets made that too slow: the same cases, built and serialised
    by those libraries. `to_xml` must write exactly this."""
    from junit_xml import TestCase, TestSuite

    from preflight.report import iso_utc, junit, report_secrets

    secrets = report_secrets(report)

    def cleaning(
        max_len: int, one_line: bool, collapse: bool = True
    ) -> Callable[[str | bytes], str]:
        # clean_text itself, none of the report's memory of what it cleaned
        return lambda value: clean_text(
            value, max_len=max_len, one_line=one_line, secrets=secrets, collapse=collapse
        )

    # A line, a name, a fact's value on one line or on many, a whole body, a command.
    clean = junit._Clean(
        cleaning(1000, True),
        cleaning(200, True),
        cleaning(4000, True),
        cleaning(4000, False),
        cleaning(32000, False),
        cleaning(4000, True, collapse=False),
    )
    hostname = junit._hostname(clean)
    root = ET.Element("testsuites", {"name": "preflight"})
    totals = dict.fromkeys(("tests", "failures", "errors", "disabled"), 0)
    used: set[str] = set()
    for result in report.targets:
        suite_name = junit._unique(clean.name(result.target.name) or "target", used)
        rows = stage_results(result, interrupted=report.interrupted)
        cases = []
        for built in junit._test_cases(result, rows, suite_name, clean):
            case = TestCase(built.name, classname=built.classname, elapsed_sec=built.seconds)
            if built.child == "failure":
                case.add_failure_info(built.message, built.text, built.type)
            elif built.child == "error":
                case.add_error_info(built.message, built.text, built.type)
            elif built.child == "skipped":
                case.add_skipped_info(built.message, built.text)
            elif built.child == "system-out":
                case.stdout = built.text
            cases.append(case)
        suite = TestSuite(
            suite_name,
            cases,
            hostname=hostname,
            timestamp=iso_utc(report.started_at),
            properties=junit._properties(result.target, clean),
        )
        element = suite.build_xml_doc()
        element.set("time", junit._seconds(result.duration_s))
        for case_element, row in zip(element.iter("testcase"), rows, strict=True):
            case_element.set("time", junit._seconds(row.duration_s))
        for key in totals:
            totals[key] += int(element.get(key, "0"))
        root.append(element)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", junit._seconds(report.duration_s))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


@pytest.mark.parametrize("make", ALL_SAMPLES.values(), ids=ALL_SAMPLES.keys())
def test_the_document_is_what_junit_xml_and_elementtree_write(make: Callable[[], Report]) -> None:
    report = make()
    assert to_xml(report) == junit_xml_document(report)


def test_zero_and_odd_times_and_escapes_match_too() -> None:
    report = samples.failing_report()
    rows = report.targets[0].stages
    rows[0].duration_s = 0.0  # no time from junit-xml: set after the classname
    rows[1].duration_s = float("nan")
    rows[1].detail = 'tab\there, quote " and <tag> & CR\r'
    report.targets[0].duration_s = -1.0
    assert to_xml(report) == junit_xml_document(report)
