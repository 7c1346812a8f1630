"""30 % random packet loss (nftables `numgen random`) between preflight and a real sshd.

Everything runs inside a network namespace: sshd on its loopback, a rule dropping a random 30 %
of the packets arriving on it, and `preflight check` as a process. TCP retransmits its way
through or not; whichever happens, the verdict must be a pass or a truthful timeout code, and
the process must end within the deadline — never a hang, never a misleading code.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRUTHFUL_UNDER_LOSS = {
    "tcp.timeout",
    "banner.timeout",
    "auth.kex_timeout",
    "auth.timeout",
    "sftp.timeout",
    "deadline.exceeded",
}


def test_random_loss_gives_a_pass_or_a_timeout_within_the_deadline(
    netns, sshd_factory, client_key, tmp_path
):
    server = sshd_factory(authorized_keys=[client_key[1]], netns=netns)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(server.known_hosts_lines()) + "\n")
    netns.add_nft_rules(
        "table inet loss {\n  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        "    numgen random mod 100 < 30 drop\n  }\n}\n"
    )
    targets = "\n".join(f"  - {{name: try-{i}, host: 127.0.0.1}}" for i in range(4))
    config = tmp_path / "checks.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            defaults:
              port: {server.port}
              user: root
              timeouts: {{tcp: 3, banner: 5, auth: 8, sftp: 8}}
              deadline: 15
              auth: {{key: {client_key[0]}}}
              host_key: {{known_hosts: {known_hosts}}}
            """
        )
        + f"targets:\n{targets}\n"
    )
    report_path = tmp_path / "report.json"
    argv = [
        sys.executable,
        "-m",
        "preflight",
        "check",
        "-c",
        str(config),
        "--json",
        str(report_path),
    ]
    started = time.monotonic()
    done = netns.run(argv, timeout=60, check=False, cwd=str(REPO))
    elapsed = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr
    assert elapsed < 15 + 3, f"the run took {elapsed:.1f}s"
    report = json.loads(report_path.read_text())
    for target in report["targets"]:
        failed = [s for s in target["stages"] if s["status"] == "fail"]
        if failed:
            assert failed[0]["diagnosis"]["code"] in TRUTHFUL_UNDER_LOSS, failed[0]
