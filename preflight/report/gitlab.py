"""The console report as GitLab shows it best: one collapsible job-log section per target.

GitLab's job log folds the lines between two markers (docs: "custom collapsible sections")::

    ESC[0Ksection_start:<unix time>:<id>[collapsed=true]\\rESC[0K<header shown when folded>
    ...
    ESC[0Ksection_end:<unix time>:<id>\\rESC[0K

The id must match ``[a-zA-Z0-9_.-]+`` (GitLab lower-cases it and turns everything but letters and
digits into ``-``, so ours are already in that form and numbered to stay unique). A passing target
is folded to its header line; a failing or unfinished one stays open, so the first thing on screen
is what broke. The section times are the run's own (start of the run, start plus the target's
duration), so GitLab's duration badge shows how long each target took. The lines inside are
exactly the console report's (`console.render`); the count of targets stays outside any section.
"""

from __future__ import annotations

import re

from preflight.model import Report
from preflight.report.console import render_blocks

__all__ = ["render_sections", "section_end", "section_id", "section_start"]

_ESC = "\x1b"
_ERASE_LINE = f"{_ESC}[0K"
_UNSAFE_ID = re.compile(r"[^a-z0-9]+")
_MAX_SLUG = 40


def section_start(section: str, header: str, *, timestamp: int, collapsed: bool) -> str:
    """The line that opens section `section`, showing `header` (no newline at the end)."""
    options = "[collapsed=true]" if collapsed else ""
    return f"{_ERASE_LINE}section_start:{timestamp}:{section}{options}\r{_ERASE_LINE}{header}"


def section_end(section: str, *, timestamp: int) -> str:
    """The line that closes section `section` (no newline at the end)."""
    return f"{_ERASE_LINE}section_end:{timestamp}:{section}\r{_ERASE_LINE}"


def section_id(number: int, name: str) -> str:
    """A section id for the `number`-th target: unique, and already in GitLab's own form."""
    slug = _UNSAFE_ID.sub("-", name.lower()).strip("-")[:_MAX_SLUG].strip("-")
    return f"preflight-{number}-{slug}" if slug else f"preflight-{number}"


def render_sections(
    report: Report, *, color: bool, ascii_only: bool = False, every_target: bool = False
) -> str:
    """The console report with each of its blocks (a target, or targets alike past
    `grouping.GROUP_THRESHOLD`) in its own section (ends in a newline)."""
    blocks, summary = render_blocks(
        report, color=color, ascii_only=ascii_only, every_target=every_target
    )
    started = report.started_at.timestamp()
    lines: list[str] = []
    for number, block in enumerate(blocks, start=1):
        section = section_id(number, block.name)
        header, *rest = block.lines
        lines.append(section_start(section, header, timestamp=int(started), collapsed=block.ok))
        lines.extend(rest)
        lines.append(section_end(section, timestamp=int(started + block.duration_s)))
    lines.append(summary)
    return "\n".join(lines) + "\n"
