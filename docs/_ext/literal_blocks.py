"""A griffe extension for the API pages: reStructuredText literal blocks as code blocks.

Docstrings are read by ``help()`` as much as by the site, and there a paragraph ending in
``::`` followed by an indented block is the usual way to show code. Markdown does not know
it: the page would show a stray "::" and the code as an indented paragraph. This rewrites
each such block as a fenced one (``python`` when it parses as Python), leaving the
docstring in the code as it is.
"""

from __future__ import annotations

import ast
import textwrap
from typing import Any

import griffe

__all__ = ["LiteralBlocks", "fence_literal_blocks"]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _language(code: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError:
        return "text"
    return "python"


def fence_literal_blocks(text: str) -> str:
    """``Example::`` + an indented block → ``Example:`` + a fenced code block."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        start = i + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        opens = line.rstrip().endswith("::") and start > i + 1 and start < len(lines)
        if not opens or _indent(lines[start]) <= _indent(line):
            out.append(line)
            i += 1
            continue
        end = start
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > _indent(line)):
            end += 1
        while not lines[end - 1].strip():
            end -= 1
        head = line.rstrip()[:-2].rstrip()  # "identical::" -> "identical:"; "::" alone goes
        if head:
            out.append(head + ":")
        code = textwrap.dedent("\n".join(lines[start:end]))
        margin = " " * _indent(line)
        out += ["", f"{margin}```{_language(code)}"]
        out += [margin + row if row else "" for row in code.splitlines()]
        out += [f"{margin}```", ""]
        i = end
    return "\n".join(out)


class LiteralBlocks(griffe.Extension):
    """Rewrite the ``::`` literal blocks of every docstring griffe loads as fenced code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and "::" in obj.docstring.value:
            obj.docstring.value = fence_literal_blocks(obj.docstring.value)
