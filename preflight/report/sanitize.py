"""Make any string safe to put in a report: the terminal, JUnit XML and JSON.

Everything a report prints comes, in the end, from the network or from the user: an SSH banner,
a hostname, an exception message, a path. A hostile or broken server can send ANSI escape
sequences (recolour or clear the CI log, set the terminal title), NUL bytes and other controls,
bytes that are not UTF-8, or characters XML 1.0 cannot carry at all (which make a JUnit file
unparseable, so the CI system silently drops the whole report). `clean_text` is the one place
that turns such a value into plain, printable, XML-legal text of bounded length; every report
format passes every string through it. `clean_secrets` blanks out credential values as a last line
of defence, should one ever reach a message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

__all__ = [
    "MIN_SECRET_LEN",
    "REDACTED",
    "TRUNCATION_MARK",
    "Cleaner",
    "clean_secrets",
    "clean_text",
]

TRUNCATION_MARK = "…"
REDACTED = "***"
# Shorter values would blank out ordinary words and digits all over the report.
MIN_SECRET_LEN = 4

# Escape sequences (ECMA-48). The string-type ones (OSC, DCS, SOS, PM, APC) are removed up to their
# terminator (BEL or ST); their payload is bounded so that a flood of unterminated introducers
# cannot make the scan quadratic. An unterminated one loses only its introducer (third branch):
# the payload stays visible as inert text instead of swallowing the rest of the message.
_ESCAPE_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]{0,64}[\x20-\x2f]{0,8}[\x40-\x7e]"  # CSI: ESC [ … final byte
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]{0,512}(?:\x07|\x1b\\|\x9c)"  # OSC…
    r"|\x1b[\x20-\x2f]{0,8}[\x30-\x7e]?"  # two-character (and nF) sequences, or a lone ESC
)
# Bidirectional overrides and isolates can make a terminal show text in a different order than
# it is stored ("Trojan Source"); a report has no use for them.
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 and C1 controls and DEL except \t and \n; UTF-16 surrogates (a lone one cannot be encoded);
# the noncharacters U+FDD0..U+FDEF and U+xFFFE/U+xFFFF of every plane (U+FFFE and U+FFFF are
# illegal in XML 1.0, the others "discouraged", and junit-xml deletes them on its own).
_NONCHARACTERS = "\ufdd0-\ufdef\ufffe\uffff" + "".join(
    f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(1, 17)
)
_UNWANTED = re.compile(
    f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}{_BIDI_CONTROLS}]"
)
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # in ASCII, all that is not kept
_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_WHITESPACE_RUN = re.compile(r"[ \t\n]+")
# Work done on a huge value is bounded: anything this far past `max_len` is cut before cleaning
# (escape sequences and controls could shrink it, but not by this factor in any honest text).
_PRECUT_FACTOR = 8
_PRECUT_MIN = 4096


def clean_text(
    value: str | bytes | bytearray,
    *,
    max_len: int = 2000,
    one_line: bool = False,
    secrets: Iterable[str] = (),
    collapse: bool = True,
) -> str:
    """Return `value` as plain text that is safe for a terminal, XML 1.0 and JSON.

    - bytes are decoded as UTF-8, undecodable bytes becoming U+FFFD;
    - ANSI/VT escape sequences (CSI, OSC and the other string sequences, two-character ESC
      sequences) are removed, as are C0/C1 controls except tab and newline, DEL, bidi overrides,
      lone surrogates and noncharacters (U+FFFE, U+FFFF…); line breaks become ``\\n``;
    - with `one_line`, tabs and newlines become spaces, runs of whitespace collapse to one space
      and the ends are stripped, so one value can never fake a second line of output; without
      `collapse` the spaces are kept as they are (a command to paste: two spaces in a quoted
      path are two);
    - every value in `secrets` (see `clean_secrets`) is replaced by ``***``;
    - the result is at most `max_len` characters, ending in ``…`` when it was cut.

    The function is idempotent: cleaning a cleaned value changes nothing.
    """
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="replace")
    else:
        text = str(value)
    max_len = max(max_len, 0)
    secrets = tuple(secrets)
    # Nearly every value (names, addresses, codes, summaries, and the JUnit bodies made of
    # them) is printable ASCII, which every rule below would leave as it is: return it at once.
    # A report of 10,000 targets cleans some 800,000 values.
    if len(text) <= max_len and text.isascii():
        if one_line:
            plain = text.isprintable() and (
                not collapse or (text == text.strip() and "  " not in text)
            )
        else:
            plain = _ASCII_CONTROL.search(text) is None  # lines and tabs are kept: one scan
        if plain:
            return clean_secrets(text, secrets) if secrets else text
    precut = max(max_len * _PRECUT_FACTOR, _PRECUT_MIN)
    cut = len(text) > precut
    if cut:
        text = text[:precut]
    text = clean_secrets(text, secrets)
    text = _ESCAPE_SEQUENCES.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = _UNWANTED.sub("", text)
    if one_line and collapse:
        text = _WHITESPACE_RUN.sub(" ", text).strip()
    elif one_line:
        text = text.replace("\t", " ").replace("\n", " ")
    # Removing controls can join the pieces of a secret that was split by them.
    text = clean_secrets(text, secrets)
    if cut or len(text) > max_len:
        text = _truncate(text, max_len)
    return text


class Cleaner:
    """`clean_text` for one report, with its secrets, remembering what it cleaned: thousands
    of targets repeat the same words (fact names, a skip reason, a hint), each cleaned once.
    `kind(max_len, one_line)` gives a one-argument cleaner with a memory of its own, for hot
    loops (the lookup is then a dict's alone, with no key to build per value)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(secrets)
        self._kinds: dict[tuple[int, bool, bool], Callable[[str | bytes | bytearray], str]] = {}

    def __call__(self, value: str | bytes | bytearray, max_len: int, one_line: bool) -> str:
        return self.kind(max_len, one_line)(value)

    def kind(
        self, max_len: int, one_line: bool, *, collapse: bool = True
    ) -> Callable[[str | bytes | bytearray], str]:
        key = (max_len, one_line, collapse)
        found = self._kinds.get(key)
        if found is None:
            found = self._kinds[key] = self._remembering(max_len, one_line, collapse)
        return found

    def _remembering(
        self, max_len: int, one_line: bool, collapse: bool
    ) -> Callable[[str | bytes | bytearray], str]:
        done: dict[str | bytes, str] = {}
        lookup = done.get
        secrets = self._secrets

        def clean(value: str | bytes | bytearray) -> str:
            try:
                found = lookup(value)  # type: ignore[arg-type]  # a bytearray: below
            except TypeError:  # a bytearray is not hashable (and rare)
                return clean_text(
                    value, max_len=max_len, one_line=one_line, secrets=secrets, collapse=collapse
                )
            if found is None:
                found = done[value] = clean_text(  # type: ignore[index]
                    value, max_len=max_len, one_line=one_line, secrets=secrets, collapse=collapse
                )
            return found

        return clean


def _truncate(text: str, max_len: int) -> str:
    if max_len <= 0:
        return ""
    if max_len <= len(TRUNCATION_MARK):
        return TRUNCATION_MARK[:max_len]
    keep = max_len - len(TRUNCATION_MARK)
    if len(text) <= keep:  # only possible after the pre-cut: say that something is missing
        return text + TRUNCATION_MARK
    return text[:keep].rstrip(" ") + TRUNCATION_MARK


def clean_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in `text` by ``***``.

    Values shorter than `MIN_SECRET_LEN` characters are ignored (redacting "ab" would mangle
    the whole report and protect nothing). A multi-line secret, such as a private key, is also
    redacted line by line, so that a message quoting one line of it does not leak that line.
    Longer secrets are replaced first, so a secret containing another is removed whole.
    """
    for needle in _needles(tuple(secrets)):
        if needle in text:
            text = text.replace(needle, REDACTED)
    return text


@functools.lru_cache(maxsize=64)
def _needles(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """What `clean_secrets` looks for: each secret and each line of a multi-line one, long
    enough to redact, longest first. Made once per set of secrets, not once per value cleaned
    (a report cleans hundreds of thousands)."""
    needles: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        needles.add(secret)
        if "\n" in secret or "\r" in secret:
            needles.update(line.strip() for line in secret.splitlines())
    return tuple(
        needle for needle in sorted(needles, key=len, reverse=True) if len(needle) >= MIN_SECRET_LEN
    )
