"""The CI templates in ci-examples/ are specified by running them.

Each file is parsed and its structure checked (the keys GitLab and GitHub require, a ``shell`` on
every ``run`` step, no ``${{ }}`` inside a script, artifact paths that match the report flags the
script uses, a job timeout above the run deadline). Then its script lines are executed the way
the CI system would — one shell per GitLab job with the job's variables and ``CI_*``; each ``run``
step under ``bash -eo pipefail`` with its ``env:`` evaluated and ``GITHUB_OUTPUT``/
``GITHUB_STEP_SUMMARY`` files — against the lab (a dropped, a refused and a healthy target), with
``pip install`` replaced by this checkout on ``PATH``/``PYTHONPATH``. What must come out: the exit
status, the JUnit and JSON files where the artifacts are collected, and (sharded) one merged
report.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import fromstring as parse

import ci_lab
import junitparser
import pytest
import yaml
from gitlab_parser import gitlab_view

REPO = ci_lab.REPO
GITLAB_TEMPLATE = REPO / "ci-examples" / "gitlab" / "preflight.gitlab-ci.yml"
GITLAB_EXAMPLE = REPO / "ci-examples" / "gitlab" / "example.gitlab-ci.yml"
ACTION = REPO / "ci-examples" / "github" / "action.yml"
WORKFLOW = REPO / "ci-examples" / "github" / "preflight.yml"
ACTION_REF = re.compile(r"[\w.-]+/[\w.-]+/ci-examples/github@[\w.-]+")
JOB_TIMEOUT = 180  # seconds for one simulated CI job; a hang fails the test instead of CI


@pytest.fixture(scope="module")
def trio() -> Iterator[ci_lab.Trio]:
    with ci_lab.trio() as lab:
        yield lab


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def seconds(duration: str) -> int:
    """A GitLab duration such as ``5m``, ``1h 30m`` or ``90 seconds``."""
    units = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600}
    total = 0
    for number, unit in re.findall(r"(\d+)\s*([a-z]+)", duration):
        total += int(number) * units[unit.rstrip("s") if unit not in units else unit]
    assert total, f"not a duration: {duration!r}"
    return total


def matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def produced(workspace: Path) -> list[str]:
    return sorted(
        str(p.relative_to(workspace))
        for p in workspace.rglob("*")
        if p.is_file() and p.suffix in (".xml", ".json")
    )


def verdicts(report: Path) -> dict[str, str | None]:
    data = json.loads(report.read_text())
    return {t["name"]: t["failure"]["code"] if t["failure"] else None for t in data["targets"]}


# --- GitLab ---------------------------------------------------------------------------------------


def deep_merge(base: Any, override: Any) -> Any:
    """GitLab's `extends`: mappings merge key by key, everything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value)
        return merged
    return override


def gitlab_pipeline(path: Path) -> dict[str, Any]:
    """The pipeline after `include: local` and `extends`, as GitLab resolves them."""
    config = load(path)
    merged: dict[str, Any] = {}
    for include in config.pop("include", []):
        included = REPO / include["local"]
        assert included.is_file(), f"include: {include['local']} does not exist"
        merged.update(gitlab_pipeline(included))
    merged.update(config)

    def resolved(job: Any) -> Any:  # `extends` chains, as deep as GitLab allows
        if not (isinstance(job, dict) and "extends" in job):
            return job
        parent = resolved(merged[job["extends"]])
        return deep_merge(parent, {k: v for k, v in job.items() if k != "extends"})

    return {name: resolved(job) for name, job in merged.items()}


