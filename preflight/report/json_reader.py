"""Read a JSON report (``--json``, version 1) back into a `model.Report`: the inverse of
`json_report`.

``preflight merge`` needs the shards' reports as `Report`s again so that one console, JUnit and
JSON report can be written from them with the usual writers. Everything the JSON holds comes back:
the run, each target's identity and verdict, each stage's status, duration, detail, diagnosis,
facts (including the ``vantage`` fact) and warnings, so ``to_dict(from_dict(d)) == d`` for any
document `json_report.to_dict` wrote. What the JSON never held stays out: timeouts, deadlines and
credentials. The configured kinds of credentials (``auth_methods_configured``) are restored as
opaque placeholders that only make the list come out the same. A document that is not a version 1
report raises `ReportFormatError` naming the offending key (``targets[2].stages[0].status``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from preflight.model import (
    AuthConfig,
    Diagnosis,
    Hop,
    Report,
    Secret,
    SettingSource,
    Stage,
    StageResult,
    Status,
    Target,
    TargetResult,
)
from preflight.report.json_report import SCHEMA_VERSION

__all__ = ["ReportFormatError", "from_dict", "read_json"]

# Stands in for a credential the original run had configured; it is not one, and a NUL can never
# survive `sanitize.clean_text`, so redacting it (report_secrets) cannot touch any real text.
_PLACEHOLDER = "\x00credential configured in the original run\x00"


class ReportFormatError(ValueError):
    """The document is not a preflight JSON report this version can read."""


def read_json(path: str | os.PathLike[str]) -> Report:
    """Read the JSON report at `path`. Raises `OSError` or `ReportFormatError`."""
    with open(path, encoding="utf-8") as handle:
        try:
            data = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ReportFormatError(f"not JSON: {exc}") from None
    return from_dict(data)


def from_dict(data: Any) -> Report:
    """The `Report` a version 1 JSON document describes."""
    top = _Reader(data, "")
    version = top.get("version", int)
    if version != SCHEMA_VERSION:
        raise ReportFormatError(
            f"version {version} is not supported (this preflight reads version {SCHEMA_VERSION})"
        )
    return Report(
        targets=[_target(item) for item in top.objects("targets")],
        started_at=_moment(top.get("started_at", str), top.where("started_at")),
        duration_s=_seconds(top.optional("duration_s", float)),
        interrupted=bool(top.optional("interrupted", bool)),
        vantage=_vantage(top),
    )


def _vantage(top: _Reader) -> dict[str, str] | None:
    """The run's vantage point; None in a report from before it was recorded."""
    found = top.optional("vantage", dict)
    if found is None:
        return None
    # Only text is known to mean anything here; a key a later version adds is left out.
    return {key: value for key, value in found.items() if isinstance(value, str)}


def _target(reader: _Reader) -> TargetResult:
    stages = [_stage(item) for item in reader.objects("stages")]
    methods = set(reader.values("auth_methods_configured", required=False))
    placeholder = Secret(_PLACEHOLDER)
    auth = AuthConfig(
        password=placeholder if "password" in methods else None,
        key=placeholder if "key" in methods else None,
        agent="agent" in methods,
        key_source="variable (not kept in the report)" if "key" in methods else None,
    )
    notes = reader.values("config_notes", required=False)
    if not all(isinstance(note, str) for note in notes):
        raise ReportFormatError(f"{reader.where('config_notes')}: expected a list of strings")
    target = Target(
        name=reader.get("name", str),
        host=reader.get("host", str),
        port=reader.get("port", int),
        user=reader.optional("user", str),
        stages=tuple(dict.fromkeys(result.stage for result in stages if not result.hop)),
        auth=auth,
        origin=reader.optional("origin", str),
        jump=tuple(_hop(item) for item in reader.objects_or_none("jump")),
        sources=tuple(
            SettingSource(
                setting=item.get("setting", str),
                value=item.get("value", str),
                source=item.get("source", str),
            )
            for item in reader.objects_or_none("config_sources")
        ),
        config_notes=tuple(notes),
    )
    return TargetResult(
        target=target,
        stages=stages,
        duration_s=_seconds(reader.optional("duration_s", float)),
        interrupted=bool(reader.optional("interrupted", bool)),
        attempts=reader.optional("attempts", int) or 1,
        flaky=bool(reader.optional("flaky", bool)),
    )


