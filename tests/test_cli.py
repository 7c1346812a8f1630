"""The command line as a CI job and an on-call engineer use it: exit statuses, files, signals.

Most tests call `cli.run` in-process with injected streams and environment; those that are about
the process itself (start-up, signals, wall time) run `python -m preflight` as a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import junitparser
import pytest

from preflight import __version__, cli, lab, selection

REPO = Path(__file__).resolve().parents[1]


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.run(list(argv), stdout=out, stderr=err, environ=environ or {})
    return status, out.getvalue(), err.getvalue()


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def lab_config(tmp_path: Path, server: lab.SFTPServer, **extra: str) -> Path:
    return write(
        tmp_path / "checks.yaml",
        f"""\
        version: 1
        defaults:
          user: deploy
          timeouts: {{tcp: 2, banner: 2, auth: 4, sftp: 4}}
          auth:
            key: ${{SSH_PRIVATE_KEY}}
          host_key:
            known_hosts: null
            fingerprints: ["{server.fingerprint}"]
        targets:
          - name: lab-sftp
            host: 127.0.0.1
            port: {server.port}
            sftp: {{path: {extra.get("path", "upload")}}}
        """,
    )


def test_version():
    status, out, _ = run("--version")
    assert (status, out.strip()) == (0, f"preflight {__version__}")


def test_a_dns_tcp_check_of_a_typed_target_loads_neither_yaml_nor_paramiko(tmp_path):
    # Start-up is most of what `preflight check HOST:PORT --stages dns,tcp` costs: PyYAML is
    # for a config file and paramiko for the SSH stages, and here there is neither.
    code = (
        "import sys\n"
        "from preflight import cli\n"
        "status = cli.run(sys.argv[1:])\n"
        "print(status, sorted(m for m in ('yaml', 'paramiko') if m in sys.modules))\n"
    )
    with lab.Greeter(b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "check",
                f"127.0.0.1:{server.port}",
                "--stages",
                "dns,tcp",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,  # no checks.yaml here
            env={**os.environ, "PYTHONPATH": str(REPO)},
            check=True,
        )
    assert out.stdout.splitlines()[-1] == "0 []", out.stdout + out.stderr


def test_version_loads_neither_asyncio_nor_yaml_nor_paramiko(tmp_path):
    # `preflight --version` is the cheapest thing it can do: the interpreter and argparse.
    code = (
        "import sys\n"
        "from preflight import cli\n"
        "status = cli.run(['--version'])\n"
        "print(status, sorted(m for m in ('asyncio', 'yaml', 'paramiko', 'junit_xml') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert out.stdout.splitlines()[-1] == "0 []", out.stdout + out.stderr


def test_no_command_prints_help_and_exits_2():
    status, _, err = run()
    assert status == 2 and "usage" in err


def test_check_passes_against_a_healthy_server_and_writes_both_reports(
    tmp_path, sftp_server, client_key_text
):
    config = lab_config(tmp_path, sftp_server)
    junit, report = tmp_path / "out" / "report.xml", tmp_path / "out" / "report.json"
    status, out, err = run(
        "check",
        "-c",
        str(config),
        "--junit",
        str(junit),
        "--json",
        str(report),
        environ={"SSH_PRIVATE_KEY": client_key_text},
    )
    assert status == 0, out + err
    assert "lab-sftp" in out
    # out/ is made for the reports, and said so (a typo in a directory name would not show).
    out_dir = tmp_path / "out"
    assert err == (
        f"preflight: --junit {junit}: the directory {out_dir}/ does not exist; it will be created\n"
    )
    data = json.loads(report.read_text())
    assert data["ok"] is True
    assert [s["status"] for s in data["targets"][0]["stages"]] == ["pass"] * 5
    suites = list(junitparser.JUnitXml.fromfile(str(junit)))
    assert [case.name for case in suites[0]] == ["dns", "tcp", "banner", "auth", "sftp"]


def test_a_failing_check_exits_1_and_still_writes_reports(tmp_path, sftp_server, client_key_text):
    config = lab_config(tmp_path, sftp_server, path="/missing")
    report = tmp_path / "report.json"
    status, out, _ = run(
        "check",
        "-c",
        str(config),
        "--json",
        str(report),
        environ={"SSH_PRIVATE_KEY": client_key_text},
    )
    assert status == 1
    assert "sftp.not_found" in out
    data = json.loads(report.read_text())
    assert data["ok"] is False


def test_secrets_never_reach_any_output(tmp_path, sftp_server, client_key_text):
    password = "pa55-Secret-Value-1234"
    config = write(
        tmp_path / "checks.yaml",
        f"""\
        version: 1
        targets:
          - name: wrong-password
            host: 127.0.0.1
            port: {sftp_server.port}
            user: operator
            auth: {{password: "${{SFTP_PASSWORD}}"}}
            host_key: {{policy: "off"}}
        """,
    )
    junit, report = tmp_path / "r.xml", tmp_path / "r.json"
    status, out, err = run(
        "check",
        "-c",
        str(config),
        "--junit",
        str(junit),
        "--json",
        str(report),
        environ={"SFTP_PASSWORD": password},
    )
    assert status == 1
    for text in (out, err, junit.read_text(), report.read_text()):
        assert password not in text
    assert "auth.denied" in out


def test_command_line_target_without_a_file(tmp_path):
    with lab.RefusedPort() as refused:
        status, out, _ = run("check", f"127.0.0.1:{refused.port}", "--stages", "dns,tcp")
    assert status == 1
    assert "tcp.refused" in out


def test_no_file_and_no_target_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run("check")
    assert status == 2
    assert "no checks.yaml" in err


def test_bad_config_exits_2_with_file_and_line(tmp_path):
    config = write(
        tmp_path / "checks.yaml",
        """\
        version: 1
        targets:
          - name: a
            host: example.com
            prot: 22
        """,
    )
    status, out, err = run("check", "-c", str(config))
    assert status == 2
    assert err.startswith(f"{config}:5: ")
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "127.0.0.1", "--stages", "dns,auth"],
        ["check", "127.0.0.1", "--stages", "dsn"],
        ["check", "127.0.0.1", "--deadline", "-1"],
        ["check", "127.0.0.1", "--jobs", "0"],
        ["check", "127.0.0.1:99999"],
        ["check", "--color", "purple", "127.0.0.1"],
    ],
)
def test_bad_arguments_exit_2_without_probing(argv):
    status, _, err = run(*argv)
    assert status == 2, err
    assert "Traceback" not in err


def test_only_selects_targets_and_suggests_near_misses(tmp_path):
    with lab.RefusedPort() as refused:
        config = write(
            tmp_path / "checks.yaml",
            f"""\
            version: 1
            defaults: {{stages: [dns, tcp]}}
            targets:
              - {{name: alpha, host: 127.0.0.1, port: {refused.port}}}
              - {{name: beta, host: 127.0.0.1, port: {refused.port}}}
            """,
        )
        status, out, _ = run("check", "-c", str(config), "--only", "beta")
        assert status == 1 and "beta" in out and "alpha" not in out
        status, _, err = run("check", "-c", str(config), "--only", "alpah")
        assert status == 2 and "did you mean 'alpha'" in err


def test_a_typed_target_close_to_a_name_in_the_file_is_taken_for_a_typo(tmp_path):
    # No lookup is sent for 'real-ssdh' (the conftest guard would fail the test if it were).
    config = write(
        tmp_path / "checks.yaml",
        """\
        version: 1
        defaults: {port: 2222}
        targets: [{name: real-sshd, host: 127.0.0.1}]
        """,
    )
    status, out, err = run("check", "-c", str(config), "real-ssdh")
    assert (status, out) == (2, "")
    assert err == (
        f"preflight: 'real-ssdh' is not a target in {config} (did you mean 'real-sshd'?); "
        "to check a host of that name, write it as ssh://real-ssdh\n"
    )


@pytest.mark.parametrize(
    ("typed", "name", "slip"),
    [
        ("real-ssdh", "real-sshd", True),  # two neighbours swapped
        ("sftp-pro", "sftp-prod", True),  # one dropped
        ("sftp-prodd", "sftp-prod", True),  # one added
        ("sftp-prud", "sftp-prod", True),  # one changed
        ("sftp2", "sftp1", False),  # another number: another host of the fleet
        ("web-02", "web-01", False),
        ("db-us-1", "db-eu-1", False),  # two changes
        ("localhost", "localhost-x", False),
        ("abd", "abc", False),  # too short to tell
    ],
)
def test_what_counts_as_a_slip_of_the_keyboard(typed, name, slip):
    assert selection.a_typo_of(typed, name) is slip


def test_a_typed_host_unlike_any_name_or_with_a_port_is_checked_as_a_host(tmp_path):
    with lab.RefusedPort() as refused:
        config = write(
            tmp_path / "checks.yaml",
            f"""\
            version: 1
            defaults: {{stages: [dns, tcp], port: {refused.port}}}
            targets: [{{name: sftp-prod, host: 127.0.0.1}}]
            """,
        )
        for spec in ("localhost", f"127.0.0.1:{refused.port}"):
            status, out, err = run("check", "-c", str(config), spec)
            assert status == 1 and "tcp.refused" in out, err


def test_validate_without_a_file_says_how_to_name_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run("validate")
    assert (status, out) == (2, "")
    assert err == (
        "preflight: no checks.yaml here: pass -c FILE or set PREFLIGHT_CONFIG to say which file "
        "to check\n"
    )


def test_validate_reports_targets_without_probing(tmp_path):
    config = write(
        tmp_path / "checks.yaml",
        """\
        version: 1
        targets:
          - {name: one, host: sftp.example.com, port: 2222}
        """,
    )
    status, out, _ = run("validate", "-c", str(config))
    assert status == 0
    assert "one: sftp.example.com:2222" in out


def test_validate_warns_about_what_check_will_not_find_and_still_exits_0(tmp_path):
    loose = tmp_path / "id_loose"
    loose.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    loose.chmod(0o644)
    config = write(
        tmp_path / "checks.yaml",
        f"""\
        version: 1
        defaults: {{host_key: {{known_hosts: {tmp_path}/no_known_hosts}}}}
        targets:
          - {{name: unset, host: a.example.com, auth: {{password: "${{SFTP_PASSWORD}}"}}}}
          - {{name: missing, host: b.example.com, auth: {{key: {tmp_path}/id_missing}}}}
          - {{name: loose, host: c.example.com, auth: {{key: {loose}}}}}
          - {{name: port-check, host: d.example.com, stages: [dns, tcp]}}
        """,
    )
    status, out, _ = run("validate", "-c", str(config))
    assert status == 0
    listing, warnings = out.split("warnings (what a check here will not find):\n")
    assert "port-check: d.example.com:22 [dns,tcp]" in listing
    assert warnings.splitlines() == [
        "  ! ${SFTP_PASSWORD} is not set or empty in this environment: auth will fail with "
        "auth.no_credentials (unset)",
        f"  ! known_hosts {tmp_path}/no_known_hosts does not exist and nothing is pinned: auth "
        "will fail with auth.host_key_unknown (give the servers' keys: known_hosts lines or "
        "fingerprints) (unset, missing, loose)",  # not port-check: it runs no auth stage
        f"  ! the key file {tmp_path}/id_missing does not exist: auth will fail with "
        "auth.no_credentials (missing)",
        f"  ! the key file {loose} has mode 0644: OpenSSH refuses a private key that others can "
        f"read (chmod 600 {loose}); preflight and paramiko use it anyway (loose)",
    ]


def test_config_path_from_environment(tmp_path):
    config = write(tmp_path / "ci.yaml", "version: 1\ntargets: [{host: sftp.example.com}]\n")
    status, out, _ = run("validate", environ={"PREFLIGHT_CONFIG": str(config)})
    assert status == 0 and "ci.yaml" in out


def test_example_checks_yaml_validates():
    status, _out, err = run("validate", "-c", str(REPO / "checks.yaml"))
    assert status == 0, err


# --- as a process ------------------------------------------------------------------------------


def process_env() -> dict[str, str]:
    # The job these tests run in may itself be a GitHub or GitLab job: keep its variables
    # away from preflight, which would otherwise publish annotations or pick a shard. Output
    # is buffered as it is for a CI job, whatever the test runner's own setting.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "GITLAB_", "CI_NODE_"))
        and key not in ("FORCE_COLOR", "PYTHONUNBUFFERED")
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def preflight_process(*argv: str, **kwargs) -> subprocess.Popen[str]:
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.Popen(
        [sys.executable, "-m", "preflight", *argv], text=True, env=process_env(), **options
    )


def test_dropping_firewall_fails_the_process_within_tcp_timeout(tmp_path):
    with lab.DroppingPort() as dropping:
        config = write(
            tmp_path / "checks.yaml",
            f"""\
            version: 1
            defaults: {{timeouts: {{tcp: 3}}}}
            targets: [{{name: dropped, host: 127.0.0.1, port: {dropping.port}}}]
            """,
        )
        started = time.monotonic()
        proc = preflight_process("check", "-c", str(config), "--junit", str(tmp_path / "j.xml"))
        _out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 1, err
    assert elapsed < 3 + 2, elapsed  # the bar is 4 s; the margin absorbs a noisy machine
    assert "tcp.timeout" in (tmp_path / "j.xml").read_text()
    assert err == ""


def test_everything_written_reaches_a_pipe_before_the_process_exits(tmp_path):
    # The process leaves without the interpreter's teardown (cli.main), so whatever Python still
    # buffers must be flushed first: `validate` writes 400 lines to a block-buffered pipe and
    # leaves the flushing to the exit; `check` writes a console report larger than a pipe.
    with lab.Greeter(b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        targets = "".join(
            f"  - {{name: t{i}, host: 127.0.0.1, port: {server.port}}}\n" for i in range(400)
        )
        config = tmp_path / "checks.yaml"
        config.write_text(f"version: 1\ntargets:\n{targets}")
        validate = preflight_process("validate", "-c", str(config))
        listed, validate_err = validate.communicate(timeout=60)
        report = tmp_path / "r.json"
        check = preflight_process(
            "check", "-c", str(config), "--stages", "dns,tcp", "--json", str(report), "--verbose"
        )
        out, err = check.communicate(timeout=60)
    assert validate.returncode == 0 and validate_err == ""
    assert [line for line in listed.splitlines() if line.startswith("  t")][-1].startswith(
        "  t399: 127.0.0.1:"
    )
    assert listed.splitlines()[-1].endswith("(t0, t1, t2 and 397 more)")  # said once
    assert check.returncode == 0 and err == ""
    assert len(out.encode()) > 64 * 1024
    assert out.count(" OK ") == 400
    assert "400 targets: 400 ok, 0 failed" in out
    assert len(json.loads(report.read_text())["targets"]) == 400


def test_a_console_that_cannot_take_the_report_fails_the_run(tmp_path):
    # The check passes, but its report never reached the console (a full disk): not green.
    with lab.Greeter(b"SSH-2.0-OpenSSH_9.6\r\n") as server, open("/dev/full", "w") as full:
        proc = preflight_process(
            "check", f"127.0.0.1:{server.port}", "--stages", "dns,tcp", stdout=full, cwd=tmp_path
        )
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "preflight: could not write the console report: [Errno 28]" in err


def test_a_closed_stdout_is_like_dev_null_and_the_reports_are_still_written(tmp_path):
    report = tmp_path / "r.json"
    with lab.Greeter(b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        proc = preflight_process(
            "check",
            f"127.0.0.1:{server.port}",
            "--stages",
            "dns,tcp",
            "--json",
            str(report),
            stdout=None,
            preexec_fn=lambda: os.close(1),
            cwd=tmp_path,
        )
        _out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (0, "")
    assert json.loads(report.read_text())["ok"] is True


def test_a_profiler_still_gets_its_output_at_exit(tmp_path):
    # preflight skips the interpreter's teardown, except when someone is watching the process.
    profile = tmp_path / "out.prof"
    proc = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "preflight", "--version"],
        capture_output=True,
        text=True,
        env=process_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"preflight {__version__}"
    assert profile.stat().st_size > 0


def start_stuck_check(
    tmp_path: Path, tarpit: lab.Tarpit
) -> tuple[subprocess.Popen[str], Path, Path]:
    """A preflight process waiting on a tarpit's banner (60 s), once it has connected."""
    config = write(
        tmp_path / "checks.yaml",
        f"""\
        version: 1
        defaults: {{timeouts: {{banner: 60}}, deadline: 120}}
        targets: [{{name: stuck, host: 127.0.0.1, port: {tarpit.port}}}]
        """,
    )
    junit, report = tmp_path / "r.xml", tmp_path / "r.json"
    proc = preflight_process(
        "check", "-c", str(config), "--junit", str(junit), "--json", str(report)
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not tarpit.accepted:
        time.sleep(0.05)
    time.sleep(0.3)
    return proc, junit, report


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cancelled_job_writes_reports_and_exits_with_the_signal_status(tmp_path, signum, status):
    with lab.Tarpit() as tarpit:
        proc, junit, report = start_stuck_check(tmp_path, tarpit)
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    stages = data["targets"][0]["stages"]
    assert [s["status"] for s in stages] == ["pass", "pass", "error", "skip", "skip"]
    # The banner stage was running: an error with the time it ran, not a skip of 0 s.
    assert stages[2]["detail"].startswith("interrupted after ")
    assert stages[2]["detail"].endswith(" during banner, before the stage finished")
    assert stages[2]["duration_s"] >= 0.3
    assert "interrupted" in stages[3]["detail"]
    # GitLab's parser (and every JUnit reader) must count it: not 0 failures and 0 errors.
    suite = next(iter(junitparser.JUnitXml.fromfile(str(junit))))
    banner = next(case for case in suite if case.name == "banner")
    assert isinstance(banner.result[0], junitparser.Error)
    assert banner.result[0].type == "interrupted"
    assert float(banner.time) >= 0.3
    assert suite.errors == 1


def test_no_paramiko_traceback_reaches_stderr(tmp_path):
    with lab.KexStall(then="close") as kex, lab.Greeter(b"SSH-2.0-x\r\n\x00\xff garbage") as bad:
        proc = preflight_process(
            "check", f"127.0.0.1:{kex.port}", f"127.0.0.1:{bad.port}", "--deadline", "10"
        )
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err == ""
    assert "Traceback" not in out


def test_warn_policy_passes_with_the_warning_in_every_report(
    tmp_path, sftp_server, client_key_text
):
    config = write(
        tmp_path / "checks.yaml",
        f"""\
        version: 1
        targets:
          - name: unpinned
            host: 127.0.0.1
            port: {sftp_server.port}
            user: deploy
            auth: {{key: "${{SSH_PRIVATE_KEY}}"}}
            host_key: {{known_hosts: null, policy: warn}}
        """,
    )
    junit, report = tmp_path / "r.xml", tmp_path / "r.json"
    status, out, _ = run(
        "check",
        "-c",
        str(config),
        "--junit",
        str(junit),
        "--json",
        str(report),
        environ={"SSH_PRIVATE_KEY": client_key_text},
    )
    assert status == 0, out
    for text in (out, junit.read_text(), report.read_text()):
        assert sftp_server.fingerprint in text
        assert "host_key.policy is warn" in text


@pytest.mark.parametrize(
    ("path", "reason"), [("/proc/no/such/dir/r.xml", "not writable"), (".", "is a directory")]
)
def test_unwritable_report_path_is_refused_before_probing(path, reason):
    with lab.Tarpit() as tarpit:
        status, out, err = run("check", f"127.0.0.1:{tarpit.port}", "--junit", path)
        assert tarpit.accepted == 0  # nothing was probed
    assert status == 2
    assert reason in err and out == ""


def test_a_second_signal_does_not_lose_the_reports(tmp_path):
    with lab.Tarpit() as tarpit:
        proc, junit, report = start_stuck_check(tmp_path, tarpit)
        for _ in range(3):  # an impatient user, or CI's SIGTERM followed by another
            proc.send_signal(signal.SIGINT)
            time.sleep(0.02)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert json.loads(report.read_text())["interrupted"] is True
    junitparser.JUnitXml.fromfile(str(junit))


def test_validate_shows_jump_hosts_and_brackets_ipv6(tmp_path):
    config = write(
        tmp_path / "checks.yaml",
        """\
        version: 1
        targets:
          - {name: inner, host: sftp.internal.example.com, jump: ops@bastion.example.com:2222}
          - {name: v6, host: "2001:db8::10"}
        """,
    )
    status, out, _ = run("validate", "-c", str(config))
    assert status == 0
    assert "inner: sftp.internal.example.com:22 via bastion.example.com:2222" in out
    assert "v6: [2001:db8::10]:22" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "-F", "a\0b", "127.0.0.1:1"],
        ["check", "--junit", "a\0b", "127.0.0.1:1"],
        ["merge", "a\0b"],
        ["validate", "-c", "a\0b"],
    ],
)
def test_a_nul_in_an_argument_is_a_usage_error_not_a_traceback(argv):
    # Only an in-process caller can pass one (execve cannot), but it must not be exit 3.
    status, _, err = run(*argv)
    assert status == 2
    assert "NUL character" in err and "Traceback" not in err


