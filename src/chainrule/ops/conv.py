"""Convolution of NCHW batches: ``conv2d`` and its two adjoints, ``conv2d_input`` and
``conv2d_weight``, on the im2col kernels of ``ops/im2col.py``.

Convolution is bilinear in (x, w), so its two gradients are bilinear too, and the three
maps are each other's adjoints: ∂/∂x of ``conv2d`` is ``conv2d_input`` (the transposed
convolution) and ∂/∂w is ``conv2d_weight``, and the backward of each of those is again one
of the three. Every backward calls them through ``conv2d_any`` and friends, which give an
ndarray for ndarrays and a recorded Tensor for Tensors (``chainrule.ops.rules`` exports
them, and imports this module: nothing here may import ``rules``), so a convolution can be
differentiated any number of times (``create_graph=True``).

Batches of cotangents (``batchable``): bilinearity also says where a batch of k cotangents
goes. k inputs x (or k cotangents g) are one convolution over a batch of k·N; k filter
banks w are one bank of k·O filters (or, for ``conv2d_input``, k·C input channels). So a
batched backward folds its leading axes into N, O or C, calls the same kernels once, and
unfolds the result: one matrix product instead of k.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.ops.im2col import (
    Pair,
    conv_cols,
    gram,
    im2col,
    input_array,
    out_hw,
    rows_of,
    weight_array,
)
from chainrule.tensor import Tensor

__all__ = ["conv2d", "conv2d_input", "conv2d_weight"]


# ----------------------------------------------------------------------- the three Functions
class Conv2dFunction(Function):
    """y[n, o] = Σ_c w[o, c] ⋆ x[n, c] + b[o] (cross-correlation; b optional);
    ∂L/∂x = conv2d_input(g, w), ∂L/∂w = conv2d_weight(x, g), ∂L/∂b[o] = Σ_{n,y,x} g[n, o].

    The bias is fused (added in place to the product, its gradient one reduction of the
    rows that ∂L/∂w uses) rather than a separate broadcast add and its sum-to-shape.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, w, b=None, *, stride, padding):
        ctx.stride, ctx.padding = stride, padding
        cols = im2col(x, w.shape[2:], stride, padding)
        # the columns are reused by the first-order ∂L/∂w, sparing a second im2col
        ctx.save_for_backward(x, w, cols if ctx.needs_input_grad[1] else None)
        return conv_cols(cols, x.shape, w, stride, padding, b)

    @staticmethod
    def backward(ctx, grad_out):
        x, w, cols = ctx.saved_tensors
        needs = ctx.needs_input_grad
        need_b = len(needs) == 3 and needs[2]
        stride, padding = ctx.stride, ctx.padding
        grad_x = grad_w = grad_b = None
        if isinstance(grad_out, Tensor) or isinstance(w, Tensor) or grad_out.ndim > 4:
            # create_graph (recorded, to be differentiated again) or a batch of cotangents
            if needs[0]:
                grad_x = conv2d_input_any(grad_out, w, x.shape, stride, padding)
            if needs[1]:
                grad_w = conv2d_weight_any(x, grad_out, w.shape, stride, padding)
            if need_b:
                grad_b = grad_out.sum(axis=(-4, -2, -1))
        else:
            rows = rows_of(grad_out)
            if needs[0]:
                grad_x = input_array(grad_out, w, x.shape, stride, padding, rows)
            if needs[1]:
                grad_w = gram(rows, cols).reshape(w.shape)
            if need_b:
                grad_b = rows.sum(axis=1)
        return (grad_x, grad_w) if len(needs) == 2 else (grad_x, grad_w, grad_b)