def run_gitlab_job(
    job: Mapping[str, Any],
    workspace: Path,
    environ: Mapping[str, str],
    *,
    node: tuple[int, int] | None = None,
    gitlab_ci: str = "true",
) -> subprocess.CompletedProcess[str]:
    """Run the job's script in `workspace` as a GitLab runner would (one ``sh -e``); with
    ``gitlab_ci="false"`` as gitlab-ci-local does."""
    lines = [line for line in job["script"] if "pip install" not in line]
    env = {
        **environ,
        "CI": "true",
        "GITLAB_CI": gitlab_ci,
        "CI_JOB_URL": f"https://gitlab.example.com/acme/deploy/-/jobs/{100 + (node or (1, 1))[0]}",
        **{key: str(value) for key, value in job.get("variables", {}).items()},
    }
    if node is not None:
        env["CI_NODE_INDEX"], env["CI_NODE_TOTAL"] = map(str, node)
    else:
        env["CI_NODE_TOTAL"] = "1"
    return subprocess.run(
        ["sh", "-e", "-c", "\n".join(lines)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT,
        check=False,
    )


def test_the_gitlab_template_defines_the_hidden_jobs() -> None:
    template = load(GITLAB_TEMPLATE)
    # Hidden: nothing runs by itself.
    assert set(template) == {".preflight-install", ".preflight", ".preflight-merge"}
    job = gitlab_pipeline(GITLAB_TEMPLATE)[".preflight"]
    assert job["stage"] == ".pre"
    assert any(line.startswith("pip install") for line in job["script"])
    assert job["script"][-1].startswith("preflight check ")  # its status is the job's status
    assert job["artifacts"]["when"] == "always"
    assert "junit" in job["artifacts"]["reports"]


def test_the_gitlab_image_has_what_the_default_package_and_the_diagnoses_need() -> None:
    # pip needs git for a git+ URL; preflight compares the key exchange with the runner's ssh
    # and prints ssh/sftp/nc commands: the -slim and alpine python images have none of them.
    pipeline = gitlab_pipeline(GITLAB_TEMPLATE)
    for name in (".preflight", ".preflight-merge"):
        job = pipeline[name]
        assert job["variables"]["PREFLIGHT_PACKAGE"].endswith(".tar.gz")  # a tag's archive
        assert re.fullmatch(r"python:3\.\d+", job["image"]), job["image"]


def test_the_gitlab_jobs_keep_pips_downloads_between_pipelines() -> None:
    for name, job in gitlab_pipeline(GITLAB_TEMPLATE).items():
        if "script" not in job:
            continue
        cache_dir = job["variables"]["PIP_CACHE_DIR"]
        assert cache_dir.startswith("$CI_PROJECT_DIR/"), name  # GitLab caches only in there
        assert job["cache"]["paths"] == [cache_dir.removeprefix("$CI_PROJECT_DIR/")], name
        assert job["cache"]["when"] == "always", name  # a failing check saves it too


def test_the_gitlab_job_timeout_leaves_room_above_the_run_deadline() -> None:
    job = load(GITLAB_TEMPLATE)[".preflight"]
    deadline = int(job["variables"]["PREFLIGHT_DEADLINE"])
    assert "$PREFLIGHT_DEADLINE" in job["script"][-1]
    assert seconds(job["timeout"]) >= deadline + 60  # image pull and pip install


def test_the_gitlab_example_runs_preflight_before_the_deploy() -> None:
    pipeline = gitlab_pipeline(GITLAB_EXAMPLE)
    assert pipeline["preflight"]["stage"] == ".pre"
    assert "preflight" in pipeline["deploy"]["needs"]
    assert pipeline["deploy"]["stage"] in pipeline["stages"]
    assert pipeline["preflight-summary"]["needs"] == ["preflight"]
    assert pipeline["preflight-summary"]["when"] == "always"


def test_the_gitlab_template_passes_and_fails_with_the_checks(
    tmp_path: Path, trio: ci_lab.Trio
) -> None:
    job = gitlab_pipeline(GITLAB_TEMPLATE)[".preflight"]
    artifacts = job["artifacts"]
    for healthy_only, expected in ((True, 0), (False, 1)):
        workspace = tmp_path / f"healthy-{healthy_only}"
        trio.write_config(workspace / "checks.yaml", healthy_only=healthy_only)
        environ = ci_lab.base_environ(tmp_path, trio.key_text)
        done = run_gitlab_job(job, workspace, environ)
        assert done.returncode == expected, done.stdout + done.stderr
        files = produced(workspace)
        assert files == ["preflight-reports/preflight-1.json", "preflight-reports/preflight-1.xml"]
        assert all(matches(f, artifacts["paths"]) for f in files)
        assert fnmatch.fnmatch(files[1], artifacts["reports"]["junit"])
        assert "\x1b[0Ksection_start:" in done.stdout  # folded for GitLab
        assert "job https://gitlab.example.com/acme/deploy/-/jobs/101" in done.stdout
    assert verdicts(workspace / files[0]) == ci_lab.EXPECTED


def test_a_matrix_job_that_is_not_a_shard_checks_every_target(
    tmp_path: Path, trio: ci_lab.Trio
) -> None:
    # GitLab sets CI_NODE_INDEX/CI_NODE_TOTAL under parallel:matrix too.
    job = gitlab_pipeline(GITLAB_TEMPLATE)[".preflight"]
    trio.write_config(tmp_path / "checks.yaml")
    environ = ci_lab.base_environ(tmp_path, trio.key_text)
    done = run_gitlab_job(job, tmp_path, environ, node=(2, 3))
    assert verdicts(tmp_path / "preflight-reports/preflight-2.json") == {
        "port-closed": "tcp.refused"
    }
    job["variables"]["PREFLIGHT_SHARD"] = "1/1"
    done = run_gitlab_job(job, tmp_path, environ, node=(2, 3))
    assert done.returncode == 1, done.stdout + done.stderr
    assert verdicts(tmp_path / "preflight-reports/preflight-2.json") == ci_lab.EXPECTED


def test_the_gitlab_example_shards_over_parallel_jobs_and_merges(
    tmp_path: Path, trio: ci_lab.Trio
) -> None:
    pipeline = gitlab_pipeline(GITLAB_EXAMPLE)
    job, merge = pipeline["preflight"], pipeline["preflight-summary"]
    total = int(job["parallel"])
    environ = ci_lab.base_environ(tmp_path, trio.key_text)
    merge_workspace = tmp_path / "merge"
    checked: dict[str, str | None] = {}
    for index in range(1, total + 1):
        workspace = tmp_path / f"node-{index}"
        trio.write_config(workspace / job["variables"]["PREFLIGHT_CONFIG"])
        done = run_gitlab_job(job, workspace, environ, node=(index, total))
        assert done.returncode == 1, done.stdout + done.stderr  # each shard holds a failure
        files = produced(workspace)
        assert files == [f"preflight-reports/preflight-{index}.{ext}" for ext in ("json", "xml")]
        assert all(matches(f, job["artifacts"]["paths"]) for f in files)
        assert fnmatch.fnmatch(files[1], job["artifacts"]["reports"]["junit"])
        shard = verdicts(workspace / files[0])
        assert not set(shard) & set(checked), "a target was checked by two shards"
        checked.update(shard)
        for artifact in files:  # what `needs:` downloads into the merge job
            (merge_workspace / artifact).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(workspace / artifact, merge_workspace / artifact)
    assert checked == ci_lab.EXPECTED

    done = run_gitlab_job(merge, merge_workspace, environ)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 targets: 1 ok, 2 failed" in done.stdout
    assert all((merge_workspace / path).is_file() for path in merge["artifacts"]["paths"])
    assert verdicts(merge_workspace / "preflight.json") == ci_lab.EXPECTED
    suites = junitparser.JUnitXml.fromfile(str(merge_workspace / "preflight.xml"))
    assert {suite.name for suite in suites} == set(ci_lab.EXPECTED)


def test_the_parallel_jobs_split_the_targets_even_where_gitlab_ci_is_not_true(
    tmp_path: Path, trio: ci_lab.Trio
) -> None:
    # gitlab-ci-local sets GITLAB_CI=false. If preflight alone chose the shard from CI_NODE_*,
    # every job would check every target, and GitLab, keeping one test per classname and name
    # of a `parallel:` job, would show half of them.
    job = gitlab_pipeline(GITLAB_EXAMPLE)["preflight"]
    total = int(job["parallel"])
    environ = ci_lab.base_environ(tmp_path, trio.key_text)
    checked: list[str] = []
    junit_files = []
    for index in range(1, total + 1):
        workspace = tmp_path / f"node-{index}"
        trio.write_config(workspace / job["variables"]["PREFLIGHT_CONFIG"])
        done = run_gitlab_job(job, workspace, environ, node=(index, total), gitlab_ci="false")
        assert f"shard {index}/{total}" in done.stdout, done.stdout + done.stderr
        checked.extend(verdicts(workspace / f"preflight-reports/preflight-{index}.json"))
        junit_files.append((workspace / f"preflight-reports/preflight-{index}.xml").read_text())
    assert sorted(checked) == sorted(ci_lab.EXPECTED)  # each target once
    shown = gitlab_view(*junit_files)
    assert len(shown) == sum(len(suite.findall(".//testcase")) for suite in map(parse, junit_files))


# --- GitHub ---------------------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(text: Any, context: Mapping[str, Any]) -> str:
    """The ``${{ a.b.c }}`` property look-ups these files use (a missing property is '')."""

    def lookup(match: re.Match[str]) -> str:
        path = match[1]
        assert re.fullmatch(r"[\w-]+(\.[\w-]+)*", path), f"unsupported expression {path!r}"
        value: Any = context
        root, *rest = path.split(".")
        assert root in context, f"unknown context {root!r}"
        for key in [root, *rest]:
            value = value.get(key, "") if isinstance(value, Mapping) else ""
        return str(value)

    return EXPRESSION.sub(lookup, str(text))


def outputs_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def run_action(
    with_: Mapping[str, Any],
    workspace: Path,
    environ: Mapping[str, str],
    context: Mapping[str, Any],
) -> tuple[int, dict[str, str], str]:
    """Run ci-examples/github/action.yml: its status, its outputs and the step's log."""
    action = load(ACTION)
    workspace.mkdir(parents=True, exist_ok=True)
    inputs = {
        name: evaluate(with_[name], context) if name in with_ else str(spec.get("default", ""))
        for name, spec in action["inputs"].items()
    }
    ctx: dict[str, Any] = {"inputs": inputs, "steps": {}}
    status, log = 0, ""
    for number, step in enumerate(action["runs"]["steps"]):
        if "uses" in step:
            if step["uses"].startswith("actions/cache@"):
                continue  # restores pip's downloads; the install it serves is skipped here
            assert step["uses"].startswith("actions/setup-python@")
            assert evaluate(step["with"]["python-version"], ctx) == inputs["python-version"]
            continue
        if "pip install" in step["run"]:
            continue  # this checkout is on PATH and PYTHONPATH instead
        output = workspace.parent / f"{workspace.name}-output-{number}"
        output.write_text("")
        env = {
            **environ,
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(ACTION.parent),
            "GITHUB_OUTPUT": str(output),
            **{key: evaluate(value, ctx) for key, value in step.get("env", {}).items()},
        }
        script = workspace.parent / f"{workspace.name}-step-{number}.sh"
        script.write_text(step["run"])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT,
            check=False,
        )
        log += done.stdout + done.stderr
        if "id" in step:
            ctx["steps"][step["id"]] = {"outputs": outputs_file(output)}
        status = done.returncode
        if status:
            break
    outputs = {name: evaluate(spec["value"], ctx) for name, spec in action["outputs"].items()}
    return status, outputs, log