# --- on call: from whatever directory, on an 80-column terminal, in a hurry ---------------------


def test_an_ad_hoc_check_goes_on_past_a_broken_checks_yaml_here(tmp_path, monkeypatch):
    (tmp_path / "checks.yaml").write_text(
        "version: 1\ntargets:\n  - name: web\n    host: ${NOPE_X}\n"
    )
    monkeypatch.chdir(tmp_path)
    with lab.RefusedPort() as refused:
        status, out, err = run("check", f"127.0.0.1:{refused.port}", "--stages", "tcp")
        assert status == 1 and "tcp.refused" in out
        assert err.startswith("preflight: warning: not using checks.yaml (checks.yaml:4: ")
        assert "NOPE_X" in err
        status, out, err = run(
            "check", "-c", "none", f"127.0.0.1:{refused.port}", "--stages", "tcp"
        )
        assert (status, err) == (1, "")


def test_a_stage_timeout_from_the_command_line_bounds_the_stage_and_is_reported(tmp_path):
    report = tmp_path / "r.json"
    with lab.DroppingPort() as dropping:
        argv = ["check", "-c", "none", f"127.0.0.1:{dropping.port}", "--stages", "tcp"]
        started = time.monotonic()
        # "0.5s" is taken as `timeout 0.5s` would take it.
        status, out, _ = run(*argv, "--timeout", "tcp=0.5s", "--json", str(report))
        elapsed = time.monotonic() - started
    assert status == 1 and elapsed < 0.5 + 2.0
    assert "tcp.timeout: no answer from" in out and "in 0.5s" in out
    assert "settings: dns timeout" not in out  # only the stage given
    assert "tcp timeout 0.5s from --timeout" in out
    (target,) = json.loads(report.read_text())["targets"]
    assert {"setting": "tcp timeout", "value": "0.5s", "source": "--timeout"} in target[
        "config_sources"
    ]


