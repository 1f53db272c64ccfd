"""Convolution and pooling on NCHW batches, vectorised: strided views and matrix products.

The slide's filter convolution W * X (multiply each window by the filter and sum; what
deep-learning libraries call cross-correlation) is computed by im2col: every window of the
padded input is copied once into a column of ``cols`` (C·kh·kw, Ho·Wo·N), and one matrix
product with the filters (O, C·kh·kw) gives all outputs of the whole batch. No Python loop
runs over pixels or over the batch; the loops that remain run over the kh·kw offsets.
The batch is innermost in that product, and a conv output is returned as an NCHW-shaped
view of it: shapes are NCHW everywhere, but activations between conv layers are stored
(C, H, W, N), which is what the next im2col and the gradient rows want.

Convolution is bilinear in (x, w), so its two gradients are bilinear too, and the three
maps are each other's adjoints: ∂/∂x of ``conv2d`` is ``conv2d_input`` (the transposed
convolution) and ∂/∂w is ``conv2d_weight``, and the backward of each of those is again one
of the three. Every backward calls them through dispatchers that record a graph when given
Tensors, so ``Conv2d`` can be differentiated any number of times (``create_graph=True``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule.function import Function
from chainrule.nn import init
from chainrule.nn.module import Module, Parameter
from chainrule.ops import either
from chainrule.tensor import Tensor

__all__ = [
    "conv2d", "conv2d_input", "conv2d_weight", "max_pool2d", "avg_pool2d",
    "Conv2d", "MaxPool2d", "AvgPool2d",
]  # fmt: skip

Pair = tuple[int, int]


# ----------------------------------------------------------------------- array kernels
def _im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
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
        padded = np.zeros((c, height + 2 * ph, width + 2 * pw, n), dtype=x.dtype)
        padded[:, ph : ph + height, pw : pw + width] = x
        x = padded
    else:
        x = np.ascontiguousarray(x)
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    c, ho, wo, n = windows.shape[:4]
    return windows.transpose(0, 4, 5, 1, 2, 3).reshape(c * kh * kw, ho * wo * n)


def _rows_of(g: np.ndarray) -> np.ndarray:
    """(N, O, Ho, Wo) -> (O, Ho·Wo·N): the outputs in the column order of ``_im2col``
    (a view, no copy, when g is stored batch-innermost)."""
    return g.transpose(1, 2, 3, 0).reshape(g.shape[1], -1)


def _col2im(cols: np.ndarray, x_shape: tuple, stride: Pair, padding: Pair) -> np.ndarray:
    """The adjoint of im2col: add cols (N, C, kh, kw, Ho, Wo) back onto x's positions."""
    n, c, kh, kw, ho, wo = cols.shape
    (ph, pw), height, width = padding, x_shape[2], x_shape[3]
    out = np.zeros((n, c, height + 2 * ph, width + 2 * pw), dtype=cols.dtype)
    for k, index in enumerate(_offsets((kh, kw), stride, (ho, wo))):
        out[index] += cols[:, :, k // kw, k % kw]
    return out[:, :, ph : ph + height, pw : pw + width]


def _offsets(kernel: Pair, stride: Pair, out_hw: Pair) -> list[tuple]:
    """For each kernel offset (i, j), row-major, the index of x's elements it covers."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_hw
    return [
        (slice(None), slice(None), slice(i, i + sh * (ho - 1) + 1, sh),
         slice(j, j + sw * (wo - 1) + 1, sw))
        for i in range(kh)
        for j in range(kw)
    ]  # fmt: skip


def _conv_cols(
    cols: np.ndarray, x_shape: tuple, w: np.ndarray, stride: Pair, padding: Pair, b: Any = None
) -> np.ndarray:
    ho, wo = _out_hw(x_shape, w.shape[2:], stride, padding)
    y = w.reshape(w.shape[0], -1) @ cols  # (O, C·kh·kw) @ (C·kh·kw, Ho·Wo·N): one product
    if b is not None:
        b = b.reshape(-1, 1)
        if np.result_type(y, b) == y.dtype:
            y += b
        else:
            y = y + b
    # an NCHW view of the (O, Ho, Wo, N) product: elementwise ops downstream keep this
    # memory order, so the next im2col and this layer's _rows_of(g) need no transposing copy
    return y.reshape(w.shape[0], ho, wo, x_shape[0]).transpose(3, 0, 1, 2)


def _input_array(
    g: np.ndarray, w: np.ndarray, x_shape: tuple, stride: Pair, padding: Pair, rows: Any = None
) -> np.ndarray:
    """conv2d_input: the columns w2ᵀ g2 added back onto the input's positions (col2im).

    ``rows`` is ``_rows_of(g)`` when the caller already has it.
    """
    n, o, ho, wo = g.shape
    c, kh, kw = w.shape[1:]
    rows = _rows_of(g) if rows is None else rows
    cols = (w.reshape(o, -1).T @ rows).reshape(c, kh, kw, ho, wo, n)
    (ph, pw), height, width = padding, x_shape[2], x_shape[3]
    out = np.zeros((c, height + 2 * ph, width + 2 * pw, n), dtype=cols.dtype)
    for k, (_, _, rows, columns) in enumerate(_offsets((kh, kw), stride, (ho, wo))):
        out[:, rows, columns] += cols[:, k // kw, k % kw]
    out = out[:, ph : ph + height, pw : pw + width]
    return out.transpose(3, 0, 1, 2)  # NCHW view of (C, H, W, N) memory, like conv outputs


def _weight_array(cols: np.ndarray, g: np.ndarray, w_shape: tuple) -> np.ndarray:
    return _gram(_rows_of(g), cols).reshape(w_shape)


_GRAM_BLOCK = 4096  # columns per block: both operands' blocks stay in cache


def _gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
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


def _layout(x: np.ndarray) -> tuple[int, ...]:
    """x's axes from the slowest-varying in memory to the fastest (C order: 0, 1, 2, 3)."""
    return tuple(sorted(range(x.ndim), key=lambda axis: -x.strides[axis]))


def _empty(shape: tuple, layout: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array of ``shape`` whose memory order is ``layout``."""
    return np.empty([shape[axis] for axis in layout], dtype).transpose(np.argsort(layout))


def _zeros(shape: tuple, layout: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.zeros([shape[axis] for axis in layout], dtype).transpose(np.argsort(layout))


def _in_layout(a: np.ndarray, layout: tuple[int, ...]) -> np.ndarray:
    """a itself when its memory order is ``layout``, else a copy in that order. Ufuncs on
    operands of different memory orders are several times slower than one copy."""
    if _layout(a) == layout:
        return a
    out = _empty(a.shape, layout, a.dtype)
    np.copyto(out, a)
    return out


def _out_hw(x_shape: tuple, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    ho = (x_shape[2] + 2 * padding[0] - kernel[0]) // stride[0] + 1
    wo = (x_shape[3] + 2 * padding[1] - kernel[1]) // stride[1] + 1
    return ho, wo


# ----------------------------------------------------------------------- the three Functions
class Conv2dFunction(Function):
    """y[n, o] = Σ_c w[o, c] ⋆ x[n, c] + b[o] (cross-correlation; b optional);
    ∂L/∂x = conv2d_input(g, w), ∂L/∂w = conv2d_weight(x, g), ∂L/∂b[o] = Σ_{n,y,x} g[n, o].

    The bias is fused (added in place to the product, its gradient one reduction of the
    rows that ∂L/∂w uses) rather than a separate broadcast add and its sum-to-shape.
    """

    @staticmethod
    def forward(ctx, x, w, b=None, *, stride, padding):
        ctx.stride, ctx.padding = stride, padding
        cols = _im2col(x, w.shape[2:], stride, padding)
        # the columns are reused by the first-order ∂L/∂w, sparing a second im2col
        ctx.save_for_backward(x, w, cols if ctx.needs_input_grad[1] else None)
        return _conv_cols(cols, x.shape, w, stride, padding, b)

    @staticmethod
    def backward(ctx, grad_out):
        x, w, cols = ctx.saved_tensors
        needs = ctx.needs_input_grad
        need_b = len(needs) == 3 and needs[2]
        grad_x = grad_w = grad_b = None
        if isinstance(grad_out, Tensor) or isinstance(w, Tensor):
            # create_graph: recorded, so that the gradients can be differentiated again
            if needs[0]:
                grad_x = conv2d_input(grad_out, w, x.shape, ctx.stride, ctx.padding)
            if needs[1]:
                grad_w = conv2d_weight(x, grad_out, w.shape, ctx.stride, ctx.padding)
            if need_b:
                grad_b = grad_out.sum(axis=(0, 2, 3))
        else:
            rows = _rows_of(grad_out)
            if needs[0]:
                grad_x = _input_array(grad_out, w, x.shape, ctx.stride, ctx.padding, rows)
            if needs[1]:
                grad_w = _gram(rows, cols).reshape(w.shape)
            if need_b:
                grad_b = rows.sum(axis=1)
        return (grad_x, grad_w) if len(needs) == 2 else (grad_x, grad_w, grad_b)


class Conv2dInputFunction(Function):
    """gx = conv2d_input(g, w), the transposed convolution (adjoint of x ↦ conv2d(x, w));
    ∂L/∂g = conv2d(u, w), ∂L/∂w = conv2d_weight(u, g) for u = ∂L/∂gx."""

    @staticmethod
    def forward(ctx, g, w, *, x_shape, stride, padding):
        ctx.stride, ctx.padding = stride, padding
        ctx.save_for_backward(g, w)
        return _input_array(g, w, x_shape, stride, padding)

    @staticmethod
    def backward(ctx, grad_out):
        g, w = ctx.saved_tensors
        grad_g = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_g = _conv_either(grad_out, w, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            grad_w = conv2d_weight(grad_out, g, w.shape, ctx.stride, ctx.padding)
        return grad_g, grad_w


class Conv2dWeightFunction(Function):
    """gw = conv2d_weight(x, g) = Σ_n g[n] ⋆ x[n] (adjoint of w ↦ conv2d(x, w));
    ∂L/∂x = conv2d_input(g, v), ∂L/∂g = conv2d(x, v) for v = ∂L/∂gw."""

    @staticmethod
    def forward(ctx, x, g, *, w_shape, stride, padding):
        ctx.stride, ctx.padding = stride, padding
        ctx.save_for_backward(x, g)
        return _weight_array(_im2col(x, w_shape[2:], stride, padding), g, w_shape)

    @staticmethod
    def backward(ctx, grad_out):
        x, g = ctx.saved_tensors
        grad_x = grad_g = None
        if ctx.needs_input_grad[0]:
            grad_x = conv2d_input(g, grad_out, x.shape, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            grad_g = _conv_either(x, grad_out, ctx.stride, ctx.padding)
        return grad_x, grad_g


def _conv_either(x: Any, w: Any, stride: Pair, padding: Pair) -> Any:
    """conv2d on ndarrays (plain result) or Tensors (recorded), for use inside backward."""
    if isinstance(x, Tensor) or isinstance(w, Tensor):
        return Conv2dFunction.apply(x, w, stride=stride, padding=padding)
    return _conv_cols(_im2col(x, w.shape[2:], stride, padding), x.shape, w, stride, padding)


def conv2d_input(g: Any, w: Any, x_shape: tuple, stride: Any = 1, padding: Any = 0) -> Any:
    """∂L/∂x of y = conv2d(x, w) given g = ∂L/∂y (a transposed convolution), shape x_shape.

    ndarrays in, ndarray out; Tensors in, a recorded Tensor out.
    """
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    x_shape = tuple(x_shape)
    if isinstance(g, Tensor) or isinstance(w, Tensor):
        return Conv2dInputFunction.apply(g, w, x_shape=x_shape, stride=stride, padding=padding)
    return _input_array(g, w, x_shape, stride, padding)


def conv2d_weight(x: Any, g: Any, w_shape: tuple, stride: Any = 1, padding: Any = 0) -> Any:
    """∂L/∂w of y = conv2d(x, w) given g = ∂L/∂y, shape w_shape (ndarrays or Tensors)."""
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    w_shape = tuple(w_shape)
    if isinstance(x, Tensor) or isinstance(g, Tensor):
        return Conv2dWeightFunction.apply(x, g, w_shape=w_shape, stride=stride, padding=padding)
    return _weight_array(_im2col(x, w_shape[2:], stride, padding), g, w_shape)


# ----------------------------------------------------------------------- pooling
def _scatter_sum(parts: list[Tensor], shape: tuple, offsets: list[tuple]) -> Tensor:
    """Σ_k zeros(shape) with parts[k] added at offsets[k]: recorded, for create_graph."""
    grad_x = either.scatter_add(parts[0], shape, offsets[0])
    for part, index in zip(parts[1:], offsets[1:]):
        grad_x = grad_x + either.scatter_add(part, shape, index)
    return grad_x


class MaxPool2dFunction(Function):
    """y = max over each kh×kw window;  ∂L/∂x = g routed to the window's maximum.

    Ties: the first maximum in row-major order within the window gets the whole gradient
    (as PyTorch). Windows may overlap (stride < kernel): gradients then accumulate. A NaN
    in a window propagates to its output (and the window's last element gets its
    gradient). Outputs and gradients keep the memory order of x.
    """

    @staticmethod
    def forward(ctx, x, *, kernel, stride):
        ctx.shape, ctx.kernel, ctx.stride = x.shape, kernel, stride
        ctx.offsets = _offsets(kernel, stride, _out_hw(x.shape, kernel, stride, (0, 0)))
        ctx.layout = _layout(x)
        views = [x[index] for index in ctx.offsets]
        y = views[0].copy(order="K")
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
        if isinstance(grad_out, Tensor):
            parts = [grad_out * (ctx.winner == k) for k in range(len(ctx.offsets))]
            return _scatter_sum(parts, ctx.shape, ctx.offsets)
        grad_out = _in_layout(grad_out, ctx.layout)  # the layout of the winners and of x
        (kh, kw), (sh, sw) = ctx.kernel, ctx.stride
        if sh < kh or sw < kw:  # overlapping windows: their gradients add up
            grad_x = _zeros(ctx.shape, ctx.layout, grad_out.dtype)
            for k, index in enumerate(ctx.offsets):
                grad_x[index] += grad_out * (ctx.winner == k)
            return grad_x
        # disjoint windows: each element of x is written once, by its window's offset
        ho, wo = grad_out.shape[2:]
        covered = (sh, sw) == (kh, kw) and ctx.shape[2:] == (ho * kh, wo * kw)
        grad_x = (_empty if covered else _zeros)(ctx.shape, ctx.layout, grad_out.dtype)
        for k, index in enumerate(ctx.offsets):
            np.multiply(grad_out, ctx.winner == k, out=grad_x[index])
        return grad_x


class AvgPool2dFunction(Function):
    """y = mean over each kh×kw window;  ∂L/∂x: each window's g/(kh·kw) on its elements."""

    @staticmethod
    def forward(ctx, x, *, kernel, stride):
        ctx.shape, ctx.kernel, ctx.stride = x.shape, kernel, stride
        ctx.offsets = _offsets(kernel, stride, _out_hw(x.shape, kernel, stride, (0, 0)))
        views = [x[index] for index in ctx.offsets]
        y = views[0].copy(order="K")
        for view in views[1:]:
            y += view
        return y / (kernel[0] * kernel[1])

    @staticmethod
    def backward(ctx, grad_out):
        share = grad_out / (ctx.kernel[0] * ctx.kernel[1])
        if isinstance(share, Tensor):
            return _scatter_sum([share] * len(ctx.offsets), ctx.shape, ctx.offsets)
        n, c, ho, wo = share.shape
        cols = np.broadcast_to(share[:, :, None, None], (n, c, *ctx.kernel, ho, wo))
        return _col2im(cols, ctx.shape, ctx.stride, (0, 0))


# ----------------------------------------------------------------------- wrappers
def _pair(value: Any, name: str, low: int) -> Pair:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _check_input(name: str, x: Tensor, kernel: Pair, padding: Pair) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name}: expected an NCHW input (4 dimensions), got shape {x.shape}")
    if x.shape[2] + 2 * padding[0] < kernel[0] or x.shape[3] + 2 * padding[1] < kernel[1]:
        raise ValueError(
            f"{name}: input of shape {x.shape} (padding {padding}) is smaller than the "
            f"kernel {kernel}"
        )


def conv2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0) -> Tensor:
    """y = w * x + b: the slide's filter convolution (cross-correlation) of a batch.

    Args:
        x: input (N, C, H, W).
        w: filters (O, C, kh, kw).
        b: optional bias (O,).
        stride: an int or (sh, sw).
        padding: zeros added on each side, an int or (ph, pw).

    Returns:
        (N, O, Ho, Wo) with Ho = (H + 2·ph − kh) // sh + 1, likewise Wo.
    """
    x, w = _as_tensor(x), _as_tensor(w)
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight must have shape (O, C, kh, kw), got {w.shape}")
    _check_input("conv2d", x, w.shape[2:], padding)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"conv2d: the input has {x.shape[1]} channels (shape {x.shape}) but the weight "
            f"expects {w.shape[1]} (weight shape {w.shape})"
        )
    if b is None:
        return Conv2dFunction.apply(x, w, stride=stride, padding=padding)
    b = _as_tensor(b)
    if b.shape != (w.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({w.shape[0]},), got {b.shape}")
    return Conv2dFunction.apply(x, w, b, stride=stride, padding=padding)


def _pool(name: str, function: type[Function], x: Any, kernel_size: Any, stride: Any) -> Tensor:
    x = _as_tensor(x)
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    _check_input(name, x, kernel, (0, 0))
    return function.apply(x, kernel=kernel, stride=stride)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None) -> Tensor:
    """y = max over each window of an NCHW batch (stride defaults to the kernel size).

    On ties the first maximum in the window (row-major) gets the gradient, as PyTorch.
    """
    return _pool("max_pool2d", MaxPool2dFunction, x, kernel_size, stride)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None) -> Tensor:
    """y = mean over each window of an NCHW batch (stride defaults to the kernel size)."""
    return _pool("avg_pool2d", AvgPool2dFunction, x, kernel_size, stride)


