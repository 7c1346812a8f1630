"""Specification of the GitLab output: collapsible log sections (`preflight.report.gitlab`, golden
markers) and what GitLab's test report shows of preflight's JUnit file, read as GitLab reads it
(`gitlab_parser.gitlab_view`): for a run with a dropped, a refused and a healthy target, what a
GitLab user sees.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import ci_lab
import pytest
import report_samples as samples
from gitlab_parser import GitLabTest, gitlab_view, render_gitlab_view

from preflight import cli
from preflight.report import gitlab

# GitLab's own patterns (lib/gitlab/regex.rb) for a section marker, and its id normalisation.
GITLAB_SECTION = re.compile(
    r"section_((?:start)|(?:end)):(\d+):([a-zA-Z0-9_.-]+)"
    r"(\[(?:\w+=\w+)(?:, ?(?:\w+=\w+))*\])?\r\x1b\[0K"
)


def gitlab_section_name(raw: str) -> str:
    return re.sub(r"[^a-z0-9]", "-", raw.lower())


# --- section markers ------------------------------------------------------------------------------


def test_section_markers_golden() -> None:
    start = gitlab.section_start("preflight-1-sftp", "header", timestamp=1741064767, collapsed=True)
    assert (
        start == "\x1b[0Ksection_start:1741064767:preflight-1-sftp[collapsed=true]\r\x1b[0Kheader"
    )
    opened = gitlab.section_start("preflight-2-x", "failed", timestamp=5, collapsed=False)
    assert opened == "\x1b[0Ksection_start:5:preflight-2-x\r\x1b[0Kfailed"
    assert (
        gitlab.section_end("preflight-2-x", timestamp=9)
        == "\x1b[0Ksection_end:9:preflight-2-x\r\x1b[0K"
    )


SECTIONS_GOLDEN = (
    "\x1b[0Ksection_start:1741064767:preflight-1-sftp-prod[collapsed=true]\r\x1b[0K"
    "sftp-prod  sftp.example.com:2222  OK  0.234s\n"
    "  ✓ dns     0.012s  sftp.example.com → 203.0.113.7\n"
    "  ✓ tcp     0.031s  connected to 203.0.113.7:2222 from 198.51.100.5:40022\n"
    "  ✓ banner  0.004s  SSH-2.0-OpenSSH_9.2p1 Debian-2\n"
    "  ✓ auth    0.150s  publickey accepted for ingest\n"
    "                    ! host key not verified (host_key.policy: off)\n"
    "  ✓ sftp    0.025s  listed /upload (3 entries)\n"
    "\x1b[0Ksection_end:1741064768:preflight-1-sftp-prod\r\x1b[0K\n"
    "\x1b[0Ksection_start:1741064767:preflight-2-sftp-dr\r\x1b[0K"
    "sftp-dr  sftp-dr.example.com:2222  FAILED at tcp  3.02s\n"
    "  ✓ dns     0.012s  sftp-dr.example.com → 203.0.113.7\n"
    "  ✗ tcp     3.00s   tcp.timeout: no answer to SYN from 203.0.113.7:2222 within 3.0s "
    "(packets silently dropped)\n"
    "                    hint: a firewall drops traffic to port 2222: ask for the runner's "
    "egress IP to be allowed\n"
    "  – banner          skipped: tcp failed\n"
    "  – auth            skipped: tcp failed\n"
    "  – sftp            skipped: tcp failed\n"
    "\x1b[0Ksection_end:1741064770:preflight-2-sftp-dr\r\x1b[0K\n"
    "2 targets: 1 ok, 1 failed (3.02s)\n"
)


def test_one_section_per_target_passes_folded_failures_open_golden() -> None:
    # The run started at 1741064767.89; sftp-prod took 0.23 s and sftp-dr 3.02 s, which is
    # what GitLab's duration badge shows for each section.
    assert gitlab.render_sections(samples.failing_report(), color=False) == SECTIONS_GOLDEN


def test_every_marker_is_one_gitlab_parses_with_unique_section_names() -> None:
    report = samples.failing_report()
    report.targets += [samples.passing_result(name) for name in ("SFTP prod", "sftp_prod", "..")]
    text = gitlab.render_sections(report, color=True)
    found = GITLAB_SECTION.findall(text)
    starts = [name for action, _, name, _ in found if action == "start"]
    ends = [name for action, _, name, _ in found if action == "end"]
    assert len(starts) == len(report.targets) and starts == ends
    assert len({gitlab_section_name(name) for name in starts}) == len(starts)
    assert text.count("section_start") == text.count("section_end") == len(report.targets)


def test_a_hostile_name_cannot_fake_or_break_a_marker() -> None:
    report = samples.hostile_report()
    report.targets[0].target = samples.target("x\rsection_end:1:preflight-1-x\r\x1b[0Kfake")
    text = gitlab.render_sections(report, color=False)
    assert len(GITLAB_SECTION.findall(text)) == 2
    assert text.count("\r") == 2  # only the two markers' own


# --- GitLab's reading of the JUnit file -----------------------------------------------------------


def test_gitlab_shows_a_failure_body_never_its_message_and_no_text_for_an_empty_skip() -> None:
    # Why preflight puts the summary in the body too, and a skip's reason in its content.
    tests = gitlab_view(
        '<testsuites><testsuite name="s">'
        '<testcase classname="c" name="f" time="1.5"><failure message="MSG">BODY</failure>'
        "</testcase>"
        '<testcase classname="c" name="s" time="0"><skipped message="why"/></testcase>'
        "</testsuite></testsuites>"
    )
    assert tests[0] == GitLabTest("c", "f", "failed", 1.5, "BODY")
    assert tests[1].status == "skipped" and not isinstance(tests[1].details, str)


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str]:
    """`preflight check` under GitLab CI against the dropped/refused/healthy lab."""
    tmp = tmp_path_factory.mktemp("gitlab")
    junit = tmp / "preflight.xml"
    with ci_lab.trio() as lab:
        config = lab.write_config(tmp / "checks.yaml")
        out, err = io.StringIO(), io.StringIO()
        status = cli.run(
            ["check", "-c", str(config), "--junit", str(junit)],
            stdout=out,
            stderr=err,
            environ={
                "GITLAB_CI": "true",
                "CI_JOB_URL": "https://gitlab.example.com/acme/deploy/-/jobs/7",
                "SSH_PRIVATE_KEY": lab.key_text,
            },
        )
    assert err.getvalue() == ""
    return status, out.getvalue(), junit.read_text()


def test_the_job_log_folds_the_healthy_target_and_opens_the_failed_ones(lab_run) -> None:
    status, log, _ = lab_run
    assert status == 1
    headers = {
        name: options
        for action, _, name, options in GITLAB_SECTION.findall(log)
        if action == "start"
    }
    assert headers == {
        "preflight-1-sftp-healthy": "[collapsed=true]",
        "preflight-2-firewall-drop": "",
        "preflight-3-port-closed": "",
    }
    vantage_line = log.rstrip().splitlines()[-1]
    assert vantage_line.startswith("checked from ")
    assert vantage_line.endswith(
        "job https://gitlab.example.com/acme/deploy/-/jobs/7; source address 127.0.0.1"
    )


def test_gitlab_shows_one_suite_per_target_and_one_test_per_stage(lab_run) -> None:
    tests = gitlab_view(lab_run[2])
    assert [(t.suite, t.name, t.status) for t in tests] == [
        ("preflight.sftp-healthy", stage, "success")
        for stage in ("dns", "tcp", "banner", "auth", "sftp")
    ] + [
        (f"preflight.{target}", stage, status)
        for target in ("firewall-drop", "port-closed")
        for stage, status in (
            ("dns", "success"),
            ("tcp", "failed"),
            ("banner", "skipped"),
            ("auth", "skipped"),
            ("sftp", "skipped"),
        )
    ]
    assert len({(t.suite, t.name) for t in tests}) == len(tests)  # GitLab drops duplicates


def test_a_failed_test_shows_summary_hint_details_and_vantage(lab_run) -> None:
    tests = {(t.suite, t.name): t for t in gitlab_view(lab_run[2])}
    dropped = tests["preflight.firewall-drop", "tcp"]
    details = dropped.details.splitlines()
    assert re.fullmatch(
        r"tcp\.timeout: no answer from 127\.0\.0\.1:\d+ in 1\.0s: the SYN was silently dropped",
        details[0],
    )
    assert details[1].startswith("hint: A firewall or security group is dropping the packets")
    assert "vantage.job_url: https://gitlab.example.com/acme/deploy/-/jobs/7" in details
    assert "vantage.source_address: 127.0.0.1" in details
    assert 0.9 <= dropped.seconds <= 3.0
    refused = tests["preflight.port-closed", "tcp"]
    assert "refused the connection (TCP reset)" in refused.details.splitlines()[0]


def test_a_skipped_test_shows_its_reason_as_text(lab_run) -> None:
    tests = {(t.suite, t.name): t for t in gitlab_view(lab_run[2])}
    assert tests["preflight.firewall-drop", "banner"].details == "skipped: tcp failed"


def test_a_passed_test_shows_nothing_but_what_it_measured_is_in_the_job_log(lab_run) -> None:
    # GitLab drops a passed test's system-out; the README says where a healthy target's
    # measurements are: its (folded) section of the job log, with the vantage, and the JSON.
    _, log, junit = lab_run
    tests = {(t.suite, t.name): t for t in gitlab_view(junit)}
    assert tests["preflight.sftp-healthy", "tcp"].details is None
    section = log.split("section_end:")[0]
    assert "sftp-healthy" in section
    assert re.search(r"connected to 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+ in \d+ ms", section)
    assert "source address 127.0.0.1" in log.rstrip().splitlines()[-1]


def test_the_tests_tab_reads_as_a_report(lab_run) -> None:
    text = render_gitlab_view(gitlab_view(lab_run[2]))
    assert text.startswith("preflight.sftp-healthy › dns: success (")
    assert "preflight.firewall-drop › banner: skipped (0.000s)\n    skipped: tcp failed\n" in text


def test_every_failure_gitlab_shows_starts_with_its_code(lab_run) -> None:
    # GitLab keeps neither `type` nor `message`: the code must open the body it does keep.
    golden = (Path(__file__).parent / "golden" / "run" / "gitlab.junit.xml").read_text()
    golden = re.sub(r"(?<=[a-z])=N\b", '="0"', golden)  # its times were normalised unquoted
    for xml_text in (lab_run[2], golden):
        codes = {
            (case.get("classname"), case.get("name")): failure.get("type")
            for case in ET.fromstring(xml_text).iter("testcase")
            for failure in case.findall("failure")
        }
        shown = {(t.suite, t.name): t for t in gitlab_view(xml_text) if t.status == "failed"}
        assert set(shown) == set(codes) and codes
        for key, code in codes.items():
            assert shown[key].details.startswith(f"{code}: "), shown[key].details
