"""Is a configured key the key itself or the path of a key file? One answer, used everywhere.

A key reaches preflight as a path written in checks.yaml, or through a variable holding either
a path or the key text — and CI variables hold keys in odd shapes: with CRLF line ends, with
`\\n` escapes on one line, or base64-encoded (GitLab masks only single-line values). Whatever
came from a variable is treated as secret: if it is not recognisably a path it is key text, and
its value is never used in a message, not even as a "file name"; a plain path is shown. The
one warning about a key file itself (a mode that lets others read it, which OpenSSH refuses)
is worded here too, since naming the file without leaking a secret is this module's rule.
Pure functions, no paramiko.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shlex
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from preflight.model import AuthConfig

# What a key file path looks like: one short line, absolute, home- or dot-relative, or a
# relative name (a base64 key body is longer and has no such start).
_PATH = re.compile(r"(?:[~/.]|[\w-]+/)[^\n\r\t]{0,510}|[\w.@-]{1,255}")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]{64,}")
# A key body without its BEGIN/END lines: long, and only base64 characters (paths have '.',
# '-' or '_' long before 64 characters).
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/=]{64,}")


def looks_like_key_text(value: str) -> bool:
    return "PRIVATE KEY" in value and "-----" in value


# The first word of an OpenSSH public key line (`id_ed25519.pub`, authorized_keys).
_PUBLIC_KEY = re.compile(
    r"\s*(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-\S+)(-cert-v01@openssh\.com)? AAAA"
)


def looks_like_public_key(value: str) -> bool:
    """The public half (`ssh-ed25519 AAAA… comment`, or an RFC 4716 `BEGIN SSH2 PUBLIC KEY`
    block): a common slip is pointing auth.key at `id_ed25519.pub`."""
    return bool(_PUBLIC_KEY.match(value)) or "BEGIN SSH2 PUBLIC KEY" in value


def decode_base64_key(value: str) -> str | None:
    """The key text inside a base64-encoded key, or None if `value` is not one."""
    if not _BASE64.fullmatch(value.strip()):
        return None
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    text = decoded.decode("utf-8", errors="replace")
    return text if looks_like_key_text(text) else None


def is_key_text(value: str, *, from_variable: bool) -> bool:
    """True when `value` is the key itself. From a variable, anything that is not plainly a
    path (one short line naming a file) counts as key text, so that a mangled key fails as a
    bad key and is never printed as a file name."""
    if looks_like_key_text(value) or decode_base64_key(value) is not None:
        return True
    stripped = value.strip()
    return from_variable and (
        not _PATH.fullmatch(stripped) or bool(_BASE64_BODY.fullmatch(stripped))
    )


def key_source(value: str, variable: str | None) -> str:
    """How messages name the key: never by its value when it is key text from a variable. A
    path from a variable is not a secret and is shown when it plainly is one (it has a `/` or
    starts with `~`); a bare word stays hidden, as it may be a secret put there by mistake."""
    if variable is None:
        return f"file {value}"
    if is_key_text(value, from_variable=True):
        return f"variable {variable}"
    if "/" in value or value.startswith("~"):
        return f"file {value} (from ${{{variable}}})"
    return f"the file named by ${{{variable}}}"


def shown_path(key_source: str | None) -> str | None:
    """The key file's path when `key_source` (as made by `key_source`) shows it, else None."""
    if not key_source or not key_source.startswith("file "):
        return None
    path = key_source.removeprefix("file ")
    return path.rsplit(" (from ${", 1)[0] if path.endswith("})") else path


def key_path(auth: AuthConfig) -> str | None:
    """The configured key's file when it is one (written in checks.yaml or ssh_config, or a
    path held by a variable), `~` expanded; None for key text or no key."""
    if auth.key is None:
        return None
    value = auth.key.reveal()
    from_variable = not (auth.key_source or "").startswith("file ")
    if is_key_text(value, from_variable=from_variable):
        return None
    return os.path.expanduser(value.strip())


def is_configured_key_text(auth: AuthConfig) -> bool:
    """Whether the configured key is the key text itself (never to be shown)."""
    return auth.key is not None and key_path(auth) is None


# Key types OpenSSH reads and paramiko does not: a key preflight cannot use, a job on OpenSSH can.
PARAMIKO_CANNOT_USE = frozenset(
    {"ssh-dss", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"}
)


def private_key_type(text: str) -> str | None:
    """The key type a private key's text declares (`ssh-ed25519`, `ssh-dss`…): read from an
    OpenSSH-format key's public part (not encrypted), or from a PEM block's name; None if
    unknown."""
    if "BEGIN DSA PRIVATE KEY" in text:
        return "ssh-dss"
    body = "".join(line.strip() for line in text.splitlines() if line and "-----" not in line)
    try:
        blob = base64.b64decode(body)
    except (binascii.Error, ValueError):
        return None
    magic = b"openssh-key-v1\x00"
    if not blob.startswith(magic):
        return None
    offset = len(magic)
    try:
        for _ in range(3):  # cipher name, kdf name, kdf options
            offset += 4 + int.from_bytes(blob[offset : offset + 4], "big")
        offset += 4  # number of keys
        offset += 4  # length of the first public key
        length = int.from_bytes(blob[offset : offset + 4], "big")
        return blob[offset + 4 : offset + 4 + length].decode("ascii")
    except (UnicodeDecodeError, ValueError):
        return None


def key_file_mode_warning(auth: AuthConfig, mode: int) -> str:
    """A key file others can read: OpenSSH ignores it ("UNPROTECTED PRIVATE KEY FILE"),
    paramiko uses it. A check can pass where `ssh -i` (and the printed commands) would not.
    The file is named by its path where messages show it, else by its variable."""
    shown = shown_path(auth.key_source)
    named = shown or f"named by ${{{auth.key_variable}}}"
    chmod = shlex.quote(shown) if shown else f'"${auth.key_variable}"'
    return (
        f"the key file {named} has mode {stat.S_IMODE(mode):04o}: OpenSSH refuses a private key "
        f"that others can read (chmod 600 {chmod}); preflight and paramiko use it anyway"
    )
