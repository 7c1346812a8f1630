"""What `preflight validate` warns about: what a check of a valid file will not find.

A file can be valid and still doomed: a credential variable unset in this shell, a key file or a
known_hosts file that is not there, a key file that OpenSSH would refuse because others can read
it. None of these is a configuration error (a CI job sets its variables, a runner has its files),
so `validate` keeps its exit status and says them as warnings, each with what the check will
then report. Reads the file system, never the network.
"""

from __future__ import annotations

import os
import stat

from preflight import keytext
from preflight.model import SSH_STAGES, AuthConfig, HostKeyConfig, Target


def warnings(target: Target) -> list[str]:
    """The warnings for one target and its jump hosts, in the order a check would meet them."""
    if not any(stage in SSH_STAGES for stage in target.stages):
        return []
    found: list[str] = []
    for index, hop in enumerate(target.jump, start=1):
        where = f"jump host {index} ({hop.endpoint}): "
        found += [where + text for text in _credentials(hop.auth)]
        found += [where + text for text in _known_hosts(hop.host_key)]
    found += _credentials(target.auth)
    found += _known_hosts(target.host_key)
    return list(dict.fromkeys(found))


def _credentials(auth: AuthConfig) -> list[str]:
    found = []
    for variable in auth.unset:
        consequence = "" if auth.has_credentials else ": auth will fail with auth.no_credentials"
        found.append(f"${{{variable}}} is not set or empty in this environment{consequence}")
    path = key_path(auth)
    if path is not None:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            found.append(
                f"the key file {path} does not exist: auth will fail with auth.no_credentials"
            )
        except OSError as exc:
            found.append(f"the key file {path} cannot be read ({exc.strerror})")
        else:
            if stat.S_ISREG(mode) and mode & 0o077:
                found.append(open_key_warning(path, mode))
    return found


def open_key_warning(path: str, mode: int) -> str:
    """OpenSSH ignores a private key that others may read; paramiko uses it. A check can pass
    where `ssh -i` (and the printed commands) would not."""
    return (
        f"the key file {path} has mode {stat.S_IMODE(mode):04o}: OpenSSH refuses a private key "
        f"that others can read (chmod 600 {path}); preflight and paramiko use it anyway"
    )


def key_path(auth: AuthConfig) -> str | None:
    """The key's file when it is one (written in the file, or a path in a variable)."""
    if auth.key is None:
        return None
    value = auth.key.reveal()
    from_variable = not (auth.key_source or "").startswith("file ")
    if keytext.is_key_text(value, from_variable=from_variable):
        return None
    return os.path.expanduser(value.strip())


def _known_hosts(host_key: HostKeyConfig) -> list[str]:
    value = host_key.known_hosts
    if not value or host_key.policy != "strict" or host_key.fingerprints:
        return []
    if "\n" in value or " ssh-" in value or " ecdsa-" in value:  # the content itself
        return []
    path = os.path.expanduser(value)
    if os.path.exists(path):
        return []
    return [
        f"known_hosts {value} does not exist and nothing is pinned: auth will fail with "
        "auth.host_key_unknown (give the servers' keys: known_hosts lines or fingerprints)"
    ]
