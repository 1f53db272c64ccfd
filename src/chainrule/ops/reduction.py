"""Reductions (sum, mean, var, max, min, logsumexp) and the normalisations built on them
(softmax, log_softmax).

``axis`` is None (all axes), an int or a tuple, as in NumPy; ``dim`` is accepted as an
alias, and ``keepdim`` (PyTorch's spelling) beside ``keepdims``. float16/float32 sums
accumulate in float64 and round once at the end, so the mean of a million float32 values is
as accurate as its float32 result can be.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from chainrule.batched import as_batched, values_of
from chainrule.function import Function
from chainrule.ops import rules
from chainrule.tensor import Tensor, constant_op, filled

__all__ = [
    "sum", "mean", "var", "max", "min", "argmax", "argmin", "logsumexp", "softmax",
    "log_softmax",
]  # fmt: skip


def normalize_axis(axis: Any, ndim: int, dim: Any = None) -> tuple[int, ...] | None:
    """None (every axis) or a sorted tuple of non-negative axes; checks the range."""
    if dim is not None:
        if axis is not None:
            raise TypeError("give axis= or dim=, not both")
        axis = dim
    if axis is None:
        return None
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    result = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimension(s)")
        result.append(a % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(result))


def resolve_keepdims(keepdims: bool, keepdim: bool | None) -> bool:
    """``keepdims``, or PyTorch's ``keepdim=`` spelling of it; giving both is refused."""
    if keepdim is None:
        return bool(keepdims)
    if keepdims:
        raise TypeError("give keepdims= or keepdim=, not both")
    return bool(keepdim)


def kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` with the reduced axes set to 1 (what keepdims=True gives)."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` without the reduced axes (what keepdims=False gives)."""
    if axes is None:
        return ()
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _count(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> int:
    if axes is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


_add_reduce = np.add.reduce


def accurate_sum(x: np.ndarray, axes: Any, keepdims: bool) -> np.ndarray:
    """Sum that accumulates low-precision floats in float64, returning the input dtype."""
    x = np.asarray(x)
    # np.add.reduce directly: ndarray.sum's Python-level wrapper costs as much as summing
    # a small tensor
    if x.dtype.kind == "f" and x.dtype.itemsize < 8:
        return np.array(_add_reduce(x, axes, np.float64, None, keepdims), x.dtype)  # type: ignore[call-overload]
    return _add_reduce(x, axes, None, None, keepdims)  # type: ignore[call-overload]


def _sum(a: Any, axis: int) -> Any:
    """Σ over one axis with keepdims, for an ndarray (accurately) or a Tensor (recorded)."""
    if isinstance(a, np.ndarray):
        return accurate_sum(a, axis, True)
    return a.sum(axis=axis, keepdims=True)


def _spread(grad_out: Any, ctx: Any) -> Any:
    """The gradient of a reduction's output, broadcast back over the reduced axes.

    Leading axes of ``grad_out`` beyond the output's (a batch of cotangents) pass through.
    """
    if isinstance(grad_out, np.generic):  # a 0-d gradient divided by n (Mean) is a scalar
        grad_out = np.asarray(grad_out)
    if ctx.axes is None and grad_out.size == 1 and type(grad_out) is np.ndarray:
        if grad_out.ndim == (len(ctx.shape) if ctx.keepdims else 0):  # no batch axes
            # a full reduction: one value spread everywhere (np.full beats broadcast_to's
            # Python-level setup on the small tensors where overhead counts)
            return filled(ctx.shape, grad_out.reshape(()), grad_out.dtype)
    out_ndim = len(ctx.shape) if ctx.keepdims else len(reduced_shape(ctx.shape, ctx.axes))
    lead = grad_out.shape[: grad_out.ndim - out_ndim]
    if not ctx.keepdims:
        grad_out = grad_out.reshape(lead + kept_shape(ctx.shape, ctx.axes))
    return rules.broadcast_to(grad_out, lead + ctx.shape)


class Sum(Function):
    """y = Σᵢ xᵢ over the axes;  ∂y/∂xᵢ = 1."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return accurate_sum(x, axes, keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        return _spread(grad_out, ctx)