def test_one_stage_name_means_every_stage_up_to_it():
    with lab.RefusedPort() as refused:
        status, out, _ = run("check", f"127.0.0.1:{refused.port}", "--stages", "tcp", "-c", "none")
    assert status == 1
    assert "✓ dns" in out and "✗ tcp" in out and "banner" not in out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["--stages", "dns,banner"],
            "preflight check: argument --stages: stages must start at dns",
        ),
        (["--timeout", "tcp=soon"], "preflight check: argument --timeout: expected a number"),
        (["--timeout", "tcp=3ms"], "preflight check: argument --timeout: expected a number"),
        (["--deadline", "1m"], "preflight check: argument --deadline: expected a number"),
        (["--timeout", "tpc=3"], "preflight check: argument --timeout: unknown stage 'tpc'"),
        (["--only", "a,,b"], "preflight check: argument --only: expected NAME or NAME,NAME…"),
    ],
)
def test_a_bad_argument_is_one_line_not_the_usage_block(argv, said):
    status, out, err = run("check", "127.0.0.1", *argv)
    assert status == 2 and out == ""
    assert err.startswith(said) and err.endswith(" (see preflight check --help)\n")
    assert err.count("\n") == 1 and "usage:" not in err


def test_help_says_where_credentials_come_from_the_exit_statuses_and_what_color_does(
    monkeypatch,
):
    monkeypatch.setenv("COLUMNS", "80")  # argparse reads the process's own
    status, out, _ = run("check", "--help")
    assert status == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    for variable in ("SSH_PRIVATE_KEY", "SSH_KEY_PASSPHRASE", "SFTP_PASSWORD", "SSH_KNOWN_HOSTS"):
        assert f"${variable}" in out
    assert "ssh-agent is not used" in out and "except under -F none" in out
    assert "exit status: 0 every check passed, 1 a check failed, 2 usage" in out
    assert "colour the console report: auto (the default) only on" in " ".join(out.split())
    assert "-c none" in out and "--timeout tcp=10" in out


