"""Vector and matrix norms (NumPy's ``linalg.norm``), composed of recorded ops.

Every norm is made of ``abs``, ``sum``, ``max``/``min``, ``safe_sqrt``, ``where`` and the
singular values of ``svd``, so it records no node of its own. The subgradient convention at 0:
the gradient of a norm at x = 0 is 0, not NaN (``safe_sqrt′(0) = 0``, ``abs′(0) = 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.batched import as_batched, values_of
from chainrule.ops.decompositions import svd
from chainrule.ops.elementwise import mul
from chainrule.ops.piecewise import abs, safe_sqrt, where
from chainrule.ops.reduction import max, min, sum
from chainrule.ops.shape import reshape, transpose
from chainrule.tensor import Tensor, constant_op

__all__ = ["norm"]

_VECTOR_ORDS = (None, 1, 2, np.inf, -np.inf)
_MATRIX_ORDS = (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)


def _euclid(x: Tensor, axes: Any, keepdims: bool) -> Tensor:
    # √Σx²: squares underflow below |x| ≈ 1e-154 (float64), as in NumPy's norm
    return safe_sqrt(sum(mul(x, x), axis=axes, keepdims=keepdims))


def _vector(x: Tensor, ord: Any, axis: int, keepdims: bool) -> Tensor:
    if ord is None or ord == 2:
        return _euclid(x, axis, keepdims)
    if ord == 1:
        return sum(abs(x), axis=axis, keepdims=keepdims)
    if ord == np.inf:
        return max(abs(x), axis=axis, keepdims=keepdims)
    return min(abs(x), axis=axis, keepdims=keepdims)


def _matrix(x: Tensor, ord: Any, rows: int, cols: int, keepdims: bool) -> Tensor:
    if ord is None or ord == "fro":
        return _euclid(x, (rows, cols), keepdims)
    if ord in ("nuc", 2, -2):
        rest = [i for i in range(x.ndim) if i not in (rows, cols)]
        stack = transpose(x, (*rest, rows, cols))
        _, s, _ = svd(stack)
        out = sum(s, axis=-1) if ord == "nuc" else (max if ord == 2 else min)(s, axis=-1)
        # at a zero matrix svd's rule gives the subgradient U Vᵀ; take the Frobenius
        # norm's there instead (the same value, 0, and gradient 0)
        data, _, levels = values_of(stack)  # inside vmap: the whole batch
        nonzero = as_batched(constant_op(np.any, data, axis=(-2, -1)), levels)
        out = where(nonzero, out, _euclid(stack, (-2, -1), False))
    else:  # 1, −1: over columns of Σ_rows |x|; ∞, −∞: over rows of Σ_columns |x|
        inner, outer = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = sum(abs(x), axis=inner, keepdims=True)
        out = (max if ord > 0 else min)(sums, axis=outer, keepdims=True)
        if not keepdims:
            return reshape(out, [d for i, d in enumerate(x.shape) if i not in (rows, cols)])
        return out
    if keepdims:
        return reshape(out, [1 if i in (rows, cols) else d for i, d in enumerate(x.shape)])
    return out


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Tensor:
    """‖x‖ as ``np.linalg.norm``: the 2-norm ‖x‖₂ = √Σx² of all elements by default.

    Vectors (``axis`` an int, or x 1-D): ord None or 2: √Σx², gradient x/‖x‖; 1: Σ|x|,
    gradient sign(x); inf / −inf: max / min |x|, the gradient sign(x) shared evenly among
    ties. Matrices (``axis`` a pair, or x 2-D with ``ord`` given): None or "fro": the
    Frobenius norm √Σx²; "nuc": Σσᵢ; 2 / −2: σ_max / σ_min, gradient U diag(s̄) Vᵀ through
    ``svd``; 1 / −1: max / min column sum of |x|; inf / −inf: max / min row sum of |x|.

    Subgradient convention: at x = 0 every norm's gradient is 0, not NaN (the √ and |·|
    here have derivative 0 at 0). The 2-norm squares its input, so for |x| below about
    1e-154 (float64) the value and gradient underflow to 0, as NumPy's value does.

    Args:
        x: the input.
        ord: the order (see above).
        axis: None (all elements for ord None; otherwise x must be 1-D or 2-D), an int (a
            vector norm along it) or a pair (a matrix norm over those two axes).
        keepdims: keep the reduced axes with length 1.

    Returns:
        The norms, x's shape without ``axis`` (with length-1 axes for ``keepdims``).
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    if axis is None:
        if ord is None:
            return _euclid(x, None, keepdims)
        if x.ndim not in (1, 2):
            raise ValueError(f"norm: ord={ord!r} needs axis, or a 1-D or 2-D x; got {x.shape}")
        axis = tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len(axes) not in (1, 2) or not all(-x.ndim <= a < x.ndim for a in axes):
        raise ValueError(f"norm: axis {axis} does not fit x of shape {x.shape}")
    axes = tuple(int(a) % x.ndim for a in axes)
    if len(axes) == 1:
        if ord not in _VECTOR_ORDS:
            raise ValueError(f"norm: vector ord must be one of None, 1, 2, inf, -inf; got {ord!r}")
        return _vector(x, ord, axes[0], keepdims)
    if axes[0] == axes[1]:
        raise ValueError(f"norm: the two axes of a matrix norm are the same: {axis}")
    if ord not in _MATRIX_ORDS:
        raise ValueError(
            "norm: matrix ord must be one of None, 'fro', 'nuc', 1, -1, 2, -2, inf, -inf; "
            f"got {ord!r}"
        )
    return _matrix(x, ord, axes[0], axes[1], keepdims)
