"""Ops that move elements without changing them: reshape, transpose, broadcast, indexing,
concatenation. Their gradients move the incoming gradient back the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.batched import is_batched
from chainrule.function import Function
from chainrule.ops import rules
from chainrule.ops.kernels import batched_index, splits_advanced
from chainrule.ops.reduction import normalize_axis
from chainrule.tensor import Tensor

__all__ = [
    "reshape", "transpose", "swapaxes", "broadcast_to", "getitem", "concatenate", "stack",
    "flatten", "squeeze", "expand_dims", "clone",
]  # fmt: skip


class Reshape(Function):
    """y = x viewed with another shape;  the gradient is reshaped back."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, shape):
        y = x.reshape(shape)
        ctx.shape, ctx.out_ndim = x.shape, y.ndim
        return y

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out.reshape(_lead(grad_out, ctx.out_ndim) + ctx.shape)


class Clone(Function):
    """y = a copy of x in memory of its own;  the gradient passes through unchanged."""

    batchable = True

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out


class Transpose(Function):
    """y = x with its axes permuted;  the gradient is permuted back."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, axes):
        order = tuple(range(x.ndim))[::-1] if axes is None else tuple(axes)
        ctx.inverse = tuple(int(i) for i in np.argsort(order))
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad_out):
        extra = grad_out.ndim - len(ctx.inverse)
        if extra:
            return grad_out.transpose(tuple(range(extra)) + tuple(extra + i for i in ctx.inverse))
        return grad_out.transpose(ctx.inverse)


class BroadcastTo(Function):
    """y = x repeated along broadcast axes;  the engine sums the gradient back to x's shape."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out


class GetItem(Function):
    """y = x[index];  ∂L/∂x = zeros with ∂L/∂y added at index (repeats accumulate)."""

    batchable = True

    @staticmethod
    def forward(ctx, x, *, index):
        y = x[index]
        ctx.shape, ctx.index, ctx.out_ndim = x.shape, index, y.ndim
        if splits_advanced(index):
            ctx.batchable = False  # a leading batch slice would move NumPy's advanced axes
        return y

    @staticmethod
    def backward(ctx, grad_out):
        lead = _lead(grad_out, ctx.out_ndim)
        return rules.scatter_add(grad_out, lead + ctx.shape, batched_index(ctx.index, len(lead)))


class Concatenate(Function):
    """y = [x₁, x₂, …] joined along an axis;  each xᵢ gets its slice of the gradient."""

    batchable = True

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.trailing = (slice(None),) * (xs[0].ndim - 1 - axis)  # axes after the joined one
        ctx.bounds = np.cumsum([0] + [x.shape[axis] for x in xs]).tolist()
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        return tuple(
            grad_out[(Ellipsis, slice(start, stop)) + ctx.trailing]
            for start, stop in zip(ctx.bounds[:-1], ctx.bounds[1:])
        )


def _lead(grad_out: Any, out_ndim: int) -> tuple[int, ...]:
    """The extra leading axes of a batch of cotangents (empty on the ordinary path)."""
    return tuple(grad_out.shape[: grad_out.ndim - out_ndim])


# ------------------------------------------------------------------------- wrappers
def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _one_axis(axis: Any, ndim: int) -> int:
    """One axis as a non-negative int (range-checked)."""
    (result,) = normalize_axis(axis, ndim) or (0,)
    return result


def _shape_arg(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(n) for n in shape)


def reshape(x: Any, shape: Any) -> Tensor:
    """x with a new shape of the same size (one entry may be −1)."""
    x = _tensor(x)
    shape = _shape_arg(shape)
    try:
        return Reshape.apply(x, shape=shape)
    except ValueError as error:
        raise ValueError(
            f"reshape: cannot reshape {x.shape} (size {x.size}) into {shape}"
        ) from error


def transpose(x: Any, axes: Any = None) -> Tensor:
    """x with its axes permuted (reversed by default, as ``ndarray.T``)."""
    x = _tensor(x)
    if axes is not None:
        axes = tuple(_one_axis(a, x.ndim) for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of {x.ndim} axes")
    return Transpose.apply(x, axes=axes)


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    """x with two axes exchanged."""
    x = _tensor(x)
    axis1, axis2 = _one_axis(axis1, x.ndim), _one_axis(axis2, x.ndim)
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose.apply(x, axes=tuple(axes))


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """x repeated along new or size-1 axes to ``shape``, as NumPy broadcasts."""
    x = _tensor(x)
    shape = _shape_arg(shape)
    try:
        np.broadcast_shapes(x.shape, shape)
    except ValueError as error:
        raise ValueError(f"broadcast_to: cannot broadcast {x.shape} to {shape}") from error
    return BroadcastTo.apply(x, shape=shape)


def _index_arg(index: Any) -> Any:
    """Tensors and lists in an index become ndarrays (indices are never differentiated)."""
    if isinstance(index, tuple):
        return tuple(_index_arg(i) for i in index)
    if is_batched(index):  # inside vmap: an index per example (vmap's GetItem rule)
        return index
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x: Any, index: Any) -> Tensor:
    """x[index] with NumPy's basic, integer-array and boolean indexing."""
    return GetItem.apply(_tensor(x), index=_index_arg(index))


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """The tensors joined along an existing axis."""
    tensors = [_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"concatenate: axis {axis} is out of range for {ndim} dimension(s)")
    axis %= ndim
    for t in tensors[1:]:
        other = t.shape[:axis] + t.shape[axis + 1 :]
        if t.ndim != ndim or other != tensors[0].shape[:axis] + tensors[0].shape[axis + 1 :]:
            shapes = [s.shape for s in tensors]
            raise ValueError(f"concatenate: shapes {shapes} differ outside axis {axis}")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new axis."""
    tensors = [_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(
            f"stack: all tensors need the same shape, got {[t.shape for t in tensors]}"
        )
    return concatenate([expand_dims(t, axis) for t in tensors], axis=axis)


def clone(x: Any) -> Tensor:
    """A copy of x in new memory, on the graph (gradients flow back to x): write into it
    in place without touching x."""
    return Clone.apply(_tensor(x))


def flatten(x: Any) -> Tensor:
    """x as a 1-D tensor."""
    return reshape(x, (-1,))


def squeeze(x: Any, axis: Any = None) -> Tensor:
    """x without its size-1 axes (or only the given ones, which must have size 1)."""
    x = _tensor(x)
    if axis is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = normalize_axis(axis, x.ndim) or ()
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {x.shape} does not have size 1")
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return Reshape.apply(x, shape=shape)


def expand_dims(x: Any, axis: Any) -> Tensor:
    """x with new size-1 axes inserted at ``axis`` (an int or a tuple)."""
    x = _tensor(x)
    template = np.broadcast_to(np.empty((), dtype=bool), x.shape)  # shape only, no memory
    return Reshape.apply(x, shape=np.expand_dims(template, axis).shape)
