"""Turn the configured credentials into something paramiko can authenticate with.

A key arrives as a file path or as the key text itself (a CI variable), often mangled by
copy-paste: CRLF line ends, no final newline, or `\\n` escapes instead of line breaks. Those are
repaired here. Loading failures become `BadKey` naming the key's *source* ("variable
SSH_PRIVATE_KEY"), never its content, and with our own wording, because paramiko's messages are
not guaranteed free of key material. Imports paramiko, so only the SSH stages import this module.
"""

from __future__ import annotations

import base64
import functools
import io
import os

import paramiko

from preflight import keytext
from preflight.errors import BadKey, NoCredentials
from preflight.model import AuthConfig

_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (
    paramiko.Ed25519Key,
    paramiko.ECDSAKey,
    paramiko.RSAKey,
)


def repair_key_text(text: str) -> str:
    """Undo the usual damage done to a key stored in a CI variable."""
    decoded = keytext.decode_base64_key(text)
    if decoded is not None:
        text = decoded
    text = text.strip()
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.strip() for line in text.split("\n")) + "\n"


def key_source(auth: AuthConfig) -> str:
    return auth.key_source or "the configured key"


def load_private_key(auth: AuthConfig) -> paramiko.PKey | None:
    """The configured private key, or None when no key is configured."""
    if isinstance(auth.pkey, paramiko.PKey):
        return auth.pkey
    if not auth.key:
        return None
    value = auth.key.reveal()
    source = key_source(auth)
    from_variable = not source.startswith("file ")
    passphrase = auth.passphrase.reveal() if auth.passphrase else None
    if keytext.looks_like_public_key(value):
        raise BadKey(source, "is a public key (the .pub half), not the private key", "public_key")
    if keytext.is_key_text(value, from_variable=from_variable):
        text = repair_key_text(value)
    else:
        path = os.path.expanduser(value.strip())
        # A path that came from a variable is named by the variable, never shown.
        named = source if from_variable else f"the key file {path}"
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise NoCredentials(auth.unset, missing_file=named) from None
        except IsADirectoryError:
            raise BadKey(source, "is a directory, not a key file", "directory") from None
        except PermissionError as exc:
            raise BadKey(source, f"cannot be read ({exc.strerror})", "unreadable") from None
        except OSError as exc:
            raise BadKey(source, f"cannot be read ({exc.strerror})", "unreadable") from None
        if keytext.looks_like_public_key(text):
            raise BadKey(
                source, "is a public key (the .pub half), not the private key", "public_key"
            )
        if not keytext.looks_like_key_text(text):
            raise BadKey(source, "is not a private key (no 'PRIVATE KEY' block)", "not_a_key")
        text = repair_key_text(text)
    return _parse(text, passphrase, source)


def is_encrypted(text: str) -> bool:
    """Whether the key needs a passphrase: PEM `Proc-Type: 4,ENCRYPTED`, PKCS#8 `ENCRYPTED
    PRIVATE KEY`, or an OpenSSH-format key whose cipher is not `none`."""
    if "ENCRYPTED" in text:
        return True
    body = "".join(ln for ln in text.splitlines() if ln and not ln.startswith("-----"))
    try:
        blob = base64.b64decode(body)
    except ValueError:
        return False
    magic = b"openssh-key-v1\x00"
    if not blob.startswith(magic):
        return False
    length = int.from_bytes(blob[len(magic) : len(magic) + 4], "big")
    return blob[len(magic) + 4 : len(magic) + 4 + length] != b"none"


@functools.lru_cache(maxsize=16)
def _parse(text: str, passphrase: str | None, source: str) -> paramiko.PKey:
    """Parsed once per run and key, not once per target: decrypting an OpenSSH key runs
    bcrypt, tens of milliseconds each time. (A failure is not cached: it raises.)"""
    return _parse_uncached(text, passphrase, source)


def _parse_uncached(text: str, passphrase: str | None, source: str) -> paramiko.PKey:
    key_type = keytext.private_key_type(text)
    if key_type in keytext.PARAMIKO_CANNOT_USE:
        raise BadKey(source, f"is a {key_type} key, which paramiko cannot use", "paramiko_type")
    encrypted = is_encrypted(text)
    if encrypted and not passphrase:
        raise BadKey(
            source, "is encrypted and no passphrase is set (auth.passphrase)", "no_passphrase"
        )
    for key_class in _KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            # Not this class's format, or the right class with a wrong passphrase: paramiko
            # reports both alike, so try the others and decide below.
            continue
    if encrypted:
        raise BadKey(source, "could not be decrypted: the passphrase is wrong", "wrong_passphrase")
    raise BadKey(
        source,
        "is not a private key paramiko can read (ed25519, ECDSA or RSA; OpenSSH or PEM format)",
    )
