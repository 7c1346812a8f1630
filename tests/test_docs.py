"""The documentation's examples, held to what they show: every YAML block a reader may copy
from the README or docs/ is YAML (a block may be a fragment, or list alternatives of one key,
so only its syntax is checked here; the full examples are loaded by their own tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_YAML_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _yaml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for found in _YAML_BLOCK.finditer(text):
            line = text.count("\n", 0, found.start()) + 1
            blocks.append((f"{document.relative_to(ROOT)}:{line}", found.group(1)))
    return blocks


BLOCKS = _yaml_blocks()


def test_the_documents_have_yaml_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(("where", "block"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_every_yaml_example_parses(where: str, block: str) -> None:
    try:
        list(yaml.parse(block, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        pytest.fail(f"{where}: {exc}")
