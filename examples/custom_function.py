"""A custom differentiable function, checked with gradcheck, and one that is not.

The lecture's caution: a custom function or layer must be differentiable, or backprop
cannot update the weights correctly. ``cr.gradcheck`` compares the backward you wrote with
finite differences, and scans for jumps that make a function untrainable.
Run: ``python examples/custom_function.py``.
"""

import numpy as np

import chainrule as cr


class Swish(cr.Function):
    """y = x·σ(x);  dy/dx = σ(x) + x·σ(x)(1 − σ(x))."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + np.exp(-x))

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        s = cr.sigmoid(x) if isinstance(x, cr.Tensor) else 1 / (1 + np.exp(-x))
        return grad_out * (s + x * s * (1 - s))


class Round(cr.Function):
    """y = round(x): flat almost everywhere, so its gradient is 0 and nothing learns."""

    @staticmethod
    def forward(ctx, x):
        return np.round(x)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * 0


x = np.random.default_rng(0).standard_normal((3, 4))
print("Swish passes gradcheck:", cr.gradcheck(Swish.apply, x))
print("and gradgradcheck:", cr.gradgradcheck(Swish.apply, x))
try:
    cr.gradcheck(Round.apply, x)
except cr.GradcheckError as error:
    print("Round is caught:", error)
else:
    raise SystemExit("gradcheck should have rejected Round")
