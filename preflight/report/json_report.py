"""The JSON report (``--json``): the whole run as data, for scripts, dashboards and ``jq``.

The layout is DESIGN §7, version 1: the run (``ok``, ``started_at`` in UTC, ``duration_s``,
``interrupted``, and ``vantage``: where it ran — runner, CI job, shard —, null for a merged
report), then per target its identity and verdict, and per stage its status, duration,
one-line detail, diagnosis (``code``/``summary``/``hint``, or null) and the structured ``facts``
the stage gathered (addresses tried, banner, host key fingerprint, allowed auth methods…).
Durations are seconds rounded to milliseconds. Every string is cleaned with
`sanitize.clean_text` and facts are reduced to plain JSON types, so the document always
serialises; credentials never appear (only the names of the configured auth methods do).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

from preflight.model import Diagnosis, Hop, Report, StageResult, TargetResult
from preflight.report import auth_methods, iso_utc, report_secrets, stage_results
from preflight.report.files import write_atomically
from preflight.report.sanitize import Cleaner

__all__ = ["SCHEMA_VERSION", "to_dict", "to_json", "write_json"]

SCHEMA_VERSION = 1

_MAX_TEXT = 2000  # detail, summary, hint, a warning, one string fact
_MAX_SHORT = 500  # names, hosts, codes, keys
_MAX_DEPTH = 8  # nesting of facts; deeper values (or cycles) are written as text
_MAX_ITEMS = 1000  # elements of one list or mapping in facts


def to_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-compatible data (dicts, lists, str, int, float, bool, None)."""
    data, target = _document(report)
    data["targets"] = [target(result) for result in report.targets]
    return data


