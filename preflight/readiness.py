"""What `preflight validate` warns about: what a check of a valid file will not find.

A file can be valid and still doomed: a credential variable unset in this shell, a key file or a
known_hosts file that is not there, a key file that OpenSSH would refuse because others can read
it. None of these is a configuration error (a CI job sets its variables, a runner has its files),
so `validate` keeps its exit status and says them as warnings, each with what the check will
then report. `validation` is all that `validate` prints. Reads the file system, never the
network.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence

from preflight import keytext, units
from preflight.model import (
    SSH_STAGES,
    AuthConfig,
    HostKeyConfig,
    Stage,
    Target,
    endpoint,
    is_known_hosts_content,
)


def validation(path: str, targets: Sequence[Target]) -> Iterator[str]:
    """What `preflight validate` prints for a valid file: one line for the file, one per target,
    then the warnings. A warning shared by many targets is said once, with who it concerns."""
    yield f"{path}: OK, {len(targets)} target{'s' if len(targets) != 1 else ''}"
    for target in targets:
        stages = ",".join(target.stages)
        via = "".join(f" via {hop.endpoint}" for hop in target.jump)
        yield (
            f"  {target.name}: {endpoint(target.host, target.port)}{via} [{stages}] "
            f"deadline {target.deadline:g}s{_upload_settings(target)}"
        )
    concerned: dict[str, list[str]] = {}
    for target in targets:
        for warning in warnings(target):
            concerned.setdefault(warning, []).append(target.name)
    if concerned:
        yield "warnings (what a check here will not find):"
    for warning, names in concerned.items():
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        yield f"  ! {warning} ({', '.join(names[:3])}{more})"


def _upload_settings(target: Target) -> str:
    """`; sftp /upload: write 1.0 MiB, not listed, min_free 5.0 GiB`, when any is set."""
    said = []
    if target.sftp_write is not None:
        write = target.sftp_write
        said.append(f"write {units.format_size(write.size)}" if write.sized else "write")
    if not target.sftp_list:
        said.append("not listed")
    if target.sftp_min_free is not None:
        said.append(f"min_free {units.format_size(target.sftp_min_free)}")
    return f"; sftp {target.sftp_path}: {', '.join(said)}" if said else ""


def warnings(target: Target) -> list[str]:
    """The warnings for one target and its jump hosts, in the order a check would meet them."""
    found: list[str] = []
    upload_set = target.sftp_write is not None or target.sftp_min_free is not None
    if upload_set and Stage.SFTP not in target.stages:
        found.append(
            "sftp.write / sftp.min_free are set but the sftp stage does not run "
            f"(stages: [{', '.join(target.stages)}]): nothing will be uploaded or measured"
        )
    if not any(stage in SSH_STAGES for stage in target.stages):
        return found
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
    path = keytext.key_path(auth)
    if path is None:
        return found
    # Named by its path only where messages show it: a bare word from a variable may be a
    # secret put there by mistake.
    shown = keytext.shown_path(auth.key_source)
    named = f"the key file {shown}" if shown else f"the key file named by ${{{auth.key_variable}}}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        found.append(f"{named} does not exist: auth will fail with auth.no_credentials")
    except OSError as exc:
        found.append(f"{named} cannot be read ({exc.strerror})")
    else:
        if stat.S_ISREG(mode) and mode & 0o077:
            found.append(keytext.key_file_mode_warning(auth, mode))
    return found


def _known_hosts(host_key: HostKeyConfig) -> list[str]:
    value = host_key.known_hosts
    if not value or host_key.policy != "strict" or host_key.fingerprints:
        return []
    if is_known_hosts_content(value):
        return []
    path = os.path.expanduser(value)
    if os.path.exists(path):
        return []
    return [
        f"known_hosts {value} does not exist and nothing is pinned: auth will fail with "
        "auth.host_key_unknown (give the servers' keys: known_hosts lines or fingerprints)"
    ]
