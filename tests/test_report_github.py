"""Specification of the GitHub Actions output (`preflight.report.github`): workflow-command
escaping, ``::error`` annotations, log groups and the Markdown step summary — golden where the
exact text is the contract — and the command line under ``GITHUB_ACTIONS=true``."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import report_samples as samples

from preflight import cli, lab, vantage
from preflight.model import Diagnosis, Report, Stage, StageResult, Status, TargetResult
from preflight.report import github

VANTAGE = vantage.Vantage(
    runner="runner-7",
    ci="github",
    job_url="https://github.com/acme/deploy/actions/runs/42",
    shard="1/2",
)


def stamped(report: Report) -> Report:
    vantage.stamp(report, VANTAGE, route=lambda host, port: None)
    return report


def failed_target(name: str, summary: str = "refused", hint: str = "open the port") -> TargetResult:
    return TargetResult(
        target=samples.target(name),
        duration_s=0.01,
        stages=[
            StageResult(Stage.DNS, Status.PASS, 0.001, "resolved"),
            StageResult(Stage.TCP, Status.FAIL, 0.002, "", Diagnosis("tcp.refused", summary, hint)),
        ],
    )


# --- workflow-command escaping --------------------------------------------------------------------


def test_message_data_escapes_percent_cr_and_lf_and_nothing_else() -> None:
    assert github.escape_data("100% lost\r\nnext: a,b") == "100%25 lost%0D%0Anext: a,b"


def test_property_values_also_escape_colon_and_comma() -> None:
    assert github.escape_property("100% lost\r\nnext: a,b") == "100%25 lost%0D%0Anext%3A a%2Cb"


def test_an_escape_in_the_input_is_not_taken_for_one() -> None:
    # "%0A" typed by someone must stay three characters, not become a newline.
    assert github.escape_data("%0A") == "%250A"
    assert github.escape_property("%3A") == "%253A"


# --- annotations ----------------------------------------------------------------------------------


def test_a_failed_target_becomes_one_error_annotation_golden() -> None:
    assert github.error_annotations(stamped(samples.failing_report())) == [
        "::error title=preflight%3A sftp-dr failed at tcp,file=checks.yaml,line=12::"
        "tcp.timeout: no answer to SYN from 203.0.113.7:2222 within 3.0s (packets silently "
        "dropped)%0Ahint: a firewall drops traffic to port 2222: ask for the runner's egress IP "
        "to be allowed%0Achecked from runner-7"
    ]


def test_names_and_messages_with_command_syntax_are_escaped() -> None:
    result = failed_target("db: eu,west", summary="100% of SYNs lost", hint="ask ops\nthen retry")
    (line,) = github.error_annotations(Report([result], samples.STARTED_AT))
    assert line == (
        "::error title=preflight%3A db%3A eu%2Cwest failed at tcp,file=checks.yaml,line=12::"
        "tcp.refused: 100%25 of SYNs lost%0Ahint: ask ops then retry"
    )
    assert "\n" not in line and "\r" not in line


def test_a_checks_yaml_under_the_workspace_is_named_relative_to_it() -> None:
    result = failed_target("a")
    result = replace(result, target=replace(result.target, origin="/w/repo/ci/checks.yaml:7"))
    (line,) = github.error_annotations(Report([result], samples.STARTED_AT), workspace="/w/repo")
    assert ",file=ci/checks.yaml,line=7::" in line


def test_a_target_from_the_command_line_has_no_file() -> None:
    result = failed_target("a")
    result = replace(result, target=replace(result.target, origin="command line"))
    (line,) = github.error_annotations(Report([result], samples.STARTED_AT))
    assert line.startswith("::error title=preflight%3A a failed at tcp::")


def test_at_most_ten_annotations_the_last_counting_the_rest() -> None:
    report = Report([failed_target(f"t{n:02}") for n in range(12)], samples.STARTED_AT)
    lines = github.error_annotations(report)
    assert len(lines) == github.MAX_ANNOTATIONS == 10
    assert all(line.startswith("::error ") for line in lines)
    assert "t08 failed" in lines[8]
    assert lines[9].startswith("::error title=preflight%3A 3 more targets failed::t09, t10, t11")


def test_exactly_ten_failures_are_ten_annotations_of_their_own() -> None:
    report = Report([failed_target(f"t{n}") for n in range(10)], samples.STARTED_AT)
    assert [line.split("::")[1] for line in github.error_annotations(report)] == [
        f"error title=preflight%3A t{n} failed at tcp,file=checks.yaml,line=12" for n in range(10)
    ]


def test_a_passing_run_has_no_annotations_and_an_interrupted_one_warns() -> None:
    assert github.error_annotations(samples.passing_report()) == []
    (warning,) = github.error_annotations(samples.interrupted_report())
    assert warning == (
        "::warning title=preflight interrupted::the run was interrupted: 1 target(s) did not finish"
    )


def test_credentials_never_reach_an_annotation() -> None:
    text = "\n".join(github.error_annotations(samples.secrets_report()))
    assert samples.PASSWORD not in text and "open-sesame-phrase" not in text


# --- groups ---------------------------------------------------------------------------------------


def test_each_target_is_one_group_and_the_count_stays_outside() -> None:
    text = github.render_groups(samples.failing_report(), color=False)
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("::")] == [
        "::group::sftp-prod  sftp.example.com:2222  OK  0.234s",
        "::endgroup::",
        "::group::sftp-dr  sftp-dr.example.com:2222  FAILED at tcp  3.02s",
        "::endgroup::",
    ]
    opened = lines.index("::group::sftp-dr  sftp-dr.example.com:2222  FAILED at tcp  3.02s")
    inside = lines[opened + 1 : lines.index("::endgroup::", opened)]
    assert inside[1].startswith("  ✗ tcp ") and inside[-1].startswith("  – sftp ")
    assert lines[-1] == "2 targets: 1 ok, 1 failed (3.02s)"


def test_hostile_text_never_starts_a_line_as_a_workflow_command() -> None:
    report = samples.hostile_report()
    banner = "::error::pwned ::add-mask::x\r\n::set-output name=a::b"
    report.targets[0].stages[2].detail = banner
    text = github.render_groups(report, color=False)
    commands = [line for line in text.splitlines() if line.lstrip().startswith("::")]
    assert [c.split("::")[1] for c in commands] == ["group", "endgroup"]


# --- step summary ---------------------------------------------------------------------------------

SUMMARY_GOLDEN = """\
### ❌ preflight: 1 of 2 targets failed