def test_on_an_80_column_terminal_every_line_fits_but_a_command(tmp_path):
    with lab.DroppingPort() as dropping:
        argv = ["check", "-c", "none", f"127.0.0.1:{dropping.port}", "--stages", "tcp"]
        _, out, _ = run(*argv, "--timeout", "0.3", environ={"COLUMNS": "80"})
        _, unwrapped, _ = run(*argv, "--timeout", "0.3")
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines if "try: " not in line), out
    hint = next(i for i, line in enumerate(lines) if "hint: " in line)
    column = lines[hint].index("hint: ") + len("hint: ")
    assert lines[hint + 1].startswith(" " * column) and lines[hint + 1][column] != " "

    def words(text: str) -> str:  # without the times and the port, which differ by run
        return re.sub(r"\d+\.\d+s|127\.0\.0\.1:\d+", "#", " ".join(text.split()))

    assert words(out) == words(unwrapped)  # the same words, re-flowed
    assert max(len(line) for line in unwrapped.splitlines()) > 80  # off a terminal: one line


def test_a_report_directory_that_does_not_exist_is_made_and_said_once(tmp_path):
    junit = tmp_path / "reprots" / "deeper" / "x.xml"
    with lab.RefusedPort() as refused:
        argv = ["check", "-c", "none", f"127.0.0.1:{refused.port}", "--stages", "tcp"]
        status, _, err = run(
            *argv, "--junit", str(junit), "--json", str(junit.with_suffix(".json"))
        )
    assert status == 1 and junit.exists()
    assert err == (
        f"preflight: --junit {junit}: the directory {junit.parent}/ does not exist; "
        "it will be created\n"
    )


