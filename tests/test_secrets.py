"""Secrets never leave preflight: every failing auth path, every output, every log line.

A recognisable password, passphrase and private key go through each way authentication can
fail (wrong password, method not allowed, wrong passphrase, missing passphrase, unloadable key,
key refused, a stalled server) in one `preflight check`; stdout, stderr, the JUnit and JSON
files and everything logged by preflight and paramiko at DEBUG level are scanned for them.
"""

from __future__ import annotations

import io
import logging
import textwrap

import pytest

from preflight import cli, lab

PASSWORD = "Pw-7f3a9c-UNIQUE-password"
PASSPHRASE = "Pp-51d0e2-UNIQUE-passphrase"
WRONG_PASSPHRASE = "Pp-9e77aa-UNIQUE-wrong"


def key_body_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("-----")]


@pytest.fixture
def captured_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("paramiko", "preflight")]
    saved = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield stream
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_no_secret_in_any_output_or_log(tmp_path, captured_logs, client_key):
    encrypted = lab.private_key_text(client_key, passphrase=PASSPHRASE)
    stranger = lab.private_key_text(lab.generate_rsa(2048))
    garbage = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "R2FyYmFnZS1VTklRVUUta2V5LXRleHQ=\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    )
    with (
        lab.SFTPServer(
            users={"operator": "the-real-one"}, authorized_keys={"deploy": [client_key]}
        ) as server,
        lab.SFTPServer(authorized_keys={"deploy": [client_key]}, stall="auth") as stalled,
    ):

        def target(name: str, auth: str, user: str = "deploy", port: int = server.port) -> str:
            return (
                f"  - {{name: {name}, host: 127.0.0.1, port: {port}, user: {user}, auth: {auth}}}"
            )

        config = tmp_path / "checks.yaml"
        config.write_text(
            textwrap.dedent(
                """\
                version: 1
                defaults:
                  timeouts: {tcp: 1, banner: 1, auth: 2, sftp: 2}
                  host_key: {policy: "off"}
                targets:
                """
            )
            + "\n".join(
                [
                    target("wrong-password", "{password: '${PW}'}", user="operator"),
                    target("password-not-allowed", "{password: '${PW}'}"),
                    target("wrong-passphrase", "{key: '${ENC_KEY}', passphrase: '${WRONG}'}"),
                    target("missing-passphrase", "{key: '${ENC_KEY}'}"),
                    target("unloadable-key", "{key: '${GARBAGE_KEY}'}"),
                    target("key-refused", "{key: '${STRANGER_KEY}'}"),
                    target("headerless-key-body", "{key: '${KEY_BODY}'}"),
                    target("key-path-in-variable", "{key: '${KEY_PATH}'}"),
                    target("stalled-auth", "{password: '${PW}'}", port=stalled.port),
                    target("right-passphrase", "{key: '${ENC_KEY}', passphrase: '${PP}'}"),
                ]
            )
            + "\n"
        )
        environ = {
            "PW": PASSWORD,
            "PP": PASSPHRASE,
            "WRONG": WRONG_PASSPHRASE,
            "ENC_KEY": encrypted,
            "GARBAGE_KEY": garbage,
            "STRANGER_KEY": stranger,
            "KEY_BODY": "".join(key_body_lines(stranger)),  # BEGIN/END lines lost in a paste
            "KEY_PATH": str(tmp_path / "Secret-Key-Path-Name"),
        }
        out, err = io.StringIO(), io.StringIO()
        junit, report = tmp_path / "r.xml", tmp_path / "r.json"
        argv = ["check", "-c", str(config), "--junit", str(junit), "--json", str(report)]
        status = cli.run(argv, stdout=out, stderr=err, environ=environ)

    outputs = {
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
        "junit": junit.read_text(),
        "json": report.read_text(),
        "logs": captured_logs.getvalue(),
    }
    assert status == 1
    assert "Authentication" in outputs["logs"]  # the logs were captured: the scan means something
    for code in ("auth.denied", "auth.method_not_allowed", "auth.bad_key", "auth.timeout"):
        assert code in outputs["stdout"]
    secrets = [PASSWORD, PASSPHRASE, WRONG_PASSPHRASE, "R2FyYmFnZS1VTklRVUUta2V5LXRleHQ="]
    secrets += key_body_lines(encrypted) + key_body_lines(stranger)
    for where, text in outputs.items():
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{where} contains a secret"
    # A key *path* held in a variable is no secret: the missing file is named, so it can be
    # found (and the printed ssh command uses it).
    assert f"{tmp_path / 'Secret-Key-Path-Name'} does not exist" in outputs["stdout"]
