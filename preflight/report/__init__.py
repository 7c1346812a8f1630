"""The report layer: one module per output format, all reading the same `model.Report`.

`console` is for people (a terminal or a CI log), `junit` for the CI system's test view (GitLab,
GitHub, Jenkins), `json_report` for scripts and dashboards. None of them decides anything: the
verdicts, codes and facts come from the runner. What they share lives here and in `sanitize`
(every string from a Report passes through `sanitize.clean_text` on its way out) and `files`
(reports are written atomically). This package does not import its format modules, so that
importing one format does not pay for the others (`junit_xml`, for one, is only loaded by
`junit`).
"""

from __future__ import annotations

import codecs
from datetime import UTC, datetime
from typing import TextIO

from preflight.model import Report, Stage, StageResult, Status, Target, TargetResult

__all__ = [
    "MARKS",
    "NOT_RUN",
    "auth_methods",
    "can_encode",
    "iso_utc",
    "report_secrets",
    "stage_results",
    "stream_encoding",
    "write_text",
]

NOT_RUN = "not run"
# The status marks of the console formats; a stream that cannot encode them gets ASCII ones.
MARKS = "✓✗–"


def stage_results(result: TargetResult, *, interrupted: bool = False) -> list[StageResult]:
    """The target's stage results in its configured stage order, one per configured stage.

    The runner reports every configured stage (a stage that did not run is a `skip` with its
    reason), but a report must not silently leave a stage out if a result is missing, e.g. after
    an interrupt: such a stage is filled in as a skip ("not run", or "not run: interrupted").
    Results for stages that were not configured are kept, after the configured ones. The stages
    of the target's jump hosts (`StageResult.hop` > 0) come first, hop by hop, as they ran.
    """
    rows = result.stages
    # Nearly always: one row per configured stage, each once, in order, no jump hosts (every
    # report of 10,000 targets asks this 10,000 times). What the general way gives then.
    stages = [row.stage for row in rows]
    distinct = len(set(stages)) == len(stages)
    if stages == list(result.target.stages) and distinct and not any(row.hop for row in rows):
        return list(rows)
    ordered: list[StageResult] = sorted((row for row in rows if row.hop), key=lambda row: row.hop)
    by_stage: dict[Stage, list[StageResult]] = {}
    for stage_result in result.stages:
        if not stage_result.hop:
            by_stage.setdefault(stage_result.stage, []).append(stage_result)
    interrupted = interrupted or result.interrupted
    for stage in dict.fromkeys(result.target.stages):
        found = by_stage.pop(stage, None)
        if found:
            ordered.extend(found)
        else:
            reason = f"{NOT_RUN}: interrupted" if interrupted else NOT_RUN
            ordered.append(StageResult(stage=stage, status=Status.SKIP, detail=reason))
    for leftover in by_stage.values():
        ordered.extend(leftover)
    return ordered


def iso_utc(moment: datetime, *, timespec: str = "seconds") -> str:
    """`moment` as ISO 8601 in UTC with a ``Z`` suffix; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=timespec)
    return text + "Z"


def auth_methods(target: Target) -> list[str]:
    """Which kinds of credentials the target has configured (names only, never values)."""
    auth = target.auth
    methods = []
    if auth.password:
        methods.append("password")
    if auth.key:
        methods.append("key")
    if auth.agent:
        methods.append("agent")
    return methods


def report_secrets(report: Report) -> list[str]:
    """Every credential value configured in `report`'s targets and their jump hosts, for
    `sanitize.clean_secrets`.

    A key file path written in checks.yaml (`key_source` "file …") is not a secret, and
    redacting it would hide which file is missing; anything that came from a variable is.
    """
    values: list[str] = []
    for result in report.targets:
        for auth in (result.target.auth, *(hop.auth for hop in result.target.jump)):
            for secret in (auth.password, auth.passphrase):
                if secret:
                    values.append(secret.reveal())
            if auth.key and not (auth.key_source or "").startswith("file "):
                values.append(auth.key.reveal())
    # Once each: a fleet shares one key, and every value of the report is searched for each.
    return list(dict.fromkeys(values))


def stream_encoding(stream: TextIO) -> str:
    """The encoding `stream` writes in; UTF-8 when it does not say or names an unknown one."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        return "utf-8"
    return str(encoding)


def can_encode(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def write_text(stream: TextIO, text: str) -> None:
    """Write and flush `text`, replacing what the stream's encoding cannot hold rather than
    raising `UnicodeEncodeError` halfway through a report."""
    encoding = stream_encoding(stream)
    stream.write(text.encode(encoding, errors="replace").decode(encoding, errors="replace"))
    stream.flush()
