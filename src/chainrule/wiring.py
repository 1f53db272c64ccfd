"""Connects ``Tensor`` to the ops and the engine, which are built on it.

``tensor.py`` defines Tensor's operators and methods as calls into ``chainrule.ops``,
``chainrule.engine`` and ``chainrule.inplace``; those modules import ``Tensor``, so
``tensor.py`` cannot import them in turn. Loading this module (``import chainrule`` does,
first thing) hands them over. The core's import graph stays acyclic: each module imports
only what lies below it, and loads on its own.
"""

from __future__ import annotations

from chainrule import engine, inplace, ops, tensor
from chainrule.function import apply_one, apply_pair
from chainrule.ops import elementwise, reduction

__all__ = ["connect"]


def connect() -> None:
    """Give ``chainrule.tensor`` the modules its methods call."""
    tensor._ops = ops
    tensor._engine = engine
    tensor._inplace = inplace
    tensor._elementwise = elementwise
    tensor._reduction = reduction
    tensor._apply_one = apply_one
    tensor._apply_pair = apply_pair


connect()
