"""Sorting: sort (differentiable values), argsort (indices), topk (values and indices).

The values are gathered from x by the sorting permutation (a constant), so the gradient
flows back through the same permutation: ∂L/∂x at the element that lands in position k is
gₖ. Ties keep their input order (a stable sort, as ``torch.sort(stable=True)``): each tied
element receives the gradient of the position it lands in, and nothing is split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.batched import as_batched, physical, values_of
from chainrule.ops.reduction import normalize_axis
from chainrule.tensor import Tensor, constant_op

__all__ = ["sort", "argsort", "topk"]


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _one_axis(x: Tensor, axis: Any, dim: Any, name: str) -> int:
    if x.ndim == 0:
        raise ValueError(f"{name} needs a tensor with at least 1 dimension, got a 0-d tensor")
    axes = normalize_axis(axis, x.ndim, dim)
    if axes is None or len(axes) != 1:
        raise ValueError(f"{name} takes a single axis, got {axis}")
    return axes[0]


def _gather(x: Tensor, index: np.ndarray, axis: int, levels: tuple[int, ...] = ()) -> Tensor:
    """x[..., index, ...] along ``axis`` (``np.take_along_axis``), recorded as indexing.
    Inside vmap (``levels``), index and axis are the whole batch's."""
    grid = list(np.ix_(*[np.arange(n) for n in index.shape]))
    grid[axis] = index
    if not levels:
        return x[tuple(grid)]
    with physical():
        return as_batched(x[tuple(grid)], levels)


def _order(data: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """The stable sorting permutation; descending keeps ties in input order too."""
    if not descending:
        return np.argsort(data, axis=axis, kind="stable")
    flipped = np.flip(data, axis)
    index = np.argsort(flipped, axis=axis, kind="stable")
    # ascending order of the reversed input, reversed: descending, ties first-come first
    return np.flip(data.shape[axis] - 1 - index, axis)


def _first_of_order(data: np.ndarray, axis: int, descending: bool, k: int) -> np.ndarray:
    """The first k entries of the sorting permutation along ``axis``."""
    return np.take(_order(data, axis, descending), np.arange(k), axis=axis)


def sort(x: Any, axis: Any = -1, dim: Any = None) -> Tensor:
    """The values of x sorted ascending along ``axis`` (the last by default), as ``np.sort``.

    y = x[π] for the stable sorting permutation π; ∂L/∂x_{π(k)} = gₖ. Ties keep their
    input order, and each gets the gradient of the position it lands in.
    """
    x = _tensor(x)
    if axis == -1 and dim is not None:
        axis = None
    axis = _one_axis(x, axis, dim, "sort")
    data, k, levels = values_of(x)  # inside vmap: the whole batch
    return _gather(x, constant_op(_order, data, axis + k, False), axis + k, levels)


def argsort(x: Any, axis: Any = -1, dim: Any = None) -> Tensor:
    """The indices that sort x ascending along ``axis`` (stable: ties in input order); an
    integer tensor, not differentiable."""
    x = _tensor(x)
    if axis == -1 and dim is not None:
        axis = None
    axis = _one_axis(x, axis, dim, "argsort")
    data, k, levels = values_of(x)  # inside vmap: the whole batch
    return as_batched(constant_op(_order, data, axis + k, False), levels)


def topk(
    x: Any, k: int, axis: Any = -1, largest: bool = True, dim: Any = None
) -> tuple[Tensor, Tensor]:
    """The k largest (or, with ``largest=False``, smallest) values along ``axis`` and their
    indices, in order from the most extreme, as ``torch.topk``.

    values = x[π[:k]] (differentiable: ∂L/∂x_{π(j)} = gⱼ for the k chosen elements, 0
    elsewhere); indices is an integer tensor. Ties keep their input order (the earlier
    element first).

    Raises:
        ValueError: when k is negative or larger than the size along ``axis``.
    """
    x = _tensor(x)
    if axis == -1 and dim is not None:
        axis = None
    axis = _one_axis(x, axis, dim, "topk")
    size = x.shape[axis]
    if not 0 <= k <= size:
        raise ValueError(
            f"topk: k={k} is out of range for axis {axis} of size {size} (input shape {x.shape})"
        )
    data, batch_axes, levels = values_of(x)  # inside vmap: the whole batch
    axis += batch_axes
    index = constant_op(_first_of_order, data, axis, largest, k)
    return _gather(x, index, axis, levels), as_batched(index, levels)
