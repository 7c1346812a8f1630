"""The console report: what a person reads in a terminal or a CI job log.

One header line per target (name, host:port and any jump hosts, verdict, total time), the
``settings:`` it took from OpenSSH client config and where each came from, then one aligned line
per stage (``✓`` pass, ``✗`` fail, ``–`` skip, the stage — ``jump1.auth`` for a jump host's —, its
duration and detail). A failed stage is followed by its diagnosis code and summary and a
``hint:`` line saying what to do; warnings are marked ``!``. A last line counts the targets. Every
value is cleaned to a single line first, so a banner or hostname can neither inject escape
sequences nor fake extra lines. Colour is plain ANSI SGR and only used when `color_enabled` says
so (a TTY, ``--color``, ``NO_COLOR``, ``FORCE_COLOR``, DESIGN §5). Given a `width` (a terminal's,
`terminal_width`), long texts wrap at word boundaries under their own column, a hint under its
first word; a ``try:`` command never wraps, since a command broken in two cannot be pasted.
Without one (a pipe, a file, a CI log) a text stays on one line, for grep.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from preflight.model import Report, Stage, StageResult, Status, TargetResult
from preflight.model import endpoint as model_endpoint
from preflight.report import (
    MARKS,
    can_encode,
    report_secrets,
    stage_results,
    stream_encoding,
    write_text,
)
from preflight.report.grouping import Entry, entries
from preflight.report.sanitize import clean_text

__all__ = [
    "Block",
    "ColorMode",
    "color_enabled",
    "format_duration",
    "render",
    "render_blocks",
    "terminal_width",
    "write_console",
]

ColorMode = Literal["auto", "always", "never"]

_RESET = "\x1b[0m"
_GREEN = "\x1b[32m"
_RED = "\x1b[31m"
_YELLOW = "\x1b[33m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"

_INDENT = "  "
_NAME_WIDTH = max(len(stage.value) for stage in Stage)  # "banner"
_DURATION_WIDTH = 6  # "0.012s", "12.34s", "134.0s"
_GAP = "  "
# Failure and warning lines start under the detail column.
_DETAIL_COLUMN = len(_INDENT) + 2 + _NAME_WIDTH + len(_GAP) + _DURATION_WIDTH + len(_GAP)
_MAX_TEXT = 400  # a terminal line; the JSON and JUnit reports carry more
_MAX_COMMAND = 4000  # a reproduce command, which must stay whole to be pasted
_SETTINGS_WIDTH = 100  # the "settings:" lines under a target's header wrap here, off a terminal
_NARROWEST = 30  # columns left for a text, below which wrapping would only make it worse
_NAMES_SHOWN = 5  # target names listed in a group's block

_MARKS = {
    **dict(zip((Status.PASS, Status.FAIL, Status.SKIP), MARKS, strict=True)),
    Status.ERROR: "!",
}
_ASCII_MARKS = {Status.PASS: "+", Status.FAIL: "x", Status.SKIP: "-", Status.ERROR: "!"}
_MARK_COLOURS = {Status.PASS: _GREEN, Status.FAIL: _RED, Status.SKIP: _DIM, Status.ERROR: _YELLOW}


def color_enabled(stream: TextIO, mode: ColorMode, environ: Mapping[str, str]) -> bool:
    """Whether to colour output written to `stream`.

    ``--color never``/``always`` win; otherwise a non-empty ``NO_COLOR`` turns colour off, a
    ``FORCE_COLOR`` that is non-empty and not ``0`` turns it on, and else colour is used only
    when `stream` is a terminal and ``TERM`` is not ``dumb``.
    """
    if mode == "never":
        return False
    if mode == "always":
        return True
    if environ.get("NO_COLOR", ""):
        return False
    force = environ.get("FORCE_COLOR", "")
    if force and force != "0":
        return True
    if environ.get("TERM", "") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def terminal_width(stream: TextIO, environ: Mapping[str, str]) -> int | None:
    """The width to wrap the console report at: ``COLUMNS`` when it is set (as for ``ls``),
    else the width of the terminal `stream` is; None when it is not a terminal."""
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, ValueError, OSError):  # no fileno, a closed stream, no size
        pass
    return None


# Pieces of text that are copied and pasted, or read as one: never broken across lines.
_UNBREAKABLE = re.compile(
    r"(?:\[[^\]\s]+\]:\d+|\S+) (?:ssh-[\w.@-]+|ecdsa-sha2-\S+|sk-\S+) AAAA\S+"  # known_hosts
    r"|host_key\.fingerprints: \[[^\]]*\]"
    r"|`[^`]+`"  # a command or a value quoted in backticks
    r"|\bchmod \d{3,4} \S+"
    r"|(?<!\S)-[A-Za-z] [^\s-]\S*"  # an option and its value: -F FILE, -p 2222
    r"|\b\d+(?:\.\d+)? ?(?:ms|s|KiB|MiB|GiB|bytes)\b"  # a number and its unit
)
_GLUE = "\ue000"  # a private-use character: stands for a space that must not break


def _fill(text: str, column: int, width: int | None) -> list[str]:
    """`text` in lines that fit `width` when they start at `column`: broken only between
    words, and never inside a piece meant to be pasted (a known_hosts line, a command in
    backticks, an option and its value, a number and its unit)."""
    if width is None or width - column < _NARROWEST or len(text) <= width - column:
        return [text]
    glued = _UNBREAKABLE.sub(lambda found: found[0].replace(" ", _GLUE), text)
    lines = textwrap.wrap(glued, width - column, break_long_words=False, break_on_hyphens=False)
    return [line.replace(_GLUE, " ") for line in lines] or [text]


def format_duration(seconds: float) -> str:
    """``0.012s`` below a second, ``3.00s`` below 100 s, ``134.0s`` above."""
    if seconds != seconds or seconds < 0:  # NaN or nonsense: do not crash the report
        seconds = 0.0
    if seconds < 1:
        return f"{seconds:.3f}s"
    if seconds < 100:
        return f"{seconds:.2f}s"
    return f"{seconds:.1f}s"


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *codes: str) -> str:
        if not self.color or not any(codes) or not text:
            return text
        return "".join(codes) + text + _RESET


@dataclass(frozen=True)
class Block:
    """The lines of one entry of the console report (`grouping.Entry`: a target, or targets
    alike), its header line first."""

    entry: Entry
    lines: list[str]

    @property
    def name(self) -> str:
        """What names the block: the target's name, or the group's code or kind."""
        entry = self.entry
        return entry.first.target.name if entry.kind == "target" else entry.code or entry.kind

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.entry.results)

    @property
    def duration_s(self) -> float:
        return max(_finite(result.duration_s) for result in self.entry.results)


def render(
    report: Report,
    *,
    color: bool,
    ascii_only: bool = False,
    width: int | None = None,
    every_target: bool = False,
) -> str:
    """The console report as text (ending in a newline).

    With `color`, ANSI SGR sequences mark passes green, failures red, warnings yellow and skips
    dim; without it the text contains no escape sequence at all. `ascii_only` replaces the
    ``✓ ✗ –`` marks for streams that cannot encode them; `width` wraps long texts. Past
    `grouping.GROUP_THRESHOLD` targets what repeats is shown once, unless `every_target`.
    """
    blocks, summary = render_blocks(
        report, color=color, ascii_only=ascii_only, width=width, every_target=every_target
    )
    lines: list[str] = []
    for block in blocks:
        lines.extend(block.lines)
        lines.append("")
    lines.append(summary)
    return "\n".join(lines) + "\n"


def render_blocks(
    report: Report,
    *,
    color: bool,
    ascii_only: bool = False,
    width: int | None = None,
    every_target: bool = False,
) -> tuple[list[Block], str]:
    """The console report as one block of lines per entry (`grouping.entries`: a target, or
    targets that failed or passed alike), and the closing count: what `render` joins with blank
    lines, and what the CI formats fold into sections and groups. The blocks are made, never
    found again by splitting rendered text, so no line inside a block, empty or not, can move a
    target's lines into another's."""
    style = _Style(color)
    secrets = report_secrets(report)

    def clean(value: str, max_len: int = _MAX_TEXT, *, collapse: bool = True) -> str:
        return clean_text(value, max_len=max_len, one_line=True, secrets=secrets, collapse=collapse)

    marks = _ASCII_MARKS if ascii_only else _MARKS
    blocks = []
    for entry in entries(report, every_target=every_target):
        if entry.kind == "target":
            lines = _render_target(entry.first, report.interrupted, style, clean, marks, width)
        else:
            lines = _render_group(entry, report.interrupted, style, clean, marks, width)
        blocks.append(Block(entry, lines))
    return blocks, _summary_line(report, style)


def _render_group(
    entry: Entry,
    report_interrupted: bool,
    style: _Style,
    clean: Callable[..., str],
    marks: Mapping[Status, str],
    width: int | None,
) -> list[str]:
    """Targets alike: how many, the verdict and the span of their times; the first few names;
    then one of them in full, as its own block shows it (for failed or unfinished targets, the
    first; for passed ones, the first with notes or warnings); and how many others have notes
    or warnings of their own, which only --verbose shows."""
    results = entry.results
    if entry.kind == "failed":
        what = f"{'FLAKY' if entry.flaky else 'FAILED'} at {entry.stage}"
        verdict = style(f"{what} ({clean(entry.code)})" if entry.code else what, _BOLD, _RED)
    elif entry.kind == "passed":
        verdict = style("OK", _BOLD, _GREEN)
    else:
        verdict = style("INTERRUPTED", _BOLD, _YELLOW)
    times = sorted(_finite(result.duration_s) for result in results)
    span = format_duration(times[0])
    if format_duration(times[-1]) != span:
        span += f"-{format_duration(times[-1])}"
    header = _GAP.join([style(f"{len(results)} targets", _BOLD), verdict, span])
    names = [clean(result.target.name) for result in results[:_NAMES_SHOWN]]
    more = len(results) - len(names)
    listed = ", ".join(names) + (f" and {more} more (--verbose shows each)" if more else "")
    lines = [header]
    lines += [f"{_INDENT}{text}" for text in _fill(listed, len(_INDENT), width)]
    said = {id(result): _remarks(result) for result in results}
    noted = [result for result in results if said[id(result)]]
    # A failure, or where an interruption stopped them, is seen in the first; a pass in the
    # first that has something to say.
    first_says = entry.kind in ("failed", "unfinished")
    example = entry.first if first_says else (noted[0] if noted else None)
    if example is not None:
        lines.append(f"{_INDENT}{style('for example:', _DIM)}")
        inner = width - len(_INDENT) if width else None
        own = _render_target(example, report_interrupted, style, clean, marks, inner)
        lines += [f"{_INDENT}{line}" for line in own]
        told = said[id(example)]
        others = sum(1 for result in noted if result is not example and said[id(result)] != told)
        if others:
            text = (
                f"{others} of these {len(results)} targets have notes or warnings of their own "
                "(--verbose shows each)"
            )
            lines.append(f"{_INDENT}{style('!', _BOLD, _YELLOW)} {style(text, _YELLOW)}")
    return lines


def _remarks(result: TargetResult) -> tuple[str, ...]:
    """What a target's block says besides its rows: settings, notes and warnings."""
    target = result.target
    return (
        *(str(source) for source in target.sources),
        *target.config_notes,
        *(warning for row in result.stages for warning in row.warnings),
    )


