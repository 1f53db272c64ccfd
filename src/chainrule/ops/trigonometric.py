"""Trigonometric and hyperbolic ops: sin, cos, tan, arcsin, arccos, arctan, arctan2, sinh,
cosh.

Each rule is written with this module's own ops on Tensors (NumPy's on ndarrays), so it is
differentiable again under ``create_graph``: sin′ = cos, cos′ = −sin, and so on. The
inverse functions have poles in their derivatives: arcsin′ and arccos′ are ±inf at
|x| = 1 (as in NumPy and PyTorch), and arctan2's gradient at the origin is taken as 0 (as
in PyTorch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function, apply_one
from chainrule.ops.elementwise import _const
from chainrule.tensor import Tensor

__all__ = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh"]


def _sin(a: Any) -> Any:
    return sin(a) if isinstance(a, Tensor) else np.sin(a)


def _cos(a: Any) -> Any:
    return cos(a) if isinstance(a, Tensor) else np.cos(a)


def _sinh(a: Any) -> Any:
    return sinh(a) if isinstance(a, Tensor) else np.sinh(a)


def _cosh(a: Any) -> Any:
    return cosh(a) if isinstance(a, Tensor) else np.cosh(a)


def _sqrt(a: Any) -> Any:
    return a.sqrt() if isinstance(a, Tensor) else np.sqrt(a)


class Sin(Function):
    """y = sin x;  dy/dx = cos x."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * _cos(x)


class Cos(Function):
    """y = cos x;  dy/dx = −sin x."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return -(grad_out * _sin(x))


class Tan(Function):
    """y = tan x;  dy/dx = 1 + y² = 1/cos² x (poles at x = π/2 + kπ)."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        y = np.tan(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (1 + y * y)


class Arcsin(Function):
    """y = arcsin x (|x| ≤ 1);  dy/dx = 1/√(1 − x²), for |x| < 1.

    At x = ±1 the derivative is +inf (as in NumPy's limit and in PyTorch); outside
    [−1, 1] the forward is NaN, as NumPy's.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.arcsin(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):  # ±1: +inf by convention, not a warning
            return grad_out / _sqrt(1 - x * x)


class Arccos(Function):
    """y = arccos x (|x| ≤ 1);  dy/dx = −1/√(1 − x²), for |x| < 1.

    At x = ±1 the derivative is −inf (as in PyTorch); outside [−1, 1] the forward is NaN.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.arccos(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):  # ±1: −inf by convention, not a warning
            return -grad_out / _sqrt(1 - x * x)


class Arctan(Function):
    """y = arctan x;  dy/dx = 1/(1 + x²)."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.arctan(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (1 + x * x)


class Arctan2(Function):
    """θ = arctan2(y, x), the angle of the point (x, y) in (−π, π];
    ∂θ/∂y = x/(x² + y²), ∂θ/∂x = −y/(x² + y²).

    Both partials are taken as 0 at the origin, where θ jumps (as in PyTorch); θ also
    jumps across the negative x axis (y = 0, x < 0), where the rule gives the one-sided
    derivative.
    """

    batchable = True

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return np.arctan2(y, x)

    @staticmethod
    def backward(ctx, grad_out):
        y, x = ctx.saved_tensors
        r2 = x * x + y * y
        origin = (r2 == 0) if isinstance(r2, np.ndarray) else (r2.data == 0)  # a constant
        scaled = grad_out / (r2 + origin)  # 1 at the origin, where x = y = 0 give 0
        grad_y = scaled * x if ctx.needs_input_grad[0] else None
        grad_x = -(scaled * y) if ctx.needs_input_grad[1] else None
        return grad_y, grad_x


class Sinh(Function):
    """y = sinh x;  dy/dx = cosh x."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sinh(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * _cosh(x)


class Cosh(Function):
    """y = cosh x;  dy/dx = sinh x."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cosh(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * _sinh(x)


# ------------------------------------------------------------------------- wrappers
def sin(x: Any) -> Tensor:
    """Elementwise sin x (radians); sin′ = cos."""
    return apply_one(Sin, x)


def cos(x: Any) -> Tensor:
    """Elementwise cos x (radians); cos′ = −sin."""
    return apply_one(Cos, x)


def tan(x: Any) -> Tensor:
    """Elementwise tan x (radians); tan′ = 1 + tan² = 1/cos²."""
    return apply_one(Tan, x)


def arcsin(x: Any) -> Tensor:
    """Elementwise arcsin x in [−π/2, π/2]; arcsin′ = 1/√(1 − x²), +inf at x = ±1."""
    return apply_one(Arcsin, x)


def arccos(x: Any) -> Tensor:
    """Elementwise arccos x in [0, π]; arccos′ = −1/√(1 − x²), −inf at x = ±1."""
    return apply_one(Arccos, x)


def arctan(x: Any) -> Tensor:
    """Elementwise arctan x in (−π/2, π/2); arctan′ = 1/(1 + x²)."""
    return apply_one(Arctan, x)


def arctan2(y: Any, x: Any) -> Tensor:
    """The angle of (x, y), elementwise and broadcasting, as ``np.arctan2(y, x)``.

    ∂/∂y = x/(x² + y²), ∂/∂x = −y/(x² + y²); both 0 at the origin (PyTorch's convention).
    """
    return Arctan2.apply(_const(y), _const(x))


def sinh(x: Any) -> Tensor:
    """Elementwise sinh x; sinh′ = cosh."""
    return apply_one(Sinh, x)


def cosh(x: Any) -> Tensor:
    """Elementwise cosh x; cosh′ = sinh."""
    return apply_one(Cosh, x)
