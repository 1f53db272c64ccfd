"""The standard normal distribution's CDF Φ as an op: the gate of the exact GELU.

Φ(x) = P(Z ≤ x) for Z ~ N(0, 1) = ½(1 + erf(x/√2)); its derivative is the density
φ(x) = e^(−x²/2)/√(2π). NumPy has no erf, so the forward is SciPy's ``ndtr`` (accurate in
both tails: Φ(−40) is 3.6e−350 → 0 in float64, never a cancellation 1 − 1); the backward is
written with ``rules.exp`` and products, so it is differentiable again (φ′(x) = −x·φ(x)).

SciPy is imported on the first call, not with ``chainrule``: ``import scipy.special``
takes about 0.1 s, more than the rest of the core's import.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.function import Function, apply_one
from chainrule.ops import rules
from chainrule.tensor import Tensor

__all__ = ["normal_cdf"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class NormalCdf(Function):
    """y = Φ(x) = ½(1 + erf(x/√2));  dy/dx = φ(x) = e^(−x²/2)/√(2π)."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        from scipy.special import ndtr  # lazy: ~0.1 s to import (see the module docstring)

        ctx.save_for_backward(x)
        return np.asarray(ndtr(x))

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        # Python-float constants, so a float32 x keeps a float32 gradient
        return grad_out * (rules.exp(x * x * -0.5) * _INV_SQRT_2PI)


def normal_cdf(x: Any) -> Tensor:
    """Elementwise Φ(x) = ½(1 + erf(x/√2)), the standard normal CDF; Φ′ = φ, the density.

    Finite and accurate for any x (Φ(−40) underflows to 0, Φ(40) is 1). ``F.gelu`` is
    x·Φ(x). A list or a Python number becomes a Tensor first (float32, as ``cr.tensor``).
    """
    return apply_one(NormalCdf, x if isinstance(x, Tensor) else Tensor(x))
