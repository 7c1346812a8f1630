"""The JUnit XML report (``--junit``), for the test view of GitLab, GitHub and Jenkins.

One ``<testsuite>`` per target and one ``<testcase>`` per configured stage, in order, with
``classname`` ``preflight.<target>`` and ``name`` the stage (DESIGN §7); a jump host's stages
come first, named ``jump1.dns``, ``jump1.tcp``… (the failure body names the jump host). A failed
stage carries a ``<failure>`` whose ``type`` is the diagnosis code and whose ``message`` is
``code: summary``; because GitLab shows only the failure *body* (it drops ``type`` and
``message``), the body starts with that same ``code: summary`` line and adds the hint and every
detail (the target, the facts the stage gathered, warnings). A skipped stage carries its reason,
a passed one its detail as ``system-out`` (which Jenkins shows; GitLab shows nothing of a passed
test, so what a healthy target measured reaches GitLab users through the job log and the JSON).
The document is the one the `junit-xml` package builds and ElementTree serialises, with the
times set to millisecond precision (the suite time is the target's wall time, not a sum of
floats); it is written here directly, because at 10,000 targets building and walking those
element trees took seconds, and the tests hold it to theirs byte for byte. Every string is
cleaned by `sanitize.clean_text` first, so a hostile banner cannot make the file invalid; the
output validates against the JUnit XSD in ``tests/data/junit.xsd``.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from preflight.model import Report, StageResult, Status, Target, TargetResult, endpoint
from preflight.report import iso_utc, report_secrets, stage_results
from preflight.report.files import write_atomically
from preflight.report.sanitize import Cleaner

__all__ = ["CLASSNAME_PREFIX", "to_xml", "write_junit"]

CLASSNAME_PREFIX = "preflight."

_MAX_NAME = 200  # suite, classname and test names
_MAX_LINE = 1000  # one attribute or one line of a body
_MAX_VALUE = 4000  # one (possibly multi-line) fact in a body
_MAX_BODY = 32000  # a whole failure body or system-out
_MAX_DEPTH = 6  # nesting of facts written as "key.sub: value"
_MAX_ITEMS = 200  # elements of one list or mapping in facts
_REPRODUCE = "reproduce"  # the fact holding the commands that reproduce a failure


class _Clean(NamedTuple):
    """The report's cleaners (`sanitize.Cleaner.kind`), one per length and line rule."""

    line: Callable[[str | bytes], str]  # an attribute or one line of a body
    name: Callable[[str | bytes], str]  # suite, classname, test and fact names
    value: Callable[[str | bytes], str]  # a fact's value on its line
    value_text: Callable[[str | bytes], str]  # a fact's value that may keep its lines
    body: Callable[[str | bytes], str]  # a whole failure body or system-out
    command: Callable[[str | bytes], str]  # a command to paste: on one line, spaces kept

    @classmethod
    def of(cls, cleaner: Cleaner) -> _Clean:
        return cls(
            cleaner.kind(_MAX_LINE, True),
            cleaner.kind(_MAX_NAME, True),
            cleaner.kind(_MAX_VALUE, True),
            cleaner.kind(_MAX_VALUE, False),
            cleaner.kind(_MAX_BODY, False),
            cleaner.kind(_MAX_VALUE, True, collapse=False),
        )


class _Case(NamedTuple):
    """One ``<testcase>``: its name and time, and at most one child — ``failure``, ``error``
    or ``skipped`` (with its ``type`` and ``message``), or ``system-out`` — with its text."""

    name: str
    classname: str
    seconds: float
    child: str | None = None
    type: str = ""
    message: str = ""
    text: str = ""


