"""Toy ``cr.Function`` subclasses: small custom differentiable functions that the tests use
as fixtures, each with its math in one line, so that a test file shows what it checks
rather than a page of backward rules, and one toy is written once.

Right ones (``Cube``, ``Swish``, ``Hadamard``, ...), ones that are right only to first
order, one without a backward, and deliberately wrong ones that ``cr.gradcheck`` and
``cr.gradgradcheck`` must catch. The tests assert on the class names (in ``grad_fn.name``
and in error messages), so a toy keeps its name wherever it is used. A Function that is
the subject of one test, defined inline to show a particular failure, stays in its test.
"""

import numpy as np

import chainrule as cr
from chainrule.ops import rules


# ------------------------------------------------------------------ right at every order
class Cube(cr.Function):
    """y = x³;  dy/dx = 3x² (the README's example, verbatim)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * grad_out


class Swish(cr.Function):
    """y = x·σ(x);  dy/dx = σ(x) + y·(1 − σ(x)), with chainrule's ops: differentiable twice."""

    @staticmethod
    def forward(ctx, x):
        y = x / (1.0 + np.exp(-x))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        s = 1.0 / (1.0 + rules.exp(-x))
        return grad_out * (s + y * (1.0 - s))


class Hadamard(cr.Function):
    """y = a ∘ b (broadcasting);  ∂y/∂a = b, ∂y/∂b = a (the engine sums to the shapes)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        return grad_out * b, grad_out * a


class Reciprocal(cr.Function):
    """y = 1/x;  dy/dx = −y² (from the saved output)."""

    @staticmethod
    def forward(ctx, x):
        y = 1.0 / x
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return -grad_out * y * y


class ExpSavingOutput(cr.Function):
    """y = eˣ;  dy/dx = y, from the saved output: differentiable twice through it."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * y


class ScaledPower(cr.Function):
    """y = k·x^p;  dy/dx = k·p·x^(p−1) (p a positional int, k a keyword, negate a flag)."""

    @staticmethod
    def forward(ctx, x, p, *, k=1.0, negate=False):
        ctx.save_for_backward(x)
        ctx.p, ctx.k = p, (-k if negate else k)
        return ctx.k * x**p

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * (ctx.k * ctx.p) * x ** (ctx.p - 1), None


class Affine(cr.Function):
    """y = a·x + b;  ∂y/∂a = x, ∂y/∂x = a, ∂y/∂b = 1, each only where needs_input_grad says;
    ``Affine.seen`` records what needs_input_grad was in forward and in backward (clear it
    before use)."""

    seen: list = []

    @staticmethod
    def forward(ctx, a, x, b):
        Affine.seen.append(("forward", ctx.needs_input_grad))
        ctx.save_for_backward(a, x)
        return a * x + b

    @staticmethod
    def backward(ctx, grad_out):
        Affine.seen.append(("backward", ctx.needs_input_grad))
        a, x = ctx.saved_tensors
        grad_a = grad_out * x if ctx.needs_input_grad[0] else None
        grad_x = grad_out * a if ctx.needs_input_grad[1] else None
        grad_b = grad_out if ctx.needs_input_grad[2] else None
        return grad_a, grad_x, grad_b


# ------------------------------------------------------------------ right to first order only
class SinRawNumpy(cr.Function):
    """y = sin x;  dy/dx = cos x, with a raw NumPy call: once differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * np.cos(x)


class OuterRawNumpy(cr.Function):
    """y = x·(Σ x);  dy/dx·g = g·Σx + (g·x), returned as a raw ndarray: once differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x.sum()

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        x, grad_out = np.asarray(x), np.asarray(grad_out)
        return grad_out * x.sum() + np.dot(grad_out, x)


class CubeConstantAttribute(cr.Function):
    """y = x³;  dy/dx = 3x² from x² kept as a plain attribute: a constant to the graph."""

    @staticmethod
    def forward(ctx, x):
        ctx.x2 = x * x
        return x**3

    @staticmethod
    def backward(ctx, grad_out):
        return 3 * ctx.x2 * grad_out


class CubeSavedIntermediate(cr.Function):
    """y = x³;  dy/dx = 3x² from a saved x² (neither input nor output): back as a constant."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x * x)
        return x**3

    @staticmethod
    def backward(ctx, grad_out):
        (x2,) = ctx.saved_tensors
        return 3 * x2 * grad_out


class CubeThroughData(cr.Function):
    """y = x³;  dy/dx = 3x² computed from ``.data``, which leaves the graph."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        raw = x.data if isinstance(x, cr.Tensor) else x
        return 3 * raw**2 * grad_out


# ------------------------------------------------------------------ no backward
class NoBackward(cr.Function):
    """y = ⌊x⌋ with no backward at all: not differentiable."""

    @staticmethod
    def forward(ctx, x):
        return np.floor(x)


# ------------------------------------------------------------------ deliberately wrong
class CubeWrongConstant(cr.Function):
    """y = x³ with the classic slip dy/dx = 2x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return 2 * x * grad_out


class CubeForgetsGrad(cr.Function):
    """y = x³ whose backward forgets to multiply by the incoming gradient: returns 3x²."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return 3 * x**2


class Round(cr.Function):
    """y = round(x), with the 'gradient' 0 that makes training through it useless."""

    @staticmethod
    def forward(ctx, x):
        return np.round(x)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * 0.0


class Step(cr.Function):
    """y = (x > 0);  'dy/dx' = 0, right almost everywhere, but y jumps at 0."""

    @staticmethod
    def forward(ctx, x):
        return (x > 0).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * 0.0


class HadamardReducesWrongAxis(cr.Function):
    """y = a ∘ b with b broadcast along the rows of a, whose backward reduces b's gradient
    over the last axis instead of the leading one: right when b is not broadcast, and of the
    right shape, but wrong, when a is square and b is a row."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        grad_b = grad_out * a
        if b.ndim < grad_b.ndim:
            grad_b = grad_b.sum(axis=-1)  # should be axis=0
        return grad_out * b, grad_b


class HadamardAveragesBroadcast(cr.Function):
    """y = a ∘ b whose backward averages instead of summing over the broadcast axes."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        grad_a, grad_b = grad_out * b, grad_out * a
        if grad_b.shape != b.shape:
            lead = grad_b.ndim - b.ndim
            axes = tuple(range(lead)) + tuple(
                lead + i for i, n in enumerate(b.shape) if n == 1 and grad_b.shape[lead + i] > 1
            )
            grad_b = grad_b.mean(axis=axes, keepdims=True).reshape(b.shape)
        return grad_a, grad_b


class HadamardExtraAxis(cr.Function):
    """y = a ∘ b whose backward broadcasts b's gradient over an axis that no array had."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        grad_b = grad_out * a
        return grad_out * b, rules.broadcast_to(grad_b, (2, *grad_b.shape))
