"""Two powers with rules of their own: square (x²) and reciprocal (1/x).

``x ** 2`` and ``1 / x`` give the same values through ``power`` and ``div``; these are
NumPy's (and PyTorch's) names, one node each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function, apply_one
from chainrule.tensor import Tensor

__all__ = ["square", "reciprocal"]


class Square(Function):
    """y = x²;  dy/dx = 2x."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.square(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * (2 * x)


class Reciprocal(Function):
    """y = 1/x;  dy/dx = −1/x² = −y².

    At x = 0 the forward gives inf (signed like the zero, as NumPy's ``1 / x``, without a
    warning) and the derivative −inf.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x):
        with np.errstate(divide="ignore"):  # 1/0 = inf, as NumPy's value
            y = np.reciprocal(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return -(grad_out * (y * y))


# ------------------------------------------------------------------------- wrappers
def square(x: Any) -> Tensor:
    """Elementwise x²; square′ = 2x."""
    return apply_one(Square, x)


def reciprocal(x: Any) -> Tensor:
    """Elementwise 1/x (inf at 0, as NumPy); reciprocal′ = −1/x²."""
    return apply_one(Reciprocal, x)
