"""The suite's output: a Markdown table of medians and ratios, the bars, and the same as JSON.

The table is Markdown so that it reads in a terminal and pastes into `docs/benchmarks.md` as it
is. One line per program per scenario: median wall time (with the range over the runs), median
CPU time, median peak RSS, wall time as a multiple of the scenario's reference (preflight, or
`python -c pass` for start-up), how many targets ended as they should, and for the failing
scenarios the worst timeout overshoot. A program killed at its cap shows "> cap".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scenarios import Params
from bench.suite import Bar, Row, ScenarioResult


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def _wall(row: Row) -> str:
    if row.capped:
        return f"> {row.cap_s:g} s"
    shown = _seconds(row.wall)
    spread = row.spread()
    if spread and len(row.runs) > 1:
        shown += f" ({_seconds(spread[0])}–{_seconds(spread[1])})"
    return shown


def _ratio(result: ScenarioResult, row: Row) -> str:
    if row.name == result.reference:
        return "1 (ref)"
    ratio = result.ratio(row)
    if ratio is None:
        return "–"
    return f"> {ratio:.1f}×" if row.capped else f"{ratio:.2f}×"


def _verdicts(result: ScenarioResult, row: Row) -> str:
    if row.capped:
        return "hung (killed)"
    found = row.verdicts()
    if found is None:
        return "–"
    good, total = found
    what = "failed" if result.expect == "fail" else "ok"
    return f"{good}/{total} {what}"


def _overshoot(result: ScenarioResult, row: Row) -> str:
    if result.expected_timeout is None or result.targets < 2 or row.capped:
        return ""
    value = row.overshoot(result.expected_timeout)
    return "–" if value is None else f"{value:+.2f} s"


def _rss(row: Row, floor: float) -> str:
    if row.rss is None:
        return "–"
    if row.rss <= floor + 0.5:
        return f"≤ {floor:.0f} MiB"  # the launcher's own floor: the program used less
    return f"{row.rss:.0f} MiB"


def markdown_table(results: list[ScenarioResult], floor: float = 0.0) -> str:
    lines = [
        "| scenario | program | wall, median (range) | CPU | peak RSS | wall ÷ ref | verdicts "
        "| worst overshoot |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for result in results:
        if result.skipped:
            lines.append(f"| {result.title} | *skipped: {result.skipped}* | | | | | | |")
            continue
        for i, row in enumerate(result.rows):
            scenario = result.title if i == 0 else ""
            if row.unavailable:
                lines.append(f"| {scenario} | {row.name} | *{row.unavailable}* | | | | | |")
                continue
            if not row.runs:
                continue
            cpu = "–" if row.capped else _seconds(row.cpu)
            rss = _rss(row, floor)
            lines.append(
                f"| {scenario} | {row.name} | {_wall(row)} | {cpu} | {rss} | "
                f"{_ratio(result, row)} | {_verdicts(result, row)} | {_overshoot(result, row)} |"
            )
    return "\n".join(lines)


def notes(results: list[ScenarioResult]) -> str:
    lines = [
        f"- {result.key}, {row.name}: {row.note}"
        for result in results
        for row in result.rows
        if row.note and not row.unavailable
    ]
    return "\n".join(lines)


def bars_table(bars: list[Bar]) -> str:
    lines = ["| scenario | bar | limit | measured | met |", "|---|---|---|---:|---|"]
    for bar in bars:
        met = {True: "yes", False: "**NO**", None: "not measured"}[bar.met]
        lines.append(f"| {bar.scenario} | {bar.what} | {bar.limit} | {bar.measured} | {met} |")
    return "\n".join(lines)


def machine_line(info: dict[str, Any]) -> str:
    parts = [
        f"{info.get('cpu') or 'unknown CPU'}, {info.get('cores')} cores, {info.get('memory')}",
        f"{info.get('system')} {info.get('kernel')}",
        f"Python {info.get('python')}",
        f"paramiko {info.get('paramiko')}",
        f"asyncssh {info.get('asyncssh') or 'not installed'}",
        str(info.get("openssh") or "OpenSSH unknown"),
    ]
    return "; ".join(parts)


def render(p: Params, results: list[ScenarioResult], bars: list[Bar], info: dict[str, Any]) -> str:
    mode = "quick" if p.quick else "full"
    met = sum(1 for b in bars if b.met)
    missed = sum(1 for b in bars if b.met is False)
    return "\n".join(
        [
            f"## preflight bench ({mode}): medians of {p.reps}–{p.reps_startup} runs "
            f"({p.reps_many} for the many-target scenarios)",
            "",
            f"Machine: {machine_line(info)}.",
            "",
            f"preflight measured: {info.get('git') or 'unknown commit'}; "
            f"command: `python -m bench{' --quick' if p.quick else ''}`.",
            "",
            markdown_table(results, info.get("rss_floor_mib") or 0.0),
            "",
            notes(results),
            "",
            f"### Bars ({met} met, {missed} missed)",
            "",
            bars_table(bars),
            "",
        ]
    )


def to_json(
    p: Params,
    results: list[ScenarioResult],
    bars: list[Bar],
    info: dict[str, Any],
    table: str,
) -> dict[str, Any]:
    return {
        "suite": "preflight bench",
        "version": 1,
        "mode": "quick" if p.quick else "full",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "parameters": {
            "targets": p.many,
            "healthy_targets": p.healthy_many,
            "jobs": p.jobs,
            "reps": p.reps,
            "reps_many": p.reps_many,
            "reps_startup": p.reps_startup,
            "timeouts_s": p.timeouts,
            "cap_s": p.cap,
            "ports": p.ports,
        },
        "scenarios": [r.to_json() for r in results],
        "bars": [b.to_json() for b in bars],
        "all_bars_met": bool(bars) and all(b.met for b in bars),
        "table": table,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)
