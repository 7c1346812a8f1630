"""GitHub Actions output: log groups, ``::error`` annotations and the job's Markdown summary.

- **Groups**: each target's console lines go between ``::group::<header>`` and ``::endgroup::``
  (groups do not nest, so there is one level only); the count of targets stays outside.
- **Annotations**: one ``::error`` per failed target, at most `MAX_ANNOTATIONS` (GitHub shows ten
  per step; past that the tenth says how many more failed), pointing at the target's line in
  checks.yaml when it came from one. Workflow commands are line-based: in the message (data) ``%``,
  CR and LF become ``%25``, ``%0D`` and ``%0A``; in a property value ``:`` and ``,`` also become
  ``%3A`` and ``%2C`` (they delimit properties) — `escape_data`, `escape_property`.
- **Step summary**: a narrow Markdown table (target, stage, verdict, code, time), failures first,
  so that it fits GitHub's content width (about 1012 px; a table wider than that scrolls, and the
  columns on the right are out of sight), then one ``<details>`` block per failed target with its
  summary, hint and reproduce commands; appended to the file ``$GITHUB_STEP_SUMMARY`` names.
  GitHub refuses a step summary over 1 MiB (the whole file, so what earlier commands of the step
  appended counts too): targets that would not fit are left out and counted. Every text is
  cleaned to one line and escaped (Markdown in the table's cells; the blocks are HTML with no
  blank line in them, so GitHub reads no Markdown there and autolinks nothing a server sent), so
  a hostile banner can neither break the table nor inject links, images or HTML.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from preflight import vantage
from preflight.model import Report, StageResult, Status, TargetResult, endpoint
from preflight.report import report_secrets, stage_results
from preflight.report.console import format_duration, render_blocks
from preflight.report.sanitize import clean_text

__all__ = [
    "MAX_ANNOTATIONS",
    "SUMMARY_LIMIT",
    "append_step_summary",
    "error_annotations",
    "escape_data",
    "escape_property",
    "render_groups",
    "step_summary",
]

MAX_ANNOTATIONS = 10
SUMMARY_LIMIT = 1024 * 1024  # bytes, for the whole step summary file
_SUMMARY_MARGIN = 4096  # bytes kept free below the limit
_MAX_CELL = 500
_MAX_COMMAND = 4000  # a reproduce command, which must stay whole to be pasted
_QUOTED = re.compile(r"`([^`]+)`")  # a value or command a hint quotes in backticks
_MAX_MESSAGE = 2000
_CODE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]|~#!])")

_Text = Callable[[str], str]


def escape_data(text: str) -> str:
    """Escape a workflow command's message: ``%``, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value: as `escape_data`, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_groups(
    report: Report, *, color: bool, ascii_only: bool = False, every_target: bool = False
) -> str:
    """The console report with each of its blocks (a target, or targets alike past
    `grouping.GROUP_THRESHOLD`) in its own log group (ends in a newline)."""
    plain, _ = render_blocks(report, color=False, ascii_only=ascii_only, every_target=every_target)
    blocks, summary = render_blocks(
        report, color=color, ascii_only=ascii_only, every_target=every_target
    )
    lines: list[str] = []
    for title, block in zip(plain, blocks, strict=True):
        lines.append(f"::group::{escape_data(title.lines[0])}")
        lines.extend(block.lines[1:])
        lines.append("::endgroup::")
    lines.append(summary)
    return "\n".join(lines) + "\n"


def error_annotations(
    report: Report, *, limit: int = MAX_ANNOTATIONS, workspace: str | None = None
) -> list[str]:
    """The ``::error`` (and, for an interrupted run, ``::warning``) lines for `report`."""
    secrets = report_secrets(report)

    def line(value: str) -> str:
        return clean_text(value, max_len=_MAX_CELL, one_line=True, secrets=secrets)

    failed = [result for result in report.targets if result.failure is not None]
    shown = failed if len(failed) <= limit else failed[: max(limit - 1, 0)]
    commands = [_annotation(result, line, workspace) for result in shown]
    rest = failed[len(shown) :]
    if rest and limit > 0:
        names = ", ".join(line(result.target.name) for result in rest[:20])
        more = "…" if len(rest) > 20 else ""
        title = f"preflight: {len(rest)} more targets failed"
        message = f"{names}{more}\nsee the job summary or the JUnit report for each of them"
        commands.append(f"::error title={escape_property(title)}::{escape_data(message)}")
    unfinished = [r for r in report.targets if r.failure is None and not r.ok]
    if report.interrupted or unfinished:
        message = f"the run was interrupted: {len(unfinished)} target(s) did not finish"
        commands.append(f"::warning title=preflight interrupted::{escape_data(message)}")
    return commands