def test_the_run_total_of_attempts_counts_the_intervals_too(tmp_path):
    report = tmp_path / "r.json"
    with lab.RefusedPort() as refused:
        argv = ["check", "-c", "none", f"127.0.0.1:{refused.port}", "--stages", "tcp"]
        started = time.monotonic()
        run(*argv, "--attempts", "3", "--interval", "0.4", "--json", str(report))
        wall = time.monotonic() - started
    data = json.loads(report.read_text())
    assert 2 * 0.4 <= data["duration_s"] <= wall
    assert data["targets"][0]["duration_s"] < 0.4  # a target's own time is its checking


def test_a_target_may_follow_the_options():
    with lab.RefusedPort() as one, lab.RefusedPort() as two:
        argv = ["check", "-c", "none", f"127.0.0.1:{one.port}", "--stages", "tcp"]
        status, out, err = run(*argv, f"127.0.0.1:{two.port}")
    assert status == 1, err
    assert out.count("FAILED at tcp") == 2
    status, _, err = run("check", "127.0.0.1", "--bogus")
    assert (status, err) == (
        2,
        "preflight check: unrecognized arguments: --bogus (see preflight check --help)\n",
    )


def test_a_target_deadline_hint_names_the_knob_that_moves_it():
    with lab.Tarpit() as tarpit:
        argv = ["check", "-c", "none", f"127.0.0.1:{tarpit.port}", "--stages", "banner"]
        _, out, _ = run(*argv, "--deadline", "1")
    assert "the run's deadline (--deadline 1s)" in out
    assert "Raise --deadline, or lower the timeouts" in out