def run_steps(steps: list[dict[str, Any]], workspace: Path, environ: Mapping[str, str]) -> str:
    """Run a workflow job's own `run` steps (not `uses`), skipping the pip install."""
    log = ""
    for step in steps:
        if "run" not in step or "pip install" in step["run"]:
            continue
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace,
            env={**environ, "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace)},
            capture_output=True,
            text=True,
            timeout=JOB_TIMEOUT,
            check=False,
        )
        log += done.stdout + done.stderr + f"\n[exit {done.returncode}]\n"
    return log


def all_steps() -> Iterator[dict[str, Any]]:
    yield from load(ACTION)["runs"]["steps"]
    for job in load(WORKFLOW)["jobs"].values():
        yield from job["steps"]


def test_the_action_is_a_composite_action_with_the_documented_interface() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {
        "config",
        "targets",
        "deadline",
        "junit",
        "json",
        "shard",
        "python-version",
        "package",
    }
    assert all("description" in spec and "default" in spec for spec in action["inputs"].values())
    assert {name: spec["value"] for name, spec in action["outputs"].items()} == {
        "ok": "${{ steps.check.outputs.ok }}",
        "junit": "${{ steps.check.outputs.junit }}",
        "json": "${{ steps.check.outputs.json }}",
    }


def test_every_run_step_has_a_shell_and_no_expression_in_its_script() -> None:
    steps = [step for step in all_steps() if "run" in step]
    assert steps
    for step in steps:
        assert step.get("shell") == "bash", step
        assert "${{" not in step["run"], f"an expression inside a script: {step['run']!r}"


