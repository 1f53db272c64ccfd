"""How the command line fails: one line on standard error and exit status 2.

``UsageError`` is a mistake in the options; an ``OSError`` (a path that cannot be read or
written), a ``ValueError`` (a malformed file) and a few others are reported the same way,
through ``describe``. Under ``mpiexec``, ``together`` runs a setup step on every rank and
makes them agree on its failure, so that the job stops at once, with one message from the
rank that failed and no ``MPI_Abort``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from chainrule import distributed

__all__ = ["UsageError", "USER_ERRORS", "describe", "together", "reporting_rank"]

T = TypeVar("T")


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit status 2."""


#: exceptions that a user's input causes (bad options, paths, files), reported in one line
USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError, OSError, ValueError, KeyError, RuntimeError, ImportError,
)  # fmt: skip


def describe(error: BaseException) -> str:
    """The error in one line: ``PATH: reason`` for an OSError, its text joined otherwise."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        target = f" -> {error.filename2}" if error.filename2 is not None else ""
        return f"{error.filename}{target}: {error.strerror}"
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = " ".join(lines) if lines else repr(error)
    return text[1:-1] if isinstance(error, KeyError) and text[:1] == text[-1:] == "'" else text


def together(step: Callable[[], T]) -> T:
    """Run ``step`` on every rank; if it fails on any, the lowest failing rank's error is
    raised on all of them (marked with ``reporting_rank``), so they stop together.

    Without MPI it is just ``step()``.
    """
    error: BaseException | None = None
    try:
        result = step()
    except USER_ERRORS as caught:
        if distributed.world_size() == 1:
            raise
        error = caught
    if distributed.world_size() == 1:
        return result
    failures = distributed.allgather_object(None if error is None else describe(error))
    for rank, message in enumerate(failures):
        if message is not None:
            agreed = error if rank == distributed.rank() and error is not None else None
            agreed = agreed or UsageError(message)
            agreed.reporting_rank = rank  # type: ignore[attr-defined]
            raise agreed
    return result


def reporting_rank(error: BaseException) -> int | None:
    """The one rank that reports an error the ranks agreed on; None if they did not."""
    return getattr(error, "reporting_rank", None)