def _document(report: Report) -> tuple[dict[str, Any], Callable[[TargetResult], dict[str, Any]]]:
    """The report's own keys (all but ``targets``, which come last), and what makes the data of
    one target: `to_json` writes each target as soon as it is made, so that 10,000 targets'
    data never live at once (the cycle collector traversed them again and again as they grew,
    a fifth of the time of the report)."""
    cleaner = Cleaner(report_secrets(report))
    text = cleaner.kind(_MAX_TEXT, False)
    long_line = cleaner.kind(_MAX_TEXT, True)
    short_line = cleaner.kind(_MAX_SHORT, True)

    def key_text(key: Any) -> str:
        return short_line(key if type(key) is str else str(key))

    def fact(value: Any, depth: int = 0) -> Any:
        # The kinds nearly every fact is, first and by exact type (a subclass, a str enum say,
        # takes the general way below): at 10,000 targets this walk is most of the report.
        kind = type(value)
        if kind is str:
            return text(value)
        if kind is int or kind is bool or value is None:
            return value
        if kind is float:
            return value if math.isfinite(value) else str(value)
        if depth < _MAX_DEPTH and len(value if kind is dict or kind is list else ()) <= _MAX_ITEMS:
            if kind is dict:
                return {key_text(key): fact(item, depth + 1) for key, item in value.items()}
            if kind is list:
                return [fact(element, depth + 1) for element in value]
        if isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str | bytes | bytearray):
            return text(value)
        if depth < _MAX_DEPTH:
            if isinstance(value, dict):
                items = list(value.items())[:_MAX_ITEMS]
                return {short_line(str(key)): fact(item, depth + 1) for key, item in items}
            if isinstance(value, list | tuple | set | frozenset):
                elements = list(value)[:_MAX_ITEMS]
                if isinstance(value, set | frozenset):
                    elements.sort(key=str)
                return [fact(element, depth + 1) for element in elements]
        return text(str(value))

    def diagnosis(found: Diagnosis | None) -> dict[str, str] | None:
        if found is None:
            return None
        return {
            "code": short_line(found.code),
            "summary": long_line(found.summary),
            "hint": long_line(found.hint),
        }

    def hop(index: int, jump: tuple[Hop, ...]) -> dict[str, Any] | None:
        """A jump host (numbered from 1, as in `jump1.tcp`); None for the target itself."""
        if not 0 < index <= len(jump):
            return None
        found = jump[index - 1]
        return {
            "index": index,
            "host": short_line(found.host),
            "port": found.port,
            "user": short_line(found.user) if found.user is not None else None,
            "origin": short_line(found.origin) if found.origin else None,
        }

    # A stage with nothing but its verdict (every skipped one) is the same in thousands of
    # targets: made once, copied (each copy with containers of its own).
    bare: dict[tuple[str, str, str, float | None, str], dict[str, Any]] = {}

    def stage(result: StageResult, jump: tuple[Hop, ...]) -> dict[str, Any]:
        plain = not result.facts and result.diagnosis is None and not result.warnings
        if plain and hop(result.hop, jump) is None:  # and not a jump host's row
            seconds = _seconds(result.duration_s)
            key = (str(result.stage), result.name, str(result.status), seconds, result.detail)
            made = bare.get(key)
            if made is None:
                made = bare[key] = full(result, jump)
            return {**made, "facts": {}, "warnings": []}
        return full(result, jump)

    def full(result: StageResult, jump: tuple[Hop, ...]) -> dict[str, Any]:
        # str() of a stage or status is its value (StrEnum), without the slow .value property.
        return {
            "stage": str(result.stage),
            "name": result.name,
            "hop": hop(result.hop, jump),
            "status": str(result.status),
            "duration_s": _seconds(result.duration_s),
            "detail": long_line(result.detail),
            "diagnosis": diagnosis(result.diagnosis),
            "facts": fact(result.facts),
            "warnings": [long_line(warning) for warning in result.warnings],
        }

    def target(result: TargetResult) -> dict[str, Any]:
        configured = result.target
        failure = result.failure
        failed = None
        if failure is not None:
            code = failure.diagnosis.code if failure.diagnosis is not None else None
            failed = {
                "stage": str(failure.stage),
                "name": failure.name,
                "code": short_line(code) if code is not None else None,
            }
        return {
            "name": short_line(configured.name),
            "host": short_line(configured.host),
            "port": configured.port,
            "user": short_line(configured.user) if configured.user is not None else None,
            "ok": result.ok,
            "interrupted": result.interrupted,
            "attempts": result.attempts,
            "flaky": result.flaky,
            "duration_s": _seconds(result.duration_s),
            "origin": short_line(configured.origin) if configured.origin else None,
            "failure": failed,
            "auth_methods_configured": auth_methods(configured),
            "jump": [hop(n, configured.jump) for n in range(1, len(configured.jump) + 1)],
            "config_sources": [
                {
                    "setting": short_line(source.setting),
                    "value": long_line(source.value),
                    "source": short_line(source.source),
                }
                for source in configured.sources
            ],
            "config_notes": [long_line(note) for note in configured.config_notes],
            "stages": [
                stage(found, configured.jump)
                for found in stage_results(result, interrupted=report.interrupted)
            ],
        }

    data = {
        "version": SCHEMA_VERSION,
        "ok": report.ok,
        "started_at": iso_utc(report.started_at, timespec="milliseconds"),
        "duration_s": _seconds(report.duration_s),
        "interrupted": report.interrupted,
        "vantage": (
            {key: short_line(value) for key, value in report.vantage.items()}
            if report.vantage
            else None
        ),
    }
    return data, target


def to_json(report: Report) -> str:
    """The JSON document as text, one target per line, ending in a newline. (Not indented
    throughout: indentation turns off the C encoder, and a 1,000-target report then takes
    longer to write than the checks took to fail.)"""
    data, target = _document(report)

    # No check for cycles: the data is a fresh tree, facts cut at `_MAX_DEPTH`.
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False).encode

    head = dumps(data)[:-1]  # the top-level object, still open
    if not report.targets:
        return f'{head}, "targets": []}}\n'
    lines = ",\n".join(dumps(target(result)) for result in report.targets)
    return f'{head}, "targets": [\n{lines}\n]}}\n'


def write_json(report: Report, path: str | os.PathLike[str]) -> None:
    """Write the JSON report to `path` atomically (see `files.write_atomically`)."""
    write_atomically(path, to_json(report))


def _seconds(value: float) -> float | None:
    """Seconds rounded to milliseconds; None for a value that is not a finite number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return round(seconds, 3) if math.isfinite(seconds) else None
