"""The config layer, as a specification: what checks.yaml and a command-line TARGET turn into.

Happy paths first (merging, null, environment variables, credentials, built-in defaults, YAML
features), then every error rule — one fixture file per rule under tests/fixtures/config/, each
pinned to its exact `FILE:LINE: message` — then command-line TARGETs, secrets, and robustness.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preflight import config, yamlnodes, yamlreader
from preflight.config import (
    COMMAND_LINE,
    Config,
    ConfigError,
    builtin_defaults,
    load_config,
    open_ssh_config,
    parse_config,
    target_from_spec,
)
from preflight.model import (
    ALL_STAGES,
    UPLOAD_NOTE,
    HostKeyConfig,
    Secret,
    Stage,
    Target,
    Timeouts,
    WriteCheck,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"
ENV: dict[str, str] = {"USER": "ci", "HOME": "/home/ci"}  # no credential variables set
FP = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
KEY_TEXT = "\n".join(
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
        "-----END OPENSSH PRIVATE KEY-----",
    ]
)


def parse(text: str, env: Mapping[str, str] | None = None) -> Config:
    return parse_config(text, "checks.yaml", ENV if env is None else env)


def one(text: str, env: Mapping[str, str] | None = None) -> Target:
    config = parse(text, env)
    assert len(config.targets) == 1
    return config.targets[0]


def error(text: str | bytes, env: Mapping[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "checks.yaml", ENV if env is None else env)
    return info.value


# --------------------------------------------------------------------------- minimal file


def test_minimal_file_gets_every_builtin_default() -> None:
    target = one("version: 1\ntargets:\n  - host: sftp.example.com\n")
    assert target == Target(
        name="sftp.example.com",
        host="sftp.example.com",
        port=22,
        user="ci",
        stages=ALL_STAGES,
        timeouts=Timeouts(dns=3, tcp=3, banner=5, auth=10, sftp=10),
        deadline=30,
        host_key=HostKeyConfig(known_hosts="~/.ssh/known_hosts", fingerprints=(), policy="strict"),
        sftp_path=".",
        origin="checks.yaml:3",
    )
    assert not target.auth.has_credentials and target.auth.unset == ()


def test_origin_is_file_and_line_of_each_target() -> None:
    config = parse("version: 1\ntargets:\n  - host: a\n\n  - name: b\n    host: b\n")
    assert [t.origin for t in config.targets] == ["checks.yaml:3", "checks.yaml:5"]
    assert config.path == "checks.yaml"


def test_name_defaults_to_host_or_host_port() -> None:
    config = parse(
        "version: 1\ntargets:\n"
        "  - host: a.example\n"
        "  - {host: a.example, port: 2222}\n"
        "  - {host: '[2001:db8::1]', port: 2222}\n"
        "  - {host: b.example, port: 22, name: custom}\n"
    )
    assert [t.name for t in config.targets] == [
        "a.example",
        "a.example:2222",
        "[2001:db8::1]:2222",
        "custom",
    ]


# --------------------------------------------------------------------------- merging


MERGE = """\
version: 1
defaults:
  port: 2222
  user: deploy
  stages: [dns, tcp, banner]
  deadline: 20
  timeouts: {dns: 1, tcp: 2}
  host_key: {policy: warn, fingerprints: [@FP@]}
  sftp: {path: /upload}
targets:
  - host: inherits.example
  - host: overrides.example
    port: 22
    user: other
    stages: [dns]
    deadline: 5.5
    timeouts: {tcp: 7, banner: 9}
    host_key: {policy: strict}
    sftp: {path: /other}
""".replace("@FP@", FP)


def test_target_inherits_defaults() -> None:
    target = parse(MERGE).targets[0]
    assert (target.port, target.user, target.deadline, target.sftp_path) == (
        2222,
        "deploy",
        20,
        "/upload",
    )
    assert target.stages == (Stage.DNS, Stage.TCP, Stage.BANNER)
    assert target.timeouts == Timeouts(dns=1, tcp=2, banner=5, auth=10, sftp=10)
    assert target.host_key == HostKeyConfig(fingerprints=(FP,), policy="warn")


def test_target_scalars_win_and_nested_mappings_merge_key_by_key() -> None:
    target = parse(MERGE).targets[1]
    assert (target.port, target.user, target.deadline, target.stages) == (
        22,
        "other",
        5.5,
        (Stage.DNS,),
    )
    assert target.timeouts == Timeouts(dns=1, tcp=7, banner=9, auth=10, sftp=10)
    # policy from the target, fingerprints still from defaults
    assert target.host_key == HostKeyConfig(fingerprints=(FP,), policy="strict")
    assert target.sftp_path == "/other"


def test_config_defaults_are_the_merged_defaults_as_a_target() -> None:
    defaults = parse(MERGE).defaults
    assert (defaults.name, defaults.host, defaults.port, defaults.user) == (
        "defaults",
        "",
        2222,
        "deploy",
    )
    assert defaults.timeouts == Timeouts(dns=1, tcp=2)
    assert defaults.sftp_path == "/upload"


def test_null_clears_an_inherited_key_back_to_the_builtin_default() -> None:
    target = one(
        "version: 1\n"
        "defaults: {user: deploy, port: 2222, timeouts: {dns: 1, tcp: 1}, sftp: {path: /x}}\n"
        "targets:\n"
        "  - host: a\n"
        "    user: null\n"
        "    port: ~\n"
        "    timeouts: {dns: null}\n"
        "    sftp: null\n"
    )
    assert target.user == "ci"  # $USER
    assert target.port == 22
    assert target.timeouts == Timeouts(dns=3, tcp=1)
    assert target.sftp_path == "."


def test_null_section_clears_every_inherited_key_of_it() -> None:
    target = one(
        "version: 1\ndefaults: {timeouts: {dns: 1, tcp: 1, auth: 1}}\n"
        "targets:\n  - host: a\n    timeouts:\n"
    )
    assert target.timeouts == Timeouts()


def test_null_credential_means_none_even_if_the_environment_has_one() -> None:
    env = {**ENV, "SFTP_PASSWORD": "from-env", "SSH_PRIVATE_KEY": KEY_TEXT}
    target = one("version: 1\ntargets:\n  - host: a\n    auth: {password: null, key: null}\n", env)
    assert target.auth.password is None and target.auth.key is None
    assert target.auth.unset == ()


def test_null_known_hosts_means_no_known_hosts_file() -> None:
    target = one("version: 1\ntargets:\n  - host: a\n    host_key: {known_hosts: null}\n")
    assert target.host_key.known_hosts is None


@pytest.mark.parametrize(
    ("written", "port", "deadline"),
    [("0022", 22, 22.0), ("'2222'", 2222, 2222.0), ("2.5", None, 2.5), ("0x16", None, None)],
)
def test_numbers_are_read_as_written_in_decimal(
    written: str, port: int | None, deadline: float | None
) -> None:
    # YAML 1.1 would read 0022 as octal 18 and 1:30 as 90; a port or a timeout is decimal.
    for key, expected in (("port", port), ("deadline", deadline)):
        text = f"version: 1\ntargets:\n  - host: a\n    {key}: {written}\n"
        if expected is None:
            assert f"got {written}" in error(text).message
        else:
            assert getattr(one(text), key) == expected


def test_empty_defaults_is_allowed() -> None:
    assert one("version: 1\ndefaults:\ntargets:\n  - host: a\n").port == 22


# --------------------------------------------------------------------------- environment


def test_variables_expand_in_string_values_with_defaults() -> None:
    env = {**ENV, "SFTP_HOST": "sftp.ci.example", "SFTP_USER": "ingest"}
    target = one(
        "version: 1\ntargets:\n"
        "  - host: ${SFTP_HOST}\n"
        "    user: ${SFTP_USER:-nobody}\n"
        "    sftp: {path: '/data/${SUBDIR:-in}'}\n",
        env,
    )
    assert (target.host, target.user, target.sftp_path) == (
        "sftp.ci.example",
        "ingest",
        "/data/in",
    )


def test_default_applies_to_an_empty_variable_too() -> None:
    target = one("version: 1\ntargets:\n  - host: ${H:-fallback}\n", {**ENV, "H": ""})
    assert target.host == "fallback"


def test_double_dollar_is_a_literal_dollar() -> None:
    target = one("version: 1\ntargets:\n  - host: a\n    sftp: {path: /cost/$$HOME/$x}\n")
    assert target.sftp_path == "/cost/$HOME/$x"


def test_port_and_numbers_may_come_from_variables() -> None:
    env = {**ENV, "SFTP_PORT": "2222", "DNS_TIMEOUT": "1.5", "USE_AGENT": "true"}
    target = one(
        "version: 1\ntargets:\n  - host: a\n    port: ${SFTP_PORT}\n"
        "    timeouts: {dns: '${DNS_TIMEOUT}'}\n    deadline: ${DEADLINE:-45}\n"
        "    auth: {agent: '${USE_AGENT}'}\n",
        env,
    )
    assert (target.port, target.timeouts.dns, target.deadline) == (2222, 1.5, 45)
    assert target.auth.agent is True


def test_empty_non_credential_variable_is_an_error_naming_it() -> None:
    err = error("version: 1\ntargets:\n  - host: ${H}\n", {**ENV, "H": ""})
    assert str(err) == (
        "checks.yaml:3: targets[0].host: environment variable 'H' is empty "
        "(set it, or write ${H:-default})"
    )


def test_a_bad_value_from_a_variable_is_not_echoed() -> None:
    err = error("version: 1\ntargets:\n  - host: a\n    port: ${P}\n", {**ENV, "P": "22x"})
    assert str(err) == (
        "checks.yaml:4: targets[0].port: expected an integer 1..65535, "
        "got '${P}' (expanded from the environment; value not shown)"
    )


# --------------------------------------------------------------------------- credentials


AUTH = """\
version: 1
defaults:
  auth:
    password: ${SFTP_PASSWORD}
    key: ${SSH_PRIVATE_KEY}
    passphrase: ${SSH_KEY_PASSPHRASE}
