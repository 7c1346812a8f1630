"""Which targets a run checks (`preflight.selection`): the file, the TARGETs typed, `--only`,
`--stages` and `--timeout`, as an on-call engineer types them from whatever directory the
shell is in."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from preflight import selection
from preflight.config import ConfigError
from preflight.model import Stage, Target
from preflight.selection import Selection, select
from preflight.status import UsageError

BROKEN = "version: 1\ntargets:\n  - name: web\n    host: ${UNSET_FOR_THE_TEST}\n"
FILE = """\
version: 1
defaults:
  user: deploy
targets:
  - name: sftp-prod
    host: 127.0.0.1
    port: 2222
  - name: sftp-dr
    host: 127.0.0.2
"""


def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """The shell's current directory holds a checks.yaml with `text`."""
    (tmp_path / "checks.yaml").write_text(textwrap.dedent(text))
    monkeypatch.chdir(tmp_path)


def chosen(*targets: str, **asked: object) -> list[Target]:
    warnings: list[str] = []
    found = select(Selection(targets=targets, **asked), {"USER": "ci"}, warn=warnings.append)
    assert not warnings, warnings
    return found


# --- a checks.yaml the TARGETs do not use -------------------------------------------------------


def test_a_broken_checks_yaml_here_does_not_block_an_ad_hoc_check_of_a_host(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, BROKEN)
    warnings: list[str] = []
    (target,) = select(Selection(targets=["127.0.0.1:22022"]), {}, warn=warnings.append)
    assert (target.host, target.port) == ("127.0.0.1", 22022)
    (warning,) = warnings
    assert warning.startswith("not using checks.yaml (checks.yaml:4: ")
    assert "UNSET_FOR_THE_TEST" in warning and "-c none" in warning


@pytest.mark.parametrize(
    "spec",
    [
        "10.0.0.5",
        "sftp.example.com",
        "ops@sftp.example.com:2222",
        "[::1]:22",
        "ssh://web",
        "sftp://ops@web/upload",
    ],
)
def test_plainly_a_host_is_never_taken_for_a_name(spec):
    assert selection._plainly_a_host(spec)


def test_a_bare_word_with_a_broken_file_may_be_one_of_its_targets_so_the_error_stands(
    tmp_path, monkeypatch
):
    here(tmp_path, monkeypatch, BROKEN)
    with pytest.raises(ConfigError) as caught:
        select(Selection(targets=["web"]), {})
    assert str(caught.value).startswith("checks.yaml:4: ")
    assert "'web' may name a target of this file; -c none checks the TARGETs without it" in str(
        caught.value
    )


def test_a_file_named_by_the_user_is_needed_so_its_error_stands(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, BROKEN)
    with pytest.raises(ConfigError):
        select(Selection(config="checks.yaml", targets=["127.0.0.1"]), {})
    with pytest.raises(ConfigError):
        select(Selection(targets=["127.0.0.1"]), {"PREFLIGHT_CONFIG": "checks.yaml"})


def test_dash_c_none_reads_no_file_at_all(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, BROKEN)
    (target,) = chosen("web", config="none")  # a host called web: no file to have a target
    assert (target.name, target.host, target.user) == ("web", "web", "ci")
    with pytest.raises(UsageError, match="-c none reads no file, so name what to check"):
        select(Selection(config="none"), {})


# --- user@NAME, NAME:PORT -----------------------------------------------------------------------


def test_user_at_a_targets_name_is_that_target_as_that_user(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, FILE)
    (target,) = chosen("ops@sftp-prod")
    assert (target.name, target.host, target.port, target.user) == (
        "ops@sftp-prod",  # beside sftp-prod in one run, another check: its own name
        "127.0.0.1",
        2222,
        "ops",
    )
    assert [str(s) for s in target.sources] == ["user ops from command line"]


def test_a_targets_name_with_a_port_is_that_target_on_that_port(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, FILE)
    (target,) = chosen("ops@sftp-dr:2200")
    assert (target.host, target.port, target.user) == ("127.0.0.2", 2200, "ops")
    assert [str(s) for s in target.sources] == [
        "user ops from command line",
        "port 2200 from command line",
    ]


# --- --only, --timeout ----------------------------------------------------------------------------


def test_only_takes_names_separated_by_commas(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, FILE)
    assert [t.name for t in chosen(only=["sftp-dr"])] == ["sftp-dr"]
    assert [t.name for t in chosen(only=["sftp-prod", "sftp-dr"])] == ["sftp-prod", "sftp-dr"]


def test_only_before_a_target_no_longer_swallows_it_and_says_how_to_write_it(tmp_path, monkeypatch):
    # `--only sftp-prod 127.0.0.1:22022`: 127.0.0.1:22022 is a TARGET, and --only picks
    # among the TARGETs given; sftp-prod is not one of them.
    here(tmp_path, monkeypatch, FILE)
    with pytest.raises(UsageError) as caught:
        select(Selection(targets=["127.0.0.1:22022"], only=["sftp-prod"]), {})
    assert str(caught.value) == (
        "--only sftp-prod: not among the TARGETs given (127.0.0.1:22022); --only takes one "
        "NAME, or several separated by commas (--only a,b)"
    )


