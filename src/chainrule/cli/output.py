"""What the command line prints: result lines that survive a closed pipe, and warnings.

``chainrule train | head -1`` closes standard output after one line. The next line would
raise ``BrokenPipeError``; ``echo`` instead points standard output at the null device and
carries on, so that training still finishes and writes its run directory, and nothing is
printed about a pipe the user closed on purpose.
"""

from __future__ import annotations

import io
import os
import sys

__all__ = ["echo", "warn", "plural", "discard_stdout"]

_closed = False  # standard output was closed by its reader: print nothing more


def echo(line: str = "") -> None:
    """Print one line (or several) on standard output at once; a closed pipe ends the output."""
    if _closed:
        return
    try:
        print(line, flush=True)
    except BrokenPipeError:
        discard_stdout()


def discard_stdout() -> None:
    """Send what is still buffered, and anything printed later, to the null device."""
    global _closed
    _closed = True
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (a test's capture): dropping the lines is all that is needed


def warn(message: str) -> None:
    """``chainrule: warning: MESSAGE`` on standard error: an option that has no effect."""
    print(f"chainrule: warning: {message}", file=sys.stderr, flush=True)


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