def to_xml(report: Report) -> str:
    """The JUnit XML document for `report`, with an XML declaration and a final newline."""
    clean = _Clean.of(Cleaner(report_secrets(report)))
    hostname = _hostname(clean)
    host = f' hostname="{_attribute(hostname)}"' if hostname else ""
    stamped = f' timestamp="{_attribute(iso_utc(report.started_at))}"'
    suites: list[str] = []
    totals = dict.fromkeys(("tests", "failures", "errors", "disabled"), 0)
    used_suites: set[str] = set()
    for result in report.targets:
        suite_name = _unique(clean.name(result.target.name) or "target", used_suites)
        rows = stage_results(result, interrupted=report.interrupted)
        cases = _test_cases(result, rows, suite_name, clean)
        children = [case.child for case in cases]
        failures, errors = children.count("failure"), children.count("error")
        totals["tests"] += len(cases)
        totals["failures"] += failures
        totals["errors"] += errors
        # The attributes in junit-xml's order; only the name and host name need escaping.
        opened = (
            f'<testsuite disabled="0" errors="{errors}" failures="{failures}" '
            f'name="{_attribute(suite_name)}" skipped="{children.count("skipped")}" '
            f'tests="{len(cases)}" time="{_seconds(result.duration_s)}"{host}{stamped}'
        )
        suites.append(_suite(opened, _properties(result.target, clean), cases))
    root = [("name", "preflight"), *((key, str(value)) for key, value in totals.items())]
    root.append(("time", _seconds(report.duration_s)))
    if not suites:
        return f"{_DECLARATION}<testsuites{_attributes(root)} />\n"
    body = "\n  ".join(suites)
    return f"{_DECLARATION}<testsuites{_attributes(root)}>\n  {body}\n</testsuites>\n"


def write_junit(report: Report, path: str | os.PathLike[str]) -> None:
    """Write the JUnit report to `path` atomically (see `files.write_atomically`)."""
    write_atomically(path, to_xml(report))


# The document as `junit-xml` builds it and ElementTree writes it, two spaces per level.
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_ATTRIBUTE_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\r": "&#13;",
        "\n": "&#10;",
        "\t": "&#09;",
    }
)
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


_NEEDS_ESCAPE = re.compile(r'[&<>"\r\n\t]')
_TEXT_NEEDS_ESCAPE = re.compile(r"[&<>]")  # element text keeps its lines, tabs and quotes


def _attributes(pairs: list[tuple[str, str]]) -> str:
    return "".join(f' {key}="{_attribute(value)}"' for key, value in pairs)


@functools.lru_cache(maxsize=1 << 16)
def _attribute(value: str) -> str:
    # Most values need no escape at all, and a search is cheaper than a translation; and
    # thousands of targets repeat the same ones (stage names, a skip reason): remembered.
    return value.translate(_ATTRIBUTE_ESCAPES) if _NEEDS_ESCAPE.search(value) else value


def _text(value: str) -> str:
    return value.translate(_TEXT_ESCAPES) if _TEXT_NEEDS_ESCAPE.search(value) else value


def _suite(opened: str, properties: dict[str, str], cases: list[_Case]) -> str:
    """The suite of one target: `opened` is its start tag without the closing bracket."""
    parts = []
    if properties:
        listed = "".join(
            f'\n      <property name="{_attribute(key)}" value="{_attribute(value)}" />'
            for key, value in properties.items()
        )
        parts.append(f"<properties>{listed}\n    </properties>")
    parts.extend(_case(case) for case in cases)
    if not parts:
        return f"{opened} />"
    inner = "\n    ".join(parts)
    return f"{opened}>\n    {inner}\n  </testsuite>"


def _case(case: _Case) -> str:
    time = _seconds(case.seconds)
    name, classname = _attribute(case.name), _attribute(case.classname)
    # junit-xml gives a case a time only when it has one; preflight then sets every case's:
    # a zero time lands after the classname, as ElementTree keeps the order attributes came in.
    if case.seconds:
        opened = f'<testcase name="{name}" time="{time}" classname="{classname}"'
    else:
        opened = f'<testcase name="{name}" classname="{classname}" time="{time}"'
    if case.child is None:
        return opened + " />"
    # Thousands of skipped stages share a few reasons: theirs are remembered.
    render = _skipped_child if case.child == "skipped" else _child
    child = render(case.child, case.type, case.message, case.text)
    return f"{opened}>\n      {child}\n    </testcase>"


def _child(child: str, kind: str, message: str, text: str) -> str:
    """A case's one child element: its output, failure, error or skip."""
    if child == "system-out":
        return f"<system-out>{_text(text)}</system-out>"
    pairs = [("type", kind or child)]
    if message:
        pairs.append(("message", message))
    opened = f"<{child}{_attributes(pairs)}"
    return f"{opened}>{_text(text)}</{child}>" if text else opened + " />"


