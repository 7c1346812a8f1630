"""`preflight demo`: start lab servers on loopback, check them for real, show every verdict.

The demo is both a tour and a self-test on a fresh machine: each lab server reproduces one
failure a CI job meets in the wild (a silently dropping firewall, a closed port, a tarpit, a web
server on the SSH port, a changed host key, wrong credentials, SFTP switched off) next to a
healthy SFTP server, and the run goes through the same runner and reports as `preflight check`.
It exits 0 when every target got the verdict it was built to produce, 1 otherwise.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import TextIO

from preflight.model import ALL_STAGES, AuthConfig, HostKeyConfig, Secret, Target, Timeouts

DEMO_TIMEOUTS = Timeouts(dns=2, tcp=2, banner=2, auth=4, sftp=4)
DEMO_DEADLINE = 10.0


@dataclass(frozen=True)
class DemoCase:
    target: Target
    expected: str | None  # the diagnosis code the lab server is built to produce; None = pass


def _target(name: str, port: int, **changes: object) -> Target:
    fields: dict[str, object] = {
        "name": name,
        "host": "127.0.0.1",
        "port": port,
        "user": "deploy",
        "stages": ALL_STAGES,
        "timeouts": DEMO_TIMEOUTS,
        "deadline": DEMO_DEADLINE,
        "host_key": HostKeyConfig(known_hosts=None, policy="strict"),
    }
    fields.update(changes)
    return Target(**fields)  # type: ignore[arg-type]


def start_lab(stack: ExitStack) -> list[DemoCase]:
    """Start the demo's servers (closed by `stack`) and return the targets that probe them."""
    from preflight import lab

    client_key = lab.generate_ed25519()
    key_text = lab.private_key_text(client_key)
    sftp = stack.enter_context(
        lab.SFTPServer(
            users={"operator": "correct horse"}, authorized_keys={"deploy": [client_key]}
        )
    )
    no_sftp = stack.enter_context(
        lab.SFTPServer(authorized_keys={"deploy": [client_key]}, subsystem=False)
    )
    dropping = stack.enter_context(lab.DroppingPort())
    refused = stack.enter_context(lab.RefusedPort())
    tarpit = stack.enter_context(lab.Tarpit())
    web = stack.enter_context(
        lab.Greeter(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n", then="close")
    )

    with_key = AuthConfig(key=Secret(key_text), key_source="variable DEMO_PRIVATE_KEY")
    pinned = HostKeyConfig(known_hosts=None, fingerprints=(sftp.fingerprint,))
    other_key = lab.generate_ed25519()
    stale_known_hosts = HostKeyConfig(
        known_hosts=f"[127.0.0.1]:{sftp.port} {other_key.get_name()} {other_key.get_base64()}\n"
    )
    return [
        DemoCase(
            _target("sftp-healthy", sftp.port, auth=with_key, host_key=pinned, sftp_path="upload"),
            None,
        ),
        DemoCase(
            _target(
                "sftp-wrong-password",
                sftp.port,
                user="operator",
                host_key=pinned,
                auth=AuthConfig(password=Secret("not the password")),
            ),
            "auth.denied",
        ),
        DemoCase(
            _target("host-key-changed", sftp.port, auth=with_key, host_key=stale_known_hosts),
            "auth.host_key_mismatch",
        ),
        DemoCase(
            _target(
                "sftp-switched-off",
                no_sftp.port,
                auth=with_key,
                host_key=HostKeyConfig(known_hosts=None, fingerprints=(no_sftp.fingerprint,)),
            ),
            "sftp.unavailable",
        ),
        DemoCase(_target("firewall-drop", dropping.port), "tcp.timeout"),
        DemoCase(_target("port-closed", refused.port), "tcp.refused"),
        DemoCase(_target("tarpit", tarpit.port), "banner.timeout"),
        DemoCase(_target("web-server-on-ssh-port", web.port), "banner.not_ssh"),
    ]


def run_demo(
    stdout: TextIO, *, junit_path: str | None, color: bool, width: int | None = None
) -> int:
    from preflight import program
    from preflight.report import outputs

    stdout.write(
        "preflight demo: starting lab servers on 127.0.0.1 and checking them "
        f"(tcp/banner timeouts {DEMO_TIMEOUTS.tcp:g}s, auth/sftp "
        f"{DEMO_TIMEOUTS.auth:g}s)\n\n"
    )
    stdout.flush()
    with program.Signals().caught() as signals:
        with ExitStack() as stack:
            cases = start_lab(stack)
            settings = program.Settings(deadline=DEMO_DEADLINE * 2)
            report = program.run([c.target for c in cases], settings, signals)
        problems = outputs.write(
            report, outputs.Outputs(stdout=stdout, color=color, junit=junit_path, width=width)
        )
    for problem in problems:
        stdout.write(f"demo: {problem}\n")
    if signals.first is not None or report.interrupted:
        return 130
    got = {
        t.target.name: (t.failure.diagnosis.code if t.failure and t.failure.diagnosis else None)
        for t in report.targets
    }
    wrong = [
        (c.target.name, c.expected, got.get(c.target.name))
        for c in cases
        if got.get(c.target.name) != c.expected
    ]
    stdout.write("\n")
    for name, expected, actual in wrong:
        stdout.write(
            f"demo: {name} was built to give {expected or 'pass'} but gave {actual or 'pass'}\n"
        )
    if junit_path:
        stdout.write(f"JUnit report: {junit_path}\n")
    if wrong or problems:
        return 1
    stdout.write(
        f"demo: all {len(cases)} targets gave the verdict their lab server was built to produce.\n"
    )
    return 0
