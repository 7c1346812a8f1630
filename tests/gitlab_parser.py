"""GitLab's reading of a JUnit file, re-implemented for the tests: what its Tests tab shows.

GitLab does not read JUnit the way JUnit tools do. Its parser (lib/gitlab/ci/parsers/test/junit.rb)
turns the XML into a hash with ActiveSupport's XML converter and then, per ``<testcase>``, takes
``classname`` as the *suite* column, ``name``, ``time`` (seconds) and as the test's details the
*content* of ``<failure>``/``<error>``/``<skipped>`` (attributes such as ``type`` and ``message``
are never shown; an element with attributes but no content arrives as a hash, not as text),
followed for failures and errors by ``System Out:`` and ``System Err:`` blocks; a passed test
shows nothing (its output is set to nil). A suite keeps one case per status, classname and name.
`gitlab_view` re-implements exactly that reading, for test_report_gitlab and test_ci_templates.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

__all__ = ["GitLabTest", "gitlab_view", "render_gitlab_view"]


def _element_hash(element: ET.Element, parent: dict[str, Any]) -> None:
    """ActiveSupport XmlMini (Nokogiri): attributes, child elements and ``__content__``."""
    node: dict[str, Any] = {}
    name = element.tag
    if name not in parent:
        parent[name] = node
    elif isinstance(parent[name], list):
        parent[name].append(node)
    else:
        parent[name] = [parent[name], node]
    texts = [element.text]
    for child in element:
        _element_hash(child, node)
        texts.append(child.tail)
    if any(text is not None for text in texts):  # only text nodes create __content__
        node["__content__"] = "".join(text or "" for text in texts)
        if len(node) > 1 and not node["__content__"].strip():
            del node["__content__"]
    node.update(element.attrib)


def _typecast(value: Any) -> Any:
    """ActiveSupport XMLConverter: dashes in keys become underscores; a node whose content is
    not blank becomes that text; an empty node becomes nil; otherwise a hash stays a hash."""
    if isinstance(value, list):
        return [_typecast(item) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key.replace("-", "_"): item for key, item in value.items()}
    kind = value.get("type")
    assert kind not in ("symbol", "yaml", "array", "file"), f"type={kind} changes the parse"
    content = value.get("__content__")
    if content is not None and (len(value) == 1 or content.strip()):
        return content
    if kind == "string" and value.get("nil") != "true":
        return ""
    if not value or value.get("nil") == "true" or (kind is not None and len(value) == 1):
        return None
    return {key: _typecast(item) for key, item in value.items()}


@dataclass(frozen=True)
class GitLabTest:
    suite: str  # the Suite column
    name: str
    status: str
    seconds: float
    details: Any  # what the test's details show


def gitlab_view(*xml_texts: str) -> list[GitLabTest]:
    """The tests GitLab's JUnit parser makes of `xml_texts` (junit.rb: all_cases and
    create_test_case), the reports of the jobs of one test suite (a job, or the jobs of one
    `parallel:` job). A suite keeps its cases in a hash per status keyed by classname and name
    (reports/test_suite.rb: add_test_case): a case seen again replaces the earlier one in its
    place, so two jobs that report the same target leave one of them."""
    kept: dict[tuple[str, str, str], GitLabTest] = {}
    for xml_text in xml_texts:
        for test in _cases_of(xml_text):
            kept[test.status, test.suite, test.name] = test
    return list(kept.values())


def _cases_of(xml_text: str) -> list[GitLabTest]:
    root: dict[str, Any] = {}
    _element_hash(ET.fromstring(xml_text), root)
    tree = _typecast(root)
    tests: list[GitLabTest] = []

    def cases(node: Any, parent: Any = None) -> None:
        for item in node if isinstance(node, list) else [node]:
            if not isinstance(item, dict):
                continue
            if parent is None and "testsuites" in item:
                cases(item["testsuites"], item)
            if parent is not None and item.get("testcase") is not None:
                for case in (
                    item["testcase"] if isinstance(item["testcase"], list) else [item["testcase"]]
                ):
                    tests.append(_create_test_case(case))
            if item.get("testsuite") is not None:
                cases(item["testsuite"], item)

    cases(tree)
    return tests


def _create_test_case(data: dict[str, Any]) -> GitLabTest:
    system_out = f"System Out:\n\n{data['system_out']}" if "system_out" in data else None
    system_err = f"System Err:\n\n{data['system_err']}" if "system_err" in data else None
    if "failure" in data:
        status = "failed"
        details: Any = "\n\n".join(x for x in (data["failure"], system_out, system_err) if x)
    elif "error" in data:
        status = "error"
        details = "\n\n".join(x for x in (data["error"], system_out, system_err) if x)
    elif "skipped" in data:
        status, details = "skipped", data["skipped"]
    else:
        status, details = "success", None  # a passed test's system-out is not kept
    return GitLabTest(data["classname"], data["name"], status, float(data["time"]), details)


def render_gitlab_view(tests: list[GitLabTest]) -> str:
    """The Tests tab as text: what the closing note of issue 4 shows."""
    lines = []
    for test in tests:
        lines.append(f"{test.suite} › {test.name}: {test.status} ({test.seconds:.3f}s)")
        if test.status != "success" and test.details:
            lines.extend(f"    {line}" for line in str(test.details).splitlines())
    return "\n".join(lines) + "\n"
