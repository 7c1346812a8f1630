"""Golden outputs: every report format, byte for byte, for fixed reports and for a real run.

What a user, a CI system or a script reads is a contract: the console report (plain and in
colour), the JUnit and JSON files, GitLab's sections, GitHub's groups, annotations and step
summary. These tests hold each of them against a file in tests/golden/, written once from the
code as it was and changed only on purpose (`PREFLIGHT_UPDATE_GOLDEN=1 pytest tests/test_golden.py`
rewrites them; the diff is then the change to review). Two kinds of input:

- the fixed reports of `report_samples` (hostile text, secrets, interruptions…): compared as
  they come out;
- one `preflight check` of thirty lab servers, each failing in its own way, run as a CI job would
  run it (plain, under GitLab CI, under GitHub Actions): compared after replacing what differs
  from run to run (ports, durations, generated keys, timestamps, the host name, paths).
"""

from __future__ import annotations

import io
import os
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import report_samples as samples

from preflight import cli, lab
from preflight.model import Report
from preflight.report import console, github, gitlab
from preflight.report.json_report import to_json
from preflight.report.junit import to_xml

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("PREFLIGHT_UPDATE_GOLDEN"))


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    # Bytes, not text: a GitLab section marker holds a bare CR, which text mode would translate.
    # Rewriting the files makes every comparison pass: never in CI, where it would hide a change.
    assert not (UPDATE and os.environ.get("CI")), "PREFLIGHT_UPDATE_GOLDEN is refused under CI"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.exists(), f"no golden file {path}: run with PREFLIGHT_UPDATE_GOLDEN=1 once"
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, f"{name} differs from its golden file"


# --- fixed reports --------------------------------------------------------------------------------

SAMPLES: dict[str, Callable[[], Report]] = {
    "passing": samples.passing_report,
    "failing": samples.failing_report,
    "hostile": samples.hostile_report,
    "secrets": samples.secrets_report,
    "interrupted": samples.interrupted_report,
    "cut-short": samples.cut_short_report,
}


def host_free(text: str) -> str:
    return text.replace(f'hostname="{socket.gethostname()}"', 'hostname="HOST"')


def stable(text: str) -> str:
    """The hostile sample holds an `object()`, whose repr names its address."""
    return re.sub(r"object at 0x[0-9a-f]+", "object at 0xADDRESS", text)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_format_of_a_fixed_report(name: str) -> None:
    report = SAMPLES[name]()
    assert_golden(f"samples/{name}.console.txt", console.render(report, color=False))
    assert_golden(f"samples/{name}.console-color.txt", console.render(report, color=True))
    assert_golden(f"samples/{name}.junit.xml", stable(host_free(to_xml(report))))
    assert_golden(f"samples/{name}.json", stable(to_json(report)))
    assert_golden(f"samples/{name}.gitlab.txt", gitlab.render_sections(report, color=False))
    assert_golden(f"samples/{name}.github.txt", github.render_groups(report, color=False))
    annotations = github.error_annotations(report, workspace="/work")
    assert_golden(f"samples/{name}.annotations.txt", "".join(a + "\n" for a in annotations))
    assert_golden(f"samples/{name}.summary.md", github.step_summary(report))


# --- a real run of lab servers -------------------------------------------------------------------

BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"
CLIENT = lab.generate_ed25519()


