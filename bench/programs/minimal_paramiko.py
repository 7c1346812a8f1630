"""A minimal hand-written paramiko script doing exactly the five stages, and nothing else.

dns (`getaddrinfo`) → tcp (`create_connection` with the tcp timeout) → banner and key exchange
(`Transport.start_client` with `banner_timeout`) → host key check against known_hosts and
public-key auth → SFTP `listdir`. No diagnosis, no reports, no watchdog: the floor that preflight's
healthy path is compared with. Targets run one after another, or in a thread pool of
`concurrency` workers.
"""

from __future__ import annotations

import functools
import socket
from concurrent.futures import ThreadPoolExecutor

import _common
import paramiko


def main() -> None:
    job = _common.load_job()
    timeouts = job["timeouts"]
    login = job["login"]
    host_keys = paramiko.HostKeys(login["known_hosts_path"])
    key = paramiko.Ed25519Key.from_private_key_file(login["key_path"])

    def check(host: str, port: int) -> None:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeouts["tcp"])
        sock.connect(address)
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = timeouts["banner"]
            transport.start_client(timeout=timeouts["auth"])
            server_key = transport.get_remote_server_key()
            name = host if port == 22 else f"[{host}]:{port}"
            if not host_keys.check(name, server_key):
                raise paramiko.BadHostKeyException(name, server_key, server_key)
            transport.auth_publickey(login["user"], key)
            channel = transport.open_session(timeout=timeouts["sftp"])
            channel.settimeout(timeouts["sftp"])
            channel.invoke_subsystem("sftp")
            sftp = paramiko.SFTPClient(channel)
            sftp.listdir(login["sftp_path"])
            sftp.close()
        finally:
            transport.close()

    checks = [functools.partial(check, h, p) for h, p in job["targets"]]
    if job.get("concurrency"):
        with ThreadPoolExecutor(job["concurrency"]) as pool:
            results = list(pool.map(_common.timed, checks))
    else:
        results = [_common.timed(one) for one in checks]
    _common.emit(results)


if __name__ == "__main__":
    main()