def test_every_input_reaches_the_action_and_only_through_env_or_with() -> None:
    action = load(ACTION)
    used: set[str] = set()
    for step in action["runs"]["steps"]:
        for value in [*step.get("env", {}).values(), *step.get("with", {}).values()]:
            used.update(re.findall(r"inputs\.([\w-]+)", str(value)))
    assert used == set(action["inputs"])


def test_a_target_list_cannot_inject_a_command(tmp_path: Path, trio: ci_lab.Trio) -> None:
    workspace = tmp_path / "ws"
    trio.write_config(workspace / "checks.yaml", healthy_only=True)
    environ = ci_lab.base_environ(tmp_path, trio.key_text)
    # Every word is an invalid TARGET (the port is not a number): preflight refuses the list
    # before probing anything, so no name is ever resolved. The shell must not run any of it.
    evil = (
        "127.0.0.1:1;touch${IFS}pwned 127.0.0.1:2$(touch${IFS}pwned2)\n"
        "127.0.0.1:3`touch${IFS}pwned3` 127.0.0.1:4&&touch${IFS}pwned4"
    )
    status, outputs, log = run_action({"targets": evil}, workspace, environ, {})
    assert not list(workspace.glob("pwned*")), log
    assert status == 2 and outputs["ok"] == "false", log
    assert "target '127.0.0.1:1;touch${IFS}pwned': port must be a number" in log