def lab_servers(stack: ExitStack, tmp: Path) -> list[str]:
    """Start the servers and return checks.yaml target lines, one way of failing each."""
    key_text = lab.private_key_text(CLIENT)
    sftp = stack.enter_context(
        lab.SFTPServer(
            users={"operator": "right"},
            authorized_keys={"deploy": [CLIENT]},
            unlistable=["/private"],
        )
    )

    def server(make: Any) -> int:
        return int(stack.enter_context(make).port)

    other = lab.generate_ed25519()
    known = tmp / "known_hosts"
    line = sftp.known_hosts_line()
    known.write_text(f"{line.rsplit(' ', 2)[0]} {other.get_name()} {other.get_base64()}\n")
    revoked = tmp / "revoked_hosts"
    revoked.write_text(f"@revoked {line}\n")
    wrong_passphrase = tmp / "id_encrypted"
    wrong_passphrase.write_text(lab.private_key_text(CLIENT, passphrase="right"))
    wrong_passphrase.chmod(0o600)
    key_file = tmp / "id_ed25519"
    key_file.write_text(key_text)
    key_file.chmod(0o600)
    key = f"auth: {{key: {key_file}}}"
    pinned = f"host_key: {{known_hosts: null, fingerprints: ['{sftp.fingerprint}']}}"

    def on(port: int, name: str, extra: str = "") -> str:
        return f"  - {{name: {name}, host: 127.0.0.1, port: {port}{', ' + extra if extra else ''}}}"

    s = sftp.port
    return [
        on(server(lab.RefusedPort()), "refused"),
        on(server(lab.DroppingPort()), "dropped"),
        on(server(lab.Tarpit()), "tarpit"),
        on(server(lab.Greeter(b"SSH-2.0-Op")), "partial-banner"),  # a trickle, held still
        on(server(lab.CloseOnAccept()), "closed"),
        on(server(lab.CloseOnAccept(reset=True)), "reset"),
        on(server(lab.Greeter(b"HTTP/1.1 400 Bad Request\r\n\r\n", then="close")), "http"),
        on(server(lab.Greeter(b"Exceeded MaxStartups\r\n", then="close")), "maxstartups"),
        on(server(lab.Greeter(b"Welcome\r\nplease wait\r\n")), "chatter"),
        on(server(lab.Greeter(b"SSH-2.0-Open\x00SSH\r\n")), "nul-banner"),
        on(server(lab.Greeter(b"SSH-2.0-Open\xff\xfeSSH\r\n")), "utf8-banner"),
        on(server(lab.Greeter(b"SSH-1.5-Ancient\r\n")), "ssh1"),
        on(server(lab.KexStall()), "kex-stall"),
        on(server(lab.KexStall(then="close")), "kex-close"),
        on(s, "healthy", f"{key}, {pinned}, sftp: {{path: upload}}"),
        on(s, "wrong-password", f"user: operator, auth: {{password: '${{PW}}'}}, {pinned}"),
        on(s, "no-credentials", f"auth: null, {pinned}"),
        on(
            s,
            "bad-passphrase",
            f"auth: {{key: {wrong_passphrase}, passphrase: '${{PP}}'}}, {pinned}",
        ),
        on(s, "unknown-host-key", f"{key}, host_key: {{known_hosts: {tmp / 'empty'}}}"),
        on(s, "changed-host-key", f"{key}, host_key: {{known_hosts: {known}}}"),
        on(s, "revoked-host-key", f"{key}, host_key: {{known_hosts: {revoked}}}"),
        on(s, "not-found", f"{key}, {pinned}, sftp: {{path: /no/such}}"),
        on(s, "not-a-directory", f"{key}, {pinned}, sftp: {{path: /hello.txt}}"),
        on(s, "permission-denied", f"{key}, {pinned}, sftp: {{path: /private}}"),
        on(
            server(lab.SFTPServer(authorized_keys={"deploy": [CLIENT]}, stall="auth")),
            "auth-stall",
            f"{key}, host_key: {{policy: 'off'}}",
        ),
        on(
            server(lab.SFTPServer(authorized_keys={"deploy": [CLIENT]}, stall="subsystem")),
            "subsystem-stall",
            f"{key}, host_key: {{policy: 'off'}}",
        ),
        on(
            server(lab.SFTPServer(authorized_keys={"deploy": [CLIENT]}, stall="listdir")),
            "listdir-stall",
            f"{key}, host_key: {{policy: 'off'}}",
        ),
        on(server(lab.Tarpit()), "cut-by-deadline", "timeouts: {banner: 5}, deadline: 1.5"),
        on(server(lab.Greeter(BANNER)), "port-check", "stages: [dns, tcp, banner]"),
    ]


