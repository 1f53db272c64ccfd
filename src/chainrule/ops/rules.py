"""Rule helpers: what a derivative rule is written with, so that it runs on ndarrays *and*
on Tensors.

The engine calls a ``backward`` with ndarrays on the ordinary first-order path (plain NumPy
speed) and with Tensors under ``create_graph=True``, when the backward pass is itself
recorded so that it can be differentiated again (``hessian``, nested ``grad``, ``jvp``).
A rule written once with operators (``+ - * / ** @``, comparisons, indexing), the methods
ndarrays and Tensors share (``reshape``, ``sum``, ``mean``, ``swapaxes``, ``transpose``,
``astype``, ``clip``) and the helpers below serves both: each helper takes an ndarray or a
Tensor and returns the same kind. A rule that calls ``np.exp`` directly instead still
gives first derivatives; differentiating it twice raises an error naming its Function.

Each helper mirrors one primitive that has no shared method (or whose Tensor method would
record a node the ndarray path must not pay for). The built-in ops use exactly these, so a
user's ``Function`` written with them is differentiable to any order, like the built-ins::

    from chainrule.ops import rules

    class Softplus(cr.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.logaddexp(0.0, x)

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            return grad_out * rules.sigmoid(x)

A rule may also be ``batchable`` (``Function.batchable = True``): it then accepts extra
leading axes on ``grad_out`` (a batch of cotangents, one per row of a Jacobian) and returns
gradients with the same leading axes. Elementwise rules are batchable as written;
``broadcast_to``, ``scatter_add`` and ``einsum`` below take the leading axes in their
``shape``/``index``/``...`` arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops.conv import conv2d_any, conv2d_input_any, conv2d_weight_any
from chainrule.ops.einsum import einsum_any as einsum
from chainrule.ops.kernels import scatter_add_array, sigmoid_array
from chainrule.ops.scatter import ScatterAdd
from chainrule.tensor import Tensor

__all__ = [
    "exp", "log", "sigmoid", "broadcast_to", "scatter_add", "einsum", "conv2d",
    "conv2d_input", "conv2d_weight",
]  # fmt: skip

Pair = tuple[int, int]  # (rows, columns) of a stride or a padding


def exp(a: Any) -> Any:
    """eᵃ, elementwise: ``np.exp`` on an ndarray, the recorded ``exp`` on a Tensor."""
    return a.exp() if isinstance(a, Tensor) else np.exp(a)


def log(a: Any) -> Any:
    """ln a, elementwise: ``np.log`` on an ndarray, the recorded ``log`` on a Tensor."""
    return a.log() if isinstance(a, Tensor) else np.log(a)


def sigmoid(a: Any) -> Any:
    """σ(a) = 1/(1 + e⁻ᵃ), elementwise and stable for any |a| (for an ndarray or a Tensor)."""
    return a.sigmoid() if isinstance(a, Tensor) else sigmoid_array(a)


def broadcast_to(a: Any, shape: tuple[int, ...]) -> Any:
    """``a`` repeated to ``shape`` (NumPy's broadcasting), for an ndarray or a Tensor.

    A reduction's rule spreads its gradient back with it; a batch of cotangents goes in
    front of ``shape``.
    """
    return a.broadcast_to(shape) if isinstance(a, Tensor) else np.broadcast_to(a, shape)


def scatter_add(grad: Any, shape: tuple[int, ...], index: Any) -> Any:
    """zeros(shape) with ``grad`` added at ``index`` (repeated indices accumulate, as
    ``np.add.at``): the adjoint of ``x[index]``, for an ndarray or a Tensor (recorded as
    ``ScatterAdd``, whose own derivative is indexing again)."""
    if isinstance(grad, Tensor):
        return ScatterAdd.apply(grad, shape=shape, index=index)
    return scatter_add_array(grad, shape, index)


def conv2d(x: Any, w: Any, stride: Pair = (1, 1), padding: Pair = (0, 0)) -> Any:
    """The convolution of ``cr.ops.conv2d`` (no bias) for ndarrays or Tensors.

    Extra leading axes on x (..., N, C, H, W) or on w (..., O, C, kh, kw), not both, are a
    batch: the result has them in front.
    """
    return conv2d_any(x, w, stride, padding)


def conv2d_input(
    g: Any, w: Any, x_shape: tuple[int, ...], stride: Pair = (1, 1), padding: Pair = (0, 0)
) -> Any:
    """The transposed convolution of ``cr.ops.conv2d_input`` for ndarrays or Tensors
    (a batch of leading axes on g or w, as in ``conv2d``)."""
    return conv2d_input_any(g, w, x_shape, stride, padding)


def conv2d_weight(
    x: Any, g: Any, w_shape: tuple[int, ...], stride: Pair = (1, 1), padding: Pair = (0, 0)
) -> Any:
    """The filter gradient of ``cr.ops.conv2d_weight`` for ndarrays or Tensors
    (a batch of leading axes on x or g, as in ``conv2d``)."""
    return conv2d_weight_any(x, g, w_shape, stride, padding)