_skipped_child = functools.lru_cache(maxsize=1 << 10)(_child)


def _test_cases(
    result: TargetResult, rows: list[StageResult], suite_name: str, clean: _Clean
) -> list[_Case]:
    classname = CLASSNAME_PREFIX + suite_name
    used_names: set[str] = set()
    cases = []
    for row in rows:
        name = _unique(row.name, used_names)
        if row.status is Status.FAIL:
            diagnosis = row.diagnosis
            code = clean.name(diagnosis.code) if diagnosis else ""
            summary = clean.line(diagnosis.summary) if diagnosis else ""
            code = code or f"{row.name}.failed"
            summary = summary or clean.line(row.detail) or "failed"
            body = _failure_body(result.target, row, code, summary, clean)
            message = clean.line(f"{code}: {summary}")
            case = _Case(name, classname, row.duration_s, "failure", code, message, body)
        elif row.status is Status.ERROR:
            # Cut short by the interruption: an error, never a skip, so that a cancelled CI
            # job's test view does not read as passed.
            detail = clean.line(row.detail) or "interrupted"
            body = _body([detail, "", *_detail_lines(row, clean, summary=detail)], clean)
            case = _Case(name, classname, row.duration_s, "error", "interrupted", detail, body)
        elif row.status is Status.SKIP:
            # GitLab shows a skipped test's element *content* (an empty <skipped/> with only
            # attributes reaches its view as a hash, not text): the reason goes in both.
            reason = clean.line(row.detail) or "skipped"
            case = _Case(name, classname, row.duration_s, "skipped", "", reason, reason)
        else:
            output = _body(_detail_lines(row, clean), clean)
            child = "system-out" if output else None
            case = _Case(name, classname, row.duration_s, child, "", "", output)
        cases.append(case)
    return cases


def _failure_body(target: Target, row: StageResult, code: str, summary: str, clean: _Clean) -> str:
    """``code: summary``, ``hint: …``, then the details: what GitLab shows of a failed test (it
    keeps the body alone, so the code must be in it to be seen at all)."""
    lines = [f"{code}: {summary}"]
    if row.diagnosis is not None:
        hint = clean.line(row.diagnosis.hint)
        if hint:
            lines.append(f"hint: {hint}")
    # One command per line, as the console prints them: each is pasted on its own.
    lines.extend(
        f"try: {clean.command(str(command))}" for command in row.facts.get("reproduce") or ()
    )
    lines.append("")
    lines.append(f"target: {_describe_target(target, clean)}")
    if row.hop and row.hop <= len(target.jump):
        hop = target.jump[row.hop - 1]
        user = f"{hop.user}@" if hop.user else ""
        lines.append(clean.line(f"failed at: jump host {row.hop} ({user}{hop.endpoint})"))
    for note in target.config_notes:
        lines.append(f"note: {clean.line(note)}")
    lines.extend(_detail_lines(row, clean, summary=summary))
    return _body(lines, clean)


def _detail_lines(row: StageResult, clean: _Clean, *, summary: str = "") -> list[str]:
    lines = []
    detail = clean.line(row.detail)
    if detail and detail != summary:
        lines.append(f"detail: {detail}")
    for key, value in itertools.islice(row.facts.items(), _MAX_ITEMS):
        if key == _REPRODUCE:
            continue  # written as `try:` lines under the hint
        _fact_lines(clean.name(str(key)), value, clean, 0, lines)
    for warning in row.warnings:
        text = clean.line(warning)
        if text:
            lines.append(f"warning: {text}")
    return lines