def normalise(text: str, ports: list[int], tmp: Path) -> str:
    """Replace what differs from run to run. Keys and numbers first: a port's digits may
    appear inside a fingerprint or a duration, and must not be taken for the port there; so may
    a short host name (this machine's is `vm`), and a key with it replaced is no longer matched."""
    text = re.sub(r"SHA256:[A-Za-z0-9+/]{43}", "SHA256:FP", text)
    text = re.sub(r"AAAA[A-Za-z0-9+/]{20,}={0,2}", "AAAA…", text)
    text = text.replace(str(tmp), "TMP")
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        text = re.sub(rf"{re.escape(home)}(?=/)", "HOME", text)  # the process's: ~ is expanded
    text = text.replace(socket.gethostname(), "HOST")
    text = re.sub(r"paramiko_[\d.]+", "paramiko_V", text)
    # A duration and the padding after it, whose width depends on the duration's size.
    text = re.sub(r"\d+\.\d+s\b( +(?=\S))?", lambda m: "N.NNs" + (" " if m[1] else ""), text)
    text = re.sub(r"in \d+ ms", "in N ms", text)
    text = re.sub(r"(section_(?:start|end)):\d+", r"\1:T", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TIME", text)
    text = re.sub(
        r'(time|duration_s|seconds|ms|min|median|p95|max)(=|": )"?[\d.]+"?', r"\1\2N", text
    )
    # The same facts in a JUnit body ("small_packets.seconds: 3.013"); segment sizes are the
    # kernel's (loopback's MTU, TCP timestamps).
    text = re.sub(r"^(\S+\.seconds): [\d.]+$", r"\1: N", text, flags=re.MULTILINE)
    text = re.sub(r'\b((?:first_)?(?:mss|packet_bytes))(": |: )\d+', r"\1\2N", text)
    for port in sorted(ports, key=lambda p: -len(str(p))):
        text = re.sub(rf"(?<![\d.]){port}(?![\d.])", "PORT", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:LOCAL", text)  # what is left: local ports
    return text


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("golden")
    (tmp / "empty").write_text("")
    outputs: dict[str, str] = {}
    with ExitStack() as stack:
        targets = lab_servers(stack, tmp)
        ports = [int(m) for m in re.findall(r"port: (\d+)", "\n".join(targets))]
        config = tmp / "checks.yaml"
        config.write_text(
            "version: 1\ndefaults:\n"
            "  timeouts: {dns: 2, tcp: 1, banner: 1, auth: 2, sftp: 2}\n"
            "  user: deploy\n"
            "targets:\n" + "\n".join(targets) + "\n"
        )
        secrets = {"PW": "Pw-golden-1", "PP": "Pp-golden-2"}  # found in no other text
        ci = {
            "plain": {},
            "gitlab": {
                "GITLAB_CI": "true",
                "CI_JOB_URL": "https://gitlab.example.com/-/jobs/1",
                "CI_RUNNER_DESCRIPTION": "runner-7",
            },
            "github": {
                "GITHUB_ACTIONS": "true",
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_REPOSITORY": "acme/deploy",
                "GITHUB_RUN_ID": "42",
                "GITHUB_WORKSPACE": str(tmp),
                "RUNNER_NAME": "fv-az123-4",
                "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
            },
        }
        for name, environ in ci.items():
            junit, report = tmp / f"{name}.xml", tmp / f"{name}.json"
            out, err = io.StringIO(), io.StringIO()
            argv = ["check", "-c", str(config), "--junit", str(junit), "--json", str(report)]
            status = cli.run(
                [*argv, "--color", "never"],
                stdout=out,
                stderr=err,
                environ={**secrets, "HOME": str(tmp), **environ},
            )
            assert status == 1 and err.getvalue() == "", err.getvalue()
            outputs[f"{name}.console.txt"] = normalise(out.getvalue(), ports, tmp)
            outputs[f"{name}.junit.xml"] = normalise(junit.read_text(), ports, tmp)
            outputs[f"{name}.json"] = normalise(report.read_text(), ports, tmp)
        outputs["github.summary.md"] = normalise((tmp / "summary.md").read_text(), ports, tmp)
    yield outputs


@pytest.mark.parametrize(
    "name",
    [
        f"{ci}.{kind}"
        for ci in ("plain", "gitlab", "github")
        for kind in ("console.txt", "junit.xml", "json")
    ]
    + ["github.summary.md"],
)
def test_every_format_of_a_real_run(lab_run: dict[str, str], name: str) -> None:
    assert_golden(f"run/{name}", lab_run[name])
