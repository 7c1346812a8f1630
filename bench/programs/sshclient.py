"""paramiko `SSHClient.connect(timeout=, banner_timeout=, auth_timeout=)`: the blog-post fix.

One thread per target (`concurrency: null`, as a script that starts a thread per host would) or
a thread pool of `concurrency` workers. With `login`, it authenticates with the key, verifies the
host key against known_hosts (RejectPolicy) and lists the SFTP path, as the five stages do.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _common
import paramiko


def main() -> None:
    job = _common.load_job()
    timeouts = job["timeouts"]
    login = job.get("login")

    def check(host: str, port: int) -> None:
        client = paramiko.SSHClient()
        try:
            if login:
                client.load_host_keys(login["known_hosts_path"])
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            else:
                client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect(
                host,
                port,
                username=login["user"] if login else "bench",
                key_filename=login["key_path"] if login else None,
                timeout=timeouts["tcp"],
                banner_timeout=timeouts["banner"],
                auth_timeout=timeouts["auth"],
                channel_timeout=timeouts["sftp"],
                allow_agent=False,
                look_for_keys=False,
            )
            if login:
                sftp = client.open_sftp()
                channel = sftp.get_channel()
                if channel is not None:
                    channel.settimeout(timeouts["sftp"])
                sftp.listdir(login["sftp_path"])
                sftp.close()
        finally:
            client.close()

    targets = [(h, p) for h, p in job["targets"]]
    results: list[dict[str, Any]] = [{} for _ in targets]

    def one(i: int) -> None:
        host, port = targets[i]
        results[i] = _common.timed(lambda: check(host, port))

    if job.get("concurrency"):
        with ThreadPoolExecutor(job["concurrency"]) as pool:
            list(pool.map(one, range(len(targets))))
    else:
        threads = [
            threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(targets))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    _common.emit(results)


if __name__ == "__main__":
    main()