def _finite(seconds: float) -> float:
    return seconds if seconds == seconds and seconds >= 0 else 0.0


def write_console(
    report: Report,
    stream: TextIO,
    *,
    color: bool,
    ascii_only: bool | None = None,
    width: int | None = None,
    every_target: bool = False,
) -> None:
    """Render `report` and write it to `stream`.

    When `ascii_only` is None it is decided from the stream's encoding, and characters the
    stream cannot encode are replaced rather than raising `UnicodeEncodeError` halfway through.
    """
    if ascii_only is None:
        ascii_only = not can_encode(MARKS, stream_encoding(stream))
    text = render(
        report, color=color, ascii_only=ascii_only, width=width, every_target=every_target
    )
    write_text(stream, text)


def _render_target(
    result: TargetResult,
    report_interrupted: bool,
    style: _Style,
    clean: Callable[..., str],
    marks: Mapping[Status, str],
    width: int | None = None,
) -> list[str]:
    target = result.target
    failure = result.failure
    if failure is not None and result.flaky:
        verdict = style(f"FLAKY at {failure.name}", _BOLD, _RED)
    elif failure is not None:
        verdict = style(f"FAILED at {failure.name}", _BOLD, _RED)
    elif result.interrupted:
        verdict = style("INTERRUPTED", _BOLD, _YELLOW)
    elif result.ok:
        verdict = style("OK", _BOLD, _GREEN)
    else:  # not reachable with today's model; say something true rather than "OK"
        verdict = style("FAILED", _BOLD, _RED)
    endpoint = clean(model_endpoint(target.host, target.port))
    if target.jump:
        endpoint += " via " + clean(" → ".join(hop.endpoint for hop in target.jump))
    name = clean(target.name)
    header = _GAP.join(
        [
            style(name, _BOLD),
            *([endpoint] if endpoint != name else []),  # a TARGET typed as host:port
            verdict,
            format_duration(result.duration_s)
            + (f" ({result.attempts} attempts)" if result.attempts > 1 else ""),
        ]
    )
    lines = [header]
    if target.sources:
        # Settings from OpenSSH client config: say where each came from.
        label = "settings:"
        items = [clean(str(source)) for source in target.sources]
        room = (width or _SETTINGS_WIDTH) - len(_INDENT) - len(label) - 1
        for n, text in enumerate(_wrap(items, max(room, _NARROWEST))):
            lead = style(label, _DIM) if n == 0 else " " * len(label)
            lines.append(f"{_INDENT}{lead} {style(text, _DIM)}")
    for note in target.config_notes:
        for n, text in enumerate(_fill(clean(note), len(_INDENT) + 2, width)):
            lead = style("!", _BOLD, _YELLOW) if n == 0 else " "
            lines.append(f"{_INDENT}{lead} {style(text, _YELLOW)}")
    rows = stage_results(result, interrupted=report_interrupted)
    # Jump hosts' rows ("jump1.banner") are longer than the stage names: widen the column.
    name_width = max([_NAME_WIDTH, *(len(row.name) for row in rows)])
    for stage_result in rows:
        lines.extend(
            _render_stage(stage_result, style, clean, marks, name_width=name_width, width=width)
        )
    return lines