targets:
  - host: a
"""


def test_credentials_come_from_the_environment_as_secrets() -> None:
    env = {**ENV, "SFTP_PASSWORD": "pw", "SSH_PRIVATE_KEY": KEY_TEXT, "SSH_KEY_PASSPHRASE": "pp"}
    auth = one(AUTH, env).auth
    assert auth.password == Secret("pw") and auth.passphrase == Secret("pp")
    assert auth.key is not None and auth.key.reveal() == KEY_TEXT
    assert auth.key_source == "variable SSH_PRIVATE_KEY"
    assert auth.unset == ()


def test_unset_credential_variables_are_not_an_error_but_are_listed() -> None:
    auth = one(AUTH).auth
    assert (auth.password, auth.key, auth.passphrase) == (None, None, None)
    assert auth.unset == ("SFTP_PASSWORD", "SSH_PRIVATE_KEY", "SSH_KEY_PASSPHRASE")
    assert auth.key_source is None and not auth.has_credentials


def test_empty_credential_variable_counts_as_unset() -> None:
    auth = one(AUTH, {**ENV, "SFTP_PASSWORD": ""}).auth
    assert auth.password is None and "SFTP_PASSWORD" in auth.unset


def test_unset_names_are_in_order_without_duplicates() -> None:
    auth = one(
        "version: 1\ntargets:\n  - host: a\n"
        "    auth: {password: '${SECRET}', key: '${KEYDIR}/id', passphrase: '${SECRET}'}\n"
    ).auth
    assert auth.unset == ("SECRET", "KEYDIR")


def test_key_variable_holding_a_path_is_a_file_named_by_its_path() -> None:
    # A path is not a secret: messages and printed commands show it.
    auth = one(AUTH, {**ENV, "SSH_PRIVATE_KEY": "~/keys/id_ed25519"}).auth
    assert auth.key == Secret("/home/ci/keys/id_ed25519")
    assert auth.key_source == "file /home/ci/keys/id_ed25519 (from ${SSH_PRIVATE_KEY})"
    assert auth.key_variable == "SSH_PRIVATE_KEY"


def test_a_bare_word_in_the_key_variable_is_not_shown() -> None:
    # It may be a file in the current directory, or a secret put in the wrong variable.
    auth = one(AUTH, {**ENV, "SSH_PRIVATE_KEY": "hunter2"}).auth
    assert auth.key_source == "the file named by ${SSH_PRIVATE_KEY}"


def test_the_variables_credentials_and_known_hosts_came_from_are_recorded() -> None:
    text = (
        "version: 1\ntargets:\n  - host: a\n"
        "    auth: {password: '${PW}', key: '${K}', passphrase: '${PP}'}\n"
        "    host_key: {known_hosts: '${KH:-~/.ssh/known_hosts}'}\n"
    )
    env = {**ENV, "PW": "p", "K": "/k/id", "PP": "pp", "KH": "[h]:22 ssh-ed25519 AAAA"}
    target = one(text, env)
    auth = target.auth
    assert (auth.password_variable, auth.key_variable, auth.passphrase_variable) == (
        "PW",
        "K",
        "PP",
    )
    assert target.host_key.known_hosts_variable == "KH"
    # The default taken when the variable is unset is no variable's value.
    assert one(text, {**ENV, "PW": "p"}).host_key.known_hosts_variable is None


def test_key_may_be_a_literal_path_with_tilde() -> None:
    auth = one("version: 1\ntargets:\n  - host: a\n    auth: {key: ~/.ssh/id_ed25519}\n").auth
    assert auth.key == Secret("/home/ci/.ssh/id_ed25519")
    assert auth.key_source == "file /home/ci/.ssh/id_ed25519"


def test_agent_is_a_bool() -> None:
    assert one("version: 1\ntargets:\n  - {host: a, auth: {agent: yes}}\n").auth.agent is True


def test_auth_keys_merge_key_by_key() -> None:
    env = {**ENV, "SFTP_PASSWORD": "pw"}
    auth = one(
        "version: 1\ndefaults: {auth: {password: '${SFTP_PASSWORD}'}}\n"
        "targets:\n  - host: a\n    auth: {agent: true}\n",
        env,
    ).auth
    assert auth.password == Secret("pw") and auth.agent is True


def test_absent_credentials_are_picked_up_from_the_usual_variables() -> None:
    env = {**ENV, "SFTP_PASSWORD": "pw"}
    auth = one("version: 1\ntargets:\n  - host: a\n", env).auth
    assert auth.password == Secret("pw") and auth.unset == ()


# --------------------------------------------------------------------------- host keys


def test_fingerprints_accept_base64_padding_and_are_normalised() -> None:
    target = one(
        f"version: 1\ntargets:\n  - host: a\n    host_key: {{fingerprints: ['{FP}=', {FP}]}}\n"
    )
    assert target.host_key.fingerprints == (FP,)


@pytest.mark.parametrize("policy", ["strict", "warn", "off"])
def test_policy_values(policy: str) -> None:
    target = one(f"version: 1\ntargets:\n  - host: a\n    host_key: {{policy: {policy}}}\n")
    assert target.host_key.policy == policy  # a bare `off` is YAML false; still "off"


def test_known_hosts_variable_may_hold_the_content() -> None:
    content = "sftp.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG\n"
    target = one(
        "version: 1\ntargets:\n  - host: a\n    host_key: {known_hosts: '${SSH_KNOWN_HOSTS}'}\n",
        {**ENV, "SSH_KNOWN_HOSTS": content},
    )
    assert target.host_key.known_hosts == content


# --------------------------------------------------------------------------- hosts and stages


@pytest.mark.parametrize(
    ("written", "host"),
    [
        ("192.0.2.10", "192.0.2.10"),
        ("'2001:db8::1'", "2001:db8::1"),
        ("'[2001:db8::1]'", "2001:db8::1"),
        ("'fe80::1%eth0'", "fe80::1%eth0"),
        ("bücher.example", "bücher.example"),  # IDN: kept as written, encoded by the resolver
        ("localhost", "localhost"),
    ],
)
def test_host_forms(written: str, host: str) -> None:
    assert one(f"version: 1\ntargets:\n  - host: {written}\n").host == host


@pytest.mark.parametrize("count", range(1, 6))
def test_any_prefix_of_the_stage_order_is_accepted(count: int) -> None:
    stages = ", ".join(ALL_STAGES[:count])
    target = one(f"version: 1\ntargets:\n  - host: a\n    stages: [{stages}]\n")
    assert target.stages == ALL_STAGES[:count]


# --------------------------------------------------------------------------- YAML features


def test_anchors_aliases_and_merge_keys() -> None:
    config = parse(
        "version: 1\n"
        "x-common: &common {port: 2222, user: ingest, timeouts: {tcp: 9}}\n"
        "targets:\n"
        "  - <<: *common\n"
        "    host: a\n"
        "  - <<: *common\n"
        "    host: b\n"
        "    port: 2200\n"  # an explicit key wins over the merged one, and is no duplicate
        "  - host: c\n"
    )
    a, b, c = config.targets
    assert (a.port, a.user, a.timeouts.tcp) == (2222, "ingest", 9)
    assert (b.port, b.user) == (2200, "ingest")
    assert c.port == 22


def test_merge_key_list_earlier_source_wins() -> None:
    target = one(
        "version: 1\nx-a: &a {port: 1000}\nx-b: &b {port: 2000, user: b}\n"
        "targets:\n  - <<: [*a, *b]\n    host: h\n"
    )
    assert (target.port, target.user) == (1000, "b")


def test_alias_of_a_whole_target() -> None:
    config = parse(
        "version: 1\ntargets:\n  - &t {host: a, port: 2222}\n  - {<<: *t, name: second}\n"
    )
    assert [(t.name, t.port) for t in config.targets] == [("a:2222", 2222), ("second", 2222)]


def test_bytes_with_utf8_bom_are_accepted() -> None:
    config = parse_config(b"\xef\xbb\xbfversion: 1\ntargets:\n  - host: a\n", "c.yaml", ENV)
    assert config.targets[0].host == "a"


def test_pure_python_yaml_parser_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "checks.yaml").read_text(encoding="utf-8")
    expected = parse(text)
    monkeypatch.setattr(yamlreader, "_LOADER", yaml.SafeLoader)
    assert parse(text) == expected


# --------------------------------------------------------------------------- files


def test_load_config_accepts_a_path_and_keeps_it_as_given(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text("version: 1\ntargets:\n  - host: a\n", encoding="utf-8")
    config = load_config(path, ENV)
    assert config.path == str(path)
    assert config.targets[0].origin == f"{path}:3"


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert str(info.value) == f"{path}:1: config file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, ENV)
    assert str(info.value) == f"{tmp_path}:1: is a directory, not a config file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text("version: 1\n", encoding="utf-8")
    path.chmod(0)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert str(info.value) == f"{path}:1: cannot read the config file: permission denied"


def test_example_checks_yaml_loads_without_credentials() -> None:
    config = load_config(REPO / "checks.yaml", ENV)
    assert [t.name for t in config.targets] == [
        "sftp-prod",
        "sftp-staging",
        "bastion-port",
        "sftp-internal",
        "like-my-ssh",
    ]
    for target in config.targets:
        assert target.auth.password is None and target.auth.key is None


def test_example_checks_yaml_documents_every_key() -> None:
    data = yaml.safe_load((REPO / "checks.yaml").read_text(encoding="utf-8"))
    defaults = data["defaults"]
    assert set(data) == {"version", "defaults", "targets"}
    assert {"port", "stages", "timeouts", "deadline", "auth", "host_key", "sftp"} <= set(defaults)
    assert set(defaults["timeouts"]) == {"dns", "tcp", "banner", "auth", "sftp"}
    assert set(defaults["auth"]) == {"password", "key", "passphrase", "agent"}
    assert set(defaults["host_key"]) == {"known_hosts", "fingerprints", "policy"}
    assert set(defaults["sftp"]) == {"path", "list", "write", "min_free"}
    target_keys = {key for target in data["targets"] for key in target}
    assert {
        "name",
        "host",
        "port",
        "user",
        "stages",
        "deadline",
        "jump",
        "ssh_config",
    } <= target_keys
    assert "# user:" in (REPO / "checks.yaml").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- built-in defaults


def test_builtin_defaults_without_environment() -> None:
    defaults = builtin_defaults({"USER": "ci"})
    assert (defaults.name, defaults.host, defaults.port, defaults.user) == (
        "defaults",
        "",
        22,
        "ci",
    )
    assert defaults.stages == ALL_STAGES and defaults.timeouts == Timeouts()
    assert defaults.deadline == 30 and defaults.sftp_path == "."
    assert defaults.host_key == HostKeyConfig(known_hosts="~/.ssh/known_hosts", policy="strict")
    auth = defaults.auth
    assert (auth.password, auth.key, auth.passphrase, auth.agent, auth.unset) == (
        None,
        None,
        None,
        False,
        (),
    )


def test_builtin_defaults_take_credentials_from_the_environment() -> None:
    env = {
        "USER": "ci",
        "SFTP_PASSWORD": "pw",
        "SSH_PRIVATE_KEY": KEY_TEXT,
        "SSH_KEY_PASSPHRASE": "pp",
        "SSH_KNOWN_HOSTS": "/etc/ci/known_hosts",
    }
    defaults = builtin_defaults(env)
    assert defaults.auth.password == Secret("pw")
    assert defaults.auth.key == Secret(KEY_TEXT)
    assert defaults.auth.key_source == "variable SSH_PRIVATE_KEY"
    assert defaults.auth.passphrase == Secret("pp")
    assert defaults.host_key.known_hosts == "/etc/ci/known_hosts"


def test_builtin_user_falls_back_to_the_login_name() -> None:
    assert builtin_defaults({}).user  # getpass.getuser()


# --------------------------------------------------------------------------- error rules

# (fixture, line, message): loading tests/fixtures/config/<fixture>.yaml must fail with exactly
# "<path>:<line>: <message>".
ERRORS = [
    ("unknown_key_typo", 4, "targets[0]: unknown key 'prot' (did you mean 'port'?)"),
    ("unknown_top_level_key", 2, "unknown key 'target' (did you mean 'targets'?)"),
    ("unknown_nested_key", 5, "targets[0].timeouts: unknown key 'dsn' (did you mean 'dns'?)"),
    ("misplaced_key", 4, "targets[0]: unknown key 'password' (it belongs under 'auth:')"),
    ("host_in_defaults", 3, "defaults: unknown key 'host' (it is set per target, not in defaults)"),
    ("wrong_type_port", 6, "targets[2].port: expected an integer 1..65535, got 'abc'"),
    ("wrong_type_user", 3, "defaults.user: expected a user name, got a list"),
    (
        "wrong_type_section",
        4,
        "targets[0].timeouts: expected a mapping like "
        "{dns: 3, tcp: 3, banner: 5, auth: 10, sftp: 10}, got 5",
    ),
    ("wrong_type_agent", 5, "targets[0].auth.agent: expected true or false, got 'maybe'"),
    ("port_zero", 4, "targets[0].port: expected an integer 1..65535, got 0"),
    ("port_too_big", 4, "targets[0].port: expected an integer 1..65535, got 65536"),
    ("port_bool", 4, "targets[0].port: expected an integer 1..65535, got true"),
    (
        "timeout_negative",
        3,
        "defaults.timeouts.tcp: expected a number of seconds > 0 and <= 3600, got -1",
    ),
    (
        "timeout_zero",
        5,
        "targets[0].timeouts.banner: expected a number of seconds > 0 and <= 3600, got 0",
    ),
    (
        "timeout_too_big",
        5,
        "targets[0].timeouts.auth: expected a number of seconds > 0 and <= 3600, got 3601",
    ),
    (
        "deadline_too_big",
        3,
        "defaults.deadline: expected a number of seconds > 0 and <= 86400, got 86401",
    ),
    (
        "stages_bad_order",
        6,
        "targets[0].stages: 'auth' needs 'tcp' and 'banner' before it (stages run in the order "
        "dns, tcp, banner, auth, sftp, each only if the one before passed)",
    ),
    ("stages_not_from_dns", 4, "targets[0].stages: must start with 'dns', got 'tcp'"),
    (
        "stages_string",
        4,
        "targets[0].stages: expected a list of stages like [dns, tcp], got 'dns,tcp'",
    ),
    ("stages_duplicate", 7, "targets[0].stages: 'tcp' is listed twice"),
    ("stages_unknown", 4, "targets[0].stages: unknown stage 'baner' (did you mean 'banner'?)"),
    (
        "duplicate_target_names",
        7,
        "targets[2]: duplicate target name 'upload' (first defined at line 3); "
        "give each target a distinct 'name'",
    ),
    (
        "duplicate_implicit_names",
        4,
        "targets[1]: duplicate target name 'sftp.example.com' (first defined at line 3); "
        "give each target a distinct 'name'",
    ),
    ("duplicate_key", 6, "duplicate key 'port' (first set at line 4)"),
    (
        "literal_password",
        5,
        "targets[0].auth.password: a literal password in a config file would be committed with "
        'it; reference an environment variable instead: password: "${SFTP_PASSWORD}"',
    ),
    (
        "password_not_only_reference",
        4,
        "defaults.auth.password: a literal password in a config file would be committed with "
        'it; reference an environment variable instead: password: "${SFTP_PASSWORD}"',
    ),
    (
        "literal_passphrase",
        6,
        "targets[0].auth.passphrase: a literal passphrase in a config file would be committed "
        'with it; reference an environment variable instead: passphrase: "${SSH_KEY_PASSPHRASE}"',
    ),
    (
        "literal_key_text",
        5,
        "targets[0].auth.key: a private key written in a config file would be committed with "
        'it; put it in a CI variable and write key: "${SSH_PRIVATE_KEY}"',
    ),
    ("missing_version", 2, "missing 'version: 1' (the version of this file's format)"),
    ("version_2", 1, "version: unsupported version 2; this preflight reads version 1"),
    ("version_string", 1, "version: expected the number 1, got '1'"),
    ("missing_targets", 1, "missing 'targets' (a list of hosts to check)"),
    ("empty_targets", 2, "targets: expected at least one target"),
    (
        "target_not_mapping",
        3,
        "targets[0]: expected a mapping with 'host', got 'sftp.example.com' "
        "(write {host: sftp.example.com})",
    ),
    ("missing_host", 3, "targets[0]: missing 'host' (the name or address to check)"),
    ("empty_file", 1, "empty file: expected 'version: 1' and a list of 'targets'"),
    ("comments_only", 1, "empty file: expected 'version: 1' and a list of 'targets'"),
    (
        "top_level_list",
        1,
        "expected a mapping with 'version' and 'targets' at the top level, got a list",
    ),
    ("not_utf8", 4, "not valid UTF-8 (byte 0xe9 at column 12); save the file as UTF-8"),
    ("multiple_documents", 4, "expected a single YAML document, found a second one"),
    ("unknown_tag", 3, "unsupported YAML tag '!vault'"),
    ("merge_not_mapping", 4, "'<<' merges a mapping or a list of mappings"),
    (
        "fingerprint_malformed",
        7,
        "targets[0].host_key.fingerprints: malformed fingerprint 'SHA256:tooShort' "
        "(expected 'SHA256:' and 43 base64 characters, as ssh-keygen -l prints)",
    ),
    (
        "fingerprint_md5",
        5,
        "targets[0].host_key.fingerprints: malformed fingerprint "
        "'MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48' "
        "(only SHA256 fingerprints are supported: ssh-keygen -l -E sha256 -f KEYFILE)",
    ),
    ("policy_bad", 4, "defaults.host_key.policy: expected strict, warn or off, got 'lenient'"),
    (
        "policy_typo",
        4,
        "targets[0].host_key.policy: expected strict, warn or off, got 'stirct' "
        "(did you mean 'strict'?)",
    ),
    (
        "unset_variable",
        4,
        "targets[0].host: environment variable 'PREFLIGHT_TEST_UNSET_HOST' is not set "
        "(set it, or write ${PREFLIGHT_TEST_UNSET_HOST:-default})",
    ),
    (
        "bad_variable_reference",
        4,
        "targets[0].user: bad variable reference '${DEPLOY-USER}' "
        "(expected ${NAME} or ${NAME:-default})",
    ),
    (
        "host_is_url",
        3,
        "targets[0].host: 'sftp://sftp.example.com/upload' looks like a URL; "
        "give only the host name (port, user and path are separate)",
    ),
    (
        "host_with_port",
        3,
        "targets[0].host: 'sftp.example.com:2222' looks like HOST:PORT; give the port separately",
    ),
]

# YAML syntax errors: the line is the parser's; the wording is libyaml's (PyYAML's pure-Python
# parser words them differently, so without libyaml only the line and prefix are checked).
SYNTAX_ERRORS = [
    (
        "yaml_syntax_error",
        4,
        "YAML syntax error: did not find expected '-' indicator "
        "(while parsing a block collection started at line 3)",
    ),
    (
        "unclosed_flow",
        5,
        "YAML syntax error: did not find expected ',' or ']' "
        "(while parsing a flow sequence started at line 4)",
    ),
    (
        "tab_indentation",
        3,
        "YAML syntax error: found character that cannot start any token "
        "(while scanning for the next token); YAML does not allow tabs for indentation, use spaces",
    ),
    (
        # `{key: ${VAR}}` reads as a mapping inside a mapping: the way out is quoting.
        "unquoted_reference_in_flow",
        5,
        "YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping); "
        "inside { } or [ ] a value holding ${VAR} is quoted: write '${SSH_PRIVATE_KEY}' "
        "(unquoted, YAML reads the '{' of ${ as the start of a mapping)",
    ),
]


def load_fixture(fixture: str) -> ConfigError:
    path = str(FIXTURES / f"{fixture}.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.file == path
    return info.value


@pytest.mark.parametrize(("fixture", "line", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_error_rule(fixture: str, line: int, message: str) -> None:
    err = load_fixture(fixture)
    assert str(err) == f"{FIXTURES / fixture}.yaml:{line}: {message}"
    assert (err.line, err.message) == (line, message)


@pytest.mark.parametrize(
    ("fixture", "line", "message"), SYNTAX_ERRORS, ids=[e[0] for e in SYNTAX_ERRORS]
)
def test_yaml_syntax_error_rule(fixture: str, line: int, message: str) -> None:
    err = load_fixture(fixture)
    assert err.line == line
    if yamlreader._LOADER is getattr(yaml, "CSafeLoader", None):
        assert err.message == message
    else:
        assert err.message.startswith("YAML syntax error: ")


@pytest.mark.parametrize("section", sorted(config._SECTION_EXAMPLES))
def test_the_mapping_an_error_suggests_is_one_the_config_takes(
    section: str, tmp_path: Path
) -> None:
    example = config._SECTION_EXAMPLES[section]
    path = tmp_path / "checks.yaml"
    target = f"{{name: a, host: h.example.com, {section}: {example}}}"
    path.write_text(f"version: 1\ntargets:\n  - {target}\n")
    loaded = load_config(str(path), {**ENV, "SFTP_PASSWORD": "pw"})
    assert [target.name for target in loaded.targets] == ["a"]


@pytest.mark.parametrize(
    "value",
    ["${X}", "/srv/${X}", "x${X}y${K}", "~/${K}/id", "$${X}", "${Y:-C:\\k\\id}", "it's/${X}"],
)
def test_the_quoting_a_yaml_error_suggests_means_what_the_value_means_in_a_block(
    value: str, tmp_path: Path
) -> None:
    def path_of(sftp: str) -> str:
        path = tmp_path / "checks.yaml"
        path.write_text(f"version: 1\ntargets:\n  - name: a\n    host: h.example.com\n    {sftp}\n")
        return load_config(str(path), {**ENV, "X": "x", "K": "k"}).targets[0].sftp_path

    with pytest.raises(ConfigError) as info:
        path_of(f"sftp: {{path: {value}}}")
    suggested = info.value.message.split("; inside { } or [ ] a value holding ${VAR} is quoted: ")[
        1
    ]
    suggested = suggested.removeprefix("write ").split(" (unquoted, YAML reads")[0]
    assert path_of(f"sftp: {{path: {suggested}}}") == path_of(f"sftp:\n      path: {value}")


@pytest.mark.parametrize(
    "auth",
    ["{password: Tr0ub4dor${PEPPER}}", "{b: 1, passphrase: Tr0ub4dor${PEPPER}}"],
)
def test_the_yaml_hint_never_repeats_a_password(auth: str) -> None:
    err = error(f"version: 1\ntargets:\n  - host: h.example.com\n    auth: {auth}\n")
    assert "Tr0ub4dor" not in str(err)
    assert "write the whole value in single quotes ('…${VAR}…')" in err.message


def test_the_yaml_hint_leaves_a_comment_out_of_the_value() -> None:
    err = error("version: 1\ntargets:\n  - {host: h.example.com, user: ${U}   # the login\n    }\n")
    assert "write '${U}' (unquoted" in err.message


def test_the_yaml_hint_is_quick_on_a_file_of_unclosed_references() -> None:
    started = time.process_time()
    error("version: 1\ntargets: [{host: ${X}" + "${" * 50_000 + "\n")
    assert time.process_time() - started < 2.0  # was quadratic: 0.85 s for 32 KB


@pytest.mark.parametrize(
    ("written", "advice"),
    [
        ("password: hunter2", "instead: "),
        ("passphrase: hunter2", "instead: "),
        ("key: '-----BEGIN OPENSSH PRIVATE KEY-----'", "write "),
    ],
)
@pytest.mark.parametrize("style", ["flow", "block"])
def test_the_credential_an_error_suggests_loads_where_it_was_written(
    written: str, advice: str, style: str, tmp_path: Path
) -> None:
    def config_with(auth: str) -> str:
        section = f"auth: {{{auth}}}" if style == "flow" else f"auth:\n      {auth}"
        path = tmp_path / "checks.yaml"
        path.write_text(
            f"version: 1\ntargets:\n  - name: a\n    host: h.example.com\n    {section}\n"
        )
        return str(path)

    with pytest.raises(ConfigError) as info:
        load_config(config_with(written), ENV)
    suggested = info.value.message.rsplit(advice, 1)[1]
    variables = {"SFTP_PASSWORD": "pw", "SSH_KEY_PASSPHRASE": "pp", "SSH_PRIVATE_KEY": "/k"}
    assert load_config(config_with(suggested), {**ENV, **variables}).targets


def test_every_fixture_is_in_a_table() -> None:
    named = {fixture for fixture, _, _ in ERRORS + SYNTAX_ERRORS}
    assert {path.stem for path in FIXTURES.glob("*.yaml")} == named


# --------------------------------------------------------------------------- command-line targets


SPEC_DEFAULTS = builtin_defaults({"USER": "ci"})


@pytest.mark.parametrize(
    ("spec", "host", "port", "user", "sftp_path"),
    [
        ("sftp.example.com", "sftp.example.com", 22, "ci", "."),
        ("sftp.example.com:2222", "sftp.example.com", 2222, "ci", "."),
        ("ingest@sftp.example.com", "sftp.example.com", 22, "ingest", "."),
        ("ingest@sftp.example.com:2222", "sftp.example.com", 2222, "ingest", "."),
        ("192.0.2.7:2222", "192.0.2.7", 2222, "ci", "."),
        ("[2001:db8::1]:2222", "2001:db8::1", 2222, "ci", "."),
        ("[2001:db8::1]", "2001:db8::1", 22, "ci", "."),
        ("::1", "::1", 22, "ci", "."),
        ("ingest@2001:db8::1", "2001:db8::1", 22, "ingest", "."),
        ("bücher.example:2222", "bücher.example", 2222, "ci", "."),
        (
            "sftp://ingest@sftp.example.com:2222/upload",
            "sftp.example.com",
            2222,
            "ingest",
            "/upload",
        ),
        ("sftp://sftp.example.com", "sftp.example.com", 22, "ci", "."),
        ("sftp://sftp.example.com/", "sftp.example.com", 22, "ci", "/"),
        ("sftp://sftp.example.com/~/in%20box", "sftp.example.com", 22, "ci", "in box"),
        ("sftp://u@[2001:db8::1]:2200/data", "2001:db8::1", 2200, "u", "/data"),
        ("SFTP://sftp.example.com/x", "sftp.example.com", 22, "ci", "/x"),
        ("ssh://ingest@sftp.example.com:2222", "sftp.example.com", 2222, "ingest", "."),
    ],
)
def test_target_from_spec(spec: str, host: str, port: int, user: str, sftp_path: str) -> None:
    target = target_from_spec(spec, SPEC_DEFAULTS)
    assert (target.name, target.host, target.port, target.user, target.sftp_path) == (
        spec,
        host,
        port,
        user,
        sftp_path,
    )
    assert target.origin == COMMAND_LINE


def test_target_from_spec_keeps_the_file_defaults() -> None:
    defaults = parse(MERGE).defaults
    target = target_from_spec("other.example", defaults)
    assert (target.port, target.user, target.sftp_path) == (2222, "deploy", "/upload")
    assert target.timeouts == defaults.timeouts
    # ssh's own known_hosts, written in full (its ~ is ssh's home, which may not be $HOME).
    known = os.path.expanduser("~/.ssh/known_hosts")
    assert target.host_key == replace(defaults.host_key, known_hosts=known)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("host:0", "target 'host:0': port must be a number 1..65535, got '0'"),
        ("host:65536", "target 'host:65536': port must be a number 1..65535, got '65536'"),
        ("host:", "target 'host:': port must be a number 1..65535, got ''"),
        ("host:ssh", "target 'host:ssh': port must be a number 1..65535, got 'ssh'"),
        ("[::1]:99999", "target '[::1]:99999': port must be a number 1..65535, got '99999'"),
        (":22", "target ':22': empty host name"),
        ("user@", "target 'user@': empty host name"),
        ("sftp://:22/x", "target 'sftp://:22/x': empty host name"),
        ("@host", "target '@host': empty user name before '@'"),
        ("", "target '': expected host, host:port, user@host:port or sftp://user@host:port/path"),
        (
            "http://host",
            "target 'http://host': unknown scheme 'http://' "
            "(use sftp://user@host:port/path or ssh://…)",
        ),
        (
            "ssh://host/upload",
            "target 'ssh://host/upload': an ssh:// URL takes no path; "
            "use sftp://host/path to list a directory",
        ),
        ("[db8::zz]:22", "target '[db8::zz]:22': 'db8::zz' in [brackets] is not an IPv6 address"),
        ("[::1]x", "target '[::1]x': expected ':PORT' after ']'"),
        (
            "host:/upload",
            "target 'host:/upload': scp-style host:/path is not supported; use sftp://host/path",
        ),
        ("a b", "target 'a b': host 'a b' is not a valid host name or IP address"),
    ],
)
def test_bad_target_spec(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        target_from_spec(spec, SPEC_DEFAULTS)
    assert str(info.value) == f"command line:1: {message}"


@pytest.mark.parametrize(
    "spec",
    [
        "ingest:hunter2@host",
        "sftp://ingest:hunter2@host:22/x",
        "sftp://deploy:hunter2#x@host/upload",  # would fail as a URL fragment first
        "sftp://deploy:hunter2/x@host/x",  # would fail as a bad port first
    ],
)
def test_password_in_target_spec_is_refused_without_repeating_it(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        target_from_spec(spec, SPEC_DEFAULTS)
    assert "hunter2" not in str(info.value)
    assert str(info.value) == (
        "command line:1: a password in a TARGET would show in process lists and CI logs; "
        "remove it and set SFTP_PASSWORD instead"
    )


# --------------------------------------------------------------------------- secrets


SECRET = "s3cr3t-Pa55word"
SECRET_ENV = {**ENV, "SFTP_PASSWORD": SECRET, "SSH_KEY_PASSPHRASE": SECRET}


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\ntargets:\n  - host: a\n    port: ${SFTP_PASSWORD}\n",
        "version: 1\ntargets:\n  - host: ${SFTP_PASSWORD}:22\n",
        "version: 1\ntargets:\n  - host: a\n    stages: ['${SFTP_PASSWORD}']\n",
        "version: 1\ntargets:\n  - host: a\n    timeouts: {dns: '${SFTP_PASSWORD}'}\n",
        "version: 1\ntargets:\n  - host: a\n    host_key: {policy: '${SFTP_PASSWORD}'}\n",
        "version: 1\ntargets:\n  - host: a\n    host_key: {fingerprints: ['${SFTP_PASSWORD}']}\n",
        "version: 1\ntargets:\n  - host: a\n    auth: {agent: '${SFTP_PASSWORD}'}\n",
        "version: 1\ntargets:\n  - host: a\n    auth: {password: " + SECRET + "}\n",
        "version: 1\ntargets:\n  - host: a\n    auth: {passphrase: '" + SECRET + "${X}'}\n",
        "version: 1\ntargets:\n  - host: a\n    auth: {key: '" + KEY_TEXT + "'}\n",
        "version: 1\ntargets:\n  - {host: a, auth: {password: '${SFTP_PASSWORD}'}}\n  - host: a\n",
    ],
)
def test_secrets_never_appear_in_error_messages(text: str) -> None:
    err = error(text, SECRET_ENV)
    assert SECRET not in str(err) and "b3BlbnNzaC1rZXkt" not in str(err)


def test_secrets_never_appear_in_the_repr_of_a_config() -> None:
    env = {**SECRET_ENV, "SSH_PRIVATE_KEY": KEY_TEXT}
    config = parse(AUTH, env)
    assert config.targets[0].auth.password == Secret(SECRET)
    for text in (repr(config), str(config), repr(config.defaults)):
        assert SECRET not in text and "b3BlbnNzaC1rZXkt" not in text


# --------------------------------------------------------------------------- robustness


def test_nesting_deeper_than_any_config_needs_is_an_error() -> None:
    depth = yamlnodes.MAX_DEPTH + 50
    err = error("version: 1\nx-deep: " + "[" * depth + "]" * depth + "\n")
    assert (err.line, err.message) == (2, f"nested more than {yamlnodes.MAX_DEPTH} levels deep")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    # libyaml's own composer recurses in C and would crash the interpreter; PyYAML >= 6.0.4
    # stops at its own depth limit first, before preflight's.
    depth = 100_000
    err = error("version: 1\nx-deep: " + "[" * depth + "]" * depth + "\n")
    assert err.line == 2
    assert err.message in (
        f"nested more than {yamlnodes.MAX_DEPTH} levels deep",
        "YAML syntax error: exceeded maximum nesting depth (while increasing flow level)",
    )


def test_alias_bomb_is_cheap() -> None:
    lines = ["version: 1", "x-0: &a0 [host]"]
    lines += [f"x-{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 12)]
    lines += ["targets:", "  - host: a"]
    start = time.monotonic()
    assert parse("\n".join(lines)).targets[0].host == "a"
    assert time.monotonic() - start < 5


def test_large_file_loads_in_reasonable_time() -> None:
    parts = ["version: 1", "defaults: {user: deploy}", "targets:"]
    for i in range(20_000):
        parts.append(f"  - name: t{i}\n    host: h{i}.example.com\n    port: {1024 + i}")
    text = "\n".join(parts) + "\n"  # about 1 MB
    start = time.monotonic()
    config = parse(text)
    assert len(config.targets) == 20_000 and config.targets[-1].port == 21_023
    assert time.monotonic() - start < 15


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        parse(text)
    except ConfigError as err:
        assert err.file == "checks.yaml" and err.line >= 1


YAML_ATOMS = st.sampled_from(
    ["version", "targets", "defaults", "host", "port", "1", "-1", "null", "a", "[", "]", "{",
     "}", ":", ": ", "- ", "\n", "  ", "&x ", "*x", "<<", "${X}", "${X:-1}", "$$", "'", '"', "#",
     "dns", "tcp", "stages", "timeouts", "auth", "password", "~", "!!str ", "---\n", "\t"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_ATOMS, max_size=40).map("".join))
def test_yamlish_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        parse("version: 1\n" + text)
    except ConfigError as err:
        assert err.line >= 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_config_or_a_config_error(data: bytes) -> None:
    try:
        parse_config(data, "checks.yaml", ENV)
    except ConfigError as err:
        assert err.line >= 1


# --------------------------------------------------------------------------- jump hosts, ssh_config


def test_jump_as_a_host_spec_inherits_the_key_but_never_the_password() -> None:
    env = {**ENV, "SSH_PRIVATE_KEY": KEY_TEXT, "SFTP_PASSWORD": "s3cret-pw"}
    target = one(
        "version: 1\ntargets:\n  - host: 198.51.100.5\n    user: ingest\n"
        "    jump: ops@bastion.example.com:2222\n",
        env,
    )
    (hop,) = target.jump
    assert (hop.host, hop.port, hop.user, hop.origin) == (
        "bastion.example.com",
        2222,
        "ops",
        "checks.yaml:5",
    )
    assert hop.auth.key == Secret(KEY_TEXT) and hop.auth.password is None
    assert hop.host_key == HostKeyConfig(known_hosts="~/.ssh/known_hosts", policy="strict")


def test_jump_chain_with_a_mapping_of_its_own_credentials_and_pins() -> None:
    env = {**ENV, "BASTION_PASSWORD": "pw"}
    target = one(
        "version: 1\n"
        "targets:\n"
        "  - host: inner\n"
        "    jump:\n"
        "      - bastion\n"
        "      - host: b2.example.com\n"
        "        port: 2200\n"
        "        user: jump\n"
        "        auth: {password: '${BASTION_PASSWORD}'}\n"
        f"        host_key: {{fingerprints: [{FP}]}}\n",
        env,
    )
    first, second = target.jump
    assert (first.host, first.port, first.user) == ("bastion", 22, "ci")
    assert (second.host, second.port, second.user) == ("b2.example.com", 2200, "jump")
    assert second.auth.password == Secret("pw") and second.auth.key is None
    assert second.host_key.fingerprints == (FP,)
    assert second.origin == "checks.yaml:6"


def test_jump_in_defaults_applies_to_every_target_and_null_clears_it() -> None:
    config = parse(
        "version: 1\ndefaults:\n  jump: bastion\ntargets:\n"
        "  - host: a\n  - host: b\n    jump: null\n"
    )
    assert [len(t.jump) for t in config.targets] == [1, 0]
    assert config.defaults_set == frozenset({"jump"})


@pytest.mark.parametrize(
    ("jump", "line", "message"),
    [
        (
            "{hots: bastion}",
            4,
            "targets[0].jump: unknown key 'hots' (did you mean 'host'?)",
        ),
        ("{port: 22}", 4, "targets[0].jump: missing 'host' (the jump host's name or address)"),
        (
            "'ops@bastion:ssh'",
            4,
            "targets[0].jump: 'ops@bastion:ssh' is not a jump host (expected [user@]host[:port] "
            "or ssh://user@host:port)",
        ),
        (
            "[a, {host: b, port: 70000}]",
            4,
            "targets[0].jump[1].port: expected an integer 1..65535, got 70000",
        ),
        (
            "22",
            4,
            "targets[0].jump: expected a jump host like 'user@bastion:22', a mapping with "
            "'host', or a list of them, got 22",
        ),
        (
            "[a, b, c, d, e, f, g, h, i]",
            4,
            "targets[0].jump: more than 8 jump hosts",
        ),
        (
            "{host: b, key: x}",
            4,
            "targets[0].jump: unknown key 'key' (it belongs under 'auth:')",
        ),
    ],
)
def test_bad_jump(jump: str, line: int, message: str) -> None:
    err = error(f"version: 1\ntargets:\n  - host: inner\n    jump: {jump}\n")
    assert (err.line, err.message) == (line, message)


def test_a_password_in_a_jump_spec_is_refused_without_repeating_it() -> None:
    err = error("version: 1\ntargets:\n  - host: inner\n    jump: 'ops:hunter2@bastion'\n")
    assert "hunter2" not in str(err)
    assert err.message.startswith("targets[0].jump: a password in a jump host")


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        # A sub-key of a section says where it belongs before any near miss: `path` is one
        # letter from `auth`, and `auth: /upload` is no fix.
        ("path: /upload", "it belongs under 'sftp:'"),
        ("list: false", "it belongs under 'sftp:'"),
        # Other tools' words for this file's keys (`hostname` is one edit from `name`).
        ("hostname: h.example.com", "did you mean 'host'?"),
        ("username: ops", "did you mean 'user'?"),
        ("ssh_key: /k/id", "a key file is written under 'auth:' as key: PATH"),
        ("prot: 22", "did you mean 'port'?"),
        # A setting as the reports and hints name it, pasted as a key.
        ("host_key.fingerprints: [x]", "a nested key: write host_key: {fingerprints: …}"),
        ("auth.passphrase: x", "a nested key: write auth: {passphrase: …}"),
    ],
)
def test_an_unknown_key_gets_the_hint_that_mends_it(written: str, hint: str) -> None:
    err = error(f"version: 1\ntargets:\n  - host: h.example.com\n    {written}\n")
    key = written.split(":")[0]
    assert err.message == f"targets[0]: unknown key '{key}' ({hint})"


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("deploy@127.0.0.1:2222", ("127.0.0.1", 2222, "deploy")),
        ("h.example.com", ("h.example.com", 22, "ci")),
        ("'[::1]:2200'", ("::1", 2200, "ci")),
        ("ops@true", ("true", 22, "ops")),
    ],
)
@pytest.mark.parametrize("style", ["block", "flow"])
def test_a_target_written_as_a_string_gets_the_mapping_it_means(
    written: str, meant: tuple[str, int, str], style: str
) -> None:
    def text(item: str) -> str:
        listed = f"\n  - {item}\n" if style == "block" else f" [{item}]\n"
        return f"version: 1\ntargets:{listed}"

    err = error(text(written))
    suggested = err.message.rsplit(" (write ", 1)[1].removesuffix(")")
    target = one(text(suggested))
    assert (target.host, target.port, target.user) == meant


@pytest.mark.parametrize("written", ["sftp://deploy@sftp.example.com", "deploy@h.example.com/up"])
def test_a_target_written_as_a_url_or_with_a_path_gets_no_mapping_that_would_mislead(
    written: str,
) -> None:
    err = error(f"version: 1\ntargets:\n  - {written}\n")
    assert err.message == f"targets[0]: expected a mapping with 'host', got '{written}'"


def test_a_target_written_as_a_string_with_a_password_is_refused_without_it() -> None:
    err = error("version: 1\ntargets:\n  - deploy:s3cret@h.example.com:2222\n")
    assert "s3cret" not in str(err)
    assert "got a string holding a password (not shown)" in err.message


def test_hostname_in_defaults_is_said_to_be_per_target() -> None:
    err = error("version: 1\ndefaults:\n  hostname: h\ntargets:\n  - host: h.example.com\n")
    assert (
        err.message
        == "defaults: unknown key 'hostname' ('host' is set per target, not in defaults)"
    )


def test_a_typo_of_jump_suggests_it() -> None:
    err = error("version: 1\ntargets:\n  - host: inner\n    jmup: bastion\n")
    assert err.message == "targets[0]: unknown key 'jmup' (did you mean 'jump'?)"


def ssh_home(tmp_path: Path, text: str) -> dict[str, str]:
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(text)
    return {**ENV, "HOME": str(tmp_path)}


SSH_CONFIG = "Host inner\n  Port 2222\n  User from-ssh\n  ProxyJump ops@bastion\n"


def test_ssh_config_is_not_read_for_file_targets_by_default(tmp_path: Path) -> None:
    env = ssh_home(tmp_path, SSH_CONFIG)
    target = one("version: 1\ntargets:\n  - host: inner\n", env)
    assert (target.port, target.user, target.jump, target.sources) == (22, "ci", (), ())


def test_ssh_config_true_applies_between_the_target_and_the_defaults(tmp_path: Path) -> None:
    env = ssh_home(tmp_path, SSH_CONFIG)
    config = parse(
        "version: 1\ndefaults:\n  user: deploy\n  ssh_config: true\ntargets:\n"
        "  - host: inner\n    port: 2200\n",
        env,
    )
    (target,) = config.targets
    assert (target.port, target.user) == (2200, "from-ssh")
    assert [(hop.user, hop.host) for hop in target.jump] == [("ops", "bastion")]
    sources = {s.setting: (s.value, s.source) for s in target.sources}
    assert sources["port"] == ("2200", "checks.yaml:6")
    assert sources["user"] == ("from-ssh", "~/.ssh/config:3")
    assert sources["jump"] == ("ops@bastion:22", "~/.ssh/config:4")
    assert sources["tcp timeout"] == ("3s", "built-in default")


def test_a_tcp_timeout_set_for_the_target_also_bounds_its_jump_hosts(tmp_path: Path) -> None:
    env = ssh_home(tmp_path, SSH_CONFIG + "Host bastion\n  ConnectTimeout 20\n")
    text = "version: 1\ntargets:\n  - host: inner\n    ssh_config: true\n{}"
    (hop,) = one(text.format(""), env).jump
    assert hop.tcp_timeout == 20.0
    (hop,) = one(text.format("    timeouts: {tcp: 4}\n"), env).jump
    assert hop.tcp_timeout is None  # the target's 4 s, as the file says


def test_ssh_config_path_is_relative_to_the_checks_file(tmp_path: Path) -> None:
    (tmp_path / "ssh").mkdir()
    (tmp_path / "ssh" / "config").write_text(SSH_CONFIG)
    checks = tmp_path / "checks.yaml"
    checks.write_text("version: 1\ntargets:\n  - host: inner\n    ssh_config: ssh/config\n")
    (target,) = load_config(checks, ENV).targets
    assert target.port == 2222
    assert {s.setting: s.source for s in target.sources}["port"] == f"{tmp_path}/ssh/config:2"


def test_the_command_line_ssh_config_applies_to_every_target_or_to_none(tmp_path: Path) -> None:
    given = tmp_path / "given_config"
    given.write_text("Port 2022\n")
    text = "version: 1\ntargets:\n  - host: a\n  - host: b\n    ssh_config: true\n"
    env = ssh_home(tmp_path, SSH_CONFIG)
    config = parse_config(text, "checks.yaml", env, ssh_config=str(given))
    assert [t.port for t in config.targets] == [2022, 2022]
    config = parse_config(text, "checks.yaml", env, ssh_config="none")
    assert [t.port for t in config.targets] == [22, 22]


def test_a_broken_ssh_config_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    env = ssh_home(tmp_path, "Host inner\n  Port twenty-two\n")
    err = error("version: 1\ntargets:\n  - host: inner\n    ssh_config: true\n", env)
    assert str(err) == "~/.ssh/config:2: Port: expected a number 1..65535, got 'twenty-two'"


def test_a_nul_in_a_value_is_refused_where_it_is_written() -> None:
    # YAML can write one ("\0"); no host, path or user name can hold it.
    exc = error('version: 1\ntargets:\n  - host: a\n    host_key: {known_hosts: "/tmp/a\\0b"}\n')
    assert (exc.line, exc.message) == (
        4,
        "targets[0].host_key.known_hosts: contains a NUL character (\\0)",
    )


def test_a_nul_in_the_config_path_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="holds a NUL character"):
        load_config(str(tmp_path / "a\0b.yaml"))


@pytest.mark.parametrize("host", ["banner=20", "a+b", "x,y", "a!b"])
def test_a_host_glibc_would_refuse_unasked_is_refused_here(host: str) -> None:
    # getaddrinfo fails these with EAI_NONAME without asking any resolver: reporting
    # "the resolver answered NXDOMAIN" would be untrue.
    with pytest.raises(ConfigError, match="is not a valid host name or IP address"):
        target_from_spec(host, builtin_defaults({}))


def test_a_typed_hosts_known_hosts_is_ssh_s_in_ssh_s_home(tmp_path: Path, monkeypatch) -> None:
    from preflight import sshconfig

    monkeypatch.setattr(sshconfig, "passwd_home", lambda: str(tmp_path / "pw"))
    target = target_from_spec("h.example", builtin_defaults({"HOME": "/elsewhere"}))
    assert target.host_key.known_hosts == f"{tmp_path}/pw/.ssh/known_hosts"


def test_ssh_offers_every_default_key_and_the_report_says_preflight_offers_one(
    tmp_path: Path,
) -> None:
    env = ssh_home(tmp_path, "Host other\n  Port 2\n")
    for name in ("id_rsa", "id_ed25519"):
        (tmp_path / ".ssh" / name).write_text("not a key\n")
    ssh = open_ssh_config(None, env)
    target = target_from_spec("h.example", builtin_defaults(env), ssh)
    assert target.auth.key_source == f"file {tmp_path}/.ssh/id_rsa"
    assert target.config_notes == (
        "ssh offers each of ~/.ssh/id_rsa, ~/.ssh/id_ed25519 in turn; preflight offers only "
        "the first, ~/.ssh/id_rsa: if the server refuses it, name the key to check with "
        "IdentityFile or $SSH_PRIVATE_KEY",
    )


# --------------------------------------------------------------------------- sftp upload check


def test_the_upload_check_is_off_unless_asked_for() -> None:
    target = one("version: 1\ntargets:\n  - host: h\n")
    assert (target.sftp_write, target.sftp_list, target.sftp_min_free) == (None, True, None)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("true", WriteCheck(len(UPLOAD_NOTE))),
        ("yes", WriteCheck(len(UPLOAD_NOTE))),
        ("false", None),
        ("1MiB", WriteCheck(1024 * 1024, sized=True)),
        ("'1.5 MB'", WriteCheck(1_500_000, sized=True)),
        ("4096", WriteCheck(4096, sized=True)),
        ("${SIZE}", WriteCheck(2048, sized=True)),
    ],
)
def test_write_is_true_false_or_a_size(written: str, expected: WriteCheck | None) -> None:
    text = (
        f"version: 1\ntargets:\n  - host: h\n    sftp:\n      path: /up\n      write: {written}\n"
    )
    assert one(text, {"SIZE": "2KiB"}).sftp_write == expected


def test_write_list_and_min_free_merge_from_defaults_key_by_key() -> None:
    config = parse(
        "version: 1\n"
        "defaults:\n  sftp: {path: /drop, write: 1MiB, list: false, min_free: 5GiB}\n"
        "targets:\n"
        "  - host: a\n"
        "  - host: b\n    sftp: {write: null, list: true}\n"
    )
    a, b = config.targets
    assert (a.sftp_path, a.sftp_write, a.sftp_list, a.sftp_min_free) == (
        "/drop",
        WriteCheck(1024 * 1024, sized=True),
        False,
        5 * 1024**3,
    )
    assert (b.sftp_path, b.sftp_write, b.sftp_list, b.sftp_min_free) == (
        "/drop",
        None,
        True,
        5 * 1024**3,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "5M",
            "targets[0].sftp.write: expected true, false or a size to upload like 1MiB, got "
            "'5M' (a unit needs its B: B, KiB, MiB, GiB, TiB, PiB or kB, MB, GB, TB, PB)",
        ),
        (
            "lots",
            "targets[0].sftp.write: expected true, false or a size to upload like 1MiB, got "
            "'lots' (units: B, KiB, MiB, GiB, TiB, PiB or kB, MB, GB, TB, PB)",
        ),
        ("0", "targets[0].sftp.write: a size must be above 0 and at most 10.0 GiB, got '0'"),
        (
            "11GiB",
            "targets[0].sftp.write: a size must be above 0 and at most 10.0 GiB, got '11GiB'",
        ),
        (
            "[1]",
            "targets[0].sftp.write: expected true, false or a size to upload like 1MiB, got a list",
        ),
    ],
)
def test_a_bad_write_says_what_a_size_looks_like(value: str, message: str) -> None:
    err = error(f"version: 1\ntargets:\n  - host: h\n    sftp:\n      write: {value}\n")
    assert (err.line, err.message) == (5, message)


def test_min_free_must_be_a_size_and_list_a_flag() -> None:
    err = error("version: 1\ntargets:\n  - host: h\n    sftp:\n      min_free: plenty\n")
    assert err.message == (
        "targets[0].sftp.min_free: expected a size like 5GiB, got 'plenty' (units: B, KiB, "
        "MiB, GiB, TiB, PiB or kB, MB, GB, TB, PB)"
    )
    err = error("version: 1\ntargets:\n  - host: h\n    sftp:\n      list: sometimes\n")
    assert err.message == "targets[0].sftp.list: expected true or false, got 'sometimes'"


def test_a_near_miss_sftp_key_is_suggested() -> None:
    err = error("version: 1\ntargets:\n  - host: h\n    sftp: {path: /u, writes: true}\n")
    assert "did you mean 'write'" in err.message


def test_trace_is_off_unless_asked_for_and_a_flag() -> None:
    assert one("version: 1\ntargets:\n  - host: h\n").trace is False
    config = parse(
        "version: 1\ndefaults: {trace: true}\ntargets:\n  - host: a\n  - {host: b, trace: false}\n"
    )
    assert [t.trace for t in config.targets] == [True, False]
    err = error("version: 1\ntargets:\n  - {host: h, trace: maybe}\n")
    assert err.message == "targets[0].trace: expected true or false, got 'maybe'"