def test_a_timeout_given_here_wins_and_says_where_it_came_from(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, FILE + "    timeouts: {tcp: 7}\n")
    asked = [(None, 20.0), (Stage.TCP, 10.0)]  # --timeout 20 --timeout tcp=10: the later wins
    prod, dr = chosen(timeouts=asked, stages=(Stage.DNS, Stage.TCP))
    assert (prod.timeouts.tcp, prod.timeouts.banner, prod.timeouts.sftp) == (10.0, 20.0, 20.0)
    assert dr.timeouts.tcp == 10.0  # the file said 7
    # Said for the stages this run has; set for all.
    assert [str(s) for s in dr.sources] == [
        "dns timeout 20s from --timeout",
        "tcp timeout 10s from --timeout",
    ]


# --- review of #14: what an on-call engineer types that once went wrong ---------------------------


def test_a_password_before_the_at_of_a_targets_name_is_refused_not_printed(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, FILE)
    with pytest.raises(ConfigError) as caught:
        chosen("deploy:s3cret@sftp-prod")
    assert "s3cret" not in str(caught.value)
    assert "a password in a TARGET would show in process lists" in str(caught.value)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("ops@sftp-prdo", "ops@sftp-prod"),
        ("sftp-prdo:2200", "sftp-prod:2200"),
        ("sftp-pro@sftp-pro", "sftp-pro@sftp-prod"),  # the name mended, not the user
    ],
)
def test_a_slip_in_the_name_part_is_a_typo_too(tmp_path, monkeypatch, typed, meant):
    here(tmp_path, monkeypatch, FILE)
    with pytest.raises(UsageError, match=f"did you mean '{meant}'"):
        chosen(typed)


@pytest.mark.parametrize(
    ("typed", "options", "said"),
    [
        (
            ["tcp"],
            {},
            "'tcp' is a stage, not a host: --stages takes one stage or a list with commas "
            "(--stages dns,tcp)",
        ),
        (  # --stages dns tcp banner
            ["tcp", "banner"],
            {"stages": (Stage.DNS,)},
            "'tcp' is a stage, not a host: --stages takes one stage or a list with commas "
            "(--stages dns,tcp,banner)",
        ),
        (
            ["banner=20"],
            {},
            "'banner=20' is not a host: --timeout takes STAGE=SECONDS pairs with "
            "commas (--timeout banner=20)",
        ),
        (  # --timeout banner=20 tcp=5: what was typed, all of it
            ["tcp=5"],
            {"timeouts": [(Stage.BANNER, 20.0)]},
            "'tcp=5' is not a host: --timeout takes STAGE=SECONDS pairs with "
            "commas (--timeout banner=20,tcp=5)",
        ),
        (  # every digit typed is kept
            ["tcp=5"],
            {"timeouts": [(Stage.BANNER, 2.1234567)]},
            "'tcp=5' is not a host: --timeout takes STAGE=SECONDS pairs with "
            "commas (--timeout banner=2.1234567,tcp=5)",
        ),
        (
            ["tcp=5", "sftp=30"],
            {"timeouts": [(None, 7.5)]},
            "'tcp=5' is not a host: --timeout takes STAGE=SECONDS pairs with "
            "commas (--timeout 7.5,tcp=5,sftp=30)",
        ),
    ],
)
def test_an_option_value_left_behind_by_a_space_is_not_looked_up(typed, options, said):
    with pytest.raises(UsageError) as caught:
        chosen("127.0.0.1", *typed, config="none", **options)
    assert str(caught.value).startswith(said)


def test_a_timeout_longer_than_the_deadline_raises_the_deadline_and_says_so(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, FILE)
    (prod, _) = chosen(timeouts=[(Stage.BANNER, 35.0)], stages=(Stage.DNS, Stage.TCP, Stage.BANNER))
    assert prod.deadline == 3 + 3 + 35
    assert "deadline 41s from --timeout (its stages' sum)" in [str(s) for s in prod.sources]


def test_a_checks_yaml_named_by_the_environment_says_so_when_it_blocks(tmp_path):
    broken = tmp_path / "ci.yaml"
    broken.write_text(BROKEN)
    with pytest.raises(ConfigError) as caught:
        select(Selection(targets=["127.0.0.1"]), {"PREFLIGHT_CONFIG": str(broken)})
    assert "(the file $PREFLIGHT_CONFIG names; -c none checks the TARGETs without it)" in str(
        caught.value
    )


def test_a_file_typed_with_c_that_cannot_be_used_says_how_to_do_without_one(tmp_path):
    # `-c /dev/null` is the way many try "no file": an empty file, refused as one.
    with pytest.raises(ConfigError) as caught:
        select(Selection(config="/dev/null", targets=["127.0.0.1"]), {})
    assert str(caught.value).endswith(
        "empty file: expected 'version: 1' and a list of 'targets' "
        "(-c none checks the TARGETs without a file)"
    )


def test_a_broken_file_that_checks_yaml_refers_to_does_not_block_a_host(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, FILE.replace("defaults:\n", "defaults:\n  ssh_config: ssh/x\n"))
    warnings: list[str] = []
    (target,) = select(Selection(targets=["127.0.0.1:22"]), {}, warn=warnings.append)
    assert target.host == "127.0.0.1"
    assert len(warnings) == 1 and "ssh/x" in warnings[0]


def test_the_defaults_a_host_takes_from_checks_yaml_here_are_said(tmp_path, monkeypatch):
    here(tmp_path, monkeypatch, FILE)
    (target,) = chosen("127.0.0.9", ssh_config="none")
    assert target.user == "deploy"
    assert [str(s) for s in target.sources] == ["defaults user from checks.yaml"]
