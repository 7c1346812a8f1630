"""Specification of sharding (`preflight.shard`, ``preflight check --shard I/N``): every target
is checked by exactly one of the N jobs, each job computes its share on its own from the names
alone, and under GitLab ``parallel:`` the share comes from ``CI_NODE_INDEX``/``CI_NODE_TOTAL``."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from preflight import cli, lab
from preflight.model import Target
from preflight.shard import Shard, ShardError, parse_shard, partition, select, shard_from_environ


def targets(*names: str) -> list[Target]:
    return [Target(name=name, host="127.0.0.1") for name in names]


# --- I/N ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shard"), [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3 / 3 ", Shard(3, 3))]
)
def test_a_shard_is_written_i_of_n_counted_from_1(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == f"{shard.index}/{shard.total}"


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "-1/2", "1/2/3", "", "1/10001"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ShardError):
        parse_shard(text)


# --- the partition --------------------------------------------------------------------------------

names = st.lists(st.text(min_size=1, max_size=12), min_size=0, max_size=60, unique=True)


@given(names, st.integers(min_value=1, max_value=12))
def test_every_target_is_in_exactly_one_shard(found: list[str], total: int) -> None:
    shards = partition(targets(*found), total)
    assert len(shards) == total
    assigned = [t.name for shard in shards for t in shard]
    assert sorted(assigned) == sorted(found)


@given(names, st.integers(min_value=1, max_value=12))
def test_shards_differ_in_size_by_at_most_one_and_none_is_empty_while_targets_last(
    found: list[str], total: int
) -> None:
    sizes = [len(shard) for shard in partition(targets(*found), total)]
    assert max(sizes) - min(sizes) <= 1
    assert sum(1 for size in sizes if size) == min(total, len(found))


@given(names, st.integers(min_value=1, max_value=12), st.randoms(use_true_random=False))
def test_the_partition_depends_on_the_names_only_not_on_their_order(
    found: list[str], total: int, rng: random.Random
) -> None:
    shuffled = list(found)
    rng.shuffle(shuffled)
    for index in range(1, total + 1):
        a = {t.name for t in select(targets(*found), Shard(index, total))}
        b = {t.name for t in select(targets(*shuffled), Shard(index, total))}
        assert a == b


def test_a_shard_keeps_the_order_of_the_file() -> None:
    chosen = select(targets("zulu", "alpha", "mike", "bravo"), Shard(1, 2))
    assert [t.name for t in chosen] == ["alpha", "mike"]  # sorted: alpha bravo mike zulu


def test_the_partition_is_written_down() -> None:
    # Sorted names dealt round-robin. A change here moves targets between runners: make it
    # on purpose.
    shards = partition(targets(*(f"sftp-{n:02}" for n in range(1, 8))), 3)
    assert [[t.name for t in shard] for shard in shards] == [
        ["sftp-01", "sftp-04", "sftp-07"],
        ["sftp-02", "sftp-05"],
        ["sftp-03", "sftp-06"],
    ]


# --- GitLab parallel: -----------------------------------------------------------------------------


def test_gitlab_parallel_jobs_name_their_shard() -> None:
    environ = {"GITLAB_CI": "true", "CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "5"}
    assert shard_from_environ(environ) == Shard(2, 5)


@pytest.mark.parametrize(
    "environ",
    [
        {"GITLAB_CI": "true", "CI_NODE_TOTAL": "1"},  # a job without parallel:
        {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "5"},  # not GitLab: another meaning
        {},
    ],
)
def test_no_shard_outside_gitlab_parallel(environ: dict[str, str]) -> None:
    assert shard_from_environ(environ) is None


def test_nonsense_node_variables_are_an_error_naming_them() -> None:
    with pytest.raises(ShardError, match="CI_NODE_INDEX='7' and CI_NODE_TOTAL='3'"):
        shard_from_environ({"GITLAB_CI": "true", "CI_NODE_INDEX": "7", "CI_NODE_TOTAL": "3"})


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture
def refused_ports() -> Iterator[list[int]]:
    with lab.RefusedPort() as a, lab.RefusedPort() as b, lab.RefusedPort() as c:
        yield [a.port, b.port, c.port]


def checked(
    tmp_path: Path, ports: list[int], *extra: str, environ: dict[str, str] | None = None
) -> tuple[int, list[str], str]:
    """Run `preflight check` on the given ports (refused: instant) and list what it checked."""
    report = tmp_path / "report.json"
    specs = [f"127.0.0.1:{port}" for port in ports]
    out, err = io.StringIO(), io.StringIO()
    status = cli.run(
        ["check", *specs, "--stages", "dns,tcp", "--json", str(report), *extra],
        stdout=out,
        stderr=err,
        environ=environ or {},
    )
    if not report.exists():
        return status, [], out.getvalue() + err.getvalue()
    names = [t["name"] for t in json.loads(report.read_text())["targets"]]
    return status, names, out.getvalue() + err.getvalue()


def test_check_with_shard_checks_only_that_shard(tmp_path: Path, refused_ports: list[int]) -> None:
    everything = sorted(f"127.0.0.1:{port}" for port in refused_ports)
    seen = []
    for index in (1, 2):
        status, names, out = checked(tmp_path, refused_ports, "--shard", f"{index}/2")
        assert status == 1
        assert f"shard {index}/2" in out  # the vantage line names the shard
        seen += names
    assert sorted(seen) == everything


def test_gitlab_parallel_shards_without_the_option(
    tmp_path: Path, refused_ports: list[int]
) -> None:
    environ = {"GITLAB_CI": "true", "CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3"}
    _, names, _ = checked(tmp_path, refused_ports, environ=environ)
    assert names == [sorted(f"127.0.0.1:{port}" for port in refused_ports)[2]]
    # --shard 1/1 checks everything again, e.g. in a parallel:matrix job that is not a shard.
    _, names, _ = checked(tmp_path, refused_ports, "--shard", "1/1", environ=environ)
    assert len(names) == 3


def test_a_shard_with_no_targets_passes_and_says_so(
    tmp_path: Path, refused_ports: list[int]
) -> None:
    status, names, out = checked(tmp_path, refused_ports[:1], "--shard", "2/2")
    assert (status, names) == (0, [])
    assert "shard 2/2: no targets (1 target dealt to 2 shards); nothing to check" in out


@pytest.mark.parametrize(
    ("extra", "environ", "message"),
    [
        (["--shard", "3/2"], {}, "argument --shard: the shard must be 1..2, got 3"),
        (
            [],
            {"GITLAB_CI": "true", "CI_NODE_INDEX": "x", "CI_NODE_TOTAL": "2"},
            "CI_NODE_INDEX='x'",
        ),
    ],
)
def test_a_bad_shard_is_a_usage_error(
    tmp_path: Path,
    refused_ports: list[int],
    extra: list[str],
    environ: dict[str, str],
    message: str,
) -> None:
    status, names, out = checked(tmp_path, refused_ports, *extra, environ=environ)
    assert (status, names) == (2, [])
    assert message in out
