"""Piecewise ops, whose derivative has kinks: relu, abs, clip, maximum, minimum, where, and
safe_sqrt (√ with a chosen derivative at 0).

Each states its convention at the kink (relu'(0) = 0, abs'(0) = 0, clip passes the
gradient at its bounds, maximum/minimum split ties 1/2 each, where sends the gradient by
its constant condition, safe_sqrt'(0) = 0). gradcheck inputs keep away from the kinks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import workspace
from chainrule.batched import is_batched
from chainrule.function import Function, apply_one
from chainrule.ops.elementwise import _const
from chainrule.tensor import Tensor, constant_op

__all__ = ["relu", "abs", "clip", "maximum", "minimum", "where", "safe_sqrt"]


class Relu(Function):
    """y = max(x, 0);  dy/dx = 1 for x > 0, else 0 (relu'(0) = 0, as in PyTorch)."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        if x.dtype.kind == "f":
            # into workspace memory; max with an array of zeros runs NumPy's vector loop,
            # over twice as fast as with the scalar 0 (same values, NaN included)
            y = workspace.empty_like(x)
            y.fill(0)
            np.maximum(x, y, out=y)
        else:
            y = np.maximum(x, 0)
        ctx.save_for_backward(y)  # y > 0 exactly where x > 0: no mask to compute or keep
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        if type(grad_out) is np.ndarray and grad_out.dtype.kind == "f":
            mask = np.greater(y, 0, out=workspace.empty_like(y, bool))
            return np.multiply(grad_out, mask, out=workspace.empty_like(grad_out))
        return grad_out * (y > 0)  # a comparison: a constant mask on both paths


class Abs(Function):
    """y = |x|;  dy/dx = sign(x), with abs'(0) = 0 (the subgradient PyTorch uses)."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.sign(x))
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad_out):
        (sign,) = ctx.saved_tensors
        return grad_out * sign


class Clip(Function):
    """y = min(max(x, lo), hi);  dy/dx = 1 for lo ≤ x ≤ hi (bounds included), else 0."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, lo, hi):
        y = np.clip(x, lo, hi)
        inside = np.ones(y.shape, dtype=bool)  # array bounds may broadcast x
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        ctx.save_for_backward(inside)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (inside,) = ctx.saved_tensors
        return grad_out * inside


class Maximum(Function):
    """y = max(a, b) elementwise;  the gradient goes to the larger input, split 1/2 on ties."""

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        y = np.maximum(a, b)
        ctx.save_for_backward(_share_of_first(a > b, a == b, y.dtype))
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (share_a,) = ctx.saved_tensors
        return grad_out * share_a, grad_out * (1 - share_a)


class Minimum(Function):
    """y = min(a, b) elementwise;  the gradient goes to the smaller input, split 1/2 on ties."""

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        y = np.minimum(a, b)
        ctx.save_for_backward(_share_of_first(a < b, a == b, y.dtype))
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (share_a,) = ctx.saved_tensors
        return grad_out * share_a, grad_out * (1 - share_a)


def _share_of_first(wins: Any, ties: Any, dtype: np.dtype) -> np.ndarray:
    """1 where the first input wins, 1/2 on ties, 0 where it loses."""
    return np.asarray(wins, dtype=dtype) + np.asarray(ties, dtype=dtype) * 0.5


class Where(Function):
    """y = a where cond else b;  ∂y/∂a = cond, ∂y/∂b = not cond (cond is a constant)."""

    batchable = True

    @staticmethod
    def forward(ctx, a, b, *, cond):
        ctx.save_for_backward(cond)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad_out):
        (cond,) = ctx.saved_tensors
        cond = cond.data if isinstance(cond, Tensor) else cond  # a constant on both paths
        grad_a = grad_out * cond if ctx.needs_input_grad[0] else None
        # through constant_op: a compiled second derivative computes ~cond from each call's
        # cond (a raw ~cond would be the trace's, replayed)
        grad_b = grad_out * constant_op(np.invert, cond) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class SafeSqrt(Function):
    """y = √x (x ≥ 0);  dy/dx = 1/(2y) for x > 0, and 0 at x = 0 by convention.

    √ has no derivative at 0; RMSE reaches 0 at a perfect fit, where the chain rule would
    give 0·∞ = NaN. Taking 0 there keeps a perfect fit a fixed point of training.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        zero = y == 0  # a mask: a constant on both paths
        return grad_out * (y > 0) / (2 * y + zero)


# ------------------------------------------------------------------------- wrappers
def relu(x: Any) -> Tensor:
    """Elementwise max(x, 0); relu′(0) = 0."""
    return apply_one(Relu, x)


def abs(x: Any) -> Tensor:  # noqa: A001 (NumPy's name)
    """Elementwise |x|; abs′(0) = 0."""
    return apply_one(Abs, x)


def clip(x: Any, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Elementwise min(max(x, min), max); gradient 1 inside [min, max] (bounds included).

    The bounds are constants (numbers or arrays); no gradient flows to them, and they do
    not change x's float dtype.
    """
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    dtype = x.dtype if isinstance(x, Tensor) else np.asarray(x).dtype
    return Clip.apply(x, lo=_bound(min, dtype), hi=_bound(max, dtype))


def _bound(value: Any, dtype: np.dtype) -> Any:
    """A clip bound as a constant: a Python number, or an array in x's float dtype."""
    if value is None:
        return None
    value = np.asarray(value.data if isinstance(value, Tensor) else value)
    if value.ndim == 0:
        return value.item()
    return value.astype(dtype) if dtype.kind == "f" else value


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max(a, b); on ties each input gets half the gradient."""
    return Maximum.apply(_const(a), _const(b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min(a, b); on ties each input gets half the gradient."""
    return Minimum.apply(_const(a), _const(b))


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """a where ``cond`` is true, else b (broadcasting). ``cond`` gets no gradient."""
    if is_batched(cond):  # inside vmap: a mask per example, aligned by where's rule
        cond = cond if cond.dtype == bool else cond != 0
    else:
        cond = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
        if cond.dtype != bool:  # through constant_op, so that a compiled program converts it
            cond = constant_op(np.not_equal, cond, 0)
    return Where.apply(_const(a), _const(b), cond=cond)


def safe_sqrt(x: Any) -> Tensor:
    """Elementwise √x for x ≥ 0, with safe_sqrt′(0) = 0 where ``sqrt`` has +inf.

    For a root whose argument can reach 0 exactly, such as RMSE at a perfect fit
    (``cr.nn.functional.rmse_loss``), where the chain rule would otherwise give 0·∞ = NaN.
    A list or a Python number becomes a Tensor first (float32, as ``cr.tensor``).
    """
    return apply_one(SafeSqrt, x if isinstance(x, Tensor) else Tensor(x))
