"""Throw-away SSH keys for the lab servers, the tests and ``preflight demo``.

Paramiko can generate RSA and ECDSA keys but not Ed25519 ones, and it cannot write an Ed25519
key back out; this module fills both gaps with ``cryptography``. :func:`private_key_text` returns
a key in the OpenSSH private key format (optionally passphrase-protected), i.e. exactly the text
a CI variable such as ``SSH_PRIVATE_KEY`` would hold.
"""

from __future__ import annotations

import io

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from preflight import hostkeys

__all__ = [
    "fingerprint",
    "generate_ecdsa",
    "generate_ed25519",
    "generate_rsa",
    "private_key_text",
]


def _openssh_text(key: PrivateKeyTypes, passphrase: str | None = None) -> str:
    encryption: serialization.KeySerializationEncryption
    if passphrase is None:
        encryption = serialization.NoEncryption()
    else:
        if not passphrase:
            raise ValueError("an empty passphrase cannot encrypt a key; pass None instead")
        encryption = serialization.BestAvailableEncryption(passphrase.encode())
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )
    return data.decode("ascii")


def generate_ed25519() -> paramiko.Ed25519Key:
    """Return a fresh Ed25519 key pair as a paramiko key."""
    text = _openssh_text(ed25519.Ed25519PrivateKey.generate())
    return paramiko.Ed25519Key.from_private_key(io.StringIO(text))


def generate_rsa(bits: int = 2048) -> paramiko.RSAKey:
    """Return a fresh RSA key pair of ``bits`` bits as a paramiko key."""
    return paramiko.RSAKey.generate(bits)


def generate_ecdsa(bits: int = 256) -> paramiko.ECDSAKey:
    """Return a fresh ECDSA key pair (NIST P-256 by default; 384 and 521 also work)."""
    return paramiko.ECDSAKey.generate(bits=bits)


def _crypto_private_key(pkey: paramiko.PKey) -> PrivateKeyTypes:
    if isinstance(pkey, paramiko.RSAKey | paramiko.ECDSAKey):
        private = pkey.private_key
        if private is not None:
            return private
    elif isinstance(pkey, paramiko.Ed25519Key):
        # paramiko keeps the private half as a PyNaCl SigningKey, whose bytes are the 32-byte seed.
        signing_key = vars(pkey).get("_signing_key")
        if signing_key is not None:
            return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(signing_key)[:32])
    else:
        raise TypeError(f"unsupported key type: {type(pkey).__name__}")
    raise ValueError(f"{pkey.get_name()} key has no private part")


def private_key_text(pkey: paramiko.PKey, passphrase: str | None = None) -> str:
    """Return ``pkey`` in the OpenSSH private key format, encrypted when ``passphrase`` is given.

    The text loads back with ``paramiko.PKey.from_private_key`` (and with ``ssh-keygen``).
    """
    return _openssh_text(_crypto_private_key(pkey), passphrase)


def fingerprint(pkey: paramiko.PKey) -> str:
    """Return the OpenSSH-style fingerprint of ``pkey``: ``SHA256:`` + unpadded base64 digest."""
    return hostkeys.fingerprint(pkey.asbytes())
