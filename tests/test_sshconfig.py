"""`preflight.sshconfig`: what `ssh HOST` would use, read from OpenSSH client config files.

Each test states one rule of ssh_config(5) as OpenSSH applies it (first value wins, Host patterns
match the name as given, Include is relative to ~/.ssh, tokens…) and checks that the value comes
back with the FILE:LINE it was written at. Then how it applies to a TARGET typed on the command
line (the TARGET wins over ssh_config, which wins over the defaults; where each value came from;
ProxyJump hosts) and the command line's `-F`. Files live in a temporary HOME; the only servers are
lab servers on 127.0.0.1, and nothing is resolved.
"""

from __future__ import annotations

import io
import os
import shutil
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from preflight import cli, lab
from preflight.config import ConfigError, builtin_defaults, target_from_spec
from preflight.model import Hop, Secret, Target
from preflight.sshconfig import (
    ConfigFile,
    JumpSpec,
    SshConfig,
    SshConfigError,
    convtime,
    parse_jump_spec,
)
from preflight.stages import jump

FIXTURES = Path(__file__).parent / "fixtures" / "ssh_config"


def ssh_config(home: Path, text: str, **kwargs: object) -> SshConfig:
    """~/.ssh/config holding `text`, read as the only file (like ssh -F)."""
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    (home / ".ssh" / "config").write_text(textwrap.dedent(text))
    environ = kwargs.pop("environ", {"HOME": str(home)})
    return SshConfig(
        [ConfigFile("~/.ssh/config")],
        home=str(home),
        local_user=str(kwargs.pop("local_user", "alice")),
        environ=environ,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- file syntax


def test_keywords_are_case_insensitive_and_take_key_value_or_key_equals_value(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        HOST web
          hostNAME 192.0.2.5
          PORT=2222
          user = deploy
        """,
    )
    found = config.lookup("web")
    assert found.hostname is not None and found.hostname.value == "192.0.2.5"
    assert found.port is not None and (found.port.value, found.port.origin) == (
        2222,
        "~/.ssh/config:3",
    )
    assert found.user is not None and found.user.value == "deploy"


def test_quoted_arguments_keep_their_spaces_and_comments_end_only_at_a_word(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host web  # a comment after the pattern
          IdentityFile "~/My Keys/id_web"
          User deploy#1
        """,
    )
    found = config.lookup("web")
    assert [s.value for s in found.identity_files] == [f"{tmp_path}/My Keys/id_web"]
    assert found.user is not None and found.user.value == "deploy#1"


def test_an_unclosed_quote_is_an_error_at_its_line(tmp_path):
    config = ssh_config(tmp_path, 'Host web\n  IdentityFile "~/id\n')
    with pytest.raises(SshConfigError) as caught:
        config.lookup("web")
    assert str(caught.value) == "~/.ssh/config:2: invalid quotes (a quote is not closed)"


def test_a_bad_port_is_an_error_even_in_a_block_that_does_not_apply(tmp_path):
    config = ssh_config(tmp_path, "Host other\n  Port http\n")
    with pytest.raises(SshConfigError, match=r"~/.ssh/config:2: Port: expected a number"):
        config.lookup("web")


def test_an_unknown_keyword_is_a_note_with_a_suggestion(tmp_path):
    config = ssh_config(tmp_path, "Host web\n  Prot 2222\n")
    found = config.lookup("web")
    assert found.port is None
    assert found.notes == (
        "~/.ssh/config:2: unknown keyword 'Prot' ignored (did you mean 'Port'?); ssh itself "
        "refuses a file with an unknown keyword",
    )


def test_ignore_unknown_silences_the_note_for_the_keywords_it_names(tmp_path):
    config = ssh_config(tmp_path, "IgnoreUnknown UseKeychain,AddKeys*\nUseKeychain yes\n")
    assert config.lookup("web").notes == ()


# --------------------------------------------------------------------------- which value wins


def test_the_first_value_obtained_wins_so_specific_hosts_come_first(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host web
          Port 2222
        Host *
          Port 22
          User fallback
        """,
    )
    found = config.lookup("web")
    assert found.port is not None and (found.port.value, found.port.origin) == (
        2222,
        "~/.ssh/config:2",
    )
    assert found.user is not None and found.user.origin == "~/.ssh/config:5"
    assert config.lookup("db").port is not None


def test_identity_files_accumulate_in_order_without_duplicates(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host web
          IdentityFile ~/.ssh/id_web
        Host *
          IdentityFile ~/.ssh/id_web
          IdentityFile ~/.ssh/id_all
        """,
    )
    found = config.lookup("web")
    assert [(s.value, s.origin) for s in found.identity_files] == [
        (f"{tmp_path}/.ssh/id_web", "~/.ssh/config:2"),
        (f"{tmp_path}/.ssh/id_all", "~/.ssh/config:5"),
    ]


def test_command_line_user_and_port_win_and_feed_the_tokens(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host web
          User deploy
          Port 2222
          IdentityFile ~/.ssh/%r@%h:%p
        """,
    )
    found = config.lookup("web", user="ops", port=2200)
    assert found.user is not None and found.user.value == "deploy"  # configured, but…
    assert [s.value for s in found.identity_files] == [f"{tmp_path}/.ssh/ops@web:2200"]


# --------------------------------------------------------------------------- Host and Match


def test_host_patterns_match_the_name_as_given_not_the_hostname(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host web
          HostName 192.0.2.5
        Host 192.0.2.5
          Port 2222
        """,
    )
    assert config.lookup("web").port is None
    assert config.lookup("192.0.2.5").port is not None


@pytest.mark.parametrize(
    ("name", "applies"),
    [("db1.lab", True), ("db-a.lab", True), ("legacy.lab", False), ("db1.prod", False)],
)
def test_host_wildcards_and_negation(tmp_path, name, applies):
    config = ssh_config(tmp_path, "Host db?.lab db-*.lab *.lab !legacy.lab\n  User lab\n")
    assert (config.lookup(name).user is not None) is applies


def test_host_patterns_are_case_sensitive_like_ssh(tmp_path):
    config = ssh_config(tmp_path, "Host Web\n  User deploy\n")
    assert config.lookup("Web").user is not None
    assert config.lookup("web").user is None


def test_match_host_sees_the_hostname_set_so_far_and_originalhost_the_name_given(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host web
          HostName WEB.internal.example
        Match host *.internal.example
          User internal
        Match originalhost web
          Port 2222
        """,
    )
    found = config.lookup("web")
    assert found.hostname is not None and found.hostname.value == "web.internal.example"
    assert found.user is not None and found.user.origin == "~/.ssh/config:4"
    assert found.port is not None and found.port.origin == "~/.ssh/config:6"


def test_match_user_sees_the_command_line_user_and_localuser_the_local_one(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Match user ops,!root
          Port 2222
        Match localuser alice
          ConnectTimeout 7
        """,
    )
    assert config.lookup("web", user="ops").port is not None
    assert config.lookup("web", user="root").port is None
    assert config.lookup("web").port is None  # the user is then the local one, alice
    timeout = config.lookup("web").connect_timeout
    assert timeout is not None and timeout.value == 7


def test_match_all_and_negated_criteria(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Match !host web
          User not-web
        Match all
          Port 2200
        """,
    )
    assert config.lookup("web").user is None
    assert config.lookup("db").user is not None
    assert config.lookup("web").port is not None


def test_a_match_block_preflight_cannot_evaluate_is_ignored_with_a_note(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Match host web exec "nc -z vpn 22"
          ProxyJump bastion
        Match host db exec "nc -z vpn 22"
          Port 2200
        """,
    )
    found = config.lookup("web")
    assert found.proxy_jump is None
    assert found.notes == (
        "~/.ssh/config:1: a Match block was ignored: preflight cannot evaluate 'exec', so its "
        "settings were not applied",
    )


def test_match_canonical_and_final_are_ignored_with_a_note(tmp_path):
    config = ssh_config(tmp_path, "Match final\n  Port 2200\n")
    found = config.lookup("web")
    assert found.port is None
    assert found.notes[0].startswith("~/.ssh/config:1: a Match block was ignored")
    assert "'final'" in found.notes[0]


def test_a_misspelt_match_criterion_is_an_error(tmp_path):
    config = ssh_config(tmp_path, "Match hots web\n  Port 2200\n")
    with pytest.raises(SshConfigError, match=r":1: unsupported Match criterion 'hots'"):
        config.lookup("web")


# --------------------------------------------------------------------------- Include


def test_include_is_relative_to_dot_ssh_expands_globs_in_order_and_is_conditional(tmp_path):
    (tmp_path / ".ssh" / "conf.d").mkdir(parents=True)
    (tmp_path / ".ssh" / "conf.d" / "b.conf").write_text("Port 2002\nUser from-b\n")
    (tmp_path / ".ssh" / "conf.d" / "a.conf").write_text("Port 2001\n")
    (tmp_path / ".ssh" / "conf.d" / "web.conf").write_text("Host other\n  User never\n")
    config = ssh_config(
        tmp_path,
        """\
        Host db
          Include conf.d/web.conf
        Host web
          Include conf.d/?.conf
          User after-include
        """,
    )
    found = config.lookup("web")
    assert found.port is not None and found.port.origin == "~/.ssh/conf.d/a.conf:1"
    assert found.user is not None and found.user.value == "from-b"
    # A Host line inside an included file ends with that file: "User after-include" still
    # belongs to "Host web" (and lost only because b.conf came first).
    assert config.lookup("db").user is None


def test_an_include_that_matches_nothing_is_skipped_like_ssh_does(tmp_path):
    config = ssh_config(tmp_path, "Include conf.d/*.conf\nPort 2222\n")
    assert config.lookup("web").port is not None


def test_include_loops_are_reported(tmp_path):
    config = ssh_config(tmp_path, "Include config\n")
    with pytest.raises(SshConfigError, match="too many nested Includes"):
        config.lookup("web")


# --------------------------------------------------------------------------- values


def test_tokens_tilde_and_environment_variables_in_file_names(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host web
          HostName %h.example.com
          IdentityFile ${KEYS}/%u/%n-%%
          UserKnownHostsFile ~/.ssh/kh-%h ~/.ssh/kh2
        """,
        environ={"KEYS": "/keys"},
    )
    found = config.lookup("web")
    assert found.hostname is not None and found.hostname.value == "web.example.com"
    assert [s.value for s in found.identity_files] == ["/keys/alice/web-%"]
    assert found.known_hosts_files is not None
    assert found.known_hosts_files.value == (
        f"{tmp_path}/.ssh/kh-web.example.com",
        f"{tmp_path}/.ssh/kh2",
    )


def test_an_unknown_token_is_an_error_at_its_line(tmp_path):
    config = ssh_config(tmp_path, "Host web\n  IdentityFile ~/.ssh/%q\n")
    with pytest.raises(SshConfigError, match=r"~/.ssh/config:2: IdentityFile: unknown token %q"):
        config.lookup("web")


def test_an_unset_environment_variable_is_an_error(tmp_path):
    config = ssh_config(tmp_path, "IdentityFile ${NOPE}/id\n", environ={})
    with pytest.raises(SshConfigError, match=r"\$\{NOPE\} is not set"):
        config.lookup("web")


def test_known_hosts_none_means_no_file(tmp_path):
    config = ssh_config(tmp_path, "UserKnownHostsFile none\n")
    found = config.lookup("web").known_hosts_files
    assert found is not None and found.value == ()


@pytest.mark.parametrize(
    ("text", "seconds"), [("5", 5), ("30s", 30), ("1m30s", 90), ("2h", 7200), ("1x", None)]
)
def test_connect_timeout_uses_ssh_time_formats(text, seconds):
    assert convtime(text) == seconds


def test_connect_timeout_none_leaves_the_default(tmp_path):
    assert ssh_config(tmp_path, "ConnectTimeout none\n").lookup("web").connect_timeout is None


def test_strict_host_key_checking_synonyms(tmp_path):
    found = ssh_config(tmp_path, "StrictHostKeyChecking off\n").lookup("web")
    assert found.strict_host_key_checking is not None
    assert found.strict_host_key_checking.value == "no"


# --------------------------------------------------------------------------- ProxyJump


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("bastion", JumpSpec("bastion")),
        ("ops@bastion:2222", JumpSpec("bastion", "ops", 2222)),
        ("[2001:db8::1]:22", JumpSpec("2001:db8::1", None, 22)),
        ("ssh://ops%40corp@bastion:2222", JumpSpec("bastion", "ops@corp", 2222)),
        ("bastion:0", None),
        ("2001:db8::1", None),
        ("@bastion", None),
        ("ssh://bastion/path", None),
    ],
)
def test_jump_spec_syntax(text, spec):
    assert parse_jump_spec(text) == spec


def test_proxy_jump_lists_hops_and_none_disables_a_later_one(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host direct
          ProxyJump none
        Host *
          ProxyJump ops@b1:2222,b2
        """,
    )
    found = config.lookup("web").proxy_jump
    assert found is not None and found.value == (JumpSpec("b1", "ops", 2222), JumpSpec("b2"))
    direct = config.lookup("direct").proxy_jump
    assert direct is not None and direct.value == ()


def test_proxy_command_and_proxy_jump_share_one_slot_first_one_wins(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host web
          ProxyCommand ssh -W %h:%p bastion
        Host *
          ProxyJump b2
        """,
    )
    found = config.lookup("web")
    assert found.proxy_jump is None
    assert found.proxy_command is not None
    assert found.proxy_command.value == "ssh -W %h:%p bastion"
    assert config.lookup("db").proxy_command is None


def test_an_invalid_proxy_jump_is_an_error(tmp_path):
    config = ssh_config(tmp_path, "ProxyJump ops@bastion:ssh\n")
    with pytest.raises(SshConfigError, match=r":1: invalid ProxyJump entry 'ops@bastion:ssh'"):
        config.lookup("web")


def test_jump_chain_follows_the_first_hops_own_proxy_jump_like_nested_ssh_j(tmp_path):
    config = ssh_config(
        tmp_path,
        """\
        Host target
          ProxyJump b2,b3
        Host b2
          HostName 192.0.2.2
          ProxyJump b1
        Host b3
          ProxyJump ignored-because-listed-after-b2
        Host b1
          User ops
        """,
    )
    chain = config.jump_chain(config.lookup("target"))
    assert [(hop.spec.host, hop.origin) for hop in chain] == [
        ("b1", "~/.ssh/config:5"),
        ("b2", "~/.ssh/config:2"),
        ("b3", "~/.ssh/config:2"),
    ]
    assert chain[1].config.hostname is not None
    assert chain[0].config.user is not None and chain[0].config.user.value == "ops"


def test_a_proxy_jump_loop_is_an_error(tmp_path):
    config = ssh_config(tmp_path, "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n")
    with pytest.raises(SshConfigError, match=r"more than 8 jump hosts \(a ProxyJump loop\?\)"):
        config.jump_chain(config.lookup("a"))


# --------------------------------------------------------------------------- files


def test_a_file_given_with_dash_f_must_exist_the_default_ones_need_not(tmp_path):
    given = SshConfig(
        [ConfigFile(str(tmp_path / "nope"), required=True)], home=str(tmp_path), local_user="a"
    )
    with pytest.raises(SshConfigError, match="ssh config file not found"):
        given.lookup("web")
    defaults = SshConfig(
        [ConfigFile("~/.ssh/config"), ConfigFile(str(tmp_path / "etc-ssh_config"), user=False)],
        home=str(tmp_path),
        local_user="a",
    )
    assert defaults.lookup("web").port is None


def test_user_file_values_win_over_the_system_file(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Port 2222\n")
    system = tmp_path / "ssh_config"
    system.write_text("Port 22\nUser system\n")
    config = SshConfig(
        [ConfigFile("~/.ssh/config"), ConfigFile(str(system), user=False)],
        home=str(home),
        local_user="a",
    )
    found = config.lookup("web")
    assert found.port is not None and found.port.value == 2222
    assert found.user is not None and found.user.origin == f"{system}:2"


def test_a_realistic_config_with_includes(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / ".ssh")
    config = SshConfig([ConfigFile("~/.ssh/config")], home=str(tmp_path), local_user="alice")
    ignored_match = (
        "~/.ssh/config:25: a Match block was ignored: preflight cannot evaluate 'exec', so its "
        "settings were not applied"
    )

    prod = config.lookup("sftp-prod")
    assert prod.hostname is not None and prod.hostname.value == "192.0.2.10"
    assert prod.port is not None and prod.port.origin == "~/.ssh/config:8"
    assert [s.value for s in prod.identity_files] == [
        f"{tmp_path}/.ssh/id_ingest",
        f"{tmp_path}/.ssh/id_192.0.2.10",
    ]
    assert prod.notes == (ignored_match,)
    chain = config.jump_chain(prod)
    assert [(h.spec, h.config.hostname.value if h.config.hostname else None) for h in chain] == [
        (JumpSpec("bastion", "ops"), "192.0.2.1")
    ]

    build = config.lookup("build-7")
    assert build.user is not None and build.user.origin == "~/.ssh/config.d/10-work.conf:3"
    vpn = config.lookup("vpn-only")
    assert vpn.port is not None and (vpn.port.value, vpn.port.origin) == (
        2022,
        "~/.ssh/config.d/20-vpn.conf:3",
    )
    legacy = config.lookup("legacy.lab")
    assert legacy.port is not None and legacy.port.value == 2200
    assert legacy.user is not None and legacy.user.value == "fallback"
    lab = config.lookup("db.lab")
    assert lab.connect_timeout is not None and lab.connect_timeout.value == 5
    assert lab.strict_host_key_checking is not None
    assert lab.strict_host_key_checking.value == "accept-new"


# --------------------------------------------------------------------------- applied to a TARGET


def cli_target(home: Path, text: str, spec: str, env: dict[str, str] | None = None) -> Target:
    """`preflight check SPEC` with `text` as ~/.ssh/config and no checks.yaml."""
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    (home / ".ssh" / "config").write_text(textwrap.dedent(text))
    environ = {"USER": "alice", "HOME": str(home), **(env or {})}
    ssh = SshConfig(
        [ConfigFile("~/.ssh/config")], home=str(home), local_user="alice", environ=environ
    )
    return target_from_spec(spec, builtin_defaults(environ), ssh)


PROD = """\
    Host prod
      HostName 192.0.2.10
      Port 2222
      User ingest
      IdentityFile ~/.ssh/missing_key
      IdentityFile ~/.ssh/id_prod
      ConnectTimeout 7
      StrictHostKeyChecking accept-new
      UserKnownHostsFile ~/.ssh/known_hosts.prod
"""


def test_what_ssh_would_use_and_where_each_value_came_from(tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_prod").write_text("not read here")
    target = cli_target(tmp_path, PROD, "prod")
    assert (target.name, target.host, target.port, target.user) == (
        "prod",
        "192.0.2.10",
        2222,
        "ingest",
    )
    assert target.timeouts.tcp == 7.0
    assert target.host_key.policy == "warn"
    assert target.host_key.known_hosts == f"{tmp_path}/.ssh/known_hosts.prod"
    assert target.auth.key == Secret(f"{tmp_path}/.ssh/id_prod")  # the first that exists
    assert [str(source) for source in target.sources] == [
        "hostname 192.0.2.10 from ~/.ssh/config:2",
        "port 2222 from ~/.ssh/config:3",
        "user ingest from ~/.ssh/config:4",
        "key file ~/.ssh/id_prod from ~/.ssh/config:6",
        "known_hosts ~/.ssh/known_hosts.prod from ~/.ssh/config:9",
        "host key policy warn from ~/.ssh/config:8",
        "tcp timeout 7s from ~/.ssh/config:7",
    ]


def test_the_target_as_typed_wins_over_ssh_config(tmp_path):
    target = cli_target(tmp_path, PROD, "root@prod:2200")
    assert (target.user, target.port) == ("root", 2200)
    sources = {s.setting: s.source for s in target.sources}
    assert sources["user"] == sources["port"] == "command line"


def test_an_identity_file_that_does_not_exist_is_kept_so_auth_can_name_it(tmp_path):
    target = cli_target(tmp_path, "Host web\n  IdentityFile ~/.ssh/nope\n", "web")
    assert target.auth.key == Secret(f"{tmp_path}/.ssh/nope")
    assert target.auth.key_source == f"file {tmp_path}/.ssh/nope"


def test_ssh_config_wins_over_the_key_from_the_environment(tmp_path):
    target = cli_target(
        tmp_path, "IdentityFile ~/.ssh/id_x\n", "web", env={"SSH_PRIVATE_KEY": "/ci/key"}
    )
    assert target.auth.key == Secret(f"{tmp_path}/.ssh/id_x")


def test_without_any_credential_ssh_default_identity_is_used(tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("key")
    target = cli_target(tmp_path, "Host other\n  Port 1\n", "web")
    assert target.auth.key == Secret(f"{tmp_path}/.ssh/id_ed25519")
    assert [str(s) for s in target.sources if s.setting == "key"] == [
        "key file ~/.ssh/id_ed25519 from ssh's default identity files"
    ]


def test_an_ssh_config_that_says_nothing_about_the_host_adds_nothing_to_the_report(tmp_path):
    target = cli_target(tmp_path, "Host other\n  Port 1\n", "web")
    assert (target.port, target.sources, target.config_notes) == (22, (), ())


def test_proxy_jump_hosts_get_their_own_settings_and_the_local_user(tmp_path):
    target = cli_target(
        tmp_path,
        """\
        Host inner
          ProxyJump bastion,ops@hop2:2200
        Host bastion
          HostName 192.0.2.1
          IdentityFile ~/.ssh/id_bastion
        """,
        "inner",
        env={"SFTP_PASSWORD": "pw", "SSH_PRIVATE_KEY": "/ci/key"},
    )
    first, second = target.jump
    assert (first.host, first.port, first.user, first.origin) == (
        "192.0.2.1",
        22,
        "alice",
        "~/.ssh/config:2",
    )
    assert first.auth.key == Secret(f"{tmp_path}/.ssh/id_bastion")
    assert (second.host, second.port, second.user) == ("hop2", 2200, "ops")
    # No IdentityFile for hop2: the run's own key, never the target's password.
    assert second.auth.key == Secret("/ci/key") and second.auth.password is None
    assert target.auth.password == Secret("pw")
    jump = next(s for s in target.sources if s.setting == "jump")
    assert str(jump) == "jump alice@192.0.2.1:22 → ops@hop2:2200 from ~/.ssh/config:2"


def test_a_jump_host_keeps_its_own_connect_timeout(tmp_path):
    # `ssh -J` connects to each jump host with that host's own ConnectTimeout; a hop without one
    # gets the target's tcp timeout (preflight never waits without a bound).
    target = cli_target(
        tmp_path,
        """\
        Host inner
          ProxyJump bastion,hop2
          ConnectTimeout 9
        Host bastion
          HostName 192.0.2.1
          ConnectTimeout 2
        """,
        "inner",
    )
    first, second = target.jump
    assert (first.tcp_timeout, second.tcp_timeout, target.timeouts.tcp) == (2.0, None, 9.0)
    assert [jump.hop_target(target, i).timeouts.tcp for i in (1, 2)] == [2.0, 9.0]
    sources = {s.setting: str(s) for s in target.sources}
    assert sources["jump1 tcp timeout"] == "jump1 tcp timeout 2s from ~/.ssh/config:6"
    assert "jump2 tcp timeout" not in sources


def test_a_host_key_alias_names_the_host_in_known_hosts_but_not_its_jump_hosts(tmp_path):
    target = cli_target(
        tmp_path,
        """\
        Host inner
          HostKeyAlias Inner-Via-Tunnel
          ProxyJump bastion
        Host inner
          HostKeyAlias ignored
        """,
        "inner",
    )
    assert target.host_key.alias == "inner-via-tunnel"  # lower-cased, as ssh does
    (hop,) = target.jump
    assert hop.host_key.alias is None
    with_own = cli_target(
        tmp_path / "b",
        "Host inner\n  ProxyJump bastion\nHost bastion\n  HostKeyAlias Bastion-Alias\n",
        "inner",
    )
    assert (with_own.host_key.alias, with_own.jump[0].host_key.alias) == (None, "bastion-alias")
    sources = {s.setting: str(s) for s in target.sources}
    assert sources["host key alias"] == "host key alias inner-via-tunnel from ~/.ssh/config:2"


def test_proxy_jump_none_removes_a_jump_host_from_the_defaults(tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host direct\n  ProxyJump none\n")
    ssh = SshConfig([ConfigFile("~/.ssh/config")], home=str(tmp_path), local_user="a")
    defaults = replace(builtin_defaults({"USER": "a"}), jump=(Hop("bastion"),))
    assert target_from_spec("direct", defaults, ssh).jump == ()
    assert target_from_spec("other", defaults, ssh).jump == (Hop("bastion"),)


def test_a_proxy_command_is_reported_as_not_followed(tmp_path):
    target = cli_target(tmp_path, "Host web\n  ProxyCommand nc -X 5 -x proxy:1080 %h %p\n", "web")
    assert target.jump == ()
    assert target.config_notes[0].startswith(
        "~/.ssh/config:2: ProxyCommand is not supported by preflight"
    )


def test_notes_about_ignored_match_blocks_reach_the_target(tmp_path):
    target = cli_target(tmp_path, "Match exec true\n  Port 2222\n", "web")
    assert target.port == 22
    assert target.config_notes == (
        "~/.ssh/config:1: a Match block was ignored: preflight cannot evaluate 'exec', so its "
        "settings were not applied",
    )


def test_a_broken_ssh_config_is_a_usage_error_naming_its_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        cli_target(tmp_path, "Host web\n  ProxyJump a@b@c:x\n", "web")
    assert str(caught.value).startswith("~/.ssh/config:2: invalid ProxyJump entry")


# --------------------------------------------------------------------------- the command line


@pytest.fixture(autouse=True)
def _no_checks_yaml_here(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    # A checks.yaml in the directory the tests run from would lend its defaults to every
    # TARGET typed here (and say so under settings:).
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def run_check(*argv: str, home: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    environ = {"USER": "alice", "HOME": str(home), "PATH": os.environ.get("PATH", "")}
    status = cli.run(["check", *argv, "--color", "never"], stdout=out, stderr=err, environ=environ)
    return status, out.getvalue(), err.getvalue()


def test_check_host_reads_the_users_ssh_config_and_says_so(tmp_path):
    with lab.Greeter(b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        where = f"{server.host}:{server.port}"
        (tmp_path / ".ssh").mkdir()
        (tmp_path / ".ssh" / "config").write_text(
            f"Host web\n  HostName {server.host}\n  Port {server.port}\n"
        )
        status, out, err = run_check("web", "--stages", "dns,tcp,banner", home=tmp_path)
    assert status == 0, out + err
    assert out.startswith(f"web  {where}  OK")
    host, port = where.split(":")
    assert (
        f"  settings: hostname {host} from ~/.ssh/config:2; port {port} from ~/.ssh/config:3;"
        in (out)
    )


def test_dash_f_names_the_file_and_none_reads_no_ssh_config(tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  User from-home\n")
    with lab.Greeter(b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        given = tmp_path / "given"
        given.write_text(f"Host web\n  HostName {server.host}\n  Port {server.port}\n")
        status, out, _ = run_check("-F", str(given), "web", "--stages", "dns,tcp", home=home)
        assert status == 0 and f"port {server.port} from {given}:3" in out
        assert "from-home" not in out  # -F replaces ~/.ssh/config, as with ssh
        plain = f"{server.host}:{server.port}"
        status, out, _ = run_check(plain, "--stages", "dns,tcp", home=home)
        assert status == 0 and "user from-home from ~/.ssh/config:2" in out
        status, out, _ = run_check("-F", "none", plain, "--stages", "dns,tcp", home=home)
    assert status == 0 and "settings:" not in out


def test_a_missing_dash_f_file_is_a_usage_error(tmp_path):
    status, _, err = run_check("-F", str(tmp_path / "nope"), "web", home=tmp_path / "home")
    assert status == 2
    assert err == f"{tmp_path}/nope:1: ssh config file not found\n"


def test_a_dropped_jump_host_fails_within_its_own_connect_timeout(tmp_path):
    given = tmp_path / "config"
    with lab.DroppingPort() as dropping:
        given.write_text(
            "Host inner\n  ProxyJump bastion\n  ConnectTimeout 6\n"
            f"Host bastion\n  HostName 127.0.0.1\n  Port {dropping.port}\n  ConnectTimeout 1\n"
        )
        started = time.monotonic()
        status, out, err = run_check("-F", str(given), "inner", home=tmp_path / "home")
        elapsed = time.monotonic() - started
    assert status == 1, out + err
    assert "jump1.tcp" in out and "tcp.timeout" in out and "in 1.0s" in out
    assert elapsed < 1 + 2, elapsed  # the bastion's 1 s, not the target's 6 s
