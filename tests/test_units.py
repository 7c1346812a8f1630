"""Sizes and rates (preflight.units): what checks.yaml may say and what the reports print."""

from __future__ import annotations

import pytest

from preflight.units import SizeError, format_rate, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("4096", 4096),
        ("512B", 512),
        ("1KiB", 1024),
        ("1 MiB", 1024**2),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("2TiB", 2 * 1024**4),
        ("1PiB", 1024**5),
        ("1kB", 1000),
        ("1KB", 1000),
        ("10MB", 10_000_000),
        ("5gb", 5_000_000_000),
        (" 1mib ", 1024**2),
    ],
)
def test_iec_units_count_in_1024s_and_si_units_in_1000s(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("5M", "a unit needs its B"),
        ("5Gi", "a unit needs its B"),
        ("5 apples", "units: B, KiB"),
        ("-1MiB", "a size cannot be negative"),
        ("MiB", "units: B, KiB"),
        ("", "units: B, KiB"),
    ],
)
def test_what_is_not_a_size_says_why(text: str, why: str) -> None:
    with pytest.raises(SizeError, match=why):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1024**2, "1.0 MiB"),
        (int(4.2 * 1024**3), "4.2 GiB"),
        (10 * 1024**3, "10.0 GiB"),
    ],
)
def test_sizes_are_shown_in_iec_units(size: int, shown: str) -> None:
    assert format_size(size) == shown


def test_a_shown_size_reads_back_as_nearly_the_same_size() -> None:
    size = 5 * 1024**3 + 12345
    assert abs(parse_size(format_size(size).replace(" ", "")) - size) / size < 0.05


def test_a_rate_is_bytes_per_second_and_never_divides_by_zero() -> None:
    assert format_rate(2 * 1024**2, 2.0) == "1.0 MiB/s"
    assert format_rate(100, 0.0) == "too fast to measure"