def test_more_targets_than_open_files_wait_their_turn_and_are_said_to(tmp_path):
    # Each target holds a socket from tcp to its end. Past the open-file limit, targets used to
    # fail with EMFILE and the run ended in an internal error (exit 3, a traceback); now the
    # run says so before probing and checks as many at once as the limit allows.
    import resource

    def check_under(limit: int, *flags: str) -> tuple[int, str, str, list[dict]]:
        """250 dropped targets checked by a process that may open `limit` files."""
        with lab.DroppingPort() as dropping:
            targets = "".join(
                f"  - {{name: t{n}, host: 127.0.0.1, port: {dropping.port}}}\n" for n in range(250)
            )
            config = tmp_path / "checks.yaml"
            config.write_text(
                f"version: 1\ndefaults: {{timeouts: {{tcp: 1}}}}\ntargets:\n{targets}"
            )
            report = tmp_path / "r.json"
            check = preflight_process(
                "check",
                "-c",
                str(config),
                "--jobs",
                "1",
                "--json",
                str(report),
                *flags,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)),
            )
            out, err = check.communicate(timeout=60)
        return check.returncode, out, err, json.loads(report.read_text())["targets"]

    status, out, err, targets = check_under(260)
    assert status == 1, err
    assert err.startswith("preflight: 250 targets, but this process may open only 260 files")
    assert "checks them all at once\n" in err and "Traceback" not in err
    assert {t["failure"]["code"] for t in targets} == {"tcp.timeout"}
    assert "250 targets  FAILED at tcp (tcp.timeout)" in out

    # The run's deadline finds some still waiting: they say so, and for how long.
    _, _, _, targets = check_under(200, "--deadline", "1.5")
    waited = [
        t["stages"][0]
        for t in targets
        if "waiting for a free socket" in (t["stages"][0]["detail"] or "")
    ]
    assert waited, "no target was still waiting at the deadline"
    assert all(stage["diagnosis"]["code"] == "deadline.exceeded" for stage in waited)
    assert all(stage["duration_s"] >= 1.0 for stage in waited)  # how long it waited