Checked from `runner-7`, shard 1/2, [CI job](https://github.com/acme/deploy/actions/runs/42).

| Target | Stage | Verdict | Code | Time |
|---|---|---|---|---|
| **sftp-dr**<br>sftp-dr.example.com:2222 | tcp | ❌ failed | `tcp.timeout` | 3.02s |
| **sftp-prod**<br>sftp.example.com:2222<br>from 198.51.100.5:40022 | dns → sftp | ✅ passed |  | \
0.234s |

<details><summary><b>sftp-dr</b> at tcp: <code>tcp.timeout</code></summary>
<p>no answer to SYN from 203.0.113.7:2222 within 3.0s (packets silently dropped)</p>
<p><b>Hint:</b> a firewall drops traffic to port 2222: ask for the runner's egress IP to be \
allowed</p>
</details>

"""


def test_step_summary_golden() -> None:
    assert github.step_summary(stamped(samples.failing_report())) == SUMMARY_GOLDEN


def test_all_passed_and_interrupted_headings() -> None:
    assert github.step_summary(samples.passing_report()).startswith(
        "### ✅ preflight: the target passed\n"
    )
    assert github.step_summary(Report([], samples.STARTED_AT)).startswith(
        "### ✅ preflight: no targets to check\n"
    )
    interrupted = github.step_summary(samples.interrupted_report())
    assert interrupted.startswith("### ⚠️ preflight: interrupted, 1 of 2 targets did not finish")
    assert "| **sftp-dr**<br>sftp.example.com:2222 | tcp | ⚠️ interrupted |" in interrupted


# GitHub renders a Markdown table at its content width (about 1012 px in a job summary) with
# `width: max-content`: a wider table scrolls sideways and the columns on the right are out of
# sight. A character-count proxy: 8 px per character (GitHub's 14 px sans-serif averages less),
# 13 px of padding on each side of a cell; a cell's widest line is the one between `<br>`s.
CONTENT_WIDTH_PX, PX_PER_CHAR, CELL_PADDING_PX = 1012, 8, 2 * 13


def table_width_px(markdown: str) -> int:
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    widths: dict[int, int] = {}
    for row in rows:
        cells = re.split(r"(?<!\\)\|", row.strip())[1:-1]
        for column, cell in enumerate(cells):
            shown = re.sub(r"\*\*|`|\\(?=\S)", "", cell.strip())
            widest = max(len(line) for line in shown.split("<br>"))
            widths[column] = max(widths.get(column, 0), widest)
    return sum(width * PX_PER_CHAR + CELL_PADDING_PX for width in widths.values())


def test_the_table_fits_githubs_content_width() -> None:
    long_names = Report(
        [
            failed_target("sftp-eu-west-1-ingest"),
            samples.passing_result("backup-archive-primary"),
        ],
        samples.STARTED_AT,
    )
    long_names.targets[0].target = samples.target(
        "sftp-eu-west-1-ingest", host="sftp-eu-west-1.ingest.example.com"
    )
    golden_run = (Path(__file__).parent / "golden" / "run" / "github.summary.md").read_text()
    for text in (golden_run, github.step_summary(long_names)):
        assert table_width_px(text) <= CONTENT_WIDTH_PX


def test_the_table_width_proxy_measures_what_github_shows() -> None:
    # A row of the table as it was, with Summary and Hint columns (issue 13 measured such a
    # table at 1740 px on GitHub's page, Hint starting at 1099 px): the proxy must refuse it.
    wide = (
        "| Target | Stage | Verdict | Time | Code | Summary | Hint |\n"
        "| **dropped**<br>127.0.0.1:2222 | tcp | ❌ failed | 1.00s | `tcp.timeout` | "
        + "no answer from 127.0.0.1:2222 in 1.0s: the SYN was silently dropped | "
        + "A firewall or security group is dropping the packets (no reset came back), or the "
        + "host is down behind a filter. |\n"
    )
    assert table_width_px(wide) > CONTENT_WIDTH_PX


def test_every_failure_shows_its_summary_hint_and_commands_below_the_table() -> None:
    report = Report(
        [failed_target(f"t{n}", summary=f"summary {n}", hint=f"hint {n}") for n in range(3)],
        samples.STARTED_AT,
    )
    report.targets[1].stages[1].facts["reproduce"] = [
        "nc -vz -w 3 203.0.113.7 2222",
        "printf 'ls ```x```' | sftp -b - x@y",
    ]
    text = github.step_summary(report)
    table_end = text.index("\n\n", text.index("| Target |"))
    for n in range(3):
        block = text[
            text.index(f"<details><summary><b>t{n}</b> at tcp: <code>tcp.refused</code>") :
        ]
        block = block[: block.index("</details>")]
        assert text.index(block) > table_end  # below the table, not in it
        assert f"\n<p>summary {n}</p>\n" in block and f"\n<p><b>Hint:</b> hint {n}</p>\n" in block
        assert "\n\n" not in block  # one HTML block: GitHub reads no Markdown inside
    # Commands whole, one per line, escaped for HTML (their backticks are only text there).
    shown = "nc -vz -w 3 203.0.113.7 2222\nprintf 'ls ```x```' | sftp -b - x@y"
    assert f"<p>Reproduce it from this runner:</p>\n<pre><code>{shown}</code></pre>" in text


def test_a_command_below_the_table_keeps_its_spaces() -> None:
    report = Report([failed_target("t0")], samples.STARTED_AT)
    report.targets[0].stages[1].facts["reproduce"] = ["printf 'ls \"/srv/a  b\"' | sftp -b - x@y"]
    assert """<pre><code>printf 'ls "/srv/a  b"' | sftp -b - x@y</code></pre>""" in (
        github.step_summary(report)
    )


def test_what_a_server_sends_is_never_a_link_in_a_block() -> None:
    # GitHub autolinks URLs, www. names and e-mail addresses in Markdown, not in HTML.
    said = "see https://evil.example/login and www.evil.example or mail admin@evil.example"
    report = Report(
        [failed_target("x", summary=f"<a href=x>{said}", hint="run `ssh-keygen -y`")],
        samples.STARTED_AT,
    )
    text = github.step_summary(report)
    block = text[text.index("<details>") : text.index("</details>")]
    assert "\n\n" not in block
    assert f"<p>&lt;a href=x&gt;{said}</p>" in block
    assert "<p><b>Hint:</b> run <code>ssh-keygen -y</code></p>" in block


def test_a_hostile_name_in_a_details_line_stays_text() -> None:
    report = Report([failed_target("<img src=x onerror=alert(1)>")], samples.STARTED_AT)
    text = github.step_summary(report)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def unescaped_pipes(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row))


def test_hostile_text_cannot_break_the_table_or_inject_markup() -> None:
    text = github.step_summary(samples.hostile_report())
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(unescaped_pipes(row) == 6 for row in rows)
    assert "<script>" not in text and "\x1b" not in text and "\x00" not in text
    assert "&lt;script&gt;" in text
    # Markdown link and image syntax stays text: inside the block's HTML, Markdown is not read.
    report = Report(
        [failed_target("x", summary="![img](http://evil/) [click](http://evil/)")],
        samples.STARTED_AT,
    )
    text = github.step_summary(report)
    block = text[text.index("<details>") : text.index("</details>")]
    assert "\n\n" not in block and "<p>![img](http://evil/) [click](http://evil/)</p>" in block


def test_credentials_never_reach_the_summary() -> None:
    text = github.step_summary(samples.secrets_report())
    assert samples.PASSWORD not in text and "open-sesame-phrase" not in text


def test_a_summary_over_budget_leaves_rows_out_and_says_how_many() -> None:
    report = Report(
        [failed_target(f"target-{n}", summary="x" * 400) for n in range(300)], samples.STARTED_AT
    )
    text = github.step_summary(report, budget=20_000)
    rows = [line for line in text.splitlines() if line.startswith("| **")]
    assert len(text.encode()) <= 20_000
    assert 0 < len(rows) < 300
    assert f"… {300 - len(rows)} more targets left out" in text


def test_the_summary_is_appended_and_keeps_the_whole_file_under_1_mib(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("earlier step output\n")
    github.append_step_summary(samples.failing_report(), path)
    assert path.read_text().startswith("earlier step output\n### ❌ preflight")
    big = Report(
        [failed_target(f"target-{n}", summary="y" * 400) for n in range(5000)], samples.STARTED_AT
    )
    path.write_text("z" * (github.SUMMARY_LIMIT - 100_000))
    github.append_step_summary(big, path)
    assert path.stat().st_size < github.SUMMARY_LIMIT
    assert "more targets left out" in path.read_text()


# --- the command line under GitHub Actions --------------------------------------------------------


def test_check_under_github_actions_groups_annotates_and_summarises(tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/deploy",
        "GITHUB_RUN_ID": "42",
    }
    out, err = io.StringIO(), io.StringIO()
    with lab.RefusedPort() as refused:
        target = f"127.0.0.1:{refused.port}"
        status = cli.run(
            ["check", target, "--stages", "dns,tcp"], stdout=out, stderr=err, environ=environ
        )
    text = out.getvalue()
    assert status == 1, text + err.getvalue()
    assert text.startswith(f"::group::{target}  FAILED at tcp")  # a host:port name shown once
    assert f"::error title=preflight%3A {target.replace(':', '%3A')} failed at tcp::" in text
    assert "checked from " in text and "job https://github.com/acme/deploy/actions/runs/42" in text
    written = summary.read_text()
    assert "[CI job](https://github.com/acme/deploy/actions/runs/42)" in written
    assert f"| **{target}**<br>{target}<br>from 127.0.0.1 | tcp | ❌ failed |" in written