class Mean(Function):
    """y = (1/n) Σᵢ xᵢ over the axes;  ∂y/∂xᵢ = 1/n."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        ctx.n = _count(x.shape, axes)
        total = accurate_sum(x, axes, keepdims)
        return total / ctx.n if ctx.n else total * np.nan

    @staticmethod
    def backward(ctx, grad_out):
        return _spread(grad_out / ctx.n, ctx)


class MaxMin(Function):
    """y = max (or min) over the axes;  ∂y/∂xᵢ = 1/k for each of the k elements equal to y.

    Ties share the gradient evenly (as PyTorch's ``amax``/``amin`` and full ``max`` do);
    the total gradient is conserved.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdims, largest):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        reduce = np.max if largest else np.min
        y = reduce(x, axis=axes, keepdims=True)
        hits = x == y
        ctx.save_for_backward(hits / np.sum(hits, axis=axes, keepdims=True, dtype=x.dtype))
        return y if keepdims else y.reshape(reduced_shape(x.shape, axes))

    @staticmethod
    def backward(ctx, grad_out):
        (weights,) = ctx.saved_tensors
        return _spread(grad_out, ctx) * weights


class LogSumExp(Function):
    """y = log Σᵢ exp xᵢ (shifted by the max, so it never overflows);  ∂y/∂xᵢ = exp(xᵢ − y).

    All −inf gives −inf, and a gradient of 0.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        y = _logsumexp_array(x, axes)
        if not keepdims:
            y = y.reshape(reduced_shape(x.shape, axes))
        ctx.save_for_backward(x, y)  # the output itself, so create_graph differentiates it
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        if isinstance(x, np.ndarray):
            return _spread(grad_out, ctx) * _softmax_array(x, ctx.axes)
        y = y.reshape(kept_shape(ctx.shape, ctx.axes))
        if isinstance(y, np.ndarray) and np.isneginf(y).any():
            y = np.where(np.isneginf(y), 0, y)  # rows of −inf: exp(x − 0) = 0, no gradient
        return _spread(grad_out, ctx) * rules.exp(x - y)


def _logsumexp_array(x: np.ndarray, axes: Any) -> np.ndarray:
    """log Σ exp x over ``axes`` with keepdims, shifted by the (finite) max."""
    if x.size == 0:
        return np.log(np.sum(np.exp(x), axis=axes, keepdims=True))
    shift = _finite_max(x, axes)
    with np.errstate(divide="ignore"):
        return np.log(accurate_sum(np.exp(x - shift), axes, True)) + shift


def _finite_max(x, axes):
    shift = np.max(x, axis=axes, keepdims=True)
    return np.where(np.isfinite(shift), shift, 0).astype(x.dtype)


def _softmax_array(x, axes):
    e = np.exp(x - _finite_max(x, axes))
    total = accurate_sum(e, axes, True)
    return e / np.where(total == 0, 1, total)


class LogSoftmax(Function):
    """yᵢ = xᵢ − log Σⱼ exp xⱼ along one axis;  ∂L/∂x = g − softmax(x) · Σⱼ gⱼ.

    A primitive because log(softmax(x)) underflows to −inf for large |x|.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axis):
        ctx.axis = axis - x.ndim  # counted from the end: extra leading axes do not move it
        shifted = x - _finite_max(x, axis)
        with np.errstate(divide="ignore"):
            y = shifted - np.log(accurate_sum(np.exp(shifted), axis, True))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out - rules.exp(y) * _sum(grad_out, ctx.axis)


