"""Which targets a run checks: from the config file, the TARGETs typed, `--only`, `--stages`,
`--timeout` and the shard, all as plain values (not the command line's parsed namespace).

A TARGET is a target's name in the file (`user@NAME` and `NAME:PORT` are that target with
another user or port), or else a host checked with the file's defaults (and what OpenSSH client
config says for it, as `ssh TARGET` would); a bare word one slip away from a name in the file is
refused as a typo rather than looked up. Without TARGETs every target of the file is checked.
A TARGET that is plainly a host (a dotted name, an address, `ssh://…`) does not need the file:
when ./checks.yaml cannot be used, a warning says so and the built-in defaults apply; `-c none`
reads no file at all. A selection that names what does not exist is a `UsageError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from preflight.status import UsageError

if TYPE_CHECKING:
    from preflight.config import ConfigError
    from preflight.model import Stage, Target
    from preflight.shard import Shard

__all__ = [
    "NO_FILE",
    "Selection",
    "UploadOptions",
    "a_typo_of",
    "config_path",
    "select",
    "shard_for",
]

NO_FILE = "none"  # `-c none`: no configuration file, only the TARGETs typed
TIMEOUT_ORIGIN = "--timeout"

# `[user@]NAME[:PORT]`: a target of the file, reached as another user or on another port.
_NAME_WITH = re.compile(
    # No ':' in the user: `user:password@NAME` is refused as a TARGET, with its reason.
    r"(?:(?P<user>[^@:\s/\[\]]+)@)?(?P<name>[^@:/\[\]\s]+)(?::(?P<port>\d{1,5}))?"
)


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
    # --timeout, in the order given (a later one wins): (stage, or None for every stage, seconds)
    timeouts: Sequence[tuple[Stage | None, float]] = ()
    upload: UploadOptions | None = None
    trace: bool = False  # --trace, for every target


@dataclass(frozen=True)
class UploadOptions:
    """--write, --write-size, --no-list, --min-free: the upload check for every target; None
    where the option was not given (the target's own setting stands)."""

    write: bool = False
    size: int | None = None  # bytes, from --write-size
    list_path: bool | None = None
    min_free: int | None = None

    @property
    def given(self) -> bool:
        return self.write or self.list_path is not None or self.min_free is not None


def config_path(given: str | None, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The config file to read, and whether the user named it (then it must exist)."""
    if given:
        return given, True
    if environ.get("PREFLIGHT_CONFIG"):
        return environ["PREFLIGHT_CONFIG"], True
    return "checks.yaml", False


def select(
    selection: Selection,
    environ: Mapping[str, str],
    warn: Callable[[str], object] | None = None,
) -> list[Target]:
    """The targets `selection` names, with every default merged in. `warn` hears what the user
    should know but that does not stop the run (a checks.yaml left unused)."""
    from dataclasses import replace

    from preflight import config

    path, named = config_path(selection.config, environ)
    loaded = None
    if named and path.strip().lower() == NO_FILE:
        if not selection.targets:
            raise UsageError(
                f"-c {NO_FILE} reads no file, so name what to check: preflight check HOST"
            )
    elif named or os.path.exists(path) or not selection.targets:
        if not named and not os.path.exists(path):
            raise UsageError(
                "no checks.yaml here and no TARGET given: pass -c FILE, set "
                "PREFLIGHT_CONFIG, or name a host (preflight check HOST)"
            )
        try:
            # -F applies OpenSSH client config to the file's targets too; without it, only
            # those with `ssh_config:` get it, so CI runs do not depend on a runner's ~/.ssh.
            loaded = config.load_config(path, environ, ssh_config=selection.ssh_config)
        except config.ConfigError as exc:
            dash_f = selection.ssh_config
            if not selection.targets or (
                dash_f is not None and exc.file in (dash_f, os.path.expanduser(dash_f))
            ):
                raise  # the file is needed, or the problem is the -F file typed here
            if named:
                # Named, with TARGETs: say how to check them without it. By $PREFLIGHT_CONFIG,
                # maybe set long ago in a shell profile, say where from; by -c, note that
                # `-c /dev/null` is an empty file, not none.
                way_out = (
                    f"the file $PREFLIGHT_CONFIG names; -c {NO_FILE} checks the TARGETs without it"
                    if selection.config is None
                    else f"-c {NO_FILE} checks the TARGETs without a file"
                )
                raise config.ConfigError(exc.file, exc.line, f"{exc.message} ({way_out})") from None
            _go_on_without_the_file(exc, selection.targets, warn)
    defaults = loaded.defaults if loaded else config.builtin_defaults(environ)
    by_name = {t.name: t for t in loaded.targets} if loaded else {}
    if selection.targets:
        _refuse_option_values(selection, by_name)
        for spec in selection.targets:
            _refuse_a_misspelt_name(spec, by_name, path)
        # A TARGET typed here is what `ssh TARGET` would reach: OpenSSH client config applies.
        ssh = config.open_ssh_config(selection.ssh_config, environ)
        defaults_set = loaded.defaults_set if loaded else frozenset()
        targets = [
            _named_target(spec, by_name)
            or _with_file_defaults_said(
                config.target_from_spec(spec, defaults, ssh, defaults_set=defaults_set),
                defaults_set,
                path,
            )
            for spec in selection.targets
        ]
    else:
        targets = list(loaded.targets) if loaded else []
    if selection.only:
        known = {t.name for t in targets}
        for name in selection.only:
            if name not in known:
                raise UsageError(_not_selectable(name, known, selection.targets))
        targets = [t for t in targets if t.name in selection.only]
    if selection.stages:
        targets = [replace(t, stages=selection.stages) for t in targets]
    if selection.timeouts:
        targets = [_with_timeouts(t, selection.timeouts) for t in targets]
    if selection.trace:
        from preflight.model import SettingSource

        said = SettingSource("trace", "on", config.COMMAND_LINE)
        targets = [
            t if t.trace else replace(t, trace=True, sources=(*t.sources, said)) for t in targets
        ]
    if selection.upload is not None and selection.upload.given:
        from preflight.model import Stage

        if not any(Stage.SFTP in t.stages for t in targets):
            raise UsageError(
                "--write, --write-size, --no-list and --min-free are for the sftp stage, which "
                "no target checked here runs (see --stages and the targets' stages)"
            )
        targets = [_with_upload(t, selection.upload) for t in targets]
    return targets


def _with_upload(target: Target, options: UploadOptions) -> Target:
    """`target` with the upload options given on the command line, said in its settings."""
    from dataclasses import replace

    from preflight import units
    from preflight.config import COMMAND_LINE
    from preflight.model import UPLOAD_NOTE, SettingSource, WriteCheck

    changes: dict[str, object] = {}
    said: list[SettingSource] = []
    # --write alone keeps a size the target's own sftp.write asks for; --write-size sets one.
    if options.write and (options.size is not None or target.sftp_write is None):
        size = options.size
        changes["sftp_write"] = WriteCheck(size or len(UPLOAD_NOTE), sized=size is not None)
        shown = units.format_size(size) if size is not None else "a test file"
        said.append(SettingSource("sftp write", shown, COMMAND_LINE))
    if options.list_path is not None:
        changes["sftp_list"] = options.list_path
        said.append(SettingSource("sftp list", "off", COMMAND_LINE))
    if options.min_free is not None:
        changes["sftp_min_free"] = options.min_free
        shown = units.format_size(options.min_free)
        said.append(SettingSource("sftp min_free", shown, COMMAND_LINE))
    settings = {source.setting for source in said}
    sources = (*(s for s in target.sources if s.setting not in settings), *said)
    return replace(target, sources=sources, **changes)  # type: ignore[arg-type]


def _with_file_defaults_said(target: Target, defaults_set: frozenset[str], path: str) -> Target:
    """A host typed here takes the file's `defaults:`; the report says which, so that a user
    or a host key policy from a checks.yaml in the current directory is never a surprise."""
    from dataclasses import replace

    from preflight.model import SettingSource

    if not defaults_set or any(source.source.startswith(path) for source in target.sources):
        return target  # no defaults, or the settings already name the file's lines
    keys = ", ".join(sorted({key.split(".")[0] for key in defaults_set}))  # auth, not auth.key
    said = SettingSource("defaults", keys, f"{path}")
    return replace(target, sources=(*target.sources, said))


def _go_on_without_the_file(
    problem: ConfigError, specs: Sequence[str], warn: Callable[[str], object] | None
) -> None:
    """./checks.yaml (not named by the user) cannot be used, but TARGETs were typed: if each is
    plainly a host, the file is not needed; else one of them may be a target of that file."""
    from preflight.config import ConfigError

    maybe_names = [spec for spec in specs if not _plainly_a_host(spec)]
    if maybe_names:
        raise ConfigError(
            problem.file,
            problem.line,
            f"{problem.message} (needed: '{maybe_names[0]}' may name a target of this file; "
            f"-c {NO_FILE} checks the TARGETs without it, ssh://{maybe_names[0]} as a host)",
        )
    if warn is not None:
        warn(
            f"not using {problem.file} ({problem}); the TARGETs get the built-in defaults "
            f"(-c {NO_FILE}: no file, no warning)"
        )


def _plainly_a_host(spec: str) -> bool:
    """`ssh://x`, an IP address, a dotted name, localhost: never a target's name (those are
    bare words)."""
    if "://" in spec:
        return True
    found = _NAME_WITH.fullmatch(spec)
    return found is None or "." in found["name"] or found["name"] == "localhost"


def _named_target(spec: str, by_name: Mapping[str, Target]) -> Target | None:
    """The file's target that `spec` names: `NAME`, or `user@NAME`/`NAME:PORT`/`user@NAME:PORT`
    (that target as another user, on another port, as `ssh user@alias` would be)."""
    from dataclasses import replace

    from preflight.config import COMMAND_LINE
    from preflight.model import SettingSource

    if spec in by_name:
        return by_name[spec]
    found = _NAME_WITH.fullmatch(spec)
    if found is None or found["name"] not in by_name:
        return None
    target = by_name[found["name"]]
    port = int(found["port"]) if found["port"] else target.port
    if not 0 < port < 65536:
        return None  # not this target: target_from_spec says what is wrong with the port
    typed = {"user": found["user"], "port": found["port"] and str(port)}
    sources = [s for s in target.sources if not typed.get(s.setting)]
    sources += [SettingSource(key, value, COMMAND_LINE) for key, value in typed.items() if value]
    return replace(
        target,
        name=spec,  # `ops@sftp-prod` beside `sftp-prod` is another check: its own block
        user=found["user"] or target.user,
        port=port,
        sources=tuple(sources),
    )


def _with_timeouts(target: Target, given: Sequence[tuple[Stage | None, float]]) -> Target:
    """`target` with the --timeout values, which win over everything else, and say so."""
    from dataclasses import replace

    from preflight.model import ALL_STAGES, SettingSource, Stage

    seconds: dict[Stage, float] = {}
    for stage, value in given:
        for each in ALL_STAGES if stage is None else (stage,):
            seconds[each] = value
    timeouts = replace(target.timeouts, **{str(stage): value for stage, value in seconds.items()})
    names = {f"{stage} timeout" for stage in seconds}
    sources = [s for s in target.sources if s.setting not in names]
    sources += [
        SettingSource(f"{stage} timeout", f"{value:g}s", TIMEOUT_ORIGIN)
        for stage, value in seconds.items()
        if stage in target.stages  # said for the stages this run has, set for all
    ]
    deadline = target.deadline
    needed = sum(timeouts.for_stage(stage) for stage in target.stages)
    if needed > deadline:
        # The timeouts asked for here must not be cut off by a deadline the user never set
        # on this command line: the target's deadline grows to hold them, and says why.
        deadline = needed
        sources = [s for s in sources if s.setting != "deadline"]
        sources.append(
            SettingSource("deadline", f"{needed:g}s", f"{TIMEOUT_ORIGIN} (its stages' sum)")
        )
    jump = target.jump
    if Stage.TCP in seconds:
        # A jump host's own ConnectTimeout (ssh_config) gives way to the command line too.
        jump = tuple(replace(hop, tcp_timeout=None) for hop in jump)
        sources = [s for s in sources if not re.fullmatch(r"jump\d+ tcp timeout", s.setting)]
    return replace(target, timeouts=timeouts, deadline=deadline, sources=tuple(sources), jump=jump)


def _not_selectable(name: str, known: set[str], typed: Sequence[str]) -> str:
    import difflib

    hint = difflib.get_close_matches(name, sorted(known), n=1)
    also = f" (did you mean {hint[0]!r}?)" if hint else ""
    if typed:
        # `--only a b` once took b as a second name; now b is a TARGET, and a is not among them.
        return (
            f"--only {name}: not among the TARGETs given ({', '.join(typed)}){also}; --only "
            "takes one NAME, or several separated by commas (--only a,b)"
        )
    return f"--only {name}: no target of that name{also}"


def _refuse_a_misspelt_name(spec: str, names: Mapping[str, object], path: str) -> None:
    """A TARGET that is no target's name is checked as a host; but a bare word one slip of the
    keyboard away from a name in the file (also as `user@NAME`, `NAME:PORT`) is far more likely
    a typo of it than a host: say so rather than send a lookup for it. A dotted name, an
    address or `ssh://host` is always a host."""
    found = _NAME_WITH.fullmatch(spec)
    if spec in names or found is None or _plainly_a_host(spec) or found["name"] in names:
        return
    word = found["name"]
    start, end = found.span("name")
    for name in names:
        if a_typo_of(word, name):
            raise UsageError(
                f"'{spec}' is not a target in {path} (did you mean "
                f"'{spec[:start]}{name}{spec[end:]}'?); to check a host of that name, write it "
                f"as ssh://{spec}"
            )


def _refuse_option_values(selection: Selection, names: Mapping[str, object]) -> None:
    """`--stages dns tcp` and `--timeout tcp=10 banner=20` (spaces where commas belong) leave
    `tcp` and `banner=20` behind as TARGETs: say what was meant, from everything that was typed,
    rather than look them up."""
    from preflight.model import ALL_STAGES

    stages = [str(stage) for stage in ALL_STAGES]
    left = [spec for spec in selection.targets if spec not in names]
    stranded = [spec for spec in left if spec in stages]
    if stranded:
        given = [str(stage) for stage in selection.stages or ()]
        last = max(stages.index(stage) for stage in [*given, *stranded])
        raise UsageError(
            f"'{stranded[0]}' is a stage, not a host: --stages takes one stage or a list with "
            f"commas (--stages {','.join(stages[: last + 1])}); ssh://{stranded[0]} checks a host "
            "of that name"
        )
    pairs = [spec for spec in left if spec.partition("=")[1] and spec.partition("=")[0] in stages]
    if pairs:
        typed = [
            f"{stage}={_as_typed(seconds)}" if stage is not None else _as_typed(seconds)
            for stage, seconds in selection.timeouts
        ]
        raise UsageError(
            f"'{pairs[0]}' is not a host: --timeout takes STAGE=SECONDS pairs with commas "
            f"(--timeout {','.join([*typed, *pairs])})"
        )


def _as_typed(seconds: float) -> str:
    """Seconds as the user most likely typed them: `20`, `2.5`, every digit of `2.1234567`."""
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


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
