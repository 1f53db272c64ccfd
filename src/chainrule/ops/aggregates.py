"""More reductions: prod, std, and the logical all/any.

``axis`` is None (all axes), an int or a tuple, as in NumPy, with ``dim`` accepted as an
alias; ``keepdims`` has PyTorch's spelling ``keepdim`` as an alias. prod and std are
composed of differentiable ops (so they are differentiable to any order); all and any give
bool tensors and are not differentiable, like argmax.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.batched import as_batched, shift_axes, values_of
from chainrule.ops.piecewise import safe_sqrt
from chainrule.ops.reduction import normalize_axis, reduced_shape, var
from chainrule.ops.scan import cumprod
from chainrule.tensor import Tensor, constant_op

__all__ = ["prod", "std", "all", "any"]


def _keepdims(keepdims: bool, keepdim: bool | None) -> bool:
    """``keepdims`` (NumPy) or its alias ``keepdim`` (PyTorch); giving both is an error."""
    if keepdim is None:
        return bool(keepdims)
    if keepdims:
        raise TypeError("give keepdims= or keepdim=, not both")
    return bool(keepdim)


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def prod(
    x: Any,
    axis: Any = None,
    keepdims: bool = False,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """Product of the elements over ``axis`` (all by default).

    y = Πᵢ xᵢ; ∂y/∂xᵢ = Π_{j≠i} xⱼ, exact with zeros in x: with one zero, the zero's
    gradient is the product of the others and every other gradient is 0; with two or more
    zeros every gradient is 0. No division by x: the product is the last element of a
    ``cumprod`` over the reduced axes, whose rule never divides by a zero.
    """
    x = _tensor(x)
    keep = _keepdims(keepdims, keepdim)
    axes = normalize_axis(axis, x.ndim, dim)
    reduced = tuple(range(x.ndim)) if axes is None else axes
    kept = [a for a in range(x.ndim) if a not in reduced]
    out_shape = reduced_shape(x.shape, axes)
    order = kept + list(reduced)
    moved = x if order == sorted(order) else x.transpose(order)
    lines = moved.reshape(out_shape + (-1,))
    if lines.shape[-1] == 0:  # an empty product is 1; its gradient has no elements
        y = lines.sum(axis=-1) * 0 + 1
    else:
        y = cumprod(lines, axis=-1)[..., -1]
    if keep:
        y = y.reshape(tuple(1 if a in reduced else n for a, n in enumerate(x.shape)))
    return y


def std(
    x: Any,
    axis: Any = None,
    keepdims: bool = False,
    ddof: int = 0,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """Standard deviation √var over ``axis``; ddof=0 as in NumPy (``correction`` in torch).

    y = √((1/(n − ddof)) Σᵢ (xᵢ − x̄)²); ∂y/∂xᵢ = (xᵢ − x̄)/((n − ddof) y). Where y = 0
    (a constant input) the gradient is taken as 0, as in PyTorch: std is a cone there
    (std(c + t·v) = |t|·std(v)) and 0 is its one symmetric subgradient; the chain rule
    through √ would give 0·∞ = NaN.
    """
    keep = _keepdims(keepdims, keepdim)
    return safe_sqrt(var(x, axis, keep, ddof=ddof, dim=dim))


def _logical(name: str, x: Any, axis: Any, keepdims: bool, dim: Any, keepdim: Any) -> Tensor:
    data, k, levels = values_of(_tensor(x))  # inside vmap: the whole batch
    keep = _keepdims(keepdims, keepdim)
    axes = normalize_axis(axis, data.ndim - k, dim)
    if k:
        axes = shift_axes(axes, k, data.ndim - k)
    reduce = np.all if name == "all" else np.any
    return as_batched(constant_op(reduce, data, axis=axes, keepdims=keep), levels)


def all(  # noqa: A001 (NumPy's name)
    x: Any,
    axis: Any = None,
    keepdims: bool = False,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """True where every element over ``axis`` is nonzero (a bool tensor; not
    differentiable, like ``np.all``)."""
    return _logical("all", x, axis, keepdims, dim, keepdim)


def any(  # noqa: A001 (NumPy's name)
    x: Any,
    axis: Any = None,
    keepdims: bool = False,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """True where some element over ``axis`` is nonzero (a bool tensor; not
    differentiable, like ``np.any``)."""
    return _logical("any", x, axis, keepdims, dim, keepdim)
