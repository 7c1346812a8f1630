"""Loading private keys the way CI variables deliver them (no network)."""

from __future__ import annotations

import pytest

from preflight import credentials, lab
from preflight.errors import BadKey, NoCredentials
from preflight.model import AuthConfig, Secret

KEYS = {
    "ed25519": lab.generate_ed25519(),
    "ecdsa": lab.generate_ecdsa(),
    "rsa": lab.generate_rsa(2048),
}


def load(text: str, passphrase: str | None = None):
    auth = AuthConfig(
        key=Secret(text),
        passphrase=Secret(passphrase) if passphrase else None,
        key_source="variable SSH_PRIVATE_KEY",
    )
    return credentials.load_private_key(auth)


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_key_text_loads(kind):
    key = KEYS[kind]
    assert load(lab.private_key_text(key)).asbytes() == key.asbytes()


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_crlf_line_ends_and_missing_final_newline_are_repaired(kind):
    key = KEYS[kind]
    mangled = lab.private_key_text(key).strip().replace("\n", "\r\n")
    assert load(mangled).asbytes() == key.asbytes()


def test_escaped_newlines_from_a_one_line_variable_are_repaired():
    key = KEYS["ed25519"]
    one_line = lab.private_key_text(key).strip().replace("\n", "\\n")
    assert load(one_line).asbytes() == key.asbytes()


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_encrypted_key_with_right_passphrase_loads(kind):
    key = KEYS[kind]
    assert load(lab.private_key_text(key, "pass phrase"), "pass phrase").asbytes() == key.asbytes()


def test_encrypted_key_without_passphrase_is_bad_key_naming_the_source():
    with pytest.raises(BadKey) as caught:
        load(lab.private_key_text(KEYS["ed25519"], "pass phrase"))
    assert caught.value.source == "variable SSH_PRIVATE_KEY"
    assert "no passphrase" in caught.value.reason


def test_wrong_passphrase_is_bad_key():
    with pytest.raises(BadKey, match="passphrase is wrong"):
        load(lab.private_key_text(KEYS["rsa"], "pass phrase"), "other")


def test_key_file_path_loads_and_missing_file_is_no_credentials(tmp_path):
    path = tmp_path / "id_ed25519"
    path.write_text(lab.private_key_text(KEYS["ed25519"]))
    auth = AuthConfig(key=Secret(str(path)), key_source=f"file {path}")
    assert credentials.load_private_key(auth) is not None
    missing = AuthConfig(key=Secret(str(tmp_path / "nope")), key_source=f"file {tmp_path}/nope")
    with pytest.raises(NoCredentials) as caught:
        credentials.load_private_key(missing)
    assert caught.value.missing_file == f"the key file {tmp_path / 'nope'}"


def test_a_file_that_is_not_a_key_is_bad_key(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("remember the milk\n")
    with pytest.raises(BadKey, match="not a private key") as caught:
        credentials.load_private_key(AuthConfig(key=Secret(str(path)), key_source="file x"))
    assert caught.value.kind == "not_a_key"


def test_the_public_half_is_bad_key_saying_so(tmp_path):
    path = tmp_path / "id_rsa.pub"
    path.write_text("ssh-ed25519 AAAA... me@host\n")
    with pytest.raises(BadKey, match="is a public key") as caught:
        credentials.load_private_key(AuthConfig(key=Secret(str(path)), key_source="file x"))
    assert caught.value.kind == "public_key"


def test_no_key_configured_gives_none():
    assert credentials.load_private_key(AuthConfig()) is None


def test_bad_key_message_never_contains_key_material():
    text = lab.private_key_text(KEYS["ed25519"], "pass phrase")
    with pytest.raises(BadKey) as caught:
        load(text, "wrong")
    body_lines = [ln for ln in text.splitlines() if ln and not ln.startswith("-----")]
    assert not any(ln in str(caught.value) for ln in body_lines)


def test_a_missing_key_file_named_by_a_variable_is_not_shown():
    auth = AuthConfig(key=Secret("/run/secrets/deploy_key"), key_source="the file named by ${K}")
    with pytest.raises(NoCredentials) as caught:
        credentials.load_private_key(auth)
    assert caught.value.missing_file == "the file named by ${K}"


def test_base64_encoded_key_from_a_masked_variable_loads():
    import base64

    key = KEYS["ed25519"]
    encoded = base64.b64encode(lab.private_key_text(key).encode()).decode()
    assert load(encoded).asbytes() == key.asbytes()


def test_a_mangled_key_from_a_variable_is_bad_key_not_a_file_name():
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQy" * 6
    with pytest.raises(BadKey) as caught:
        load(body)
    assert body[:20] not in str(caught.value)
