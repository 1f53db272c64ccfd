"""MkDocs hook: the command line's ``--help`` texts, written into docs/cli.md at build time.

A line ``<!-- chainrule --help -->`` (or ``<!-- chainrule train --help -->``, …) in a page
becomes a text block with what that command prints, so the reference page cannot drift
from the parser it documents.
"""

from __future__ import annotations

import os
import re
from typing import Any

MARKER = re.compile(r"^<!-- chainrule(?P<command>(?: [a-z]+)?) --help -->$", re.MULTILINE)
WIDTH = "80"  # columns argparse wraps the help to: a terminal's, and the page's column


def help_text(command: str) -> str:
    """What ``chainrule [COMMAND] --help`` prints in an 80-column terminal."""
    from chainrule.cli.main import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        parser = build_parser()
        if command:
            commands = next(a for a in parser._actions if a.dest == "command")
            parser = commands.choices[command]  # type: ignore[attr-defined]
        return parser.format_help().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each ``<!-- chainrule … --help -->`` line by that help text."""

    def block(match: re.Match[str]) -> str:
        return "```text\n" + help_text(match.group("command").strip()) + "\n```"

    return MARKER.sub(block, markdown)
