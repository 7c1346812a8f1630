"""`preflight demo`: every lab target gets the verdict it was built for, quickly, with a valid
JUnit file — the first thing a new user runs must be right."""

from __future__ import annotations

import io
import time
from pathlib import Path

import junitparser
import xmlschema

from preflight import demo

XSD = Path(__file__).parent / "data" / "junit.xsd"


def test_demo_gives_every_expected_verdict_and_a_valid_junit_file(tmp_path):
    junit = tmp_path / "preflight-demo.xml"
    out = io.StringIO()
    started = time.monotonic()
    status = demo.run_demo(out, junit_path=str(junit), color=False)
    elapsed = time.monotonic() - started
    text = out.getvalue()
    assert status == 0, text
    assert elapsed < 15, f"the demo took {elapsed:.1f}s"
    for code in (
        "tcp.timeout",
        "tcp.refused",
        "banner.timeout",
        "banner.not_ssh",
        "auth.denied",
        "auth.host_key_mismatch",
        "sftp.unavailable",
    ):
        assert code in text
    xmlschema.XMLSchema(str(XSD)).validate(str(junit))
    suites = {suite.name: suite for suite in junitparser.JUnitXml.fromfile(str(junit))}
    dropped = {case.name: case for case in suites["firewall-drop"]}
    assert dropped["tcp"].result[0].type == "tcp.timeout"
    assert isinstance(dropped["banner"].result[0], junitparser.Skipped)
    assert all(case.is_passed for case in suites["sftp-healthy"])
