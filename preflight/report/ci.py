"""CI-aware output: what changes when preflight runs inside GitLab CI or GitHub Actions.

`ci_system` reads which one from the environment (``GITLAB_CI=true``, ``GITHUB_ACTIONS=true``).
`write_console` writes the console report in that system's folding format (`gitlab` sections,
`github` groups; the plain `console` report elsewhere) followed by the vantage line
(`preflight.vantage.describe`). `publish` adds what only GitHub has: ``::error`` annotations on
stdout and the Markdown summary appended to ``$GITHUB_STEP_SUMMARY``. Both folding formats build
on `console.render_blocks`: the console report as one block of lines per target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TextIO

from preflight.model import Report
from preflight.report import MARKS, can_encode, stream_encoding, write_text
from preflight.report.sanitize import clean_text

__all__ = ["CISystem", "ci_system", "publish", "write_console"]

CISystem = Literal["gitlab", "github"]


def ci_system(environ: Mapping[str, str]) -> CISystem | None:
    """The CI system this process runs in, as far as preflight formats output for it."""
    if environ.get("GITLAB_CI", "").lower() == "true":
        return "gitlab"
    if environ.get("GITHUB_ACTIONS", "").lower() == "true":
        return "github"
    return None


def write_console(
    report: Report,
    stream: TextIO,
    *,
    color: bool,
    environ: Mapping[str, str],
    vantage_line: str | None = None,
    width: int | None = None,
    every_target: bool = False,
) -> None:
    """The console report, folded for the CI system in `environ`, then the vantage line.
    `width` wraps a terminal's report; a CI log is not a terminal and is never wrapped."""
    # Only the renderer in use is imported: the GitHub one pulls in `html`, a cost every
    # local run would otherwise pay at start-up.
    ascii_only = not can_encode(MARKS, stream_encoding(stream))
    system = ci_system(environ)
    if system == "gitlab":
        from preflight.report import gitlab

        text = gitlab.render_sections(
            report, color=color, ascii_only=ascii_only, every_target=every_target
        )
    elif system == "github":
        from preflight.report import github

        text = github.render_groups(
            report, color=color, ascii_only=ascii_only, every_target=every_target
        )
    else:
        from preflight.report import console

        text = console.render(
            report, color=color, ascii_only=ascii_only, width=width, every_target=every_target
        )
    if vantage_line:
        text += clean_text(vantage_line, max_len=2000, one_line=True) + "\n"
    write_text(stream, text)


def publish(report: Report, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]) -> None:
    """GitHub Actions only: annotations on `stdout`, the step summary appended to its file.

    A summary that cannot be written is reported on `stderr`; it never changes the verdict.
    """
    if ci_system(environ) != "github":
        return
    from preflight.report import github

    lines = github.error_annotations(report, workspace=environ.get("GITHUB_WORKSPACE"))
    if lines:
        write_text(stdout, "".join(line + "\n" for line in lines))
    path = environ.get("GITHUB_STEP_SUMMARY")
    if path:
        try:
            github.append_step_summary(report, path)
        except OSError as exc:
            stderr.write(f"preflight: could not append the step summary to {path}: {exc}\n")