class Softmax(Function):
    """yᵢ = exp xᵢ / Σⱼ exp xⱼ along one axis;  ∂L/∂x = y ∘ (g − Σⱼ gⱼyⱼ)."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axis):
        ctx.axis = axis - x.ndim  # counted from the end: extra leading axes do not move it
        y = _softmax_array(x, axis)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return y * (grad_out - _sum(grad_out * y, ctx.axis))


# ------------------------------------------------------------------------- wrappers
def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def sum(  # noqa: A001
    x: Any, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: bool | None = None
) -> Tensor:
    """Σ of the elements over ``axis`` (all by default)."""
    x = _tensor(x)
    keep = resolve_keepdims(keepdims, keepdim)
    return Sum.apply(x, axes=normalize_axis(axis, x.ndim, dim), keepdims=keep)


def mean(
    x: Any, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: bool | None = None
) -> Tensor:
    """Arithmetic mean over ``axis`` (all by default)."""
    x = _tensor(x)
    keep = resolve_keepdims(keepdims, keepdim)
    return Mean.apply(x, axes=normalize_axis(axis, x.ndim, dim), keepdims=keep)


def var(
    x: Any,
    axis: Any = None,
    keepdims: bool = False,
    ddof: int = 0,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """Variance (1/(n − ddof)) Σ (x − mean)² over ``axis``; ddof=0 as in NumPy."""
    x = _tensor(x)
    keep = resolve_keepdims(keepdims, keepdim)
    axes = normalize_axis(axis, x.ndim, dim)
    n = _count(x.shape, axes)
    centred = x - Mean.apply(x, axes=axes, keepdims=True)
    denominator = builtins.max(n - ddof, 0)  # this module's max is the reduction
    return Sum.apply(centred * centred, axes=axes, keepdims=keep) / denominator


def max(  # noqa: A001
    x: Any, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: bool | None = None
) -> Tensor:
    """Largest element over ``axis``; ties share the gradient evenly."""
    x = _tensor(x)
    keep = resolve_keepdims(keepdims, keepdim)
    axes = normalize_axis(axis, x.ndim, dim)
    return MaxMin.apply(x, axes=axes, keepdims=keep, largest=True)


def min(  # noqa: A001
    x: Any, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: bool | None = None
) -> Tensor:
    """Smallest element over ``axis``; ties share the gradient evenly."""
    x = _tensor(x)
    keep = resolve_keepdims(keepdims, keepdim)
    axes = normalize_axis(axis, x.ndim, dim)
    return MaxMin.apply(x, axes=axes, keepdims=keep, largest=False)


def _single_axis(axis: Any, dim: Any, ndim: int) -> int | None:
    axes = normalize_axis(axis, ndim, dim)
    if axes is not None and len(axes) != 1:
        raise ValueError(f"argmax/argmin take a single axis, got {axis}")
    return None if axes is None else axes[0]


def _arg_extreme(find: Any, x: Any, axis: Any, keep: bool, dim: Any) -> Tensor:
    data, k, levels = values_of(_tensor(x))  # inside vmap: the whole batch
    rank = data.ndim - k
    single = _single_axis(axis, dim, rank)
    if single is not None or not k:
        axis = None if single is None else single + k
        index = constant_op(find, data, axis=axis, keepdims=keep)
    else:  # over each example's flattened values
        index = constant_op(_find_per_example, find, data, k, keep)
    return as_batched(index, levels)


def _find_per_example(find: Any, data: np.ndarray, k: int, keep: bool) -> np.ndarray:
    """argmax/argmin over each example's flattened values, k batch axes in front."""
    index = find(data.reshape(data.shape[:k] + (-1,)), axis=k)
    return index.reshape(index.shape + (1,) * (data.ndim - k)) if keep else index


def argmax(
    x: Any, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: bool | None = None
) -> Tensor:
    """Index of the largest element (an integer tensor; not differentiable)."""
    return _arg_extreme(np.argmax, x, axis, resolve_keepdims(keepdims, keepdim), dim)


def argmin(
    x: Any, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: bool | None = None
) -> Tensor:
    """Index of the smallest element (an integer tensor; not differentiable)."""
    return _arg_extreme(np.argmin, x, axis, resolve_keepdims(keepdims, keepdim), dim)


def logsumexp(
    x: Any, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: bool | None = None
) -> Tensor:
    """log Σ exp x over ``axis``, computed without overflow; all −inf gives −inf."""
    x = _tensor(x)
    keep = resolve_keepdims(keepdims, keepdim)
    return LogSumExp.apply(x, axes=normalize_axis(axis, x.ndim, dim), keepdims=keep)


def _softmax_axis(x: Tensor, axis: Any, dim: Any) -> int:
    if axis is None and dim is None:
        axis = -1
    axes = normalize_axis(axis, x.ndim, dim)
    if axes is None or len(axes) != 1:
        raise ValueError(f"softmax/log_softmax take a single axis, got {axis}")
    return axes[0]


def softmax(x: Any, axis: Any = None, dim: Any = None) -> Tensor:
    """exp xᵢ / Σⱼ exp xⱼ along ``axis`` (the last by default)."""
    x = _tensor(x)
    return Softmax.apply(x, axis=_softmax_axis(x, axis, dim))


def log_softmax(x: Any, axis: Any = None, dim: Any = None) -> Tensor:
    """xᵢ − log Σⱼ exp xⱼ along ``axis`` (the last by default): the stable log of softmax."""
    x = _tensor(x)
    return LogSoftmax.apply(x, axis=_softmax_axis(x, axis, dim))