# ----------------------------------------------------------------------- modules
class Conv2d(Module):
    """A bank of ``out_channels`` filters convolved over NCHW input: y = w * x + b.

    ``weight`` has shape (out_channels, in_channels, kh, kw); weight and bias start as
    U(−1/√fan_in, 1/√fan_in) with fan_in = in_channels·kh·kw (PyTorch's default).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        bias: bool = True,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=np.float32))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5.0), generator=generator)
        self.bias = None
        if bias:
            bound = 1.0 / math.sqrt(init.fan_in_and_fan_out(shape)[0])
            self.bias = Parameter(np.empty(self.out_channels, dtype=np.float32))
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Any) -> Tensor:
        """y[n, o] = Σ_c w[o, c] ⋆ x[n, c] + b[o]: (N, C, H, W) → (N, O, H′, W′).

        H′ = (H + 2·padding − kh) // stride + 1, likewise W′; ⋆ is the slides'
        multiply-and-sum (cross-correlation). See ``conv2d``.
        """
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        """``in, out, kernel_size=…, stride=…[, padding=…][, bias=False]`` for ``repr``."""
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        text += f", stride={self.stride}"
        text += f", padding={self.padding}" if self.padding != (0, 0) else ""
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    """What max and average pooling share: a kernel size and a stride."""

    def __init__(self, kernel_size: Any, stride: Any = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride

    def extra_repr(self) -> str:
        """``kernel_size=…, stride=…`` for ``repr(module)``."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max over kh×kw windows (stride defaults to the kernel size); ties: first maximum."""

    def forward(self, x: Any) -> Tensor:
        """y = max over each window of x (NCHW); the gradient goes to the first maximum."""
        return max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2d(_Pool2d):
    """Mean over kh×kw windows (stride defaults to the kernel size)."""

    def forward(self, x: Any) -> Tensor:
        """y = mean over each window of x (NCHW); each input gets 1/(kh·kw) of the gradient."""
        return avg_pool2d(x, self.kernel_size, self.stride)
