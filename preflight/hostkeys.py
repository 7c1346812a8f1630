"""Host key verification: does the server's key match known_hosts or a pinned fingerprint?

Works on key blobs (the base64 field of a known_hosts line), not on paramiko key objects, so any
key type OpenSSH writes can be compared and fingerprinted, and this module needs no paramiko at
all. Understands what OpenSSH writes to known_hosts: hashed names (`|1|salt|hash`, from
`HashKnownHosts yes`), `[host]:port` for non-standard ports, several names and several keys per
host, wildcards and `!negation`, `@revoked` markers (`@cert-authority` lines are ignored: preflight
does not verify host certificates). `known_hosts` may be a path or the file's content (a CI
variable). Returns a `Verdict`; the SSH stage turns a bad one into `HostKeyUnknown`/`Mismatch`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from preflight.model import HostKeyConfig, is_known_hosts_content

# What a host key was checked against when there was nothing to check it against.
NOTHING_CHECKED = "nothing (no known_hosts, no pins)"


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint: `SHA256:` and unpadded base64 of the blob's digest."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def host_pattern(host: str, port: int) -> str:
    """The name under which OpenSSH records this host in known_hosts."""
    host = host.strip("[]")
    return host if port == 22 else f"[{host}]:{port}"


def known_name(config: HostKeyConfig, host: str, port: int) -> str:
    """The name OpenSSH looks this host up under: its HostKeyAlias, used verbatim, else
    `host_pattern`."""
    return config.alias or host_pattern(host, port)


def pin_line(name: str, key_type: str, blob: bytes) -> str:
    """The known_hosts line that would make this key known under `name` (see `known_name`)."""
    return f"{name} {key_type} {base64.b64encode(blob).decode('ascii')}"


@dataclass(frozen=True)
class KnownKey:
    key_type: str
    blob: bytes
    revoked: bool = False

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)


@dataclass
class KnownHosts:
    """Parsed known_hosts: where it came from, and every (names, key) line that parsed."""

    source: str
    entries: list[tuple[list[str], KnownKey]] = field(default_factory=list)
    missing: bool = False

    def keys_for(self, names: Iterable[str]) -> list[KnownKey]:
        wanted = list(dict.fromkeys(names))
        return [key for patterns, key in self.entries if _matches(patterns, wanted)]


def _name_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            _, _, salt_b64, hash_b64 = pattern.split("|", 3)
            salt = base64.b64decode(salt_b64)
            expected = base64.b64decode(hash_b64)
        except (ValueError, binascii.Error):
            return False
        actual = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
        return hmac.compare_digest(actual, expected)
    return _wildcard(pattern).fullmatch(name.lower()) is not None


def _wildcard(pattern: str) -> re.Pattern[str]:
    """OpenSSH patterns know only `*` and `?`; `[host]:port` brackets are literal."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern.lower())
    return re.compile("".join(parts))


def _matches(patterns: list[str], names: list[str]) -> bool:
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        if any(_name_matches(body, name) for name in names):
            if negated:
                return False
            matched = True
    return matched


def parse_known_hosts(text: str, source: str) -> KnownHosts:
    known = KnownHosts(source=source)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        revoked = False
        if fields[0].startswith("@"):
            if fields[0] != "@revoked":
                continue
            revoked = True
            fields = fields[1:]
        if len(fields) < 3:
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except (ValueError, binascii.Error):
            continue
        known.entries.append((fields[0].split(","), KnownKey(fields[1], blob, revoked)))
    return known


@functools.lru_cache(maxsize=64)
def _parsed(text: str, source: str) -> KnownHosts:
    """Parsing is cached by content: every target of a run reads the same file, twice (to
    choose the host key type, then to verify). The file itself is still read each time, so a
    change is seen at once. Callers only read the result."""
    return parse_known_hosts(text, source)


def load_known_hosts(value: str | None) -> KnownHosts | None:
    """`value` is a path (with `~`) or, when it holds a line break or a key, the content."""
    if not value:
        return None
    if is_known_hosts_content(value):
        return _parsed(value, "known_hosts given as content")
    path = os.path.expanduser(value)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return _parsed(handle.read(), value)
    except FileNotFoundError:
        return KnownHosts(source=value, missing=True)
    except OSError as exc:
        # Not missing, but just as unusable: say why in the source, once.
        return KnownHosts(source=f"{value} (cannot be read: {exc.strerror})")


