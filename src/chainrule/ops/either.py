"""Array functions that take an ndarray or a Tensor and return the same kind.

Derivative rules are written with operators, the methods ndarrays and Tensors share
(``reshape``, ``sum``, ``swapaxes``, ``astype``, indexing) and these helpers. So one rule
serves both paths: ndarrays on the fast first-order path, Tensors (recording a graph of the
backward pass) under ``create_graph=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor import Tensor

__all__ = ["exp", "log", "broadcast_to", "scatter_add", "einsum"]


def exp(a: Any) -> Any:
    """eᵃ for an ndarray or a Tensor (recorded), in a derivative rule."""
    return a.exp() if isinstance(a, Tensor) else np.exp(a)


def log(a: Any) -> Any:
    """ln a for an ndarray or a Tensor (recorded), in a derivative rule."""
    return a.log() if isinstance(a, Tensor) else np.log(a)


def broadcast_to(a: Any, shape: tuple[int, ...]) -> Any:
    """``a`` repeated to ``shape`` for an ndarray or a Tensor (recorded)."""
    return a.broadcast_to(shape) if isinstance(a, Tensor) else np.broadcast_to(a, shape)


def scatter_add(grad: Any, shape: tuple[int, ...], index: Any) -> Any:
    """zeros(shape) with ``grad`` added at ``index`` (repeated indices accumulate)."""
    if isinstance(grad, Tensor):
        from chainrule.ops.shape import ScatterAdd

        return ScatterAdd.apply(grad, shape=shape, index=index)
    return scatter_add_array(grad, shape, index)


def scatter_add_array(grad: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=grad.dtype)
    if _is_basic(index):
        out[index] = grad  # basic indexing cannot repeat an element
    else:
        np.add.at(out, index, grad)
    return out


def _is_basic(index: Any) -> bool:
    """True for an index of ints, slices, None and Ellipsis only (a view, no repeats)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts
    )


def einsum(subscripts: str, *operands: Any) -> Any:
    """Einstein summation over ndarrays, or recorded when an operand is a Tensor."""
    if any(isinstance(o, Tensor) for o in operands):
        from chainrule.ops.linalg import einsum as tensor_einsum

        return tensor_einsum(subscripts, *operands)
    return np.einsum(subscripts, *operands, optimize=len(operands) > 2)