def test_traces_of_a_silent_fleet_stay_within_the_open_file_limit(tmp_path):
    # 300 silent targets with --trace under a limit of 1,024: each trace holds 20 sockets, and
    # the traces used to take every descriptor, until importing the diagnosis failed with
    # EMFILE: an internal error (exit 3) and no report at all. Now the traces the limit leaves
    # room for run, and the others say why there is none.
    import resource

    with lab.DroppingPort() as dropping:
        targets = "".join(
            f"  - {{name: t{n}, host: 127.0.0.1, port: {dropping.port}}}\n" for n in range(300)
        )
        config = tmp_path / "checks.yaml"
        config.write_text(
            "version: 1\ndefaults: {stages: [dns, tcp], timeouts: {tcp: 1}, trace: true}\n"
            f"targets:\n{targets}"
        )
        report = tmp_path / "r.json"
        check = preflight_process(
            "check",
            "-c",
            str(config),
            "--json",
            str(report),
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)),
        )
        _, err = check.communicate(timeout=60)
    assert check.returncode == 1, err
    assert "Traceback" not in err
    found = json.loads(report.read_text())["targets"]
    assert {t["failure"]["code"] for t in found} == {"tcp.timeout"}
    traces = [t["stages"][1]["facts"]["trace"] for t in found]
    traced = [trace for trace in traces if "unavailable" not in trace]
    assert traced and all(trace["max_hops"] == 20 for trace in traced)  # (no hop answers here)
    assert all("open-file limit" in t["unavailable"] for t in traces if t not in traced)


# --- the upload check from the command line ---------------------------------------------------


def test_write_size_uploads_to_every_target_and_the_reports_carry_the_facts(
    tmp_path, sftp_server, client_key_text
):
    config = lab_config(tmp_path, sftp_server, path="/upload")
    report, junit = tmp_path / "report.json", tmp_path / "report.xml"
    status, out, err = run(
        "check",
        "-c",
        str(config),
        "--write-size",
        "256KiB",
        "--json",
        str(report),
        "--junit",
        str(junit),
        environ={"SSH_PRIVATE_KEY": client_key_text},
    )
    assert status == 0, out + err
    assert "settings: sftp write 256.0 KiB from command line" in out
    assert "uploaded 256.0 KiB in " in out and "then removed it" in out
    sftp = json.loads(report.read_text())["targets"][0]["stages"][4]
    upload = sftp["facts"]["upload"]
    assert (upload["bytes"], upload["removed"]) == (256 * 1024, True)
    assert upload["rate_bytes_per_s"] > 0
    [suite] = list(junitparser.JUnitXml.fromfile(str(junit)))
    [case] = [case for case in suite if case.name == "sftp"]
    assert "upload.bytes: 262144" in case.system_out
    assert os.listdir(os.path.join(sftp_server.root, "upload")) == []


