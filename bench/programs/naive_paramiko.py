"""Naive paramiko: `paramiko.Transport((host, port))`, which has no timeout parameter at all.

This is the code that hangs for the kernel's SYN retry budget behind a silent DROP; the bench
kills it at its cap and reports "> cap".
"""

from __future__ import annotations

import functools

import _common
import paramiko


def main() -> None:
    job = _common.load_job()

    def check(host: str, port: int) -> None:
        transport = paramiko.Transport((host, port))
        try:
            transport.start_client()
        finally:
            transport.close()

    _common.emit([_common.timed(functools.partial(check, h, p)) for h, p in job["targets"]])


if __name__ == "__main__":
    main()
