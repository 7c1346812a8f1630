"""The lab the CI-integration tests check: one healthy SFTP server, one port whose SYNs are
dropped, one that refuses — the three answers a firewall team asks about — as a checks.yaml.

Everything is on 127.0.0.1 (DESIGN §9). The tcp timeout is 1 s, so the dropped target costs one
second per run; verdicts, not timings, are what the tests compare.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from preflight import lab

REPO = Path(__file__).resolve().parents[1]

EXPECTED = {"sftp-healthy": None, "firewall-drop": "tcp.timeout", "port-closed": "tcp.refused"}


@dataclass(frozen=True)
class Trio:
    config_text: str
    key_text: str

    @property
    def healthy_config_text(self) -> str:
        """The same file with the healthy target only: a run that passes."""
        return self.config_text.split("  - name: firewall-drop")[0]

    def write_config(self, path: Path, *, healthy_only: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.healthy_config_text if healthy_only else self.config_text)
        return path


@contextmanager
def trio() -> Iterator[Trio]:
    """Start the three servers; yield the checks.yaml text that targets them and the key."""
    with ExitStack() as stack:
        key = lab.generate_ed25519()
        sftp = stack.enter_context(lab.SFTPServer(authorized_keys={"deploy": [key]}))
        dropping = stack.enter_context(lab.DroppingPort())
        refused = stack.enter_context(lab.RefusedPort())
        config = textwrap.dedent(
            f"""\
            version: 1
            defaults:
              user: deploy
              timeouts: {{dns: 1, tcp: 1, banner: 2, auth: 4, sftp: 4}}
              auth:
                key: ${{SSH_PRIVATE_KEY}}
              host_key:
                known_hosts: null
                fingerprints: ["{sftp.fingerprint}"]
            targets:
              - name: sftp-healthy
                host: 127.0.0.1
                port: {sftp.port}
                sftp: {{path: upload}}
              - name: firewall-drop
                host: 127.0.0.1
                port: {dropping.port}
              - name: port-closed
                host: 127.0.0.1
                port: {refused.port}
            """
        )
        yield Trio(config, lab.private_key_text(key))


def tool_path(tmp_path: Path) -> str:
    """A PATH whose `preflight` and `python` run this checkout of preflight (not an installed
    copy): what `pip install` would have provided in the CI job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, command in (
        ("preflight", f'exec "{sys.executable}" -m preflight "$@"'),
        ("python", f'exec "{sys.executable}" "$@"'),
    ):
        shim = bin_dir / name
        shim.write_text(f"#!/bin/sh\n{command}\n")
        shim.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"


def base_environ(tmp_path: Path, key_text: str) -> dict[str, str]:
    """A clean environment for a simulated CI job: no CI variables from the machine running
    the tests, this checkout first on the import path, the lab key as SSH_PRIVATE_KEY."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {
        **keep,
        "PATH": tool_path(tmp_path),
        "PYTHONPATH": str(REPO),
        "SSH_PRIVATE_KEY": key_text,
        "NO_COLOR": "1",
    }