def test_no_list_and_min_free_are_said_in_the_settings(tmp_path, sftp_server, client_key_text):
    config = lab_config(tmp_path, sftp_server, path="/upload")
    status, out, _ = run(
        "check",
        "-c",
        str(config),
        "--write",
        "--no-list",
        "--min-free",
        "1GiB",
        environ={"SSH_PRIVATE_KEY": client_key_text},
    )
    assert status == 0, out
    words = " ".join(out.split())  # the settings line is wrapped to the console's width
    assert (
        "settings: sftp write a test file from command line; sftp list off from command "
        "line; sftp min_free 1.0 GiB from command line"
    ) in words
    assert "/upload is a directory (not listed); created and wrote /upload/.preflight-" in words
    assert "! sftp.min_free 1.0 GiB not checked: the server does not offer" in words


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--write-size", "5M"], "expected a size like 1MiB, got '5M' (a unit needs its B"),
        (["--min-free", "0"], "a size must be above 0 and at most"),
        (
            ["--write", "--stages", "tcp"],
            "--write, --write-size, --no-list and --min-free are for the sftp stage, which no "
            "target checked here runs",
        ),
    ],
)
def test_upload_options_refuse_what_cannot_be_done(argv, message):
    status, _, err = run("check", "-c", "none", "127.0.0.1:1", *argv)
    assert status == 2
    assert message in err


def test_validate_shows_the_upload_check_and_warns_where_it_cannot_run(tmp_path):
    config = write(
        tmp_path / "checks.yaml",
        """\
        version: 1
        defaults:
          host_key: {policy: off}
        targets:
          - name: drop
            host: 127.0.0.1
            sftp: {path: /drop, write: 1MiB, list: false, min_free: 5GiB}
          - name: port-only
            host: 127.0.0.1
            stages: [dns, tcp]
            sftp: {write: true}
          - name: no-sftp
            host: 127.0.0.1
            stages: [dns, tcp, banner, auth]
            auth: {key: /nonexistent/id}
            sftp: {write: true}
        """,
    )
    status, out, _ = run("validate", "-c", str(config))
    assert status == 0
    assert (
        "  drop: 127.0.0.1:22 [dns,tcp,banner,auth,sftp] deadline 30s; sftp /drop: write "
        "1.0 MiB, not listed, min_free 5.0 GiB"
    ) in out
    assert (
        "  ! sftp.write / sftp.min_free are set but the sftp stage does not run (stages: "
        "[dns, tcp]): nothing will be uploaded or measured (port-only)"
    ) in out
    # ...and the target's other warnings are still said beside it.
    assert "the key file /nonexistent/id does not exist" in out


def test_write_alone_keeps_the_size_a_target_asks_for(tmp_path):
    from preflight.model import WriteCheck

    config = write(
        tmp_path / "checks.yaml",
        """\
        version: 1
        targets:
          - {name: sized, host: 127.0.0.1, sftp: {write: 1MiB}}
          - {name: plain, host: 127.0.0.1}
        """,
    )
    asked = selection.Selection(config=str(config), upload=selection.UploadOptions(write=True))
    sized, plain = selection.select(asked, {})
    assert sized.sftp_write == WriteCheck(1024 * 1024, sized=True)
    assert plain.sftp_write is not None and not plain.sftp_write.sized


def test_trace_on_the_command_line_is_said_in_the_settings(tmp_path):
    from preflight import lab as labs

    with labs.RefusedPort() as refused:
        status, out, _ = run(
            "check", "-c", "none", f"127.0.0.1:{refused.port}", "--stages", "tcp", "--trace"
        )
    assert status == 1
    assert "settings: trace on from command line" in out
    assert "tcp.refused" in out  # only a silent drop is traced: a refusal says where it is


def test_validate_piped_into_a_reader_that_stops_early_is_still_a_valid_file(tmp_path):
    # `preflight validate | head -2`: once head exits, writes raise BrokenPipeError. That was
    # an internal error with a traceback; the file is valid all the same.
    class StoppedReader(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    config = write(
        tmp_path / "checks.yaml",
        "version: 1\ntargets:\n" + "".join(f"  - {{host: h{n}.example}}\n" for n in range(5)),
    )
    err = io.StringIO()
    status = cli.run(
        ["validate", "-c", str(config)], stdout=StoppedReader(), stderr=err, environ={}
    )
    assert (status, err.getvalue()) == (0, "")