def test_the_action_checks_writes_the_reports_and_sets_its_outputs(
    tmp_path: Path, trio: ci_lab.Trio
) -> None:
    environ = ci_lab.base_environ(tmp_path, trio.key_text)
    for healthy_only, expected in ((True, 0), (False, 1)):
        workspace = tmp_path / f"healthy-{healthy_only}"
        trio.write_config(workspace / "checks.yaml", healthy_only=healthy_only)
        summary = tmp_path / f"summary-{healthy_only}.md"
        env = {**environ, "GITHUB_STEP_SUMMARY": str(summary)}
        status, outputs, log = run_action({"deadline": "30"}, workspace, env, {})
        assert status == expected, log
        assert outputs == {
            "ok": "true" if expected == 0 else "false",
            "junit": "preflight.xml",
            "json": "preflight.json",
        }
        assert produced(workspace) == ["preflight.json", "preflight.xml"]
        assert "::group::sftp-healthy" in log
        assert summary.read_text().startswith("### ✅" if expected == 0 else "### ❌")
    assert verdicts(workspace / "preflight.json") == ci_lab.EXPECTED
    assert log.count("::error title=preflight%3A") == 2


def test_the_config_input_else_the_jobs_preflight_config_else_checks_yaml(
    tmp_path: Path, trio: ci_lab.Trio
) -> None:
    environ = ci_lab.base_environ(tmp_path, trio.key_text)
    workspace = tmp_path / "ws"
    trio.write_config(workspace / "checks.yaml", healthy_only=False)  # fails
    trio.write_config(workspace / "ci" / "healthy.yaml", healthy_only=True)  # passes
    from_job = {**environ, "PREFLIGHT_CONFIG": "ci/healthy.yaml"}
    assert run_action({}, workspace, environ, {})[0] == 1
    assert run_action({}, workspace, from_job, {})[0] == 0
    assert run_action({"config": "checks.yaml"}, workspace, from_job, {})[0] == 1
    assert run_action({"config": "ci/healthy.yaml"}, workspace, environ, {})[0] == 0


