"""The benchmark suite still runs: `python -m bench --quick` on a handful of targets.

Checks that it produces its table and its JSON, with every scenario present and every program
either measured or marked unavailable (asyncssh and netcat are optional; the sshd scenarios need
root and openssh-server). Timings are not checked: CI machines are too noisy for that; the bars
are judged by the full suite (`python -m bench`, see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = [
    "drop-1",
    "drop-many",
    "tarpit-many",
    "drop-fleet",
    "tarpit-fleet",
    "healthy-1",
    "healthy-many",
    "startup",
]


def test_quick_suite_prints_its_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--targets",
            "5",
            "--reps",
            "1",
            "--cap",
            "2",
            "--quiet",
            "--json",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    assert "| scenario | program | wall, median (range) |" in table
    assert "### Bars" in table
    assert "5 targets behind a silent DROP" in table
    assert "5 tarpits" in table
    assert "50 targets behind a silent DROP, tcp 1 s, with JUnit and JSON" in table  # a fleet

    document = json.loads(out.read_text())
    assert document["mode"] == "quick"
    assert document["table"].strip() == table.strip()
    assert [s["key"] for s in document["scenarios"]] == SCENARIOS
    assert document["bars"], "no bar was judged"
    for scenario in document["scenarios"]:
        if scenario["skipped"]:  # the sshd scenarios, without root or openssh-server
            assert scenario["key"].startswith("healthy"), scenario
            continue
        programs = {row["program"]: row for row in scenario["rows"]}
        assert any(name.startswith(("preflight", "python")) for name in programs), scenario
        for row in scenario["rows"]:
            assert row["unavailable"] or row["runs"], row
            for run in row["runs"]:
                assert run["wall_s"] > 0
                assert run["cpu_s"] >= 0
        preflight = next(r for r in scenario["rows"] if r["program"].startswith("preflight"))
        if scenario["key"] != "startup":
            # preflight's verdicts are right even on a noisy machine: every target as expected.
            verdicts = preflight["as_expected"]
            assert verdicts and verdicts[0] == verdicts[1], preflight
        if scenario["key"] in {"drop-many", "tarpit-many", "drop-fleet", "tarpit-fleet"}:
            # The floor (sockets and the event loop, nothing else) fails every target too.
            floor = programs["bare asyncio: connect and read, nothing else (the floor)"]
            assert floor["as_expected"] and floor["as_expected"][0] == floor["as_expected"][1]
    startup = next(s for s in document["scenarios"] if s["key"] == "startup")
    assert startup["paramiko_imported"] and not any(startup["paramiko_imported"].values())