def _fact_lines(key: str, value: Any, clean: _Clean, depth: int, lines: list[str]) -> None:
    """One fact as ``key: value`` lines, appended to `lines`; nested mappings and lists become
    ``key.sub``/``key[i]``. (Appended, not yielded: the facts are about 30 % of a 10,000-target
    document, and dropping a generator per fact and level made the whole 0.64 -> 0.57 s.)"""
    kind = type(value)
    if depth < _MAX_DEPTH and kind not in _SCALARS:
        if kind is dict or isinstance(value, Mapping):
            if not value:
                lines.append(f"{key}: (none)")
            for sub, item in itertools.islice(value.items(), _MAX_ITEMS):
                sub_key = clean.name(str(sub))
                _fact_lines(f"{key}.{sub_key}", item, clean, depth + 1, lines)
            return
        if kind is list or isinstance(value, list | tuple | set | frozenset):
            items = list(itertools.islice(value, _MAX_ITEMS))
            if isinstance(value, set | frozenset):
                items.sort(key=str)
            if not items:
                lines.append(f"{key}: (none)")
            elif _all_scalars(items):
                lines.append(f"{key}: " + ", ".join([_scalar(item, clean) for item in items]))
            else:
                for index, item in enumerate(items):
                    if isinstance(item, Mapping) and item and _all_scalars(item.values()):
                        # e.g. one address tried: "address=203.0.113.7:22, result=timeout"
                        pairs = itertools.islice(item.items(), _MAX_ITEMS)
                        lines.append(
                            f"{key}[{index}]: "
                            + ", ".join(
                                [
                                    f"{clean.name(str(sub))}={_scalar(value, clean)}"
                                    for sub, value in pairs
                                ]
                            )
                        )
                    else:
                        _fact_lines(f"{key}[{index}]", item, clean, depth + 1, lines)
            return
    text = _scalar(value, clean, one_line=False)
    if "\n" in text:
        lines.append(f"{key}:")
        lines.extend(f"  {line}" for line in text.split("\n"))
    else:
        lines.append(f"{key}: {text}")


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _all_scalars(values: Iterable[Any]) -> bool:
    for value in values:
        # By exact type first: the ABC check is slow, and nearly every fact is one of these.
        if type(value) not in _SCALARS and isinstance(
            value, Mapping | list | tuple | set | frozenset
        ):
            return False
    return True


def _scalar(value: Any, clean: _Clean, *, one_line: bool = True) -> str:
    if value is None:
        return "(none)"
    cleaned = clean.value if one_line else clean.value_text
    if type(value) is str:
        return cleaned(value)
    if isinstance(value, bytearray):
        value = bytes(value)
    elif not isinstance(value, str | bytes):
        value = str(value)
    return cleaned(value)


def _describe_target(target: Target, clean: _Clean) -> str:
    user = f"{target.user}@" if target.user else ""
    where = f"{user}{endpoint(target.host, target.port)}"
    if target.jump:
        where += " via " + " → ".join(hop.endpoint for hop in target.jump)
    if target.origin:
        where += f", defined at {target.origin}"
    return clean.line(f"{target.name} ({where})")


def _properties(target: Target, clean: _Clean) -> dict[str, str]:
    properties = {"host": clean.name(target.host), "port": str(target.port)}
    if target.user:
        properties["user"] = clean.name(target.user)
    if target.origin:
        properties["origin"] = clean.name(target.origin)
    if target.jump:
        route = ", ".join(
            f"{hop.user}@{hop.endpoint}" if hop.user else hop.endpoint for hop in target.jump
        )
        properties["jump"] = clean.line(route)
    if target.sources:
        settings = "; ".join(str(source) for source in target.sources)
        properties["config_sources"] = clean.line(settings)
    return properties


def _body(lines: list[str], clean: _Clean) -> str:
    return clean.body("\n".join(lines).strip("\n"))


def _unique(name: str, used: set[str]) -> str:
    candidate = name
    number = 2
    while candidate in used:
        candidate = f"{name}#{number}"
        number += 1
    used.add(candidate)
    return candidate


def _seconds(value: float) -> str:
    if type(value) is float and 0.0 <= value < _INFINITY:  # nearly always: at once
        return f"{value:.3f}"
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds >= 0 or seconds == float("inf"):  # NaN, negative, infinite
        seconds = 0.0
    return f"{seconds:.3f}"


_INFINITY = float("inf")


def _hostname(clean: _Clean) -> str | None:
    try:
        name = socket.gethostname()
    except OSError:
        return None
    return clean.name(name) or None
