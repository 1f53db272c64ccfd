"""Every ```python block in the README and docs/ runs (documentation that cannot rot)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks():
    for document in DOCUMENTS:
        for number, match in enumerate(BLOCK.finditer(document.read_text(encoding="utf-8"))):
            yield pytest.param(match.group(1), id=f"{document.relative_to(ROOT)}#{number}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_code_block_runs(code, capsys):
    exec(compile(code, "<docs>", "exec"), {"__name__": "__docs__"})
