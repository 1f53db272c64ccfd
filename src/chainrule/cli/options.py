"""argparse types of the command line's numeric options; each message names its option."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["positive_int", "non_negative_int", "positive_float", "widths"]


def _integer(name: str, text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} expects {what}, got {text!r}") from None


def positive_int(name: str) -> Callable[[str], int]:
    """The type of an option such as ``--epochs``: an integer ≥ 1."""

    def parse(text: str) -> int:
        value = _integer(name, text, "an integer")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text}")
        return value

    return parse


def non_negative_int(name: str) -> Callable[[str], int]:
    """The type of an option such as ``--seed``: an integer ≥ 0."""

    def parse(text: str) -> int:
        value = _integer(name, text, "an integer")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{name} must be a non-negative integer, got {text}")
        return value

    return parse


def positive_float(name: str) -> Callable[[str], float]:
    """The type of an option such as ``--lr``: a finite number > 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects a number, got {text!r}") from None
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be a positive number, got {text}")
        return value

    return parse


def widths(name: str, example: str) -> Callable[[str], tuple[int, ...]]:
    """The type of ``--hidden``: comma-separated positive integers, no empty entries."""
    usage = f"{name} expects comma-separated positive integers like {example}"

    def parse(text: str) -> tuple[int, ...]:
        parts = text.split(",")
        if not text.strip() or any(not part.strip() for part in parts):
            raise argparse.ArgumentTypeError(f"{usage}, got {text!r}")
        try:
            sizes = tuple(int(part) for part in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{usage}, got {text!r}") from None
        if any(size <= 0 for size in sizes):
            raise argparse.ArgumentTypeError(f"{usage}, got {text!r}")
        return sizes

    return parse