def _hop(reader: _Reader) -> Hop:
    """A jump host as the report describes it (its credentials are not in the report)."""
    return Hop(
        host=reader.get("host", str),
        port=reader.get("port", int),
        user=reader.optional("user", str),
        origin=reader.optional("origin", str),
    )


def _stage(reader: _Reader) -> StageResult:
    diagnosis = None
    found = reader.optional("diagnosis", dict)
    if found is not None:
        inner = _Reader(found, reader.where("diagnosis"))
        diagnosis = Diagnosis(
            code=inner.get("code", str),
            summary=inner.get("summary", str),
            hint=inner.get("hint", str),
        )
    facts = reader.optional("facts", dict) or {}
    warnings = reader.values("warnings", required=False)
    if not all(isinstance(w, str) for w in warnings):
        raise ReportFormatError(f"{reader.where('warnings')}: expected a list of strings")
    hop = reader.optional("hop", dict)
    return StageResult(
        stage=reader.choice("stage", Stage),
        status=reader.choice("status", Status),
        duration_s=_seconds(reader.optional("duration_s", float)),
        detail=reader.optional("detail", str) or "",
        diagnosis=diagnosis,
        facts=dict(facts),
        warnings=list(warnings),
        hop=_Reader(hop, reader.where("hop")).get("index", int) if hop is not None else 0,
    )


class _Reader:
    """Typed access to one JSON object, with the key path for error messages."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise ReportFormatError(f"{path or 'the document'}: expected an object")
        self.value: dict[str, Any] = value
        self.path = path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type[Any]) -> Any:
        if key not in self.value:
            raise ReportFormatError(f"{self.where(key)}: missing")
        found = self.optional(key, kind)
        if found is None:
            raise ReportFormatError(f"{self.where(key)}: must not be null")
        return found

    def optional(self, key: str, kind: type[Any]) -> Any:
        found = self.value.get(key)
        if found is None:
            return None
        is_number = isinstance(found, int | float) and not isinstance(found, bool)
        if kind is float and is_number:
            return float(found)
        if not isinstance(found, kind) or (kind is int and not is_number):
            raise ReportFormatError(
                f"{self.where(key)}: expected {_KIND_NAMES.get(kind, kind.__name__)}, "
                f"got {json.dumps(found)[:80]}"
            )
        return found

    def choice(self, key: str, kind: type[Stage] | type[Status]) -> Any:
        text = self.get(key, str)
        try:
            return kind(text)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise ReportFormatError(
                f"{self.where(key)}: expected one of {allowed}, got {text!r}"
            ) from None

    def objects(self, key: str) -> list[_Reader]:
        """The list at `key`, every element an object."""
        return [_Reader(item, f"{self.where(key)}[{n}]") for n, item in enumerate(self.values(key))]

    def objects_or_none(self, key: str) -> list[_Reader]:
        """Like `objects`, but a missing key (a report from before the key existed) is empty."""
        items = self.values(key, required=False)
        return [_Reader(item, f"{self.where(key)}[{n}]") for n, item in enumerate(items)]

    def values(self, key: str, *, required: bool = True) -> list[Any]:
        found = self.value.get(key)
        if found is None and not required:
            return []
        if not isinstance(found, list):
            raise ReportFormatError(f"{self.where(key)}: expected a list")
        return found


_KIND_NAMES: Mapping[type[Any], str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    dict: "an object",
}


def _moment(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ReportFormatError(f"{where}: expected an ISO 8601 time, got {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _seconds(value: float | None) -> float:
    """JSON null stands for a duration that was not a finite number; keep it that way."""
    return math.nan if value is None else value
