"""Which targets a run checks: from the config file, the TARGETs typed, `--only`, `--stages`
and the shard, all as plain values (not the command line's parsed namespace).

A TARGET is a target's name in the file, or else a host checked with the file's defaults (and
what OpenSSH client config says for it, as `ssh TARGET` would); a bare word one slip away from a
name in the file is refused as a typo rather than looked up. Without TARGETs every target of the
file is checked. A selection that names what does not exist is a `UsageError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from preflight.status import UsageError

if TYPE_CHECKING:
    from preflight.model import Stage, Target
    from preflight.shard import Shard

__all__ = ["Selection", "a_typo_of", "config_path", "select", "shard_for"]


@dataclass(frozen=True)
class Selection:
    """What the user asked to check. `config`: the file named (-c), else $PREFLIGHT_CONFIG,
    else ./checks.yaml if it exists; `ssh_config`: -F FILE or "none" (None: ssh's own files for
    typed TARGETs, none for the file's targets unless they say so)."""

    config: str | None = None
    targets: Sequence[str] = ()
    only: Sequence[str] = ()
    stages: tuple[Stage, ...] | None = None
    ssh_config: str | None = None


def config_path(given: str | None, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The config file to read, and whether the user named it (then it must exist)."""
    if given:
        return given, True
    if environ.get("PREFLIGHT_CONFIG"):
        return environ["PREFLIGHT_CONFIG"], True
    return "checks.yaml", False


def select(selection: Selection, environ: Mapping[str, str]) -> list[Target]:
    """The targets `selection` names, with every default merged in."""
    import difflib
    from dataclasses import replace

    from preflight import config

    path, named = config_path(selection.config, environ)
    loaded = None
    if named or os.path.exists(path) or not selection.targets:
        if not named and not os.path.exists(path):
            raise UsageError(
                "no checks.yaml here and no TARGET given: pass -c FILE, set "
                "PREFLIGHT_CONFIG, or name a host (preflight check HOST)"
            )
        # -F applies OpenSSH client config to the file's targets too; without it, only those
        # with `ssh_config:` get it, so CI runs do not depend on a runner's ~/.ssh/config.
        loaded = config.load_config(path, environ, ssh_config=selection.ssh_config)
    defaults = loaded.defaults if loaded else config.builtin_defaults(environ)
    by_name = {t.name: t for t in loaded.targets} if loaded else {}
    if selection.targets:
        for spec in selection.targets:
            _refuse_a_misspelt_name(spec, by_name, path)
        # A TARGET typed here is what `ssh TARGET` would reach: OpenSSH client config applies.
        ssh = config.open_ssh_config(selection.ssh_config, environ)
        defaults_set = loaded.defaults_set if loaded else frozenset()
        targets = [
            by_name[spec]
            if spec in by_name
            else config.target_from_spec(spec, defaults, ssh, defaults_set=defaults_set)
            for spec in selection.targets
        ]
    else:
        targets = list(loaded.targets) if loaded else []
    if selection.only:
        known = {t.name for t in targets}
        for name in selection.only:
            if name not in known:
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                also = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise UsageError(f"--only {name}: no target of that name{also}")
        targets = [t for t in targets if t.name in selection.only]
    if selection.stages:
        targets = [replace(t, stages=selection.stages) for t in targets]
    return targets


def _refuse_a_misspelt_name(spec: str, names: Mapping[str, object], path: str) -> None:
    """A TARGET that is no target's name is checked as a host; but a bare word one slip of the
    keyboard away from a name in the file is far more likely a typo of it than a host: say so
    rather than send a lookup for it. `host:port`, `ssh://host` (or any form with `.`, `:`, `@`,
    `/`) is always a host."""
    if spec in names or any(mark in spec for mark in ".:@/[]"):
        return
    for name in names:
        if a_typo_of(spec, name):
            raise UsageError(
                f"'{spec}' is not a target in {path} (did you mean '{name}'?); "
                f"to check a host of that name, write it as ssh://{spec}"
            )


def a_typo_of(typed: str, name: str) -> bool:
    """One slip: a character added, dropped or changed, or two neighbours swapped. A different
    number is not a slip (`sftp2` next to `sftp1` is another host), nor is anything in a name
    too short to tell."""
    digits = [c for c in typed if c.isdigit()], [c for c in name if c.isdigit()]
    if len(name) < 4 or typed == name or digits[0] != digits[1]:
        return False
    if len(typed) == len(name):
        wrong = [i for i, (a, b) in enumerate(zip(typed, name, strict=True)) if a != b]
        return len(wrong) == 1 or (
            len(wrong) == 2
            and wrong[1] == wrong[0] + 1
            and (typed[wrong[0]], typed[wrong[1]]) == (name[wrong[1]], name[wrong[0]])
        )
    longer, shorter = (typed, name) if len(typed) > len(name) else (name, typed)
    if len(longer) - len(shorter) != 1:
        return False
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def shard_for(given: Shard | None, environ: Mapping[str, str]) -> Shard | None:
    """The shard to check: --shard, or under GitLab parallel the job's
    CI_NODE_INDEX/CI_NODE_TOTAL; None for all targets (a shard of 1 is all of them)."""
    from preflight.shard import ShardError, shard_from_environ

    if given is not None:
        return given if given.total > 1 else None
    try:
        shard = shard_from_environ(environ)
    except ShardError as exc:
        raise UsageError(str(exc)) from None
    return shard if shard is not None and shard.total > 1 else None
