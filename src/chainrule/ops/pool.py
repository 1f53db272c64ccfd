"""Pooling of NCHW batches: ``max_pool2d`` and ``avg_pool2d`` over kh×kw windows.

Both run one vectorised step per kernel offset (kh·kw strided views of x), never a Python
loop over pixels. Outputs and gradients keep the memory order of x, so pooling between
conv layers (whose outputs are stored batch-innermost, see ``ops/im2col.py``) costs no
transposing copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.ops import rules
from chainrule.ops.conv import as_pair, as_tensor, check_input
from chainrule.ops.im2col import col2im, empty, in_layout, layout, offsets, out_hw, zeros
from chainrule.tensor import Tensor, constant_op

__all__ = ["max_pool2d", "avg_pool2d"]


def _scatter_sum(parts: list[Any], shape: tuple, index: list[tuple]) -> Any:
    """Σ_k zeros(shape) with parts[k] added at index[k]: recorded, for create_graph."""
    grad_x = rules.scatter_add(parts[0], shape, index[0])
    for part, at in zip(parts[1:], index[1:]):
        grad_x = grad_x + rules.scatter_add(part, shape, at)
    return grad_x


class MaxPool2dFunction(Function):
    """y = max over each kh×kw window;  ∂L/∂x = g routed to the window's maximum.

    Ties: the first maximum in row-major order within the window gets the whole gradient
    (as PyTorch). Windows may overlap (stride < kernel): gradients then accumulate. A NaN
    in a window propagates to its output (and the window's last element gets its
    gradient). Outputs and gradients keep the memory order of x.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, *, kernel, stride):
        ctx.shape, ctx.kernel, ctx.stride = x.shape, kernel, stride
        ctx.offsets = offsets(kernel, stride, out_hw(x.shape, kernel, stride, (0, 0)))
        ctx.layout = layout(x)
        views = [x[index] for index in ctx.offsets]
        y = empty(views[0].shape, ctx.layout, x.dtype)
        np.copyto(y, views[0])
        for view in views[1:]:
            np.maximum(y, view, out=y)
        # winner = the first offset holding the maximum = how many offsets before it miss
        # it; counting with boolean masks is several times faster than argmax or
        # masked writes over strided views
        missing = views[0] != y
        winner = missing.astype(np.int8 if len(views) < 128 else np.intp)
        for view in views[1:-1]:
            missing &= view != y
            winner += missing
        ctx.winner = winner
        return y

    @staticmethod
    def backward(ctx, grad_out):
        lead = tuple(grad_out.shape[:-4])  # a batch of cotangents (none on the usual path)
        if isinstance(grad_out, Tensor):
            # the masks through constant_op: a compiled program computes them from each
            # call's winners (a raw comparison would be the trace's, replayed as it was)
            parts = [
                grad_out * constant_op(np.equal, ctx.winner, k) for k in range(len(ctx.offsets))
            ]
            return _scatter_sum(parts, lead + ctx.shape, ctx.offsets)
        # the layout of the winners and of x (a batch of cotangents, slowest, in front)
        order = tuple(range(len(lead))) + tuple(len(lead) + axis for axis in ctx.layout)
        grad_out = in_layout(grad_out, order)
        shape = lead + ctx.shape
        (kh, kw), (sh, sw) = ctx.kernel, ctx.stride
        if sh < kh or sw < kw:  # overlapping windows: their gradients add up
            grad_x = zeros(shape, order, grad_out.dtype)
            for k, index in enumerate(ctx.offsets):
                grad_x[index] += grad_out * (ctx.winner == k)
            return grad_x
        # disjoint windows: each element of x is written once, by its window's offset
        ho, wo = grad_out.shape[-2:]
        covered = (sh, sw) == (kh, kw) and ctx.shape[2:] == (ho * kh, wo * kw)
        grad_x = (empty if covered else zeros)(shape, order, grad_out.dtype)
        for k, index in enumerate(ctx.offsets):
            np.multiply(grad_out, ctx.winner == k, out=grad_x[index])
        return grad_x


class AvgPool2dFunction(Function):
    """y = mean over each kh×kw window;  ∂L/∂x: each window's g/(kh·kw) on its elements."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, kernel, stride):
        ctx.shape, ctx.kernel, ctx.stride = x.shape, kernel, stride
        ctx.offsets = offsets(kernel, stride, out_hw(x.shape, kernel, stride, (0, 0)))
        views = [x[index] for index in ctx.offsets]
        y = views[0].copy(order="K")
        for view in views[1:]:
            y += view
        return y / (kernel[0] * kernel[1])

    @staticmethod
    def backward(ctx, grad_out):
        share = grad_out / (ctx.kernel[0] * ctx.kernel[1])
        lead = tuple(share.shape[:-4])  # a batch of cotangents: folded into N
        if isinstance(share, Tensor):
            return _scatter_sum([share] * len(ctx.offsets), lead + ctx.shape, ctx.offsets)
        share = share.reshape((-1,) + share.shape[-3:])
        n, c, ho, wo = share.shape
        cols = np.broadcast_to(share[:, :, None, None], (n, c, *ctx.kernel, ho, wo))
        grad_x = col2im(cols, (n,) + ctx.shape[1:], ctx.stride, (0, 0))
        return grad_x.reshape(lead + ctx.shape) if lead else grad_x


# ----------------------------------------------------------------------- wrappers
def _pool(name: str, function: type[Function], x: Any, kernel_size: Any, stride: Any) -> Tensor:
    x = as_tensor(x)
    kernel = as_pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else as_pair(stride, "stride", 1)
    check_input(name, x.shape, kernel, (0, 0))
    return function.apply(x, kernel=kernel, stride=stride)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None) -> Tensor:
    """y = max over each window of an NCHW batch (stride defaults to the kernel size).

    y[n, c, i, j] = max_{u<kh, v<kw} x[n, c, i·sh + u, j·sw + v]. On ties the first maximum
    in the window (row-major) gets the gradient, as PyTorch.

    Args:
        x: input (N, C, H, W).
        kernel_size: an int or (kh, kw).
        stride: an int or (sh, sw); None: the kernel size (disjoint windows).

    Returns:
        (N, C, Ho, Wo) with Ho = (H − kh) // sh + 1, likewise Wo.
    """
    return _pool("max_pool2d", MaxPool2dFunction, x, kernel_size, stride)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None) -> Tensor:
    """y = mean over each window of an NCHW batch (stride defaults to the kernel size).

    y[n, c, i, j] = (1/(kh·kw)) Σ_{u<kh, v<kw} x[n, c, i·sh + u, j·sw + v].

    Args:
        x: input (N, C, H, W).
        kernel_size: an int or (kh, kw).
        stride: an int or (sh, sw); None: the kernel size (disjoint windows).

    Returns:
        (N, C, Ho, Wo) with Ho = (H − kh) // sh + 1, likewise Wo.
    """
    return _pool("avg_pool2d", AvgPool2dFunction, x, kernel_size, stride)
