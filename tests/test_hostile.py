"""Hostile servers through the whole command line: right code, on time, clean reports.

Each target is a lab server that sends what a broken or malicious peer might: escape sequences,
NUL and other control characters, invalid UTF-8, floods of chatter, SSH-1, a banner and then a
reset or silence, a key exchange that stalls or is cut. All of them run in one `preflight check`
with JUnit and JSON output; every target must get its code within its stage timeout + 1 s, and
every output must stay valid and free of raw control characters (a banner must not be able to
recolour the terminal, retitle it, or break the XML).
"""

from __future__ import annotations

import io
import json
import re
from contextlib import ExitStack
from pathlib import Path

import pytest
import xmlschema

from preflight import cli, lab

XSD = Path(__file__).parent / "data" / "junit.xsd"
BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"

# name → (server, failing stage, code)
HOSTILE = {
    "ansi-before-banner": (
        lambda: lab.Greeter(b"\x1b[31mSSH-2.0-Evil\x1b[0m\r\n"),
        "banner",
        "banner.not_ssh",
    ),
    "control-chars-in-banner": (  # the NUL: OpenSSH refuses the line
        lambda: lab.Greeter(b"SSH-2.0-Evil\x1b]0;pwned\x07\x00\x08\x7f\r\n"),
        "banner",
        "banner.malformed",
    ),
    "binary-garbage": (
        lambda: lab.Greeter(b"\x00\x01\x02\x9b31m\xff\xfe\r\n", then="close"),
        "banner",
        "banner.not_ssh",
    ),
    "invalid-utf8-chatter": (
        lambda: lab.Greeter(b"caf\xe9 \xc3\x28 \xed\xa0\x80\r\n" + BANNER),
        "auth",
        "auth.kex_timeout",
    ),
    "100-lines-of-chatter": (
        lambda: lab.Greeter(b"".join(b"motd line %d\r\n" % i for i in range(100)) + BANNER),
        "auth",
        "auth.kex_timeout",
    ),
    "64KiB-line": (lambda: lab.Greeter(b"\x1b[2J" + b"x" * 65536), "banner", "banner.not_ssh"),
    "ssh1-only": (lambda: lab.Greeter(b"SSH-1.5-Ancient\r\n"), "banner", "banner.incompatible"),
    "banner-then-reset": (lambda: lab.Greeter(BANNER, then="reset"), "auth", "auth.kex_failed"),
    "banner-then-silence": (lambda: lab.Greeter(BANNER), "auth", "auth.kex_timeout"),
    "kexinit-then-silence": (lambda: lab.KexStall(), "auth", "auth.kex_timeout"),
    "close-mid-kex": (lambda: lab.KexStall(then="close"), "auth", "auth.kex_failed"),
    "trickle": (lambda: lab.Trickle(interval=0.3), "banner", "banner.timeout"),
}

TIMEOUTS = {"dns": 2, "tcp": 1, "banner": 1, "auth": 2, "sftp": 2}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("hostile")
    with ExitStack() as stack:
        ports = {name: stack.enter_context(make()).port for name, (make, _, _) in HOSTILE.items()}
        targets = "\n".join(
            f"  - {{name: {name}, host: 127.0.0.1, port: {port}}}" for name, port in ports.items()
        )
        config = tmp / "checks.yaml"
        config.write_text(
            "version: 1\ndefaults:\n"
            f"  timeouts: {json.dumps(TIMEOUTS)}\n"
            "  host_key: {policy: 'off'}\n"
            f"targets:\n{targets}\n"
        )
        out, err = io.StringIO(), io.StringIO()
        junit, report = tmp / "r.xml", tmp / "r.json"
        argv = ["check", "-c", str(config), "--junit", str(junit), "--json", str(report)]
        status = cli.run(argv, stdout=out, stderr=err, environ={})
    return status, out.getvalue(), err.getvalue(), junit.read_text(), json.loads(report.read_text())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_hostile_server_gets_its_code_within_the_stage_timeout(hostile_run, name):
    _, _, _, _, report = hostile_run
    _, stage, code = HOSTILE[name]
    target = next(t for t in report["targets"] if t["name"] == name)
    failed = next(s for s in target["stages"] if s["status"] == "fail")
    assert (failed["stage"], failed["diagnosis"]["code"]) == (stage, code), failed
    assert failed["duration_s"] <= TIMEOUTS[stage] + 1.0


def test_the_run_exits_1_without_anything_on_stderr(hostile_run):
    status, _, err, _, _ = hostile_run
    assert status == 1
    assert err == ""


def test_console_output_has_no_raw_control_characters(hostile_run):
    _, out, _, _, _ = hostile_run
    assert not CONTROL.search(out), repr(CONTROL.search(out))
    assert "SSH-2.0-Evil" in out  # the banner is shown, its escape sequences are not


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_json_report_has_no_raw_control_characters(hostile_run):
    *_, report = hostile_run
    bad = [s for s in _strings(report) if CONTROL.search(s.replace("\n", "").replace("\t", ""))]
    assert not bad


def test_junit_report_validates_and_has_no_raw_control_characters(hostile_run):
    _, _, _, junit, _ = hostile_run
    xmlschema.XMLSchema(str(XSD)).validate(junit)
    assert not CONTROL.search(junit.replace("\n", "").replace("\t", ""))
