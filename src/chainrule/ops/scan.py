"""Scans: the running sum ``cumsum`` and the running product ``cumprod`` along one axis.

``axis=None`` (NumPy's default) scans the flattened input; ``dim`` is accepted as an
alias. cumprod's gradient is exact with zeros in the input: it never divides by a zero
(a rule y/x would give 0/0 = NaN there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.ops.reduction import normalize_axis
from chainrule.tensor import Tensor

__all__ = ["cumsum", "cumprod"]


def _flip(a: Any, axis: int) -> Any:
    """``a`` reversed along ``axis`` (counted from the end), for an ndarray or a Tensor."""
    return a[(Ellipsis, slice(None, None, -1)) + (slice(None),) * (-axis - 1)]


def _cumsum_any(a: Any, axis: int) -> Any:
    return Cumsum.apply(a, axis=axis) if isinstance(a, Tensor) else np.cumsum(a, axis)


def _cumprod_any(a: Any, axis: int) -> Any:
    return Cumprod.apply(a, axis=axis) if isinstance(a, Tensor) else np.cumprod(a, axis)


def _from_end(axis: int, ndim: int) -> int:
    """The axis counted from the end: extra leading (batch) axes of a gradient keep it."""
    return axis - ndim if axis >= 0 else axis


class Cumsum(Function):
    """yₖ = Σ_{j≤k} xⱼ along one axis;  ∂L/∂xᵢ = Σ_{k≥i} gₖ (a reversed running sum)."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axis):
        ctx.axis = _from_end(axis, x.ndim)
        return np.cumsum(x, axis=ctx.axis)

    @staticmethod
    def backward(ctx, grad_out):
        return _flip(_cumsum_any(_flip(grad_out, ctx.axis), ctx.axis), ctx.axis)


class Cumprod(Function):
    """yₖ = Π_{j≤k} xⱼ along one axis;  ∂L/∂xᵢ = Σ_{k≥i} gₖ Π_{j≤k, j≠i} xⱼ.

    Exact with zeros in x: before the first zero of a line the products without xᵢ are
    yₖ/xᵢ (xᵢ ≠ 0 there); at the first zero they are computed without dividing; after it
    they contain that zero and are 0.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axis):
        ctx.axis = _from_end(axis, x.ndim)
        y = np.cumprod(x, axis=ctx.axis)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        axis = ctx.axis
        g, x, y = (a.swapaxes(axis, -1) for a in (grad_out, x, y))
        if isinstance(g, np.ndarray) and isinstance(x, np.ndarray):
            grad = _cumprod_grad_array(g, x, y)
        else:
            grad = _cumprod_grad_any(g, x, y)
        return grad.swapaxes(axis, -1)


def _reverse_cumsum(a: np.ndarray) -> np.ndarray:
    return np.cumsum(a[..., ::-1], axis=-1)[..., ::-1]


def _cumprod_grad_array(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cumprod's gradient along the last axis on ndarrays, in O(n) per line."""
    zero = x == 0
    if not zero.any():
        return _reverse_cumsum(g * y) / x
    n = x.shape[-1]
    j = np.arange(n)
    first = np.where(zero.any(axis=-1, keepdims=True), np.argmax(zero, -1, keepdims=True), n)
    before = j < first
    grad = _reverse_cumsum(g * y) / np.where(before, x, 1) * before
    # at the first zero z: Π_{j<z} xⱼ · Σ_{k≥z} gₖ Π_{z<j≤k} xⱼ
    after = np.cumprod(np.where(j > first, x, 1), axis=-1)
    tail = np.sum(g * after * (j >= first), axis=-1, keepdims=True)
    head = np.prod(np.where(before, x, 1), axis=-1, keepdims=True)
    return grad + head * tail * (j == first)


def _cumprod_grad_any(g: Any, x: Any, y: Any) -> Any:
    """Cumprod's gradient along the last axis, written with ops that record (O(n²)).

    T[i, k] = Π_{i<j≤k} xⱼ (a cumprod of x masked to j > i), r_i = Σ_{k≥i} gₖ T[i, k],
    and ∂L/∂xᵢ = yᵢ₋₁ · rᵢ (y₋₁ = 1): no division, so differentiable again at zeros.
    """
    n = x.shape[-1]
    dtype = x.dtype
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    later = (j > i).astype(dtype)
    masked = x[..., None, :] * later + (1 - later)
    t = _cumprod_any(masked, -1)
    r = (g[..., None, :] * t * (j >= i).astype(dtype)).sum(axis=-1)
    shifted = y[..., np.maximum(np.arange(n) - 1, 0)]
    first = (np.arange(n) == 0).astype(dtype)
    return (shifted * (1 - first) + first) * r


# ------------------------------------------------------------------------- wrappers
def _scan_input(x: Any, axis: Any, dim: Any, name: str) -> tuple[Tensor, int]:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if axis is None and dim is None:
        return x.reshape(-1), 0
    axes = normalize_axis(axis, x.ndim, dim)
    if axes is None or len(axes) != 1:
        raise ValueError(f"{name} takes a single axis (or None to flatten), got {axis}")
    return x, axes[0]


def cumsum(x: Any, axis: Any = None, dim: Any = None) -> Tensor:
    """Running sum along ``axis``; ``axis=None`` (NumPy's default) scans the flattened input.

    yₖ = Σ_{j≤k} xⱼ; ∂L/∂xᵢ = Σ_{k≥i} gₖ.
    """
    x, axis = _scan_input(x, axis, dim, "cumsum")
    return Cumsum.apply(x, axis=axis)


def cumprod(x: Any, axis: Any = None, dim: Any = None) -> Tensor:
    """Running product along ``axis``; ``axis=None`` (NumPy's default) scans the flattened
    input.

    yₖ = Π_{j≤k} xⱼ; ∂L/∂xᵢ = Σ_{k≥i} gₖ Π_{j≤k, j≠i} xⱼ, exact with zeros in x.
    """
    x, axis = _scan_input(x, axis, dim, "cumprod")
    return Cumprod.apply(x, axis=axis)
