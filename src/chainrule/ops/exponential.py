"""Logarithms and exponentials beyond ``exp`` and ``log``: log1p, expm1, log2, log10.

log1p and expm1 keep their accuracy for tiny x, where 1 + x rounds to 1 (log1p(1e-20) is
1e-20, while log(1 + 1e-20) is 0). The rules are written with operators and the saved
input or output, so they are differentiable again under ``create_graph``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.function import Function, apply_one
from chainrule.tensor import Tensor

__all__ = ["log1p", "expm1", "log2", "log10"]

_LN2 = math.log(2.0)  # Python floats: they do not promote float32
_LN10 = math.log(10.0)


class Log1p(Function):
    """y = ln(1 + x) (x > −1);  dy/dx = 1/(1 + x)."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log1p(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (1 + x)


class Expm1(Function):
    """y = eˣ − 1;  dy/dx = eˣ = y + 1."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        y = np.expm1(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (y + 1)


class Log2(Function):
    """y = log₂ x (x > 0);  dy/dx = 1/(x ln 2)."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log2(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (x * _LN2)


class Log10(Function):
    """y = log₁₀ x (x > 0);  dy/dx = 1/(x ln 10)."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log10(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (x * _LN10)


# ------------------------------------------------------------------------- wrappers
def log1p(x: Any) -> Tensor:
    """Elementwise ln(1 + x), accurate for tiny |x|; log1p′ = 1/(1 + x) (x > −1)."""
    return apply_one(Log1p, x)


def expm1(x: Any) -> Tensor:
    """Elementwise eˣ − 1, accurate for tiny |x|; expm1′ = eˣ."""
    return apply_one(Expm1, x)


def log2(x: Any) -> Tensor:
    """Elementwise base-2 logarithm; log2′ = 1/(x ln 2) (x > 0)."""
    return apply_one(Log2, x)


def log10(x: Any) -> Tensor:
    """Elementwise base-10 logarithm; log10′ = 1/(x ln 10) (x > 0)."""
    return apply_one(Log10, x)
