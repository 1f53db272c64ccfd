"""Matrix decompositions: cholesky, eigh, svd.

All are batched over leading axes as ``np.linalg``. A Function has one output array, so
eigh and svd record one node whose output packs the factors along the row axis (eigh:
w on top of V; svd: U, s and V = (Vᵀ)ᵀ stacked), and the wrappers slice the factors out of
it. Indexing's own gradient fills the rows of the factors a loss does not use with zeros,
so backward sees one cotangent and can tell whether the eigen- or singular vectors got any
(``any`` of their rows is non-zero). The rules use ``@``, ``swapaxes``, masks and recorded
``inv``, so they run on Tensors too (second derivatives) and pass a batch of cotangents
through.

Symmetric inputs (cholesky, eigh): like NumPy, the forward reads only the lower triangle.
The gradient is the symmetric one, as PyTorch's: the derivative with respect to a
symmetric perturbation of the symmetric matrix A represents, ∂L/∂A = sym(∂L/∂A). It equals
the finite differences of ``f((A + Aᵀ)/2)``, not those of a perturbation of one triangle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.ops.inverse import LinAlgError, check_square, inv_any
from chainrule.tensor import Tensor

__all__ = ["cholesky", "eigh", "svd"]


def _array(x: Any) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else x


def _may_be_nonzero(grad: Any) -> bool:
    """Whether a cotangent of the vectors can contribute: nonzero now, or, recorded under
    ``create_graph``, a Tensor that requires grad, whose value may be 0 here but whose
    derivative is not (``cr.jvp`` differentiates a backward run on a zero cotangent)."""
    if isinstance(grad, Tensor) and grad.requires_grad:
        return True
    return bool(_array(grad).any())


def _gaps_too_small(values: np.ndarray, op: str, what: str, zero_too: bool = False) -> None:
    """Raise ``LinAlgError`` where two of ``values`` (..., k) coincide to working precision
    (and, with ``zero_too``, where one is 0): there the rule divides by their difference."""
    scale = np.abs(values).max(axis=-1, keepdims=True)
    tol = values.shape[-1] * np.finfo(values.dtype).eps * scale
    k = values.shape[-1]
    gaps = np.where(
        np.eye(k, dtype=bool), np.inf, np.abs(values[..., :, None] - values[..., None, :])
    )
    if (gaps <= tol[..., None]).any() or (zero_too and (np.abs(values) <= tol).any()):
        zero = " or zero" if zero_too else ""
        raise LinAlgError(
            f"{op} backward: repeated{zero} {what} (to working precision), where the "
            f"derivative of the {'singular' if zero_too else 'eigen'}vectors does not "
            "exist; a loss of the values alone has a gradient there, but its second "
            "derivative is computed through the vectors and is refused too"
        )


class Cholesky(Function):
    """A = L Lᵀ, L lower triangular;  ∂L/∂A = ½ L⁻ᵀ (Φ + Φᵀ) L⁻¹, Φ = Φ(Lᵀ Ḡ).

    Φ(X) keeps the lower triangle of X with its diagonal halved (Murray 2016,
    arXiv:1602.07527; PyTorch's cholesky_backward).
    """

    batchable = True

    @staticmethod
    def forward(ctx, a):
        try:
            lower = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise LinAlgError(
                f"cholesky: the matrix of shape {a.shape} is not positive definite"
            ) from None
        ctx.save_for_backward(lower)
        return lower

    @staticmethod
    def backward(ctx, grad_out):
        (lower,) = ctx.saved_tensors
        n = lower.shape[-1]
        phi = (lower.swapaxes(-1, -2) @ grad_out) * np.tri(n)  # tril(Lᵀ Ḡ)
        phi = 0.5 * (phi + (phi * np.tri(n, k=-1)).swapaxes(-1, -2))  # symmetric, diagonal once
        lower_inv = inv_any(lower, "cholesky")
        return lower_inv.swapaxes(-1, -2) @ phi @ lower_inv


class Eigh(Function):
    """A = V diag(w) Vᵀ (A symmetric, ascending w);  output [w; V] of shape (..., n + 1, n).

    ∂L/∂A = V (diag(Ḡ_w) + F ∘ skew(Vᵀ Ḡ_V)) Vᵀ with F_ij = 1/(w_j − w_i) (F_ii = 0) and
    skew(X) = (X − Xᵀ)/2: the symmetric gradient (F antisymmetric times skew is symmetric).
    """

    batchable = True

    @staticmethod
    def forward(ctx, a):
        w, v = np.linalg.eigh(a)
        out = np.concatenate([w[..., None, :], v], axis=-2)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        w, v = out[..., 0, :], out[..., 1:, :]
        grad_w, grad_v = grad_out[..., 0, :], grad_out[..., 1:, :]
        eye = np.eye(w.shape[-1])
        inner = grad_w[..., None, :] * eye
        if _may_be_nonzero(grad_v):
            _gaps_too_small(_array(w), "eigh", "eigenvalues")
            gaps = w[..., None, :] - w[..., :, None]  # w_j − w_i
            f = (1.0 - eye) / (gaps + eye)
            vt_gv = v.swapaxes(-1, -2) @ grad_v
            inner = inner + f * (0.5 * (vt_gv - vt_gv.swapaxes(-1, -2)))
        return v @ inner @ v.swapaxes(-1, -2)


class Svd(Function):
    """A = U diag(s) Vᵀ (thin: k = min(m, n));  output [U; s; V] of shape (..., m+1+n, k).

    With F_ij = 1/(s_j² − s_i²) (F_ii = 0), J = F ∘ (UᵀŪ − ŪᵀU), K = F ∘ (VᵀV̄ − V̄ᵀV):
    ∂L/∂A = U (J S + diag(s̄) + S K) Vᵀ + (I − UUᵀ) Ū S⁻¹ Vᵀ + U S⁻¹ V̄ᵀ (I − VVᵀ)
    (Townsend 2016, "Differentiating the singular value decomposition"; PyTorch's
    svd_backward).
    """

    batchable = True

    @staticmethod
    def forward(ctx, a):
        u, s, vt = np.linalg.svd(a, full_matrices=False)
        ctx.m = a.shape[-2]
        out = np.concatenate([u, s[..., None, :], vt.swapaxes(-1, -2)], axis=-2)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        m = ctx.m
        u, s, v = out[..., :m, :], out[..., m, :], out[..., m + 1 :, :]
        grad_u, grad_s, grad_v = (
            grad_out[..., :m, :],
            grad_out[..., m, :],
            grad_out[..., m + 1 :, :],
        )
        k = s.shape[-1]
        eye = np.eye(k)
        inner = grad_s[..., None, :] * eye
        if not (_may_be_nonzero(grad_u) or _may_be_nonzero(grad_v)):
            return u @ inner @ v.swapaxes(-1, -2)
        _gaps_too_small(_array(s), "svd", "singular values", zero_too=True)
        s_sq = s * s
        f = (1.0 - eye) / (s_sq[..., None, :] - s_sq[..., :, None] + eye)
        ut_gu = u.swapaxes(-1, -2) @ grad_u
        vt_gv = v.swapaxes(-1, -2) @ grad_v
        j = f * (ut_gu - ut_gu.swapaxes(-1, -2))
        kk = f * (vt_gv - vt_gv.swapaxes(-1, -2))
        inner = inner + j * s[..., None, :] + s[..., :, None] * kk
        grad_a = u @ inner @ v.swapaxes(-1, -2)
        if m > k:  # the part of Ū outside the column space of U
            grad_a = grad_a + ((grad_u - u @ ut_gu) / s[..., None, :]) @ v.swapaxes(-1, -2)
        if v.shape[-2] > k:  # the part of V̄ outside the row space
            grad_a = grad_a + u @ ((grad_v - v @ vt_gv) / s[..., None, :]).swapaxes(-1, -2)
        return grad_a


# ------------------------------------------------------------------------- wrappers
def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def cholesky(a: Any) -> Tensor:
    """The lower-triangular L with A = L Lᵀ, batched;  ∂L/∂A = ½ L⁻ᵀ (Φ + Φᵀ) L⁻¹.

    Φ = Φ(Lᵀ Ḡ), where Φ(X) keeps the lower triangle of X with its diagonal halved (Murray
    2016). Only the lower triangle of ``a`` is read (NumPy); the gradient is symmetric (see
    the module's note). Its error grows like cond(L)·eps = √cond(A)·eps.

    Args:
        a: (..., n, n), symmetric positive definite.

    Returns:
        L, (..., n, n).

    Raises:
        ValueError: ``a`` is not a stack of square matrices.
        LinAlgError: ``a`` is not positive definite.
    """
    a = _tensor(a)
    check_square(a, "cholesky")
    return Cholesky.apply(a)


def eigh(a: Any) -> tuple[Tensor, Tensor]:
    """(w, V) with A = V diag(w) Vᵀ, w ascending, for a symmetric A (batched).

    ∂L/∂A = V (diag(Ḡ_w) + F ∘ skew(Vᵀ Ḡ_V)) Vᵀ, F_ij = 1/(w_j − w_i): the symmetrized
    form of V (diag(Ḡ_w) + F ∘ (Vᵀ Ḡ_V)) Vᵀ. Only the lower triangle of ``a`` is read, as
    NumPy; the gradient is symmetric, as PyTorch's (see the module's note).

    Each eigenvector is defined up to sign: a loss should not depend on it (``v * v``,
    projections ``v @ diag(·) @ vᵀ``). Near-repeated eigenvalues make the eigenvector
    gradient large (it grows like 1/gap) but it is computed; eigenvalues repeated to
    working precision raise ``LinAlgError`` in backward when the eigenvectors get a
    gradient, and only then (a loss of w alone has a gradient at repeats; its second
    derivatives, hessian or jvp of that gradient, go through the vectors and raise there).

    Args:
        a: (..., n, n), symmetric.

    Returns:
        w (..., n) and V (..., n, n), eigenvectors in the columns.
    """
    a = _tensor(a)
    check_square(a, "eigh")
    packed = Eigh.apply(a)
    return packed[..., 0, :], packed[..., 1:, :]


def svd(a: Any, full_matrices: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """The thin SVD A = U diag(s) Vᵀ, s descending, batched over leading axes.

    With k = min(m, n), F_ij = 1/(s_j² − s_i²), J = F ∘ (UᵀŪ − ŪᵀU), K = F ∘ (VᵀV̄ − V̄ᵀV):
    ∂L/∂A = U (J S + diag(s̄) + S K) Vᵀ + (I − UUᵀ) Ū S⁻¹ Vᵀ + U S⁻¹ V̄ᵀ (I − VVᵀ)
    (Townsend 2016), where V̄ is the gradient with respect to V = (Vᵀ)ᵀ.

    Singular vectors are defined up to a common sign of (uᵢ, vᵢ): a loss should not depend
    on it. A loss of s alone has gradient U diag(s̄) Vᵀ, defined at repeated and zero
    singular values too; when U or Vᵀ get a gradient, singular values repeated or zero to
    working precision raise ``LinAlgError`` in backward, and near ones make the gradient
    large (it grows like 1/(s_i − s_j) and 1/s_i) but it is computed.

    Args:
        a: (..., m, n).
        full_matrices: only False (the thin SVD) is supported.

    Returns:
        U (..., m, k), s (..., k), Vᵀ (..., k, n).
    """
    if full_matrices:
        raise ValueError("svd: only full_matrices=False (the thin SVD) is supported")
    a = _tensor(a)
    if a.ndim < 2:
        raise ValueError(f"svd: a must be a matrix or a stack of them (..., m, n), got {a.shape}")
    m = a.shape[-2]
    packed = Svd.apply(a)
    return packed[..., :m, :], packed[..., m, :], packed[..., m + 1 :, :].swapaxes(-1, -2)
