"""Hand-built `Report`s for the report-format tests (console, JUnit, JSON).

Each builder returns a fresh object made only from `preflight.model` types, so the report tests
do not depend on the runner or the network: a target that passes every stage, one whose tcp stage
timed out (later stages skipped), one with a hostile banner and name, one carrying credentials,
and an interrupted run.
"""

from __future__ import annotations

from datetime import UTC, datetime

from preflight.diagnose import cut_short
from preflight.model import (
    AuthConfig,
    Diagnosis,
    Report,
    Secret,
    Stage,
    StageResult,
    Status,
    Target,
    TargetResult,
)
from preflight.phases import At, Phase

STARTED_AT = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)

PASSWORD = "hunter2-correct-horse"
KEY_TEXT = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDm7VzCsq3iCn1M8kqVw9x0secretkeymaterialAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)

# Everything a hostile server (or a broken one) can put in a banner.
HOSTILE_BYTES = b"SSH-2.0-Evil\xff\xfe\xc3( server"
HOSTILE = (
    "\x1b[31mRED\x1b[0m \x1b]0;pwned title\x07 nul\x00 bell\x07 "
    + HOSTILE_BYTES.decode("utf-8", errors="replace")
    + " ]]> <script>alert(1)</script> &amp; \"quotes\" 'apos' lone\ud800surrogate"
    + " \ufffe\uffff \x9b2J c1 \r\nsecond line\x1b[2J"
    + "A" * 65536
)

TCP_SUMMARY = "no answer to SYN from 203.0.113.7:2222 within 3.0s (packets silently dropped)"
TCP_HINT = "a firewall drops traffic to port 2222: ask for the runner's egress IP to be allowed"


def target(name: str = "sftp-prod", **changes: object) -> Target:
    fields: dict[str, object] = {
        "name": name,
        "host": "sftp.example.com",
        "port": 2222,
        "user": "ingest",
        "origin": "checks.yaml:12",
    }
    fields.update(changes)
    return Target(**fields)  # type: ignore[arg-type]


def passing_result(name: str = "sftp-prod") -> TargetResult:
    return TargetResult(
        target=target(name),
        duration_s=0.2345,
        stages=[
            StageResult(
                Stage.DNS,
                Status.PASS,
                0.0123,
                "sftp.example.com → 203.0.113.7",
                facts={"addresses": ["203.0.113.7"]},
            ),
            StageResult(
                Stage.TCP,
                Status.PASS,
                0.0311,
                "connected to 203.0.113.7:2222 from 198.51.100.5:40022",
                facts={"address": "203.0.113.7:2222", "local_address": "198.51.100.5:40022"},
            ),
            StageResult(
                Stage.BANNER,
                Status.PASS,
                0.0045,
                "SSH-2.0-OpenSSH_9.2p1 Debian-2",
                facts={"banner": "SSH-2.0-OpenSSH_9.2p1 Debian-2"},
            ),
            StageResult(
                Stage.AUTH,
                Status.PASS,
                0.1502,
                "publickey accepted for ingest",
                facts={"host_key": {"type": "ssh-ed25519", "fingerprint": "SHA256:abc123"}},
                warnings=["host key not verified (host_key.policy: off)"],
            ),
            StageResult(Stage.SFTP, Status.PASS, 0.0250, "listed /upload (3 entries)"),
        ],
    )


def tcp_timeout_result(name: str = "sftp-dr") -> TargetResult:
    return TargetResult(
        target=target(name, host="sftp-dr.example.com"),
        duration_s=3.0172,
        stages=[
            StageResult(Stage.DNS, Status.PASS, 0.0121, "sftp-dr.example.com → 203.0.113.7"),
            StageResult(
                Stage.TCP,
                Status.FAIL,
                3.0021,
                "",
                diagnosis=Diagnosis("tcp.timeout", TCP_SUMMARY, TCP_HINT),
                facts={
                    "addresses_tried": [
                        {"address": "203.0.113.7:2222", "result": "timeout", "seconds": 3.0},
                    ],
                    "timeout_s": 3.0,
                },
            ),
            StageResult(Stage.BANNER, Status.SKIP, 0.0, "tcp failed"),
            StageResult(Stage.AUTH, Status.SKIP, 0.0, "tcp failed"),
            StageResult(Stage.SFTP, Status.SKIP, 0.0, "tcp failed"),
        ],
    )


def passing_report() -> Report:
    return Report(targets=[passing_result()], started_at=STARTED_AT, duration_s=0.2401)


