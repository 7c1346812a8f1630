"""A line-tracking YAML reader for the config file: text in, `yamlnodes` tree out.

`yaml.safe_load` returns plain dicts and lists and forgets where each value was written, and it
silently keeps the last of two duplicate keys. The config layer needs the line of every value to
report `FILE:LINE: message`, so this module reads the YAML *event* stream (libyaml's C parser when
available, else PyYAML's pure-Python one) and builds a small tree of `YMap` / `YSeq` / `YScalar`
nodes that remember their line. It resolves anchors, aliases and `<<` merge keys itself, rejects
duplicate keys, unknown tags and absurd nesting, and never constructs arbitrary Python objects.
Building from events (rather than `yaml.compose`) keeps it iterative: libyaml's composer recurses
in C and crashes the interpreter on deeply nested input. Every problem is raised as `YamlError`
with a 1-based line; nothing else escapes `read_yaml`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from preflight.yamlnodes import MAX_DEPTH, Scalar, YamlError, YMap, YNode, YScalar, YSeq, paused_gc

__all__ = ["read_yaml"]

# libyaml's C parser if PyYAML was built with it (much faster on large files), else pure Python.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
# First characters of plain scalars that might be something other than a string (PyYAML indexes
# its implicit resolvers by first character).
_RESOLVED_FIRST_CHARS = frozenset(key for key in Resolver.yaml_implicit_resolvers if key)

_PREFIX = "tag:yaml.org,2002:"
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
# A `${VAR}` where a flow collection's parser gave up on it, and what bounds a flow value.
_REFERENCE_AT = re.compile(r"\$\{[^}\s,\]${]*\}")
_SECRET_KEYS = frozenset({"password", "passphrase"})
_FLOW_START = frozenset("{[,\n")
_FLOW_END = frozenset("}],\n")
_MAP_TAGS = frozenset({"tag:yaml.org,2002:map", "!"})
_SEQ_TAGS = frozenset({"tag:yaml.org,2002:seq", "!"})


class _OpenMap:
    """A mapping being read (it stands for its YMap on the reader's stack): its own pairs so far,
    the `<<` sources, and the key waiting for its value."""

    __slots__ = ("explicit", "key", "merges", "node")

    def __init__(self, node: YMap) -> None:
        self.node = node
        self.explicit: dict[str, tuple[int, YNode]] = {}
        self.merges: list[tuple[int, YNode]] = []
        self.key: tuple[str, int, bool] | None = None  # (key, line, is merge); None: want a key


def read_yaml(text: str) -> YNode | None:
    """Parse one YAML document into line-tracking nodes; `None` if there is no document or the
    document is empty. Raises `YamlError` for anything wrong with the text."""
    with paused_gc():
        try:
            return _build(text)
        except YamlError:
            raise
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            message = _syntax_message(exc)
            if mark is not None and "\t" in _line_at(text, mark.line)[: mark.column + 1]:
                message += "; YAML does not allow tabs for indentation, use spaces"
            quoted = _unquoted_reference(text, exc)
            if quoted is not None:
                message += (
                    f"; inside {{ }} or [ ] a value holding ${{VAR}} is quoted: write {quoted} "
                    "(unquoted, YAML reads the '{' of ${ as the start of a mapping)"
                )
            raise YamlError(line, message) from None
        except yaml.reader.ReaderError as exc:
            position = min(max(exc.position, 0), len(text))
            line = text.count("\n", 0, position) + 1
            raise YamlError(line, f"YAML syntax error: {exc.reason}") from None
        except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error above is marked
            raise YamlError(1, f"YAML syntax error: {exc}") from None


def _unquoted_reference(text: str, exc: yaml.MarkedYAMLError) -> str | None:
    """How to write the value in which a flow collection (`{...}`, `[...]`) broke at a
    `${VAR}`, if that is where (the parser stops at its `{`, having read what came before as a
    plain scalar): the whole value single-quoted (in double quotes YAML reads a backslash as
    an escape), or, where the value may hold a secret (a password, `user:pw@host`), the advice
    without it. None where this is not what broke or the value cannot be told apart."""
    mark = exc.problem_mark
    if mark is None or "flow" not in (exc.context or "") or mark.index < 1:
        return None
    if not _REFERENCE_AT.match(text, mark.index - 1):
        return None
    start = mark.index - 1
    while start > 0 and text[start - 1] not in _FLOW_START and text[start - 2 : start] != ": ":
        start -= 1
    if start > 0 and text[start - 1] == ",":
        return None  # a plain value may hold a comma: where this one starts is not known
    end = mark.index - 1
    while end < len(text) and text[end] not in _FLOW_END:
        if text[end : end + 2] in (" #", ": ", ":\t"):
            break  # a comment, or the value was a key
        reference = _REFERENCE_AT.match(text, end)
        end = reference.end() if reference else end + 1
    value = text[start:end].strip()
    key = text[max(0, start - 40) : start].rstrip().removesuffix(":").split("{")[-1]
    key = key.split(",")[-1].strip()
    if key in _SECRET_KEYS or ":" in value.rpartition("@")[0]:
        return "the whole value in single quotes ('…${VAR}…')"
    return "'" + value.replace("'", "''") + "'"


def _line_at(text: str, index: int) -> str:
    lines = text.split("\n", index + 1)
    return lines[index] if index < len(lines) else ""


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or exc.context or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    if exc.context and exc.problem:
        context = exc.context
        start, end = exc.context_mark, exc.problem_mark
        if start is not None and end is not None and start.line != end.line:
            context += f" started at line {start.line + 1}"
        message += f" ({context})"
    return message


def _build(text: str) -> YNode | None:
    """Build the tree from parser events with an explicit stack (hot loop: kept flat)."""
    anchors: dict[str, YNode] = {}
    stack: list[_OpenMap | YSeq] = []
    top: _OpenMap | YSeq | None = None
    root: YNode | None = None
    documents = 0
    loader = _LOADER(text)
    get_event = loader.get_event
    try:
        while (event := get_event()) is not None:
            kind = type(event)
            line = event.start_mark.line + 1
            node: YNode
            opened: _OpenMap | YSeq | None = None
            if kind is _ScalarEvent:
                node = _scalar(event, line)
                if event.anchor is not None:
                    anchors[event.anchor] = node
            elif kind is _AliasEvent:
                anchor = event.anchor
                if anchor not in anchors:
                    raise YamlError(line, f"unknown alias '*{anchor}' (no '&{anchor}' before it)")
                node = anchors[anchor]
            elif kind is _MappingStartEvent or kind is _SequenceStartEvent:
                if len(stack) >= MAX_DEPTH:
                    raise YamlError(line, f"nested more than {MAX_DEPTH} levels deep")
                is_map = kind is _MappingStartEvent
                tag = event.tag
                if tag is not None and tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                    raise YamlError(line, f"unsupported YAML tag '{_short_tag(tag)}'")
                if is_map:
                    node = YMap(line)
                    opened = _OpenMap(node)
                else:
                    node = opened = YSeq(line)
                if event.anchor is not None:
                    anchors[event.anchor] = node
            elif kind is _MappingEndEvent or kind is _SequenceEndEvent:
                done = stack.pop()
                if isinstance(done, _OpenMap):
                    _close_map(done)
                top = stack[-1] if stack else None
                continue
            elif kind is _DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlError(line, "expected a single YAML document, found a second one")
                continue
            else:
                continue
            # Attach the node to its parent.
            if top is None:
                root = node
            elif type(top) is YSeq:
                top.items.append(node)
            else:
                assert isinstance(top, _OpenMap)
                pending = top.key
                if pending is None:
                    if not isinstance(node, YScalar):
                        raise YamlError(line, "a mapping key must be a string, not a collection")
                    top.key = (node.raw, line, type(node) is _MergeKey)
                else:
                    key, key_line, is_merge = pending
                    top.key = None
                    if is_merge:
                        top.merges.append((key_line, node))
                    elif key in top.explicit:
                        first = top.explicit[key][0]
                        raise YamlError(
                            key_line, f"duplicate key '{key}' (first set at line {first})"
                        )
                    else:
                        top.explicit[key] = (key_line, node)
            if opened is not None:
                top = opened
                stack.append(opened)
    finally:
        loader.dispose()
    if isinstance(root, YScalar) and root.value is None:
        return None
    return root


_ScalarEvent = yaml.ScalarEvent
_AliasEvent = yaml.AliasEvent
_MappingStartEvent = yaml.MappingStartEvent
_MappingEndEvent = yaml.MappingEndEvent
_SequenceStartEvent = yaml.SequenceStartEvent
_SequenceEndEvent = yaml.SequenceEndEvent
_DocumentStartEvent = yaml.DocumentStartEvent


class _MergeKey(YScalar):
    """A plain `<<`: a merge key when used as a key, the string "<<" anywhere else."""

    __slots__ = ()


def _scalar(event: yaml.ScalarEvent, line: int) -> YScalar:
    raw = event.value
    tag = event.tag
    if tag is None or tag == "!":
        if not event.implicit[0] or (raw and raw[0] not in _RESOLVED_FIRST_CHARS):
            tag = _STR  # quoted, or a plain scalar that no implicit resolver can match (fast path)
        else:
            tag = str(_RESOLVER.resolve(yaml.ScalarNode, raw, event.implicit))  # type: ignore[no-untyped-call]
    value: Scalar
    if tag in (_STR, _TIMESTAMP):
        value = raw  # a date is read as the text written; no field of the config is a date
    elif tag == _NULL:
        value = None
    elif tag == _BOOL:
        value = bool(_CONSTRUCTOR.bool_values[raw.lower()])
    elif tag in (_INT, _FLOAT):
        node = yaml.ScalarNode(tag, raw)
        try:
            if tag == _INT:
                value = _CONSTRUCTOR.construct_yaml_int(node)
            else:
                value = _CONSTRUCTOR.construct_yaml_float(node)
        except (ValueError, yaml.YAMLError):
            raise YamlError(line, f"'{raw}' is not a valid {tag.rsplit(':', 1)[1]}") from None
    elif tag == _MERGE:
        return _MergeKey(line, raw, raw)
    else:
        raise YamlError(line, f"unsupported YAML tag '{_short_tag(tag)}'")
    return YScalar(line, value, raw)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_PREFIX) :] if tag.startswith(_PREFIX) else tag


def _close_map(state: _OpenMap) -> None:
    """Fill the node's entries: merged keys first (earlier merge sources win), then own keys."""
    if not state.merges:
        state.node.entries = state.explicit
        return
    entries = state.node.entries
    for key_line, source in state.merges:
        sources = source.items if isinstance(source, YSeq) else [source]
        for item in sources:
            if not isinstance(item, YMap):
                raise YamlError(key_line, "'<<' merges a mapping or a list of mappings")
            for key, entry in item.entries.items():
                entries.setdefault(key, entry)
    for key, entry in state.explicit.items():
        entries.pop(key, None)
        entries[key] = entry