def _wrap(items: list[str], width: int) -> list[str]:
    """`items` joined with "; " into lines of about `width` characters (an item is never cut)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += "; " + item
        else:
            if lines:
                lines[-1] += ";"
            lines.append(item)
    return lines


def _render_stage(
    result: StageResult,
    style: _Style,
    clean: Callable[..., str],
    marks: Mapping[Status, str],
    *,
    name_width: int = _NAME_WIDTH,
    width: int | None = None,
) -> list[str]:
    status = result.status
    mark = style(marks[status], _MARK_COLOURS[status])
    name = result.name
    shows_time = status is not Status.SKIP or result.duration_s > 0
    duration = format_duration(result.duration_s) if shows_time else ""
    detail = clean(result.detail)
    diagnosis = result.diagnosis
    code = verdict = ""  # the verdict is wrapped plain, then its code coloured
    if status is Status.FAIL and diagnosis is not None:
        code = clean(diagnosis.code)
        summary = clean(diagnosis.summary)
        verdict = f"{code}: {summary}" if summary else code
        if detail == summary:
            detail = ""  # the verdict says it
    if status is Status.SKIP and not detail.lower().startswith("skipped"):
        detail = f"skipped: {detail}" if detail else "skipped"
    column = _DETAIL_COLUMN + name_width - _NAME_WIDTH
    pad = " " * column

    def verdict_lines() -> list[str]:
        lines = _fill(verdict, column, width)
        lines[0] = style(code, _BOLD, _RED) + lines[0][len(code) :]
        return lines

    # Pad only what something follows, so that no line ends in spaces (coloured or not).
    # A failure's verdict goes on the stage line itself unless a separate detail is there.
    inline = detail or verdict
    if inline:
        duration = duration.ljust(_DURATION_WIDTH)
    line = f"{_INDENT}{mark} "
    if duration or inline:
        line += style(name.ljust(name_width), _DIM if status is Status.SKIP else "")
        line += _GAP + style(duration, _DIM)
    else:
        line += name
    continued: list[str] = []
    if detail:
        first, *continued = _fill(detail, column, width)
        dim = _DIM if status is Status.SKIP else ""
        line += _GAP + style(first, dim)
        continued = [style(text, dim) for text in continued]
    elif verdict:
        first, *continued = verdict_lines()
        line += _GAP + first
    lines = [line, *(f"{pad}{text}" for text in continued)]
    if verdict and detail:
        lines.extend(f"{pad}{text}" for text in verdict_lines())
    statistics = result.facts.get("rounds")
    if isinstance(statistics, dict) and statistics.get("of", 1) > 1 and statistics.get("ran"):
        lines.extend(
            f"{pad}{style(text, _DIM)}" for text in _fill(_attempts_line(statistics), column, width)
        )
    if status is Status.FAIL and diagnosis is not None:
        hint = clean(diagnosis.hint)
        if hint:
            # A hanging indent: the hint's lines start under its first word.
            first, *rest = _fill(hint, column + len("hint: "), width)
            lines.append(f"{pad}{style('hint:', _BOLD)} {first}")
            lines.extend(f"{pad}      {text}" for text in rest)
        for command in result.facts.get("reproduce") or ():
            # Never shortened nor wrapped: a command cut off or broken in two cannot be pasted.
            # Nor its spaces collapsed: two spaces in a quoted path are two in the path.
            command_text = clean(str(command), _MAX_COMMAND, collapse=False)
            lines.append(f"{pad}{style('try:', _DIM)} {command_text}")
    for warning in result.warnings:
        text = clean(warning)
        if text:
            first, *rest = _fill(text, column + 2, width)
            lines.append(f"{pad}{style('!', _BOLD, _YELLOW)} {style(first, _YELLOW)}")
            lines.extend(f"{pad}  {style(more, _YELLOW)}" for more in rest)
    return lines


def _attempts_line(statistics: Mapping[str, Any]) -> str:
    """`3/4 attempts passed · latency min 0.001s median 0.002s p95 3.00s max 3.00s`; a stage
    that not every attempt reached: `6/6 attempts that reached it passed (2 did not)`."""
    passed, ran, of = (statistics.get(key, 0) for key in ("passed", "ran", "of"))
    if ran < of:
        text = f"{passed}/{ran} attempts that reached it passed ({of - ran} did not)"
    else:
        text = f"{passed}/{of} attempts passed"
    latency = statistics.get("latency_s")
    if isinstance(latency, dict):
        parts = [
            f"{key} {format_duration(float(latency[key]))}"
            for key in ("min", "median", "p95", "max")
            if key in latency
        ]
        text += " · latency " + " ".join(parts)
    return text


def _summary_line(report: Report, style: _Style) -> str:
    total = len(report.targets)
    ok = sum(1 for result in report.targets if result.ok)
    failed = sum(1 for result in report.targets if result.failure is not None)
    unfinished = total - ok - failed
    noun = "target" if total == 1 else "targets"
    parts = [f"{ok} ok", f"{failed} failed"]
    if unfinished:
        parts.append(f"{unfinished} not finished")
    line = f"{total} {noun}: {', '.join(parts)} ({format_duration(report.duration_s)})"
    if report.interrupted:
        line += ", interrupted"
    return style(line, _BOLD, _GREEN if report.ok else _RED)