def test_the_example_workflow_runs_preflight_first_and_keeps_its_reports() -> None:
    jobs = load(WORKFLOW)["jobs"]
    job = jobs["preflight"]
    (check,) = [s for s in job["steps"] if ACTION_REF.fullmatch(str(s.get("uses", "")))]
    (upload,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-")]
    assert upload["if"] == "always()"  # the reports are kept when the check fails
    assert upload["with"]["path"].split() == [check["with"]["junit"], check["with"]["json"]]
    assert job["timeout-minutes"] * 60 >= int(check["with"]["deadline"]) + 60
    assert jobs["deploy"]["needs"] == "preflight"
    assert job["outputs"]["ok"] == f"${{{{ steps.{check['id']}.outputs.ok }}}}"


def test_the_example_workflow_job_runs_the_action_against_the_lab(
    tmp_path: Path, trio: ci_lab.Trio
) -> None:
    job = load(WORKFLOW)["jobs"]["preflight"]
    (check,) = [s for s in job["steps"] if ACTION_REF.fullmatch(str(s.get("uses", "")))]
    (upload,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-")]
    workspace = tmp_path / "ws"
    trio.write_config(workspace / check["with"]["config"])
    context = {"secrets": {"SSH_PRIVATE_KEY": trio.key_text}, "vars": {}}
    environ = {
        **ci_lab.base_environ(tmp_path, ""),
        **{key: evaluate(value, context) for key, value in check["env"].items()},
    }
    status, outputs, log = run_action(check["with"], workspace, environ, context)
    assert (status, outputs["ok"]) == (1, "false"), log
    assert all((workspace / path).is_file() for path in upload["with"]["path"].split())
    assert verdicts(workspace / outputs["json"]) == ci_lab.EXPECTED


def test_the_example_matrix_shards_the_targets_and_merges_them(
    tmp_path: Path, trio: ci_lab.Trio
) -> None:
    jobs = load(WORKFLOW)["jobs"]
    fleet, summary_job = jobs["preflight-fleet"], jobs["preflight-fleet-summary"]
    assert summary_job["needs"] == "preflight-fleet" and summary_job["if"] == "always()"
    assert fleet["strategy"]["fail-fast"] is False
    shards = fleet["strategy"]["matrix"]["shard"]
    (check,) = [s for s in fleet["steps"] if ACTION_REF.fullmatch(str(s.get("uses", "")))]
    (upload,) = [s for s in fleet["steps"] if str(s.get("uses", "")).startswith("actions/upload-")]
    (download,) = [
        s for s in summary_job["steps"] if str(s.get("uses", "")).startswith("actions/download-")
    ]
    artifacts = tmp_path / "artifacts"
    checked: dict[str, str | None] = {}
    for job_index, shard in enumerate(shards):
        context = {
            "matrix": {"shard": shard},
            "strategy": {"job-index": job_index, "job-total": len(shards)},
            "secrets": {"SSH_PRIVATE_KEY": trio.key_text},
        }
        workspace = tmp_path / f"shard-{shard}"
        trio.write_config(workspace / check["with"]["config"])
        environ = {
            **ci_lab.base_environ(tmp_path, ""),
            **{key: evaluate(value, context) for key, value in check["env"].items()},
        }
        status, outputs, log = run_action(check["with"], workspace, environ, context)
        assert status == (0 if outputs["ok"] == "true" else 1), log
        assert f"shard {shard}/{len(shards)}" in log
        name = evaluate(upload["with"]["name"], context)
        assert fnmatch.fnmatch(name, download["with"]["pattern"])
        uploaded = workspace / upload["with"]["path"]
        assert {outputs["junit"], outputs["json"]} <= set(produced(workspace))
        assert all(matches(path, [upload["with"]["path"]]) for path in produced(workspace))
        checked.update(verdicts(workspace / outputs["json"]))
        shutil.copytree(uploaded, artifacts / name)
    assert checked == ci_lab.EXPECTED

    # download-artifact with merge-multiple: every artifact's files in one directory.
    workspace = tmp_path / "summary"
    target = workspace / download["with"]["path"]
    target.mkdir(parents=True)
    for artifact in artifacts.iterdir():
        shutil.copytree(artifact, target, dirs_exist_ok=True)
    summary = tmp_path / "summary.md"
    environ = {**ci_lab.base_environ(tmp_path, ""), "GITHUB_STEP_SUMMARY": str(summary)}
    log = run_steps(summary_job["steps"], workspace, environ)
    assert "[exit 1]" in log and "3 targets: 1 ok, 2 failed" in log, log
    assert verdicts(workspace / "preflight.json") == ci_lab.EXPECTED
    assert (workspace / "preflight.xml").is_file()
    text = summary.read_text()
    assert text.startswith("### ❌ preflight: 2 of 3 targets failed")
    assert all(f"shard {n}/3" in text for n in shards)