class Conv2dInputFunction(Function):
    """gx = conv2d_input(g, w), the transposed convolution (adjoint of x ↦ conv2d(x, w));
    ∂L/∂g = conv2d(u, w), ∂L/∂w = conv2d_weight(u, g) for u = ∂L/∂gx."""

    batchable = True

    @staticmethod
    def forward(ctx, g, w, *, x_shape, stride, padding):
        ctx.stride, ctx.padding = stride, padding
        ctx.save_for_backward(g, w)
        return input_array(g, w, x_shape, stride, padding)

    @staticmethod
    def backward(ctx, grad_out):
        g, w = ctx.saved_tensors
        grad_g = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_g = conv2d_any(grad_out, w, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            grad_w = conv2d_weight_any(grad_out, g, w.shape, ctx.stride, ctx.padding)
        return grad_g, grad_w


class Conv2dWeightFunction(Function):
    """gw = conv2d_weight(x, g) = Σ_n g[n] ⋆ x[n] (adjoint of w ↦ conv2d(x, w));
    ∂L/∂x = conv2d_input(g, v), ∂L/∂g = conv2d(x, v) for v = ∂L/∂gw."""

    batchable = True

    @staticmethod
    def forward(ctx, x, g, *, w_shape, stride, padding):
        ctx.stride, ctx.padding = stride, padding
        ctx.save_for_backward(x, g)
        return weight_array(im2col(x, w_shape[2:], stride, padding), g, w_shape)

    @staticmethod
    def backward(ctx, grad_out):
        x, g = ctx.saved_tensors
        grad_x = grad_g = None
        if ctx.needs_input_grad[0]:
            grad_x = conv2d_input_any(g, grad_out, x.shape, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            grad_g = conv2d_any(x, grad_out, ctx.stride, ctx.padding)
        return grad_x, grad_g


# ----------------------------------------------------------------------- for derivative rules
def conv2d_any(x: Any, w: Any, stride: Pair, padding: Pair) -> Any:
    """conv2d(x, w) without bias: an ndarray for ndarrays, a recorded Tensor for Tensors.

    x (..., N, C, H, W) or w (..., O, C, kh, kw) may carry leading batch axes (not both).
    """
    if x.ndim > 4:  # k inputs: a batch of k·N
        folded, lead = _fold(x, 0)
        return _unfold(conv2d_any(folded, w, stride, padding), lead, 0)
    if w.ndim > 4:  # k filter banks: k·O filters
        folded, lead = _fold(w, 0)
        return _unfold(conv2d_any(x, folded, stride, padding), lead, 1)
    if isinstance(x, Tensor) or isinstance(w, Tensor):
        return Conv2dFunction.apply(x, w, stride=stride, padding=padding)
    return conv_cols(im2col(x, w.shape[2:], stride, padding), x.shape, w, stride, padding)


def conv2d_input_any(g: Any, w: Any, x_shape: tuple, stride: Pair, padding: Pair) -> Any:
    """conv2d_input(g, w) for ndarrays or Tensors, like ``conv2d_any``: g (..., N, O, Ho, Wo)
    or w (..., O, C, kh, kw) may carry leading batch axes (not both)."""
    x_shape = tuple(x_shape)
    if g.ndim > 4:  # k cotangents: a batch of k·N
        folded, lead = _fold(g, 0)
        shape = (folded.shape[0],) + x_shape[1:]
        return _unfold(conv2d_input_any(folded, w, shape, stride, padding), lead, 0)
    if w.ndim > 4:  # k filter banks: k·C input channels
        folded, lead = _fold(w, 1)
        shape = (x_shape[0], folded.shape[1]) + x_shape[2:]
        return _unfold(conv2d_input_any(g, folded, shape, stride, padding), lead, 1)
    if isinstance(g, Tensor) or isinstance(w, Tensor):
        return Conv2dInputFunction.apply(g, w, x_shape=x_shape, stride=stride, padding=padding)
    return input_array(g, w, x_shape, stride, padding)


def conv2d_weight_any(x: Any, g: Any, w_shape: tuple, stride: Pair, padding: Pair) -> Any:
    """conv2d_weight(x, g) for ndarrays or Tensors, like ``conv2d_any``: x (..., N, C, H, W)
    or g (..., N, O, Ho, Wo) may carry leading batch axes (not both)."""
    w_shape = tuple(w_shape)
    if x.ndim > 4:  # k inputs: k·C input channels
        folded, lead = _fold(x, 1)
        shape = (w_shape[0], folded.shape[1]) + w_shape[2:]
        return _unfold(conv2d_weight_any(folded, g, shape, stride, padding), lead, 1)
    if g.ndim > 4:  # k cotangents: k·O filters
        folded, lead = _fold(g, 1)
        shape = (folded.shape[1],) + w_shape[1:]
        return _unfold(conv2d_weight_any(x, folded, shape, stride, padding), lead, 0)
    if isinstance(x, Tensor) or isinstance(g, Tensor):
        return Conv2dWeightFunction.apply(x, g, w_shape=w_shape, stride=stride, padding=padding)
    return weight_array(im2col(x, w_shape[2:], stride, padding), g, w_shape)


def _fold(a: Any, axis: int) -> tuple[Any, tuple[int, ...]]:
    """The leading axes of a (..., d0, d1, d2, d3), k elements in all, merged into axis 0
    or 1 (outermost): d0·k or d1·k. Returns it and the leading shape."""
    lead = tuple(a.shape[:-4])
    k = int(np.prod(lead, dtype=np.int64))
    a = a.reshape((k,) + tuple(a.shape[-4:]))
    if axis == 1:
        a = a.transpose(1, 0, 2, 3, 4)
    s = tuple(a.shape)
    return a.reshape(s[:axis] + (s[axis] * s[axis + 1],) + s[axis + 2 :]), lead


def _unfold(a: Any, lead: tuple[int, ...], axis: int) -> Any:
    """The inverse of ``_fold``: axis 0 or 1 of a 4-D ``a`` split into (k, n), and the k
    moved in front as the leading shape ``lead``."""
    k = int(np.prod(lead, dtype=np.int64))
    s = tuple(a.shape)
    a = a.reshape(s[:axis] + (k, s[axis] // k) + s[axis + 1 :])
    if axis == 1:
        a = a.transpose(1, 0, 2, 3, 4)
    return a.reshape(lead + tuple(a.shape[1:]))


# ----------------------------------------------------------------------- wrappers
def as_pair(value: Any, name: str, low: int) -> Pair:
    """An int or a pair of ints as a pair (stride, padding, kernel size), at least ``low``."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}")
    return int(pair[0]), int(pair[1])


def as_tensor(x: Any) -> Tensor:
    """x itself if it is a Tensor, else a new Tensor holding it (float32 for a list)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def check_input(name: str, shape: tuple[int, ...], kernel: Pair, padding: Pair) -> None:
    """A clear error unless ``shape`` is NCHW and, padded, at least the kernel's size."""
    if len(shape) != 4:
        raise ValueError(f"{name}: expected an NCHW input (4 dimensions), got shape {shape}")
    if shape[2] + 2 * padding[0] < kernel[0] or shape[3] + 2 * padding[1] < kernel[1]:
        raise ValueError(
            f"{name}: input of shape {shape} (padding {padding}) is smaller than the "
            f"kernel {kernel}"
        )


def _check_weight(name: str, x_shape: tuple, w_shape: tuple, padding: Pair) -> None:
    if len(w_shape) != 4:
        raise ValueError(f"{name}: weight must have shape (O, C, kh, kw), got {w_shape}")
    check_input(name, x_shape, w_shape[2:], padding)
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"{name}: the input has {x_shape[1]} channels (shape {x_shape}) but the weight "
            f"expects {w_shape[1]} (weight shape {w_shape})"
        )


def _check_output(
    name: str, g_shape: tuple, x_shape: tuple, w_shape: tuple, s: Pair, p: Pair
) -> None:
    expected = (x_shape[0], w_shape[0], *out_hw(x_shape, w_shape[2:], s, p))
    if tuple(g_shape) != expected:
        raise ValueError(
            f"{name}: the output gradient must have shape {expected} for an input of shape "
            f"{x_shape}, a weight of shape {w_shape}, stride {s} and padding {p}; "
            f"got {tuple(g_shape)}"
        )


def conv2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0) -> Tensor:
    """y = w * x + b: the slide's filter convolution (cross-correlation) of a batch.

    y[n, o, i, j] = Σ_{c,u,v} w[o, c, u, v] · x_pad[n, c, i·sh + u, j·sw + v] + b[o], with
    x_pad = x with ``padding`` zeros on each side.

    Args:
        x: input (N, C, H, W).
        w: filters (O, C, kh, kw).
        b: optional bias (O,).
        stride: an int or (sh, sw).
        padding: zeros added on each side, an int or (ph, pw).

    Returns:
        (N, O, Ho, Wo) with Ho = (H + 2·ph − kh) // sh + 1, likewise Wo.
    """
    x, w = as_tensor(x), as_tensor(w)
    stride, padding = as_pair(stride, "stride", 1), as_pair(padding, "padding", 0)
    _check_weight("conv2d", x.shape, w.shape, padding)
    if b is None:
        return Conv2dFunction.apply(x, w, stride=stride, padding=padding)
    b = as_tensor(b)
    if b.shape != (w.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({w.shape[0]},), got {b.shape}")
    return Conv2dFunction.apply(x, w, b, stride=stride, padding=padding)


def conv2d_input(g: Any, w: Any, x_shape: Any, stride: Any = 1, padding: Any = 0) -> Tensor:
    """∂L/∂x of y = conv2d(x, w) given g = ∂L/∂y: the transposed convolution.

    gx[n, c, i·sh + u − ph, j·sw + v − pw] += Σ_o g[n, o, i, j] · w[o, c, u, v]; linear in
    g and in w (PyTorch's ``torch.nn.grad.conv2d_input``).

    Args:
        g: output gradient (N, O, Ho, Wo).
        w: filters (O, C, kh, kw).
        x_shape: the input's shape (N, C, H, W).
        stride, padding: those of the convolution.

    Returns:
        (N, C, H, W).
    """
    g, w = as_tensor(g), as_tensor(w)
    stride, padding = as_pair(stride, "stride", 1), as_pair(padding, "padding", 0)
    x_shape = tuple(int(n) for n in x_shape)
    _check_weight("conv2d_input", x_shape, w.shape, padding)
    _check_output("conv2d_input", g.shape, x_shape, w.shape, stride, padding)
    return Conv2dInputFunction.apply(g, w, x_shape=x_shape, stride=stride, padding=padding)


def conv2d_weight(x: Any, g: Any, w_shape: Any, stride: Any = 1, padding: Any = 0) -> Tensor:
    """∂L/∂w of y = conv2d(x, w) given g = ∂L/∂y: Σ_n g[n] ⋆ x[n].

    gw[o, c, u, v] = Σ_{n,i,j} g[n, o, i, j] · x_pad[n, c, i·sh + u, j·sw + v]; linear in
    x and in g (PyTorch's ``torch.nn.grad.conv2d_weight``).

    Args:
        x: input (N, C, H, W).
        g: output gradient (N, O, Ho, Wo).
        w_shape: the filters' shape (O, C, kh, kw).
        stride, padding: those of the convolution.

    Returns:
        (O, C, kh, kw).
    """
    x, g = as_tensor(x), as_tensor(g)
    stride, padding = as_pair(stride, "stride", 1), as_pair(padding, "padding", 0)
    w_shape = tuple(int(n) for n in w_shape)
    _check_weight("conv2d_weight", x.shape, w_shape, padding)
    _check_output("conv2d_weight", g.shape, x.shape, w_shape, stride, padding)
    return Conv2dWeightFunction.apply(x, g, w_shape=w_shape, stride=stride, padding=padding)
