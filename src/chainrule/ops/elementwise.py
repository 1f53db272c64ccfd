"""Elementwise ops: arithmetic, powers, exp/log/sqrt, tanh, sigmoid and softplus, dtype casts.

The ops with kinks (relu, abs, clip, maximum, minimum, where) are in ``piecewise.py``.

All binary ops broadcast as NumPy does; the engine sums gradients back to each input's
shape, so the rules below are written as if shapes were equal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function, apply_one
from chainrule.ops import rules
from chainrule.ops.kernels import sigmoid_array
from chainrule.tensor import Tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "power", "exp", "log", "sqrt", "tanh", "sigmoid",
    "softplus", "astype",
]  # fmt: skip


class Add(Function):
    """y = a + b;  ∂y/∂a = 1, ∂y/∂b = 1."""

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, grad_out


class Sub(Function):
    """y = a − b;  ∂y/∂a = 1, ∂y/∂b = −1."""

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad_out):
        grad_b = -grad_out if ctx.needs_input_grad[1] else None
        return grad_out, grad_b


class Mul(Function):
    """y = a ∘ b (Hadamard);  ∂y/∂a = b, ∂y/∂b = a."""

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad
        # keep only what a gradient needs: overwriting an operand whose value no gradient
        # uses (x * c with c constant) does not refuse the backward, as in PyTorch
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        grad_a = grad_out * b if ctx.needs_input_grad[0] else None
        grad_b = grad_out * a if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    """y = a / b;  ∂y/∂a = 1/b, ∂y/∂b = −a/b²."""

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        # the inputs, not y (as PyTorch): y = a / b; y += 1 can still backpropagate
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return a / b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        grad_a = grad_out / b
        grad_b = -grad_a * a / b if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    """y = −x;  dy/dx = −1."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad_out):
        return -grad_out


class PowConst(Function):
    """y = x^p for a constant p;  dy/dx = p·x^(p−1)."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x**p

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return grad_out * 0  # x⁰ = 1 is constant: 0, not 0·x⁻¹ = NaN at x = 0
        if p == 2:
            return grad_out * (2 * x)
        if p == 1:
            return grad_out
        return grad_out * (p * x ** (p - 1))


class Pow(Function):
    """y = a^b;  ∂y/∂a = b·a^(b−1), ∂y/∂b = y·ln a (defined for a > 0)."""

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        a, b, y = ctx.saved_tensors
        grad_a = grad_out * b * a ** (b - 1) if ctx.needs_input_grad[0] else None
        grad_b = grad_out * y * rules.log(a) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Exp(Function):
    """y = eˣ;  dy/dx = y."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * y


class Log(Function):
    """y = ln x;  dy/dx = 1/x."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / x


class Sqrt(Function):
    """y = √x;  dy/dx = 1/(2y). At x = 0 the derivative is +inf, as in NumPy and PyTorch."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        with np.errstate(divide="ignore"):  # sqrt'(0) = +inf by convention, not a warning
            return grad_out / (2 * y)


class Tanh(Function):
    """y = tanh x;  dy/dx = 1 − y²."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (1 - y * y)


class Sigmoid(Function):
    """y = σ(x) = 1/(1 + e⁻ˣ);  dy/dx = y(1 − y). A primitive so that |x| = 1e4 is safe."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        y = sigmoid_array(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (y * (1 - y))


class Softplus(Function):
    """y = log(1 + eˣ) = max(x, 0) + log(1 + e^(−|x|));  dy/dx = σ(x).

    A primitive for stability: the second form never overflows (e^(−|x|) ≤ 1), so
    |x| = 1e4 is safe, and a composition through |x| would have the wrong derivative at 0.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * rules.sigmoid(x)


class Astype(Function):
    """y = x converted to another float dtype;  dy/dx = 1 (the engine casts grads back)."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out


# ------------------------------------------------------------------------- wrappers
def _const(value: Any) -> Any:
    """NumPy scalars become Python scalars so they do not promote float32 to float64."""
    return value.item() if isinstance(value, np.generic) else value


def add(a: Any, b: Any) -> Tensor:
    """a + b, broadcasting."""
    return Add.apply(_const(a), _const(b))


def sub(a: Any, b: Any) -> Tensor:
    """a − b, broadcasting."""
    return Sub.apply(_const(a), _const(b))


def mul(a: Any, b: Any) -> Tensor:
    """a ∘ b (elementwise, the lecture's Hadamard product), broadcasting."""
    return Mul.apply(_const(a), _const(b))


def div(a: Any, b: Any) -> Tensor:
    """a / b, broadcasting."""
    return Div.apply(_const(a), _const(b))


def neg(x: Any) -> Tensor:
    """−x."""
    return apply_one(Neg, x)


def power(a: Any, b: Any) -> Tensor:
    """a ** b. A constant exponent (a Python or NumPy number) uses the cheaper rule."""
    if isinstance(b, (int, float, np.generic)) and not isinstance(b, bool):
        return PowConst.apply(a, p=_const(b))
    return Pow.apply(_const(a), b)


def exp(x: Any) -> Tensor:
    """Elementwise eˣ."""
    return apply_one(Exp, x)


def log(x: Any) -> Tensor:
    """Elementwise natural logarithm."""
    return apply_one(Log, x)


def sqrt(x: Any) -> Tensor:
    """Elementwise √x; its derivative at 0 is +inf."""
    return apply_one(Sqrt, x)


def tanh(x: Any) -> Tensor:
    """Elementwise hyperbolic tangent; tanh′ = 1 − tanh²."""
    return apply_one(Tanh, x)


def sigmoid(x: Any) -> Tensor:
    """Elementwise logistic function σ(x) = 1/(1 + e⁻ˣ), stable for any |x|."""
    return apply_one(Sigmoid, x)


def softplus(x: Any) -> Tensor:
    """Elementwise log(1 + eˣ), stable for any |x|; softplus′ = σ.

    A list or a Python number becomes a Tensor first (float32, as ``cr.tensor``).
    """
    return apply_one(Softplus, x if isinstance(x, Tensor) else Tensor(x))


def astype(x: Any, dtype: Any) -> Tensor:
    """x converted to ``dtype``; differentiable between float dtypes."""
    return Astype.apply(x, dtype=np.dtype(dtype))