def failing_report() -> Report:
    """Two targets: one passes, one fails at tcp with `tcp.timeout`."""
    return Report(
        targets=[passing_result(), tcp_timeout_result()],
        started_at=STARTED_AT,
        duration_s=3.0213,
    )


def hostile_report() -> Report:
    """A target whose name, host, banner, facts and warnings carry hostile text."""
    result = TargetResult(
        target=target("evil\x1b[2J\x00name", host="evil\x1b]0;x\x07.example.com"),
        duration_s=0.5,
        stages=[
            StageResult(Stage.DNS, Status.PASS, 0.001, "resolved"),
            StageResult(Stage.TCP, Status.PASS, 0.002, "connected"),
            StageResult(
                Stage.BANNER,
                Status.FAIL,
                0.4,
                HOSTILE,
                diagnosis=Diagnosis("banner.not_ssh", "not SSH: " + HOSTILE, "hint " + HOSTILE),
                facts={
                    "banner": HOSTILE,
                    "raw": HOSTILE_BYTES,
                    HOSTILE[:40]: [HOSTILE, {"nested": HOSTILE}],
                    "object": object(),
                    "nan": float("nan"),
                },
                warnings=[HOSTILE],
            ),
            StageResult(Stage.AUTH, Status.SKIP, 0.0, "banner failed: " + HOSTILE),
            StageResult(Stage.SFTP, Status.SKIP, 0.0, "banner failed"),
        ],
    )
    return Report(targets=[result], started_at=STARTED_AT, duration_s=0.5)


def secrets_report() -> Report:
    """Credentials configured, and (wrongly) quoted in a message: they must not be written."""
    auth = AuthConfig(
        password=Secret(PASSWORD),
        key=Secret(KEY_TEXT),
        passphrase=Secret("open-sesame-phrase"),
        key_source="variable SSH_PRIVATE_KEY",
    )
    result = TargetResult(
        target=target(auth=auth),
        duration_s=0.3,
        stages=[
            StageResult(Stage.DNS, Status.PASS, 0.001, "resolved"),
            StageResult(Stage.TCP, Status.PASS, 0.002, "connected"),
            StageResult(Stage.BANNER, Status.PASS, 0.003, "SSH-2.0-OpenSSH_9.2"),
            StageResult(
                Stage.AUTH,
                Status.FAIL,
                0.2,
                f"tried password {PASSWORD}",
                diagnosis=Diagnosis(
                    "auth.denied",
                    f"the server rejected password {PASSWORD} for ingest",
                    "check the passphrase open-sesame-phrase",
                ),
                facts={"key": KEY_TEXT, "key_line": KEY_TEXT.splitlines()[1]},
                warnings=[f"password was {PASSWORD}"],
            ),
            StageResult(Stage.SFTP, Status.SKIP, 0.0, "auth failed"),
        ],
    )
    return Report(targets=[result], started_at=STARTED_AT, duration_s=0.3)


def interrupted_report() -> Report:
    """Ctrl-C during the second target: its tcp stage never reported, the rest never ran."""
    unfinished = TargetResult(
        target=target("sftp-dr", stages=(Stage.DNS, Stage.TCP, Stage.BANNER)),
        duration_s=1.2,
        interrupted=True,
        stages=[StageResult(Stage.DNS, Status.PASS, 0.01, "sftp.example.com → 203.0.113.7")],
    )
    return Report(
        targets=[passing_result(), unfinished],
        started_at=STARTED_AT,
        duration_s=1.25,
        interrupted=True,
    )


def cut_short_report() -> Report:
    """SIGTERM while the tcp stage was waiting: tcp is an error with its time, banner skipped."""
    result = TargetResult(
        target=target("sftp-dr", stages=(Stage.DNS, Stage.TCP, Stage.BANNER)),
        duration_s=1.2,
        interrupted=True,
        stages=[
            StageResult(Stage.DNS, Status.PASS, 0.01, "sftp.example.com → 203.0.113.7"),
            StageResult(
                Stage.TCP,
                Status.ERROR,
                1.19,
                cut_short(1.19, At(Phase.CONNECT)),  # the runner's own words, not a copy
                facts={"phase": str(At(Phase.CONNECT))},
            ),
            StageResult(Stage.BANNER, Status.SKIP, 0.0, "interrupted before this stage finished"),
        ],
    )
    return Report(targets=[result], started_at=STARTED_AT, duration_s=1.25, interrupted=True)


def duplicate_names_report() -> Report:
    """Two targets with the same name (config forbids it; the JUnit file must still be unique)."""
    return Report(
        targets=[passing_result("same"), tcp_timeout_result("same")],
        started_at=STARTED_AT,
        duration_s=3.3,
    )
