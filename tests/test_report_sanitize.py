"""Specification of `preflight.report.sanitize`: every report string is safe for a terminal,
XML 1.0 and JSON, bounded in length, and free of credentials."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest
import report_samples as samples
from hypothesis import given
from hypothesis import strategies as st

from preflight.model import Report, Secret
from preflight.report import report_secrets
from preflight.report.sanitize import (
    REDACTED,
    TRUNCATION_MARK,
    _needles,
    clean_secrets,
    clean_text,
)

# What XML 1.0 allows (https://www.w3.org/TR/xml/#charsets), minus what we also remove on purpose.
XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_safe(text: str) -> None:
    assert not XML_ILLEGAL.search(text)
    assert not CONTROLS.search(text)
    assert "\x1b" not in text
    assert "\r" not in text
    text.encode("utf-8")  # no lone surrogate left


# --- decoding -----------------------------------------------------------------------------------


def test_bytes_are_decoded_as_utf8_with_replacement() -> None:
    assert clean_text(b"SSH-2.0-caf\xc3\xa9 \xff\xfe") == "SSH-2.0-café \ufffd\ufffd"


def test_bytearray_is_accepted_like_bytes() -> None:
    assert clean_text(bytearray(b"ok\x00")) == "ok"


# --- escape sequences ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[1;38;5;196mbold\x1b[m", "bold"),
        ("clear\x1b[2J\x1b[H", "clear"),
        ("up\x1b[3Aline", "upline"),
        ("\x1b[?25lhidden cursor", "hidden cursor"),
        ("\x9b31mC1 CSI", "C1 CSI"),
    ],
)
def test_csi_sequences_are_removed(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "a\x1b]0;pwned title\x07b",  # OSC terminated by BEL
        "a\x1b]8;;http://evil.example/\x1b\\b",  # hyperlink, terminated by ST
        "a\x1bPq#0;2;0;0;0\x1b\\b",  # DCS (sixel)
        "a\x1b_application\x1b\\b",  # APC
        "a\x9d0;title\x9cb",  # 8-bit OSC and ST
    ],
)
def test_string_sequences_are_removed_with_their_payload(raw: str) -> None:
    assert clean_text(raw) == "ab"


def test_unterminated_osc_loses_only_its_introducer() -> None:
    # Swallowing everything after it would hide the rest of the message.
    assert clean_text("before \x1b]0;not a title after") == "before 0;not a title after"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\x1bcreset", "reset"),  # RIS: full terminal reset
        ("\x1b7saved", "saved"),  # save cursor
        ("\x1b(Bcharset", "charset"),  # designate character set (nF)
        ("\x1b=keypad", "keypad"),
    ],
)
def test_two_character_escape_sequences_are_removed(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_a_lone_escape_at_the_end_is_removed() -> None:
    assert clean_text("text\x1b") == "text"


# --- control and illegal characters -------------------------------------------------------------


def test_c0_and_c1_controls_are_removed_but_tab_and_newline_kept() -> None:
    raw = "a\x00b\x07c\x08d\x7fe\x85f\x9fg\th\ni"
    assert clean_text(raw) == "abcde\nfg\th\ni"  # U+0085 (NEL) is a line break


def test_line_breaks_are_normalised_to_newline() -> None:
    assert clean_text("one\r\ntwo\rthree\u2028four") == "one\ntwo\nthree\nfour"


def test_one_line_turns_breaks_and_tabs_into_single_spaces() -> None:
    assert clean_text("  first\r\n\n\tsecond   third \n", one_line=True) == "first second third"


@pytest.mark.parametrize("char", ["\ud800", "\udfff", "\ufffe", "\uffff", "\U0001fffe", "\ufdd0"])
def test_xml_illegal_characters_and_noncharacters_are_removed(char: str) -> None:
    assert clean_text(f"a{char}b") == "ab"


def test_bidi_overrides_are_removed() -> None:
    assert clean_text("admin\u202etxt.exe\u202c") == "admintxt.exe"


def test_ordinary_unicode_is_kept() -> None:
    text = "café → 203.0.113.7 ✓ 日本語 \ufffd 🙂"
    assert clean_text(text) == text


def test_every_code_point_comes_out_xml_legal() -> None:
    everything = "".join(map(chr, range(0x110000)))
    assert_safe(clean_text(everything, max_len=len(everything)))


# --- length -------------------------------------------------------------------------------------


def test_long_text_is_cut_to_max_len_with_a_marker() -> None:
    cleaned = clean_text("x" * 5000, max_len=100)
    assert len(cleaned) == 100
    assert cleaned.endswith(TRUNCATION_MARK)


def test_text_of_exactly_max_len_is_not_cut() -> None:
    assert clean_text("x" * 100, max_len=100) == "x" * 100


def test_length_is_measured_after_cleaning() -> None:
    assert clean_text("\x1b[31m" * 50 + "short", max_len=10) == "short"


def test_huge_input_is_marked_as_cut_even_when_cleaning_shrinks_it() -> None:
    cleaned = clean_text("\x00" * 1_000_000 + "tail", max_len=100)
    assert cleaned == TRUNCATION_MARK


@pytest.mark.parametrize("max_len", [0, 1])
def test_tiny_max_len(max_len: int) -> None:
    assert len(clean_text("abc", max_len=max_len)) == max_len


def test_hostile_flood_is_cleaned_quickly() -> None:
    floods = ["\x1b]" * 40_000, "\x1b[" + "1;" * 40_000, "\x9d" * 80_000, "\x1b" * 80_000]
    started = time.perf_counter()
    for flood in floods:
        assert_safe(clean_text(flood))
    assert time.perf_counter() - started < 2.0


# --- properties ---------------------------------------------------------------------------------


@given(st.text(), st.integers(min_value=0, max_value=300), st.booleans())
def test_output_is_always_safe_bounded_and_idempotent(
    text: str, max_len: int, one_line: bool
) -> None:
    cleaned = clean_text(text, max_len=max_len, one_line=one_line)
    assert_safe(cleaned)
    assert len(cleaned) <= max_len
    if one_line:
        assert "\n" not in cleaned and "\t" not in cleaned
    assert clean_text(cleaned, max_len=max_len, one_line=one_line) == cleaned


@given(st.binary())
def test_any_bytes_come_out_safe(raw: bytes) -> None:
    assert_safe(clean_text(raw))


# --- secrets ------------------------------------------------------------------------------------


def test_secrets_are_replaced() -> None:
    text = "login with hunter2-secret failed (hunter2-secret)"
    assert clean_secrets(text, ["hunter2-secret"]) == "login with *** failed (***)"


def test_empty_and_very_short_secrets_are_ignored() -> None:
    assert clean_secrets("a b abc", ["", "a", "abc"]) == "a b abc"


def test_the_longer_of_overlapping_secrets_is_removed_whole() -> None:
    assert clean_secrets("pass=secret-and-more", ["secret", "secret-and-more"]) == "pass=***"


def test_each_line_of_a_multi_line_secret_is_redacted() -> None:
    key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQAB\n-----END KEY-----\n"
    assert clean_secrets("bad line: AAAAB3NzaC1yc2EAAAADAQAB", [key]) == f"bad line: {REDACTED}"


def test_clean_text_redacts_a_secret_split_by_control_characters() -> None:
    assert clean_text("pw=hun\x00ter2\x1b[0m-x", secrets=["hunter2-x"]) == "pw=***"


def test_truncation_never_reveals_the_start_of_a_secret() -> None:
    cleaned = clean_text("x" * 8 + "topsecretvalue", max_len=12, secrets=["topsecretvalue"])
    assert "top" not in cleaned
    assert cleaned.startswith("x" * 8)


def test_a_fleet_sharing_one_key_has_that_key_searched_for_once() -> None:
    # Every value of a report is searched for every secret: 1,000 targets reading the same
    # ${SSH_PRIVATE_KEY} made a 1,000-target JUnit report take 28 s when each target's copy
    # was searched for again.
    key = "-----BEGIN KEY-----\n" + "\n".join("A" * 70 for _ in range(6)) + "\n-----END KEY-----\n"
    fleet = Report(
        [
            replace(
                result,
                target=replace(
                    result.target,
                    auth=replace(result.target.auth, key=Secret(key), key_source="${KEY}"),
                ),
            )
            for result in (samples.tcp_timeout_result(f"t{n}") for n in range(1000))
        ],
        samples.STARTED_AT,
    )
    assert report_secrets(fleet) == [key]
    # And the needles (each line too, long enough, longest first) are made once per set.
    assert _needles((key,)) is _needles((key,))
    assert _needles((key,))[0] == key and "A" * 70 in _needles((key,))


def test_a_cleaner_cleans_as_clean_text_does_and_each_string_once():
    from preflight.report.sanitize import Cleaner

    cleaner = Cleaner(["hunter2-correct-horse"])
    hostile = "\x1b[31mpassword hunter2-correct-horse\x00 here\n"
    first = cleaner(hostile, 100, True)
    assert first == clean_text(
        hostile, max_len=100, one_line=True, secrets=["hunter2-correct-horse"]
    )
    assert "hunter2" not in first
    assert cleaner(hostile, 100, True) is first  # remembered, not cleaned again
    assert cleaner(bytearray(b"\xff ok"), 100, False) == clean_text(b"\xff ok", max_len=100)


@pytest.mark.parametrize(
    ("value", "clean"),
    [
        ("ls '/srv/a  b'", "ls '/srv/a  b'"),  # a command to paste: its spaces are its own
        ("  ls x ", "  ls x "),
        ("ls\t'a\nb'", "ls 'a b'"),  # still one line
        ("ls \x1b[31mx\x1b[0m\x07", "ls x"),
    ],
)
def test_one_line_without_collapse_keeps_the_spaces_and_still_makes_one_line(
    value: str, clean: str
) -> None:
    assert clean_text(value, one_line=True, collapse=False) == clean
    assert clean_text(clean, one_line=True, collapse=False) == clean  # idempotent