def _annotation(result: TargetResult, line: _Text, workspace: str | None) -> str:
    failure = result.failure
    assert failure is not None
    diagnosis = failure.diagnosis
    code = line(diagnosis.code) if diagnosis else f"{failure.name}.failed"
    summary = line(diagnosis.summary if diagnosis else failure.detail)
    hint = line(diagnosis.hint) if diagnosis else ""
    message_lines = [f"{code}: {summary}"]
    if hint:
        message_lines.append(f"hint: {hint}")
    where = _vantage_text(vantage.of_target(result), line)
    if where:
        message_lines.append(f"checked from {where}")
    message = clean_text("\n".join(message_lines), max_len=_MAX_MESSAGE)
    properties = {"title": f"preflight: {line(result.target.name)} failed at {failure.name}"}
    origin = _origin(result.target.origin, workspace)
    if origin is not None:
        properties["file"], properties["line"] = origin
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::error {rendered}::{escape_data(message)}"


def _origin(origin: str | None, workspace: str | None) -> tuple[str, str] | None:
    """``checks.yaml:12`` → (path relative to the workspace, "12"), for file/line properties."""
    if not origin:
        return None
    path, _, number = origin.rpartition(":")
    if not path or not number.isdigit():
        return None
    if workspace and os.path.isabs(path):
        relative = os.path.relpath(path, workspace)
        if not relative.startswith(".."):
            path = relative
    return path, number


def _vantage_text(fact: Mapping[str, Any], line: _Text) -> str:
    if not fact:
        return ""
    text = line(str(fact.get("runner", "")))
    if fact.get("source_address"):
        text += f" (source address {line(str(fact['source_address']))})"
    return text


def step_summary(report: Report, *, budget: int = SUMMARY_LIMIT - _SUMMARY_MARGIN) -> str:
    """The Markdown summary of `report`, at most `budget` bytes of UTF-8."""
    secrets = report_secrets(report)

    def cell(value: str) -> str:
        text = clean_text(value, max_len=_MAX_CELL, one_line=True, secrets=secrets)
        return _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(text, quote=False))

    total = len(report.targets)
    noun = "target" if total == 1 else "targets"
    failed = sum(1 for result in report.targets if result.failure is not None)
    unfinished = sum(1 for result in report.targets if result.failure is None and not result.ok)
    if failed:
        heading = f"### ❌ preflight: {failed} of {total} {noun} failed"
    elif unfinished or report.interrupted:
        heading = f"### ⚠️ preflight: interrupted, {unfinished} of {total} {noun} did not finish"
    elif total == 1:
        heading = "### ✅ preflight: the target passed"
    elif total:
        heading = f"### ✅ preflight: all {total} targets passed"
    else:
        heading = "### ✅ preflight: no targets to check"
    head = [heading, ""]
    where = _vantage_markdown(report, cell)
    if where:
        head += [where, ""]
    head += ["| Target | Stage | Verdict | Code | Time |", "|---|---|---|---|---|"]
    ordered = sorted(
        report.targets,
        key=lambda result: 0 if result.failure else (1 if not result.ok else 2),
    )
    rows = [_row(result, report.interrupted, cell) for result in ordered]
    blocks = [_details(result, report.interrupted, secrets) for result in ordered]
    text = "\n".join(head) + "\n"
    # A target is shown whole or not at all: its row and its block of details.
    used, kept = _size(text) + 1, 0
    for row, block in zip(rows, blocks, strict=True):
        left = len(rows) - kept - 1
        need = _size(row + "\n") + _size(block) + (_size(_left_out(left)) if left else 0)
        if used + need > budget:
            break
        used += _size(row + "\n") + _size(block)
        kept += 1
    text += "".join(row + "\n" for row in rows[:kept]) + "\n" + "".join(blocks[:kept])
    if kept < len(rows):
        text += _left_out(len(rows) - kept)
    return text


def append_step_summary(report: Report, path: str | os.PathLike[str]) -> None:
    """Append the summary to the step summary file, within what is left of GitHub's 1 MiB."""
    try:
        existing = os.path.getsize(path)
    except OSError:
        existing = 0
    budget = SUMMARY_LIMIT - _SUMMARY_MARGIN - existing
    if budget <= 0:
        return
    text = step_summary(report, budget=budget)
    if _size(text) > budget:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def _row(result: TargetResult, interrupted: bool, cell: _Text) -> str:
    target = result.target
    where = f"**{cell(target.name)}**<br>{cell(endpoint(target.host, target.port))}"
    source = vantage.of_target(result).get("source_address")
    if source:
        where += f"<br>from {cell(str(source))}"
    rows = stage_results(result, interrupted=interrupted)
    failure = result.failure
    code = ""
    if failure is not None:
        stage = failure.name
        verdict = "❌ failed"
        if failure.diagnosis is not None:
            code = _code_span(failure.diagnosis.code, cell)
    elif not result.ok:
        pending = _pending(rows)
        stage = pending.name if pending else "–"
        verdict = "⚠️ interrupted"
    else:
        stage = f"{rows[0].name} → {rows[-1].name}" if rows else "–"
        verdict = "✅ passed"
    cells = [where, stage, verdict, code, format_duration(result.duration_s)]
    return "| " + " | ".join(cells) + " |"


