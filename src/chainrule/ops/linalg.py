"""Products of arrays: matmul (the lecture's f = Wᵀa, on rows: a @ W), dot, outer, einsum,
and the fused affine map x W + b of every dense layer."""

from __future__ import annotations

from typing import Any

from chainrule.function import Function
from chainrule.ops.einsum import einsum
from chainrule.ops.elementwise import mul
from chainrule.ops.shape import reshape
from chainrule.tensor import Tensor

__all__ = ["matmul", "dot", "outer", "einsum", "affine"]


class MatMul(Function):
    """Y = A B (batched over leading axes, as ``np.matmul``);  ∂L/∂A = G Bᵀ, ∂L/∂B = Aᵀ G.

    A 1-D operand is a vector: a row on the left, a column on the right.
    """

    batchable = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:  # [..., None]: a batch of cotangents stays in front
            grad_a = grad_out[..., None] * b if need_a else None
            grad_b = grad_out[..., None] * a if need_b else None
            return grad_a, grad_b
        # A vector operand: with a matrix on the other side, one matrix product serves a
        # single cotangent and a whole batch of them alike (rows of grad_out).
        if a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
            if not need_a:
                grad_a = None
            elif b.ndim == 2:
                grad_a = grad_out @ b.swapaxes(-1, -2)
            else:
                grad_a = (b @ grad_out[..., None])[..., 0]
            grad_b = a[:, None] * grad_out[..., None, :] if need_b else None
            return grad_a, grad_b
        if b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
            grad_a = grad_out[..., None] * b if need_a else None
            if not need_b:
                grad_b = None
            elif a.ndim == 2:
                grad_b = grad_out @ a
            else:
                grad_b = (a.swapaxes(-1, -2) @ grad_out[..., None])[..., 0]
            return grad_a, grad_b
        grad_a = grad_out @ b.swapaxes(-1, -2) if need_a else None
        if not need_b:
            grad_b = None
        elif a.shape[-2] == 1:  # one row: Aᵀ G is an outer product, the same numbers
            # (one product each) that NumPy's matmul computes ~3x slower for a stack of
            # them (per-example gradients under vmap)
            grad_b = a.swapaxes(-1, -2) * grad_out
        else:
            grad_b = a.swapaxes(-1, -2) @ grad_out
        return grad_a, grad_b


class Affine(Function):
    """y = x W + b (on rows; the lecture's f = Wᵀa + b);  ∂L/∂x = G Wᵀ, ∂L/∂W = xᵀ G,
    ∂L/∂b = Σ_rows G.

    Fused (one node instead of a matmul and an add) because it is the hot path of every
    MLP: one output allocation, the bias added in place, the bias gradient one reduction.
    x may have any number of leading axes (all rows); a batch of cotangents (extra leading
    axes of G, for ``cr.jacobian``) gives one ∂L/∂W and ∂L/∂b per cotangent.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        y = x @ w
        if b is not None:
            y += b
        ctx.out_ndim = y.ndim
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        grad_x = grad_out @ w.swapaxes(-1, -2) if need_x else None
        lead = grad_out.shape[: grad_out.ndim - ctx.out_ndim]  # a batch of cotangents
        rows = grad_out.reshape(lead + (-1, grad_out.shape[-1]))
        grad_w = None
        if need_w:
            x_rows = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
            grad_w = x_rows.swapaxes(-1, -2) @ rows
        if len(ctx.needs_input_grad) == 2:
            return grad_x, grad_w
        grad_b = rows.sum(axis=-2) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


# ------------------------------------------------------------------------- wrappers
def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def matmul(a: Any, b: Any) -> Tensor:
    """The matrix product a @ b, batched over leading axes (NumPy's matmul rules).

    For a batch of rows a (m, n[l−1]) and the lecture's W[l] (n[l−1], n[l]), ``a @ W`` is
    f[l] = (W[l])ᵀ a[l−1] for every row at once.
    """
    a, b = _tensor(a), _tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got {a.shape} @ {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: {a.shape} @ {b.shape}: inner dimensions differ ({k_a} vs {k_b})"
        )
    try:
        return MatMul.apply(a, b)
    except ValueError as error:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: {error}") from error


def dot(a: Any, b: Any) -> Tensor:
    """NumPy's dot for up to 2-D operands: the lecture's w·x = wᵀx for vectors."""
    a, b = _tensor(a), _tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if a.ndim > 2 or b.ndim > 2:
        raise ValueError(
            f"dot: operands of up to 2 dimensions, got {a.shape} and {b.shape}; "
            "use matmul or einsum for batches"
        )
    return matmul(a, b)


def outer(a: Any, b: Any) -> Tensor:
    """The outer product a bᵀ of two vectors (inputs are flattened): shape (a.size, b.size)."""
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def affine(x: Any, w: Any, b: Any = None) -> Tensor:
    """y = x W + b on rows: the lecture's f = Wᵀa + b for a batch (``F.linear``, ``nn.Linear``).

    The same values as ``x @ w + b``, in one fused node.

    Args:
        x: input (..., in).
        w: weight (in, out), the lecture's W[l] (PyTorch's F.linear takes its transpose).
        b: optional bias (out,).

    Returns:
        (..., out).
    """
    x, w = _tensor(x), _tensor(w)
    x_shape, w_shape = x.shape, w.shape  # an example's shapes inside vmap
    if len(w_shape) != 2 or not x_shape or x_shape[-1] != w_shape[0]:
        raise ValueError(
            f"affine: input of shape {x_shape} does not fit a weight of shape {w_shape} "
            "(the weight is (in_features, out_features) and the input (..., in_features))"
        )
    if b is None:
        return Affine.apply(x, w)
    b = _tensor(b)
    if b.shape != w_shape[1:]:
        raise ValueError(f"affine: bias must have shape ({w_shape[1]},), got {b.shape}")
    return Affine.apply(x, w, b)
