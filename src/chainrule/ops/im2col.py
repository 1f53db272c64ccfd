"""The array kernels of convolution and pooling: im2col, col2im and memory layouts.

Plain ndarray functions (no Tensors, no graph), shared by ``ops/conv.py`` and
``ops/pool.py``. The slide's filter convolution W * X (multiply each window by the filter
and sum; what deep-learning libraries call cross-correlation) is computed by im2col: every
window of the padded input is copied once into a column of ``cols`` (C·kh·kw, Ho·Wo·N), and
one matrix product with the filters (O, C·kh·kw) gives all outputs of the whole batch. No
Python loop runs over pixels or over the batch; the loops that remain run over the kh·kw
offsets. The batch is innermost in that product, and a conv output is returned as an
NCHW-shaped view of it: shapes are NCHW everywhere, but activations between conv layers are
stored (C, H, W, N), which is what the next im2col and the gradient rows want.

Every large array made here (padded inputs, columns, products, col2im sums, pooling
outputs and gradients) comes from ``chainrule.workspace``, which reuses the memory of
arrays that nothing refers to any more instead of mapping fresh pages each step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule import workspace

__all__ = [
    "Pair", "im2col", "rows_of", "col2im", "offsets", "conv_cols", "input_array",
    "weight_array", "product", "gram", "layout", "empty", "zeros", "in_layout", "out_hw",
]  # fmt: skip

Pair = tuple[int, int]


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    """cols[(c, i, j), (oy, ox, n)] = x_padded[n, c, oy·sh + i, ox·sw + j].

    Channels and kernel offsets index the rows, pixels and batch the columns, so that a
    whole batch is one matrix product with the filters (O, C·kh·kw) @ cols. The batch is
    innermost: every copy moves contiguous runs of N values, several times faster than
    gathering single pixels from NCHW. An x stored batch-innermost (as conv outputs are)
    needs no transposing copy.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    x = x.transpose(1, 2, 3, 0)  # (C, H, W, N)
    if ph or pw:
        c, height, width, n = x.shape
        padded = workspace.empty((c, height + 2 * ph, width + 2 * pw, n), x.dtype)
        padded.fill(0)
        padded[:, ph : ph + height, pw : pw + width] = x
        x = padded
    elif not x.flags.c_contiguous:
        contiguous = workspace.empty(x.shape, x.dtype)
        np.copyto(contiguous, x)
        x = contiguous
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    c, ho, wo, n = windows.shape[:4]
    cols = workspace.empty((c * kh * kw, ho * wo * n), x.dtype)
    np.copyto(cols.reshape(c, kh, kw, ho, wo, n), windows.transpose(0, 4, 5, 1, 2, 3))
    return cols


def rows_of(g: np.ndarray) -> np.ndarray:
    """(N, O, Ho, Wo) -> (O, Ho·Wo·N): the outputs in the column order of ``im2col``
    (a view, no copy, when g is stored batch-innermost)."""
    return g.transpose(1, 2, 3, 0).reshape(g.shape[1], -1)


