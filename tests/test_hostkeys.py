"""Host key verification against known_hosts content and pinned fingerprints (no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from preflight import hostkeys, lab
from preflight.model import HostKeyConfig

KEY = lab.generate_ed25519()
OTHER = lab.generate_ed25519()
BLOB = KEY.asbytes()


def line(names: str, key=KEY) -> str:
    return f"{names} {key.get_name()} {key.get_base64()}"


def hashed(name: str) -> str:
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def verify(known_hosts: str | None, pins=(), host="sftp.example.com", port=22):
    config = HostKeyConfig(known_hosts=known_hosts, fingerprints=tuple(pins))
    return hostkeys.verify(config, host, port, KEY.get_name(), BLOB)


def test_fingerprint_is_openssh_sha256_without_padding():
    fp = hostkeys.fingerprint(BLOB)
    assert fp == lab.fingerprint(KEY)
    assert fp.startswith("SHA256:") and not fp.endswith("=")


def test_plain_entry_matches():
    assert verify(line("sftp.example.com") + "\n").status == "match"


def test_non_standard_port_uses_bracketed_form():
    assert verify(line("[sftp.example.com]:2222") + "\n", port=2222).status == "match"
    assert verify(line("sftp.example.com") + "\n", port=2222).status == "unknown"


def test_hashed_entries_match():
    assert verify(line(hashed("[sftp.example.com]:2222")) + "\n", port=2222).status == "match"


def test_several_names_and_several_keys_per_host():
    text = "\n".join(
        [line("other.example.com,sftp.example.com", OTHER), line("alias,sftp.example.com")]
    )
    assert verify(text + "\n").status == "match"


def test_wildcards_and_negation():
    assert verify(line("*.example.com") + "\n").status == "match"
    assert verify(line("*.example.com,!sftp.example.com") + "\n").status == "unknown"


def test_an_entry_for_the_address_alone_does_not_vouch_for_a_name():
    # As ssh: `ssh sftp.example.com` fails with only the address in known_hosts (CheckHostIP no).
    text = line("192.0.2.10") + "\n"
    assert verify(text).status == "unknown"
    assert verify(text, host="192.0.2.10").status == "match"


def test_an_entry_for_the_address_or_port_22_is_reported_for_an_unknown_name():
    # Not a match, but worth saying: "FILE has this key for [192.0.2.10]:2222 but nothing for
    # [sftp.example.com]:2222". Hashed entries are found too: the address is known.
    text = line(hashed("[192.0.2.10]:2222")) + "\n" + line("sftp.example.com") + "\n"
    config = HostKeyConfig(known_hosts=text)
    verdict = hostkeys.verify(
        config, "sftp.example.com", 2222, KEY.get_name(), BLOB, addresses=["192.0.2.10"]
    )
    assert verdict.status == "unknown"
    assert verdict.name == "[sftp.example.com]:2222"
    assert verdict.known_as == ("[192.0.2.10]:2222", "sftp.example.com")
    assert verdict.known_in == "known_hosts given as content"
    other = line("[192.0.2.10]:2222", OTHER) + "\n"  # another key for the address: not this one
    verdict = hostkeys.verify(
        HostKeyConfig(known_hosts=other),
        "sftp.example.com",
        2222,
        KEY.get_name(),
        BLOB,
        addresses=["192.0.2.10"],
    )
    assert verdict.known_as == ()


def test_a_host_key_alias_is_the_only_name_looked_up():
    # OpenSSH HostKeyAlias: the alias verbatim (no [host]:port form), instead of host and address.
    aliased = HostKeyConfig(known_hosts=line("lab-alias") + "\n", alias="lab-alias")
    assert hostkeys.verify(aliased, "127.0.0.1", 2222, KEY.get_name(), BLOB).status == "match"
    by_name = HostKeyConfig(known_hosts=line("[127.0.0.1]:2222") + "\n", alias="lab-alias")
    verdict = hostkeys.verify(by_name, "127.0.0.1", 2222, KEY.get_name(), BLOB)
    assert verdict.status == "unknown"
    assert verdict.checked == "known_hosts given as content under the HostKeyAlias 'lab-alias'"
    assert hostkeys.known_name(by_name, "127.0.0.1", 2222) == "lab-alias"
    assert hostkeys.preferred_key_types(aliased, "127.0.0.1", 2222) == [KEY.get_name()]
    assert hostkeys.preferred_key_types(by_name, "127.0.0.1", 2222) == []


def test_other_key_of_the_same_type_is_a_mismatch_listing_the_expected_fingerprint():
    verdict = verify(line("sftp.example.com", OTHER) + "\n")
    assert verdict.status == "mismatch"
    assert verdict.expected == (lab.fingerprint(OTHER),)


def test_revoked_key_is_refused_naming_the_file_that_revokes_it():
    verdict = verify("@revoked " + line("sftp.example.com") + "\n")
    assert verdict.status == "revoked"
    assert verdict.checked == "known_hosts given as content"
    # A pin does not overrule a revocation, as ssh's does not.
    fp = hostkeys.fingerprint(BLOB)
    assert verify("@revoked " + line("sftp.example.com") + "\n", pins=[fp]).status == "revoked"


def test_pinned_fingerprint_matches_with_or_without_padding():
    fp = hostkeys.fingerprint(BLOB)
    assert verify(None, pins=[fp]).status == "match"
    assert verify(None, pins=[fp + "="]).status == "match"


def test_pins_that_do_not_match_are_a_mismatch_by_pins():
    # by_pins: a pin has no key type, so the server may hold the pinned key under another.
    verdict = verify(None, pins=[lab.fingerprint(OTHER)])
    assert verdict.status == "mismatch"
    assert verdict.by_pins
    assert not verify(line("sftp.example.com", OTHER) + "\n").by_pins


def test_unknown_when_nothing_vouches_for_the_key():
    assert verify(None).status == "unknown"
    assert verify("# just a comment\n\n").status == "unknown"


def test_known_hosts_path_that_does_not_exist_is_reported_not_fatal(tmp_path):
    verdict = verify(str(tmp_path / "nope"))
    assert verdict.status == "unknown"
    assert verdict.checked.endswith("nope (the file does not exist)")
    unreadable = verify(str(tmp_path))  # a directory
    assert unreadable.status == "unknown"
    assert unreadable.checked == f"{tmp_path} (cannot be read: Is a directory)"


def test_known_hosts_from_a_file(tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text(line("sftp.example.com") + "\n")
    assert verify(str(path)).status == "match"


def test_malformed_lines_are_skipped():
    text = "garbage\nhost ssh-ed25519 !!!notbase64\n" + line("sftp.example.com") + "\n"
    assert verify(text).status == "match"


def test_pin_line_is_a_valid_known_hosts_line():
    pin = hostkeys.pin_line("[127.0.0.1]:2222", KEY.get_name(), BLOB)
    assert pin == line("[127.0.0.1]:2222")
    config = HostKeyConfig(known_hosts=pin + "\n")
    assert hostkeys.verify(config, "127.0.0.1", 2222, KEY.get_name(), BLOB).status == "match"
