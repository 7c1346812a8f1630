"""Property-based: no input makes preflight crash, hang or answer without a file and line.

Generated command lines and mutated checks.yaml files go through the real `cli.run`; the
outcome must always be 0, 1 or 2 — never 3 (an internal error) and never a traceback — and
every configuration error must start with `FILE:LINE: `. Generated host names are kept off the
network: the resolver is replaced by one that knows only loopback literals (tests may send
traffic nowhere else), so the tcp and banner stages still run for real against 127.0.0.x.
"""

from __future__ import annotations

import io
import ipaddress
import re
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from preflight import cli
from preflight.stages import dns

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = (REPO / "checks.yaml").read_text()


@pytest.fixture(autouse=True)
def loopback_only_resolver(monkeypatch):
    real_resolve = dns.resolve

    async def resolve(host, port, budget):
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        if not literal.is_loopback:
            raise socket.gaierror(socket.EAI_NONAME, "not a loopback address (test)")
        return await real_resolve(host, port, budget)

    monkeypatch.setattr(dns, "resolve", resolve)


def run(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.run(argv, stdout=out, stderr=err, environ=environ or {})
    return status, out.getvalue(), err.getvalue()


TOKENS = st.sampled_from(
    [
        "check",
        "validate",
        "demo",
        "-c",
        "--config",
        "--junit",
        "--json",
        "--deadline",
        "--jobs",
        "--only",
        "--stages",
        "--color",
        "--version",
        "--help",
        "dns",
        "dns,tcp",
        "dns,tcp,banner",
        "tcp,dns",
        "auto",
        "never",
        "0",
        "-1",
        "1",
        "0.5",
        "nan",
        "inf",
        "127.0.0.1",
        "127.0.0.1:1",
        "[::1]:1",
        "::1",
        "user@127.0.0.1:1",
        "sftp://u@127.0.0.1:1/x",
        "ssh://127.0.0.1:1",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "h\x00st",
        "name.invalid",
        "xn--bcher-kva.example",
        "bücher.example",
        "",
        " ",
        "--",
        "-",
        "=",
        "%s",
        "${X}",
    ]
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["check", "validate", "--color", ""]),
    st.lists(st.one_of(TOKENS, st.text(max_size=12)), max_size=6),
)
@example(command="check", rest=["-c", "h\x00st"])  # found by Hypothesis: open() raised
def test_any_command_line_exits_0_1_or_2_without_a_traceback(command, rest):
    # No --junit/--json (nothing is written into the repository) and no demo (tested elsewhere).
    argv = [command] + [a for a in rest if a not in ("--junit", "--json", "demo")]
    status, _, err = run([a for a in argv if a])
    assert status in (0, 1, 2), err
    assert "Traceback" not in err


def mutate(text: str, data: st.DataObject) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        if not text:
            break
        at = data.draw(st.integers(0, len(text) - 1))
        action = data.draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        piece = data.draw(
            st.sampled_from(
                [
                    ":",
                    "-",
                    " ",
                    "\n",
                    "{",
                    "[",
                    "'",
                    "&a",
                    "*a",
                    "0",
                    "${X}",
                    "\t",
                    "\x00",
                    "é",
                    "65536",
                    "null",
                ]
            )
        )
        if action == "delete":
            text = text[:at] + text[at + data.draw(st.integers(1, 20)) :]
        elif action == "insert":
            text = text[:at] + piece + text[at:]
        elif action == "replace":
            text = text[:at] + piece + text[at + 1 :]
        else:
            end = text.find("\n", at)
            line_start = text.rfind("\n", 0, at) + 1
            text = text[:end] + "\n" + text[line_start:end] + text[end:] if end > 0 else text
    return text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_config_is_valid_or_an_error_with_file_and_line(tmp_path, data):
    path = tmp_path / "checks.yaml"
    path.write_text(mutate(EXAMPLE, data), encoding="utf-8", errors="surrogatepass")
    status, _, err = run(["validate", "-c", str(path)])
    assert status in (0, 2), err
    if status == 2:
        assert re.match(rf"{re.escape(str(path))}:\d+: \S", err), err
        assert "Traceback" not in err
