"""Specification of the JSON report (`preflight.report.json_report`, DESIGN §7) and of the atomic
file writer every report file goes through (`preflight.report.files`)."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import report_samples as samples

from preflight.model import Report, Status
from preflight.report import files
from preflight.report.json_report import to_dict, to_json, write_json
from preflight.report.sanitize import clean_text

ALL_SAMPLES: dict[str, Callable[[], Report]] = {
    "passing": samples.passing_report,
    "failing": samples.failing_report,
    "hostile": samples.hostile_report,
    "secrets": samples.secrets_report,
    "interrupted": samples.interrupted_report,
    "cut short": samples.cut_short_report,
    "empty": lambda: Report(targets=[], started_at=samples.STARTED_AT),
}

TARGET_KEYS = {
    "name",
    "host",
    "port",
    "user",
    "ok",
    "interrupted",
    "attempts",
    "flaky",
    "duration_s",
    "origin",
    "failure",
    "auth_methods_configured",
    "jump",
    "config_sources",
    "config_notes",
    "stages",
}
STAGE_KEYS = {
    "stage",
    "name",
    "hop",
    "status",
    "duration_s",
    "detail",
    "diagnosis",
    "facts",
    "warnings",
}


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings_in(v)]]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


# --- layout -------------------------------------------------------------------------------------


def test_top_level_layout_is_version_1() -> None:
    data = to_dict(samples.failing_report())
    assert list(data) == [
        "version",
        "ok",
        "started_at",
        "duration_s",
        "interrupted",
        "vantage",
        "targets",
    ]
    assert data["version"] == 1
    assert data["ok"] is False
    assert data["interrupted"] is False
    assert data["duration_s"] == 3.021


def test_every_target_and_stage_has_the_documented_keys() -> None:
    data = to_dict(samples.failing_report())
    for target in data["targets"]:
        assert set(target) == TARGET_KEYS
        for stage in target["stages"]:
            assert set(stage) == STAGE_KEYS


def test_target_identity_and_verdict() -> None:
    target = to_dict(samples.failing_report())["targets"][1]
    assert {k: target[k] for k in ("name", "host", "port", "user", "ok", "origin")} == {
        "name": "sftp-dr",
        "host": "sftp-dr.example.com",
        "port": 2222,
        "user": "ingest",
        "ok": False,
        "origin": "checks.yaml:12",
    }
    assert target["failure"] == {"stage": "tcp", "name": "tcp", "code": "tcp.timeout"}


def test_a_failed_stage_has_its_diagnosis_and_facts() -> None:
    tcp = to_dict(samples.failing_report())["targets"][1]["stages"][1]
    assert tcp["status"] == "fail"
    assert tcp["diagnosis"] == {
        "code": "tcp.timeout",
        "summary": samples.TCP_SUMMARY,
        "hint": samples.TCP_HINT,
    }
    assert tcp["facts"]["addresses_tried"] == [
        {"address": "203.0.113.7:2222", "result": "timeout", "seconds": 3.0}
    ]


def test_passed_and_skipped_stages_have_a_null_diagnosis() -> None:
    stages = to_dict(samples.failing_report())["targets"][1]["stages"]
    assert [(s["stage"], s["status"], s["diagnosis"]) for s in stages if s["status"] != "fail"] == [
        ("dns", "pass", None),
        ("banner", "skip", None),
        ("auth", "skip", None),
        ("sftp", "skip", None),
    ]
    assert stages[2]["detail"] == "tcp failed"


def test_alike_skipped_stages_of_many_targets_are_each_their_own_data() -> None:
    report = samples.failing_report()
    report.targets.append(report.targets[1])  # the same failure twice: alike skipped stages
    first, second = to_dict(report)["targets"][1:3]
    first["stages"][2]["facts"]["added"] = 1
    first["stages"][2]["warnings"].append("changed")
    assert second["stages"][2] == {**first["stages"][2], "facts": {}, "warnings": []}
    assert first["stages"][2] is not second["stages"][2]


def test_warnings_are_listed() -> None:
    auth = to_dict(samples.passing_report())["targets"][0]["stages"][3]
    assert auth["warnings"] == ["host key not verified (host_key.policy: off)"]


def test_durations_are_rounded_to_milliseconds() -> None:
    target = to_dict(samples.failing_report())["targets"][1]
    assert target["duration_s"] == 3.017
    assert [s["duration_s"] for s in target["stages"]] == [0.012, 3.002, 0.0, 0.0, 0.0]


def test_started_at_is_iso_8601_utc_with_z() -> None:
    assert to_dict(samples.passing_report())["started_at"] == "2025-03-04T05:06:07.890Z"


def test_started_at_in_another_zone_is_converted_to_utc() -> None:
    report = samples.passing_report()
    report.started_at = datetime(2025, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    assert to_dict(report)["started_at"] == "2025-03-04T05:06:07.000Z"


def test_a_naive_started_at_is_taken_as_utc() -> None:
    report = samples.passing_report()
    report.started_at = datetime(2025, 3, 4, 5, 6, 7)
    assert to_dict(report)["started_at"] == "2025-03-04T05:06:07.000Z"


def test_an_interrupted_run_is_flagged_and_missing_stages_are_skipped() -> None:
    data = to_dict(samples.interrupted_report())
    assert data["interrupted"] is True and data["ok"] is False
    unfinished = data["targets"][1]
    assert unfinished["interrupted"] is True
    assert [(s["stage"], s["status"], s["detail"]) for s in unfinished["stages"]] == [
        ("dns", "pass", "sftp.example.com → 203.0.113.7"),
        ("tcp", "skip", "not run: interrupted"),
        ("banner", "skip", "not run: interrupted"),
    ]


@pytest.mark.parametrize("make", ALL_SAMPLES.values(), ids=ALL_SAMPLES.keys())
def test_to_json_is_strict_json_of_to_dict(make: Callable[[], Report]) -> None:
    report = make()
    text = to_json(report)
    assert text.endswith("}\n")
    parsed = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON {name}"))
    assert parsed == json.loads(json.dumps(to_dict(report)))


# --- facts --------------------------------------------------------------------------------------


def test_facts_are_reduced_to_json_types() -> None:
    facts = to_dict(samples.hostile_report())["targets"][0]["stages"][2]["facts"]
    assert facts["raw"] == "SSH-2.0-Evil\ufffd\ufffd\ufffd( server"  # bytes decoded
    assert facts["nan"] == "nan"  # not a JSON number
    assert facts["object"].startswith("<object object at ")  # anything else: str()


def test_nested_facts_are_cleaned_recursively() -> None:
    facts = to_dict(samples.hostile_report())["targets"][0]["stages"][2]["facts"]
    nested = next(value for key, value in facts.items() if isinstance(value, list))
    assert nested[1]["nested"] == clean_text(samples.HOSTILE)


def test_a_self_referencing_fact_does_not_recurse_forever() -> None:
    report = samples.passing_report()
    loop: list[Any] = []
    loop.append(loop)
    report.targets[0].stages[0].facts["loop"] = loop
    json.loads(to_json(report))


# --- hostile input and secrets ------------------------------------------------------------------


def test_hostile_strings_are_cleaned_everywhere() -> None:
    data = to_dict(samples.hostile_report())
    for text in strings_in(data):
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]", text)
    target = data["targets"][0]
    assert target["name"] == "evilname"
    assert target["host"] == "evil.example.com"
    assert len(target["stages"][2]["detail"]) == 2000  # bounded, with "…"
    to_json(samples.hostile_report()).encode("utf-8")


def test_credentials_never_appear() -> None:
    text = to_json(samples.secrets_report())
    assert samples.PASSWORD not in text
    assert "open-sesame-phrase" not in text
    for line in samples.KEY_TEXT.splitlines():
        assert line not in text


def test_configured_auth_methods_are_named_without_values() -> None:
    target = to_dict(samples.secrets_report())["targets"][0]
    assert target["auth_methods_configured"] == ["password", "key"]


# --- writing atomically -------------------------------------------------------------------------


def test_write_json_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "out" / "deep" / "report.json"
    report = samples.failing_report()
    write_json(report, path)
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(to_json(report))
    assert os.listdir(path.parent) == ["report.json"]


def test_write_replaces_an_existing_report_and_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("old")
    path.chmod(0o600)
    files.write_atomically(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_report_is_readable_by_everyone(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    files.write_atomically(path, "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.json"
    path.write_text("old")

    def broken_replace(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["report.json"]


def test_a_stage_cut_short_is_status_error_and_reads_back_as_one() -> None:
    from preflight.report.json_reader import from_dict

    data = to_dict(samples.cut_short_report())
    tcp = data["targets"][0]["stages"][1]
    assert (tcp["status"], tcp["duration_s"]) == ("error", 1.19)
    back = from_dict(data).targets[0].stages[1]
    assert back.status is Status.ERROR and back.duration_s == 1.19
