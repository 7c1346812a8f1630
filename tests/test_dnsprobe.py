"""What the dns stage asks the resolver's servers after "try again" (`stages.dnsprobe`): the
questions getaddrinfo asked, in its order. The answers are tested against a stub DNS server in a
namespace (tests/system/test_dns.py)."""

from __future__ import annotations

from preflight.stages.dnsprobe import ResolvConf, questions, read_resolv_conf


def test_a_name_with_fewer_dots_than_ndots_is_tried_with_the_search_domains_first():
    conf = ResolvConf(["127.0.0.1"], True, ["corp.example", "example"], 1)
    assert questions("sftp", conf) == ["sftp.corp.example", "sftp.example", "sftp"]
    assert questions("sftp.corp", conf) == [
        "sftp.corp",
        "sftp.corp.corp.example",
        "sftp.corp.example",
    ]
    assert questions("sftp.example.com.", ResolvConf(["::1"], True, [], 1)) == ["sftp.example.com"]


def test_resolv_conf_is_read_as_glibc_reads_it(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text(
        "# comment\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n"
        "domain old.example\nsearch corp.example example\noptions ndots:2 timeout:1\n"
    )
    conf = read_resolv_conf(str(path))
    assert conf == ResolvConf(["10.0.0.2", "::1", "10.0.0.3"], True, ["corp.example", "example"], 2)
    assert read_resolv_conf(str(tmp_path / "missing")) == ResolvConf(["127.0.0.1"], False, [], 1)