@dataclass(frozen=True)
class Verdict:
    """`status`: "match", "unknown", "mismatch" or "revoked". `expected` lists the fingerprints
    that were expected for a mismatch, `by_pins` says they are the pinned ones (which carry no
    key type: the server may hold the pinned key under another type than the one it showed);
    `matched_by` says what vouched for a match; `checked` what was consulted (for "revoked":
    the file that marks the key). For "unknown", `known_as` lists other names under which
    known_hosts holds this very key (the address the name resolved to, the name on port 22),
    (in the file `known_in`), and `name` is the one that was looked up."""

    status: str
    fingerprint: str
    expected: tuple[str, ...] = ()
    matched_by: str = ""
    checked: str = ""
    by_pins: bool = False
    known_as: tuple[str, ...] = ()
    known_in: str = ""  # the known_hosts file holding `known_as`
    name: str = ""


def normalise_pin(pin: str) -> str:
    return pin.strip().rstrip("=")


def verify(
    config: HostKeyConfig,
    host: str,
    port: int,
    key_type: str,
    blob: bytes,
    addresses: Iterable[str] = (),
) -> Verdict:
    """Compare the server's key with the pins and known_hosts, as OpenSSH would: under the
    name the host was given by (or its HostKeyAlias) only. An entry for the address it resolved
    to does not vouch for a name: ssh checks addresses only with `CheckHostIP yes` (off by
    default since OpenSSH 8.5), and then as a second check, never instead of the name. Such an
    entry is still worth saying: `addresses` (what the name resolved to) are looked up too, for
    the report only."""
    actual = fingerprint(blob)
    pins = [normalise_pin(p) for p in config.fingerprints]
    known = load_known_hosts(config.known_hosts)
    name = known_name(config, host, port)
    checked = []
    if pins:
        checked.append(f"{len(pins)} pinned fingerprint{'s' if len(pins) > 1 else ''}")
    if known is not None:
        alias = f" under the HostKeyAlias '{config.alias}'" if config.alias else ""
        checked.append(known.source + (" (the file does not exist)" if known.missing else alias))
    checked_text = ", ".join(checked) or NOTHING_CHECKED

    candidates = known.keys_for([name]) if known is not None else []
    if known is not None and any(k.revoked and k.blob == blob for k in candidates):
        return Verdict("revoked", actual, checked=known.source, name=name)
    if actual in pins:
        return Verdict("match", actual, matched_by="a pinned fingerprint", checked=checked_text)
    if any(not k.revoked and k.blob == blob for k in candidates):
        return Verdict(
            "match", actual, matched_by=known.source if known else "", checked=checked_text
        )
    same_type = [k.fingerprint for k in candidates if not k.revoked and k.key_type == key_type]
    if same_type:
        return Verdict(
            "mismatch",
            actual,
            expected=tuple(same_type),
            checked=known.source if known else checked_text,
            name=name,
        )
    if pins:
        return Verdict(
            "mismatch", actual, expected=tuple(pins), checked="pinned fingerprints", by_pins=True
        )
    known_as: tuple[str, ...] = ()
    if known is not None and not config.alias:
        others = [host_pattern(address, port) for address in addresses]
        if port != 22:
            others.append(host_pattern(host, 22))
        known_as = tuple(
            other
            for other in dict.fromkeys(others)
            if other != name
            and any(not k.revoked and k.blob == blob for k in known.keys_for([other]))
        )
    return Verdict(
        "unknown",
        actual,
        checked=checked_text,
        known_as=known_as,
        known_in=known.source if known is not None and known_as else "",
        name=name,
    )


def preferred_key_types(config: HostKeyConfig, host: str, port: int) -> list[str]:
    """Key types known_hosts holds for this host, so the client can ask the server for a key
    it can actually verify (what OpenSSH does) instead of failing on a type it has no entry
    for."""
    known = load_known_hosts(config.known_hosts)
    if known is None:
        return []
    keys = known.keys_for([known_name(config, host, port)])
    return list(dict.fromkeys(k.key_type for k in keys if not k.revoked))