def col2im(cols: np.ndarray, x_shape: tuple, stride: Pair, padding: Pair) -> np.ndarray:
    """The adjoint of im2col: add cols (N, C, kh, kw, Ho, Wo) back onto x's positions."""
    n, c, kh, kw, ho, wo = cols.shape
    (ph, pw), height, width = padding, x_shape[2], x_shape[3]
    out = workspace.empty((n, c, height + 2 * ph, width + 2 * pw), cols.dtype)
    out.fill(0)
    for k, index in enumerate(offsets((kh, kw), stride, (ho, wo))):
        out[index] += cols[:, :, k // kw, k % kw]
    return out[:, :, ph : ph + height, pw : pw + width]


def offsets(kernel: Pair, stride: Pair, out_hw: Pair) -> list[tuple]:
    """For each kernel offset (i, j), row-major, the index ``(..., rows, columns)`` of the
    elements of x it covers (the leading ``...`` lets a batch of cotangents through)."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    return [
        (Ellipsis, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
        for i in range(kh)
        for j in range(kw)
    ]


def conv_cols(
    cols: np.ndarray, x_shape: tuple, w: np.ndarray, stride: Pair, padding: Pair, b: Any = None
) -> np.ndarray:
    """The conv output y = w * x (+ b) from x's im2col columns, an NCHW view."""
    ho, wo = out_hw(x_shape, w.shape[2:], stride, padding)
    # (O, C·kh·kw) @ (C·kh·kw, Ho·Wo·N): one product for the whole batch
    y = product(w.reshape(w.shape[0], -1), cols)
    if b is not None:
        b = b.reshape(-1, 1)
        if np.result_type(y, b) == y.dtype:
            y += b
        else:
            y = y + b
    # an NCHW view of the (O, Ho, Wo, N) product: elementwise ops downstream keep this
    # memory order, so the next im2col and this layer's rows_of(g) need no transposing copy
    return y.reshape(w.shape[0], ho, wo, x_shape[0]).transpose(3, 0, 1, 2)


def input_array(
    g: np.ndarray, w: np.ndarray, x_shape: tuple, stride: Pair, padding: Pair, rows: Any = None
) -> np.ndarray:
    """conv2d_input: the columns w2ᵀ g2 added back onto the input's positions (col2im).

    ``rows`` is ``rows_of(g)`` when the caller already has it.
    """
    n, o, ho, wo = g.shape
    c, kh, kw = w.shape[1:]
    rows = rows_of(g) if rows is None else rows
    cols = product(w.reshape(o, -1).T, rows).reshape(c, kh, kw, ho, wo, n)
    (ph, pw), height, width = padding, x_shape[2], x_shape[3]
    out = workspace.empty((c, height + 2 * ph, width + 2 * pw, n), cols.dtype)
    out.fill(0)
    for k, (_, rows_at, columns_at) in enumerate(offsets((kh, kw), stride, (ho, wo))):
        out[:, rows_at, columns_at] += cols[:, k // kw, k % kw]
    out = out[:, ph : ph + height, pw : pw + width]
    return out.transpose(3, 0, 1, 2)  # NCHW view of (C, H, W, N) memory, like conv outputs


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for 2-D a and b, written into workspace memory."""
    out = workspace.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    return np.matmul(a, b, out=out)


def weight_array(cols: np.ndarray, g: np.ndarray, w_shape: tuple) -> np.ndarray:
    """conv2d_weight from x's im2col columns: Σ over pixels and batch of g·cols."""
    return gram(rows_of(g), cols).reshape(w_shape)


_GRAM_BLOCK = 4096  # columns per block: both operands' blocks stay in cache


def gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ bᵀ for short, very wide a (m, K) and b (n, K), summed over blocks of K.

    BLAS handles a product with K in the tens of thousands and m, n in the tens badly
    (the weight gradient of a first conv layer: 4× slower than blocks that fit in cache).
    Each block is computed as (b aᵀ)ᵀ: with a = the gradient rows (16, 6400) and b = the
    columns (150, 6400) of a second conv layer, OpenBLAS is 2× faster that way round.
    """
    total = b[:, :_GRAM_BLOCK] @ a[:, :_GRAM_BLOCK].T
    for start in range(_GRAM_BLOCK, a.shape[1], _GRAM_BLOCK):
        total += b[:, start : start + _GRAM_BLOCK] @ a[:, start : start + _GRAM_BLOCK].T
    return total.T


def layout(x: np.ndarray) -> tuple[int, ...]:
    """x's axes from the slowest-varying in memory to the fastest (C order: 0, 1, 2, 3)."""
    return tuple(sorted(range(x.ndim), key=lambda axis: -x.strides[axis]))


def empty(shape: tuple, order: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape`` whose memory order is ``order`` (a ``layout``),
    in workspace memory."""
    memory = workspace.empty([shape[axis] for axis in order], dtype)
    return memory.transpose(np.argsort(order))


def zeros(shape: tuple, order: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Zeros of ``shape`` whose memory order is ``order`` (a ``layout``)."""
    out = empty(shape, order, dtype)
    out.fill(0)
    return out


def in_layout(a: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """a itself when its memory order is ``order``, else a copy in that order. Ufuncs on
    operands of different memory orders are several times slower than one copy."""
    if layout(a) == order:
        return a
    out = empty(a.shape, order, a.dtype)
    np.copyto(out, a)
    return out


def out_hw(x_shape: tuple, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """(Ho, Wo) = ((H + 2·ph − kh) // sh + 1, (W + 2·pw − kw) // sw + 1)."""
    ho = (x_shape[2] + 2 * padding[0] - kernel[0]) // stride[0] + 1
    wo = (x_shape[3] + 2 * padding[1] - kernel[1]) // stride[1] + 1
    return ho, wo
