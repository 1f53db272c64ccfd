"""Ops on the matrices of a tensor (its last two axes, or any two for ``diagonal`` and
``trace``): the triangles ``tril`` and ``triu``, the ``diagonal`` and the ``trace``.

Compositions of ``where``, indexing, ``moveaxis`` and ``sum``: batchable and differentiable
to any order like the ops they are made of. Each gradient is stated in its docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops.piecewise import where
from chainrule.ops.rearrange import moveaxis
from chainrule.ops.reduction import normalize_axis
from chainrule.ops.reduction import sum as _sum
from chainrule.ops.shape import getitem
from chainrule.tensor import Tensor

__all__ = ["tril", "triu", "diagonal", "trace"]


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _axis(axis: Any, ndim: int) -> int:
    """One axis as a non-negative int, range-checked."""
    (result,) = normalize_axis(int(axis), ndim) or (0,)
    return result


def _matrices(x: Tensor, name: str) -> tuple[int, int]:
    if x.ndim < 2:
        raise ValueError(f"{name}: needs at least 2 dimensions, got shape {x.shape}")
    return x.shape[-2], x.shape[-1]


def tril(x: Any, k: int = 0) -> Tensor:
    """The lower triangle of x (of each matrix in its last two axes): the elements on and
    below the k-th diagonal, zeros above it (k > 0 above the main diagonal, k < 0 below).

    y = x where j − i ≤ k, else 0;  ∂L/∂x = tril(G, k).
    """
    x = _tensor(x)
    rows, cols = _matrices(x, "tril")
    return where(np.tri(rows, cols, int(k), dtype=bool), x, np.zeros((), dtype=x.dtype))


def triu(x: Any, k: int = 0) -> Tensor:
    """The upper triangle of x (of each matrix in its last two axes): the elements on and
    above the k-th diagonal, zeros below it.

    y = x where j − i ≥ k, else 0;  ∂L/∂x = triu(G, k).
    """
    x = _tensor(x)
    rows, cols = _matrices(x, "triu")
    return where(~np.tri(rows, cols, int(k) - 1, dtype=bool), x, np.zeros((), dtype=x.dtype))


def diagonal(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal of x in the plane of ``axis1`` and ``axis2``, as ``np.diagonal``: those
    two axes are removed and the diagonal becomes the last axis. ``offset`` > 0 takes a
    diagonal above the main one, < 0 below.

    y[…, i] = x[…, i + max(−offset, 0), i + max(offset, 0)];  ∂L/∂x = zeros with G placed
    on that diagonal.
    """
    x = _tensor(x)
    if x.ndim < 2:
        raise ValueError(f"diagonal: needs at least 2 dimensions, got shape {x.shape}")
    a1, a2 = _axis(axis1, x.ndim), _axis(axis2, x.ndim)
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 are the same axis ({a1}) of {x.shape}")
    offset = int(offset)
    first, second = max(-offset, 0), max(offset, 0)
    length = max(0, min(x.shape[a1] - first, x.shape[a2] - second))
    steps = np.arange(length)
    planes = moveaxis(x, (a1, a2), (-2, -1))
    return getitem(planes, (Ellipsis, steps + first, steps + second))


def trace(x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of the diagonal of x (see ``diagonal``), as ``np.trace``.

    y = Σᵢ x[i + max(−offset, 0), i + max(offset, 0)];  ∂L/∂x = G on that diagonal, zeros
    elsewhere (G times the identity for a square x).
    """
    return _sum(diagonal(x, offset, axis1, axis2), axis=-1)
