"""Convolution and pooling layers: ``Conv2d``, ``MaxPool2d``, ``AvgPool2d`` (NCHW).

The layers hold the parameters and options; the maths is the ops ``conv2d``,
``max_pool2d`` and ``avg_pool2d`` of ``chainrule.ops`` (``ops/conv.py``, ``ops/pool.py``),
which keep conv activations stored batch-innermost between layers (see ``ops/im2col.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.nn import init
from chainrule.nn.module import Module, Parameter
from chainrule.ops.conv import as_pair as _pair
from chainrule.ops.conv import conv2d
from chainrule.ops.pool import avg_pool2d, max_pool2d
from chainrule.tensor import Tensor

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d"]


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
