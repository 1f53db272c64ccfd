"""A griffe extension for the API pages: keep the lecture's g[l](f[l]) from becoming a link.

Markdown reads ``g[l](f[l])`` as a link whose text is "l" and whose target is "f[l]". A
WORD JOINER (U+2060, invisible) between "]" and "(" breaks the link syntax and changes
nothing on the page. Only docstrings are touched, and only a bracketed index that follows a
symbol (``g[l](``, ``g′[L](``), so real Markdown links in docstrings still work.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["LectureNotation"]

_INDEX_THEN_PARENTHESIS = re.compile(r"(?<=[\w′])(\[[^\[\]\s]{1,8}\])\(")


class LectureNotation(griffe.Extension):
    """Rewrite ``x[i](`` as ``x[i]\u2060(`` in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _INDEX_THEN_PARENTHESIS.sub("\\1\u2060(", obj.docstring.value)
