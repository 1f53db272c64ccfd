"""Step functions: sign, floor, ceil, round. Their derivative is 0 almost everywhere.

Convention: the gradient is 0 everywhere, the jumps included (as in PyTorch), so they
never send NaN or inf backwards. But a 0 gradient cannot train anything: the lecture's
caution that a custom function must be differentiable applies, and ``cr.gradcheck``
flags each of them through its scan for jumps::

    x = cr.tensor([0.3, 1.7, -2.2], dtype="float64")
    cr.gradcheck(cr.floor, x)  # raises GradcheckError: "... the function jumps by 1 ..."

Finite differences alone would agree with the 0 gradient (the function is flat between
its jumps); it is the scan that finds them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function, apply_one
from chainrule.tensor import Tensor

__all__ = ["sign", "floor", "ceil", "round"]


def _zero(grad_out: Any) -> Any:
    """A gradient of 0 shaped like ``grad_out`` (its batch axes included)."""
    if isinstance(grad_out, np.ndarray):
        return np.zeros_like(grad_out)
    return grad_out * 0  # a Tensor: recorded, so a second derivative (0) exists too


class Sign(Function):
    """y = sign x (−1, 0 or 1);  dy/dx = 0, taken as 0 at the jump x = 0 as well."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        return np.sign(x)

    @staticmethod
    def backward(ctx, grad_out):
        return _zero(grad_out)


class Floor(Function):
    """y = ⌊x⌋;  dy/dx = 0, taken as 0 at the jumps (the integers) as well."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        return np.floor(x)

    @staticmethod
    def backward(ctx, grad_out):
        return _zero(grad_out)


class Ceil(Function):
    """y = ⌈x⌉;  dy/dx = 0, taken as 0 at the jumps (the integers) as well."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        return np.ceil(x)

    @staticmethod
    def backward(ctx, grad_out):
        return _zero(grad_out)


class Round(Function):
    """y = x rounded to ``decimals`` places, halves to even (NumPy's rule);  dy/dx = 0,
    taken as 0 at the jumps (the halfway points) as well."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, decimals):
        return np.round(x, decimals)

    @staticmethod
    def backward(ctx, grad_out):
        return _zero(grad_out)


# ------------------------------------------------------------------------- wrappers
def sign(x: Any) -> Tensor:
    """Elementwise sign (−1, 0, 1); gradient 0 everywhere, x = 0 included."""
    return apply_one(Sign, x)


def floor(x: Any) -> Tensor:
    """Elementwise ⌊x⌋; gradient 0 everywhere, the integers included."""
    return apply_one(Floor, x)


def ceil(x: Any) -> Tensor:
    """Elementwise ⌈x⌉; gradient 0 everywhere, the integers included."""
    return apply_one(Ceil, x)


def round(x: Any, decimals: int = 0) -> Tensor:  # noqa: A001 (NumPy's name)
    """Elementwise rounding to ``decimals`` places, halves to even as ``np.round``
    (0.5 → 0, 1.5 → 2, 2.5 → 2); gradient 0 everywhere, the halfway points included."""
    return Round.apply(x, decimals=int(decimals))
