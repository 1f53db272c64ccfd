"""Inverting a square matrix and what goes with it: inv, det, slogdet, solve.

All are batched over leading axes as ``np.linalg``: a (..., n, n) stack of matrices. The
rules are written with ``@``, ``swapaxes`` and recorded calls of these same ops, so they run
on Tensors under ``create_graph`` (second derivatives) and pass a batch of cotangents
(extra leading axes of G) straight through.

Conditioning: each rule multiplies by A⁻¹ (or solves with Aᵀ), so its relative error, like
the forward's, grows like cond(A)·eps. A matrix singular to working precision (LU meets an
exact zero pivot, or the result overflows) raises ``LinAlgError`` naming the op and the
shape, instead of returning inf or NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.batched import as_batched, values_of
from chainrule.function import Function
from chainrule.tensor import Tensor, constant_op

__all__ = ["LinAlgError", "inv", "det", "slogdet", "solve"]


class LinAlgError(np.linalg.LinAlgError):
    """A linear-algebra op met an input where it (or its derivative) is not defined: a
    singular matrix, a matrix that is not positive definite, repeated eigen- or singular
    values. A ``ValueError`` (as NumPy's ``LinAlgError``, which it subclasses)."""


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else x


def inv_array(a: np.ndarray, op: str) -> np.ndarray:
    """A⁻¹ of an ndarray stack, raising ``LinAlgError`` where A is singular."""
    try:
        y = np.linalg.inv(a)
    except np.linalg.LinAlgError as error:
        raise LinAlgError(f"{op}: the matrix of shape {a.shape} is singular ({error})") from None
    if not np.isfinite(y).all() and np.isfinite(a).all():
        raise LinAlgError(f"{op}: the matrix of shape {a.shape} is singular to working precision")
    return y


def inv_any(a: Any, op: str = "inv") -> Any:
    """A⁻¹ for an ndarray or a Tensor (then recorded as ``Inv``, so differentiable again);
    ``op`` names the caller in the error a singular matrix raises."""
    return Inv.apply(a) if isinstance(a, Tensor) else inv_array(a, op)


def solve_any(a: Any, b: Any) -> Any:
    """A⁻¹B (B a stack of matrices) for ndarrays or Tensors (then recorded as ``Solve``)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return Solve.apply(a, b)
    return _solve_array(a, b)


def _solve_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        x = np.linalg.solve(a, b)
    except np.linalg.LinAlgError as error:
        raise LinAlgError(
            f"solve: the matrix a of shape {a.shape} is singular ({error}); b: {b.shape}"
        ) from None
    if not np.isfinite(x).all() and np.isfinite(a).all() and np.isfinite(b).all():
        raise LinAlgError(
            f"solve: the matrix a of shape {a.shape} is singular to working precision"
        )
    return x


class Inv(Function):
    """Y = A⁻¹;  dY = −A⁻¹ dA A⁻¹, so ∂L/∂A = −A⁻ᵀ G A⁻ᵀ (from the saved output Y)."""

    batchable = True

    @staticmethod
    def forward(ctx, a):
        y = inv_array(a, "inv")
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        y_t = y.swapaxes(-1, -2)
        return -(y_t @ grad_out @ y_t)


class Det(Function):
    """d = det A;  ∂d/∂A = det(A) A⁻ᵀ (the cofactor matrix), so ∂L/∂A = G d A⁻ᵀ."""

    batchable = True

    @staticmethod
    def forward(ctx, a):
        d = np.asarray(np.linalg.det(a))
        ctx.save_for_backward(a, d)
        return d

    @staticmethod
    def backward(ctx, grad_out):
        a, d = ctx.saved_tensors
        if (_array(d) == 0).any():
            # the derivative there is the adjugate, which d·A⁻ᵀ cannot give
            raise LinAlgError(
                f"det: the gradient at a singular matrix (shape {a.shape}, det 0) is the "
                "adjugate, which chainrule does not compute"
            )
        a_inv_t = inv_any(a, "det").swapaxes(-1, -2)
        return (grad_out * d)[..., None, None] * a_inv_t


class LogAbsDet(Function):
    """y = log|det A|;  ∂y/∂A = A⁻ᵀ, so ∂L/∂A = G A⁻ᵀ."""

    batchable = True

    @staticmethod
    def forward(ctx, a):
        _, logabsdet = np.linalg.slogdet(a)
        ctx.save_for_backward(a)
        return np.asarray(logabsdet)

    @staticmethod
    def backward(ctx, grad_out):
        (a,) = ctx.saved_tensors
        return grad_out[..., None, None] * inv_any(a, "slogdet").swapaxes(-1, -2)


class Solve(Function):
    """X = A⁻¹B;  ∂L/∂B = A⁻ᵀG (one more solve), ∂L/∂A = −(∂L/∂B) Xᵀ.

    B is a stack of matrices (..., n, k), or a single vector (n,) as NumPy 2 reads it.
    """

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        x = _solve_array(a, b)
        ctx.vector = b.ndim == 1
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx, grad_out):
        a, x = ctx.saved_tensors
        if ctx.vector:  # a column: a batch of cotangents stays in front
            grad_out = grad_out[..., None]
            x = x[..., None]
        grad_b = solve_any(a.swapaxes(-1, -2), grad_out)
        grad_a = -(grad_b @ x.swapaxes(-1, -2)) if ctx.needs_input_grad[0] else None
        if ctx.vector:
            grad_b = grad_b[..., 0]
        return grad_a, grad_b if ctx.needs_input_grad[1] else None


# ------------------------------------------------------------------------- wrappers
def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def check_square(a: Tensor, op: str, name: str = "a") -> None:
    """Raise a ValueError naming ``op`` unless ``a`` is a (..., n, n) stack of matrices."""
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(
            f"{op}: {name} must be a square matrix or a stack of them (..., n, n), "
            f"got shape {a.shape}"
        )


def inv(a: Any) -> Tensor:
    """A⁻¹, batched over leading axes;  ∂L/∂A = −A⁻ᵀ G A⁻ᵀ.

    Args:
        a: (..., n, n), invertible.

    Returns:
        (..., n, n).

    Raises:
        ValueError: ``a`` is not a stack of square matrices.
        LinAlgError: ``a`` is singular (to working precision). An ill-conditioned ``a`` is
            inverted, as NumPy does: the relative error of A⁻¹ and of its gradient grows
            like cond(A)·eps.
    """
    a = _tensor(a)
    check_square(a, "inv")
    return Inv.apply(a)


def det(a: Any) -> Tensor:
    """det A, batched over leading axes;  ∂ det A/∂A = det(A) A⁻ᵀ.

    The value is defined everywhere (0 at a singular matrix). Its gradient at an exactly
    singular matrix is the adjugate, which ``det(A) A⁻ᵀ`` cannot compute: there backward
    raises ``LinAlgError`` (choose ``slogdet`` for products of many factors or nearly
    singular matrices, where det under- or overflows).

    Args:
        a: (..., n, n).

    Returns:
        (...,).
    """
    a = _tensor(a)
    check_square(a, "det")
    return Det.apply(a)


def _sign_of_det(a: np.ndarray) -> np.ndarray:
    """sign(det A): ±1, or 0 for a singular matrix (batched)."""
    return np.linalg.slogdet(a)[0]


def slogdet(a: Any) -> tuple[Tensor, Tensor]:
    """(sign, log|det A|), batched over leading axes;  ∂ log|det A|/∂A = A⁻ᵀ.

    ``sign`` (±1, or 0 at a singular matrix, where logabsdet is −inf) is piecewise constant:
    a Tensor that does not require grad. The gradient of logabsdet at a singular matrix
    raises ``LinAlgError``; near one it is large (‖A⁻ᵀ‖ = 1/σ_min), as it should be.

    Args:
        a: (..., n, n).

    Returns:
        (sign, logabsdet), each (...,).
    """
    a = _tensor(a)
    check_square(a, "slogdet")
    data, _, levels = values_of(a)  # inside vmap: the whole batch, a stack too
    return as_batched(constant_op(_sign_of_det, data), levels), LogAbsDet.apply(a)


def solve(a: Any, b: Any) -> Tensor:
    """X = A⁻¹B, the solution of AX = B, batched over leading axes (which broadcast).

    ∂L/∂B = A⁻ᵀG and ∂L/∂A = −(∂L/∂B) Xᵀ. NumPy 2's reading of b: a vector only when it is
    1-D, otherwise a stack of matrices (..., n, k).

    Args:
        a: (..., n, n), invertible (an ill-conditioned one is solved as NumPy does, with
            relative error about cond(A)·eps).
        b: (n,) or (..., n, k).

    Returns:
        (..., n) or (..., n, k).

    Raises:
        ValueError: ``a`` is not square or ``b`` does not fit it.
        LinAlgError: ``a`` is singular.
    """
    a, b = _tensor(a), _tensor(b)
    check_square(a, "solve")
    n = a.shape[-1]
    rows = b.shape[0] if b.ndim == 1 else (b.shape[-2] if b.ndim >= 2 else None)
    if rows != n:
        raise ValueError(
            f"solve: b of shape {b.shape} does not fit a of shape {a.shape} "
            f"(b must be ({n},) or (..., {n}, k))"
        )
    return Solve.apply(a, b)