def _pending(rows: list[StageResult]) -> StageResult | None:
    """The stage an interrupted target stopped at: the one cut short, else the first skipped."""
    return next((row for row in rows if row.status is Status.ERROR), None) or next(
        (row for row in rows if row.status is Status.SKIP), None
    )


def _details(result: TargetResult, interrupted: bool, secrets: Sequence[str]) -> str:
    """A failed or interrupted target's ``<details>`` block: its name, stage and code as the
    line that is always seen; inside, the summary, the hint and the commands that reproduce it.
    Empty for a target that passed."""
    failure = result.failure
    if failure is None and result.ok:
        return ""

    def html_text(value: str) -> str:  # inside the HTML block, where Markdown is not read
        return _html_text(value, secrets)

    if failure is not None:
        diagnosis = failure.diagnosis
        stage, what = failure.name, diagnosis.summary if diagnosis else failure.detail
        code = f" <code>{html_text(diagnosis.code)}</code>" if diagnosis else ""
        hint = diagnosis.hint if diagnosis and diagnosis.hint.strip() else ""
        commands = [
            clean_text(str(c), max_len=_MAX_COMMAND, one_line=True, secrets=secrets, collapse=False)
            for c in failure.facts.get("reproduce") or ()
        ]
    else:
        pending = _pending(stage_results(result, interrupted=interrupted))
        stage, what = (pending.name, pending.detail) if pending else ("–", "interrupted")
        code, hint, commands = " interrupted", "", []
    # All HTML, with no blank line inside, so that GitHub reads the block as one piece of HTML
    # and no Markdown: its autolinks would otherwise make a URL or an address a server sent
    # clickable, and backslash escapes would show.
    lines = [
        f"<details><summary><b>{html_text(result.target.name)}</b> at {html_text(stage)}:"
        f"{code}</summary>",
        f"<p>{_html_paragraph(what, secrets)}</p>",
    ]
    if hint:
        lines.append(f"<p><b>Hint:</b> {_html_paragraph(hint, secrets)}</p>")
    source = vantage.of_target(result).get("source_address")
    if source:
        lines.append(f"<p>Source address: {html_text(str(source))}.</p>")
    commands = [command for command in commands if command]
    if commands:
        shown = "\n".join(html.escape(command, quote=False) for command in commands)
        lines += ["<p>Reproduce it from this runner:</p>", f"<pre><code>{shown}</code></pre>"]
    return "\n".join([*lines, "</details>", ""]) + "\n"


def _html_text(text: str, secrets: Sequence[str]) -> str:
    """`text` as HTML text: cleaned to one line and escaped."""
    cleaned = clean_text(text, max_len=_MAX_CELL, one_line=True, secrets=secrets)
    return html.escape(cleaned, quote=False)


def _html_paragraph(text: str, secrets: Sequence[str]) -> str:
    """`text` as HTML text, its `quoted` pieces as <code>."""
    return _QUOTED.sub(r"<code>\1</code>", _html_text(text, secrets))


def _code_span(code: str, cell: _Text) -> str:
    text = clean_text(code, max_len=100, one_line=True)
    return f"`{text}`" if _CODE.fullmatch(text) else cell(text)


def _vantage_markdown(report: Report, cell: _Text) -> str:
    facts = [fact for fact in map(vantage.of_target, report.targets) if fact]
    places: dict[tuple[str, ...], str] = {}
    for fact in facts:
        key = tuple(str(fact.get(k, "")) for k in ("runner", "runner_name", "shard", "job_url"))
        if key in places:
            continue
        runner = clean_text(key[0], max_len=_MAX_CELL, one_line=True)
        # Inside a code span Markdown shows the text as it is: no escapes there.
        text = f"`{runner}`" if "`" not in runner else cell(runner)
        if key[1]:
            text += f" ({cell(key[1])})"
        if key[2]:
            text += f", shard {cell(key[2])}"
        if key[3]:
            text += f", [CI job]({_link(key[3])})"
        places[key] = text
    if not places:
        return ""
    return "Checked from " + "; ".join(places.values()) + "."


def _link(url: str) -> str:
    cleaned = clean_text(url, max_len=1000, one_line=True)
    return quote(cleaned, safe=":/?#@!$&'*+,;=%-._~")


def _left_out(count: int) -> str:
    noun = "target" if count == 1 else "targets"
    return (
        f"\n… {count} more {noun} left out to keep the summary under GitHub's 1 MiB: "
        "see the JUnit and JSON reports.\n"
    )


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
