"""Sizes and rates as people write and read them: `1MiB` in checks.yaml, "8.3 MiB/s" in a report.

IEC units (KiB, MiB…) count in 1024s and SI ones (kB, MB…) in 1000s, as `df -h` and `df -H`
do; a bare number is bytes. Formatting always uses IEC units (a `5GB` threshold is printed as
4.7 GiB), so a figure a report prints can be typed back into checks.yaml and means the same, to
its three figures. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["UNIT_NAMES", "format_rate", "format_size", "parse_size"]

_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]+)?")
_UNITS: Final = {
    "b": 1,
    **{f"{prefix}ib": 1024 ** (n + 1) for n, prefix in enumerate("kmgtp")},
    **{f"{prefix}b": 1000 ** (n + 1) for n, prefix in enumerate("kmgtp")},
}
UNIT_NAMES: Final = "B, KiB, MiB, GiB, TiB, PiB or kB, MB, GB, TB, PB"
_SHOWN: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


class SizeError(ValueError):
    """Not a size; the message says why (no unit letter B, an unknown unit)."""


def parse_size(text: str) -> int:
    """Bytes from `1048576`, `1MiB`, `1.5 GB`; `SizeError` for anything else."""
    found = _SIZE.fullmatch(text.strip())
    if found is None:
        if text.strip().startswith("-"):
            raise SizeError("a size cannot be negative")
        raise SizeError(f"units: {UNIT_NAMES}")
    unit = (found["unit"] or "b").lower()
    if unit not in _UNITS:
        if unit in ("k", "m", "g", "t", "p", "ki", "mi", "gi", "ti", "pi"):
            raise SizeError(f"a unit needs its B: {UNIT_NAMES}")
        raise SizeError(f"units: {UNIT_NAMES}")
    return int(float(found["number"]) * _UNITS[unit])


def format_size(size: float) -> str:
    """`512 B`, `64.0 KiB`, `1.0 MiB`, `4.2 GiB`: three significant figures or so."""
    value = float(size)
    for unit in _SHOWN:
        if abs(value) < 1024 or unit == _SHOWN[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_rate(size: float, seconds: float) -> str:
    """`8.3 MiB/s`; a transfer too quick to time is "too fast to measure"."""
    if seconds <= 0:
        return "too fast to measure"
    return f"{format_size(size / seconds)}/s"
