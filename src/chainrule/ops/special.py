"""The error function erf, the special function behind the exact GELU and the normal CDF.

NumPy has no erf; ``scipy.special.erf`` computes it (float32 in, float32 out). SciPy is a
dependency, imported on the first call: ``scipy.special`` takes about 90 ms to load, more
than ``import chainrule`` should pay for an op most programs never call.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.function import Function, apply_one
from chainrule.ops import rules
from chainrule.tensor import Tensor

__all__ = ["erf"]

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)  # a Python float: float32 stays float32


_scipy_erf: Any = None  # scipy.special.erf, once the first call has imported it


def _erf_array(x: np.ndarray) -> np.ndarray:
    global _scipy_erf
    if _scipy_erf is None:
        from scipy.special import erf as loaded  # lazy: see the module docstring

        _scipy_erf = loaded
    return np.asarray(_scipy_erf(x))


class Erf(Function):
    """y = erf x = (2/√π) ∫₀ˣ e^(−t²) dt;  dy/dx = (2/√π) e^(−x²), for every real x."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf_array(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * (_TWO_OVER_SQRT_PI * rules.exp(-(x * x)))


def erf(x: Any) -> Tensor:
    """Elementwise error function, erf x = (2/√π) ∫₀ˣ e^(−t²) dt; erf′ = (2/√π) e^(−x²)."""
    return apply_one(Erf, x)
