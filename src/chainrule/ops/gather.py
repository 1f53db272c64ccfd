"""Gathering by an array of indices along one axis: ``take_along_axis``.

A composition of integer-array indexing (``getitem``), whose gradient is a scatter-add
(repeated indices accumulate), batchable and differentiable to any order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops.reduction import normalize_axis
from chainrule.ops.shape import getitem, reshape
from chainrule.tensor import Tensor

__all__ = ["take_along_axis"]


def take_along_axis(x: Any, indices: Any, axis: int | None) -> Tensor:
    """The elements of x at ``indices`` along ``axis``, as ``np.take_along_axis`` (PyTorch's
    ``take_along_dim``/``gather``): ``indices`` has x's number of dimensions, and its other
    axes broadcast against x's. ``axis=None`` takes from the flattened x (1-D indices).

    y[i, j] = x[indices[i, j], j] for axis 0 of a matrix;  ∂L/∂x = zeros with G added at
    the same places (np.add.at: an element taken twice gets both gradients). ``indices``
    gets no gradient.
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    index = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if index.dtype.kind not in "iu":
        raise TypeError(f"take_along_axis: indices must be integers, got dtype {index.dtype}")
    if axis is None:
        if index.ndim != 1:
            raise ValueError(
                f"take_along_axis: with axis=None the indices must be 1-D, got {index.shape}"
            )
        x, axis = reshape(x, (-1,)), 0
    (axis,) = normalize_axis(axis, x.ndim) or (0,)
    if index.ndim != x.ndim:
        raise ValueError(
            f"take_along_axis: indices of shape {index.shape} need as many dimensions as x "
            f"{x.shape}"
        )
    n = x.shape[axis]
    if index.size and not (-n <= index.min() and index.max() < n):
        raise IndexError(
            f"take_along_axis: an index is out of range for axis {axis} of length {n} "
            f"(shape {x.shape})"
        )
    grids = []
    for a, size in enumerate(x.shape):
        if a == axis:
            grids.append(index)
        else:
            shape = [1] * x.ndim
            shape[a] = size
            grids.append(np.arange(size).reshape(shape))
    try:
        np.broadcast_shapes(*(g.shape for g in grids))
    except ValueError as error:
        raise ValueError(
            f"take_along_axis: indices of shape {index.shape} do not broadcast against x "
            f"{x.shape} outside axis {axis}"
        ) from error
    return getitem(x, tuple(grids))
