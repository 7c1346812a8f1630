"""The line-tracking YAML tree the config layer reads: `YMap`, `YSeq`, `YScalar`, `YamlError`.

`yaml.safe_load` forgets where each value was written; these nodes remember the 1-based line of
every value so that config errors can say `FILE:LINE: message`. They are plain data, built by
`yamlreader.read_yaml` (the only module that imports PyYAML, so that a run with command-line
targets and no config file never pays for loading it).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["MAX_DEPTH", "Scalar", "YMap", "YNode", "YScalar", "YSeq", "YamlError", "paused_gc"]

MAX_DEPTH = 100  # a config file is 4 levels deep; this only stops pathological input early

Scalar = str | int | float | bool | None


class YamlError(Exception):
    """The text is not YAML this reader accepts; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(line, message)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class YNode:
    """A value and the 1-based line where it starts."""

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        self.line = line


class YScalar(YNode):
    """A scalar: `value` as YAML 1.1 resolves it (str, int, float, bool or None) and `raw`, the
    text as written, for messages and for fields where `off` or `0755` must stay text."""

    __slots__ = ("raw", "value")

    def __init__(self, line: int, value: Scalar, raw: str) -> None:
        self.line = line  # not super().__init__: this runs for every scalar of a large file
        self.value = value
        self.raw = raw

    def __repr__(self) -> str:
        return f"YScalar({self.value!r}, line={self.line})"


class YSeq(YNode):
    """A sequence; `items` may share nodes (aliases)."""

    __slots__ = ("items",)

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.items: list[YNode] = []

    def __repr__(self) -> str:
        return f"YSeq(<{len(self.items)} items>, line={self.line})"  # aliases may make cycles


class YMap(YNode):
    """A mapping with string keys; `entries[key] = (line of the key, value)`, in document order
    (keys brought in by a `<<` merge come first and are overridden by the mapping's own keys)."""

    __slots__ = ("entries",)

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.entries: dict[str, tuple[int, YNode]] = {}

    def __repr__(self) -> str:
        return f"YMap({list(self.entries)!r}, line={self.line})"


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: building a million small nodes otherwise triggers
    repeated full collections that cost more than the parsing itself. The collector is resumed
    (if it was on) however the block ends, and collects then whatever cycles aliases made."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
