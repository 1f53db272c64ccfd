"""Ops that rearrange or repeat the elements of one tensor: pad, tile, repeat, flip, roll,
split, moveaxis, and ``cat`` (PyTorch's name for ``concatenate``).

Each is a composition of the ops of ``shape`` (indexing, concatenation, reshape, broadcast,
transpose), so its gradient is the adjoint move, stated in each docstring: the incoming
gradient G is sliced, summed over copies or moved back. Being compositions, they are
batchable and differentiable to any order like the ops they are made of.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from chainrule.ops.reduction import normalize_axis
from chainrule.ops.shape import (
    broadcast_to,
    clone,
    concatenate,
    expand_dims,
    getitem,
    reshape,
    transpose,
)
from chainrule.tensor import Tensor

__all__ = ["pad", "tile", "repeat", "flip", "roll", "split", "moveaxis", "cat"]

#: the modes of ``pad``; all but "constant" repeat elements of x (by index)
PadMode = Literal["constant", "edge", "reflect", "symmetric", "wrap"]
PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _axis(axis: Any, ndim: int) -> int:
    """One axis as a non-negative int, range-checked (a clear ValueError otherwise)."""
    (result,) = normalize_axis(int(axis), ndim) or (0,)
    return result


def _along(axis: int, index: Any) -> tuple[Any, ...]:
    """An index that applies ``index`` to axis ``axis`` and keeps the axes before it."""
    return (slice(None),) * axis + (index,)


def _axes_list(axis: Any, ndim: int) -> list[int]:
    """An int or a sequence of axes as non-negative ints, in the order given."""
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return [_axis(a, ndim) for a in axes]


# ------------------------------------------------------------------------------ pad
def pad(x: Any, pad_width: Any, mode: PadMode = "constant", constant_values: Any = 0) -> Tensor:
    """x with ``pad_width`` elements added before and after each axis (``np.pad``).

    ``pad_width`` follows NumPy: an int (all sides), ``(before, after)`` (every axis) or one
    ``(before, after)`` pair per axis. Modes: "constant" (``constant_values``, a number or
    NumPy-style pairs, not differentiated), "edge", "reflect", "symmetric", "wrap".

    y = x in the middle, padding around it. ∂L/∂x = G[b₀:b₀+n₀, b₁:b₁+n₁, …] (the slice of
    the gradient where x sits) for "constant"; the other modes copy elements of x into the
    padding, so each x element also gets the gradient of its copies (a scatter-add).
    """
    x = _tensor(x)
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode {mode!r} is not supported; use one of {PAD_MODES}")
    widths = _pairs(pad_width, x.ndim, "pad_width")
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width must be non-negative, got {pad_width}")
    if mode == "constant":
        fills = _pairs(constant_values, x.ndim, "constant_values", integer=False)
    y = x
    for axis, (before, after) in enumerate(widths.tolist()):
        if not before and not after:
            continue
        if mode == "constant":
            y = _pad_constant(y, axis, before, after, fills[axis])
        else:
            if x.shape[axis] == 0:
                raise ValueError(
                    f"pad: cannot pad the empty axis {axis} of shape {x.shape} "
                    f"in mode {mode!r} (only 'constant' can)"
                )
            source = np.pad(np.arange(x.shape[axis]), (before, after), mode=mode)
            y = getitem(y, _along(axis, source))
    return clone(x) if y is x else y


def _pairs(value: Any, ndim: int, what: str, integer: bool = True) -> np.ndarray:
    """NumPy's (ndim, 2) pairs of a number, a pair or one pair per axis."""
    array = np.asarray(value.data if isinstance(value, Tensor) else value)
    if integer and array.dtype.kind not in "iu":
        raise TypeError(f"pad: {what} must be integers, got {value!r}")
    try:
        return np.broadcast_to(array, (ndim, 2))
    except ValueError as error:
        raise ValueError(
            f"pad: {what} {value!r} does not fit a tensor with {ndim} dimension(s): give an "
            f"int, (before, after), or {ndim} such pairs"
        ) from error


def _pad_constant(y: Tensor, axis: int, before: int, after: int, fill: Any) -> Tensor:
    pieces = []
    for count, value in ((before, fill[0]), (after, fill[1])):
        shape = y.shape[:axis] + (count,) + y.shape[axis + 1 :]
        pieces.append(Tensor(np.full(shape, value, dtype=y.dtype)))
    return concatenate([pieces[0], y, pieces[1]], axis=axis)


# ----------------------------------------------------------------------------- tile
def tile(x: Any, reps: Any) -> Tensor:
    """x repeated ``reps`` times along each axis, as ``np.tile`` (shorter reps are padded
    with 1s in front; a longer one adds leading axes to x).

    y[i₀, i₁, …] = x[i₀ mod n₀, i₁ mod n₁, …];  ∂L/∂x = the sum of G over the tiles
    (G reshaped to (r₀, n₀, r₁, n₁, …) and summed over the r axes).
    """
    x = _tensor(x)
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative, got {reps}")
    ndim = max(len(reps), x.ndim)
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    interleaved = tuple(n for pair in zip((1,) * ndim, shape) for n in pair)
    spread = tuple(n for pair in zip(reps, shape) for n in pair)
    tiled = broadcast_to(reshape(x, interleaved), spread)
    return reshape(tiled, tuple(r * n for r, n in zip(reps, shape)))


# --------------------------------------------------------------------------- repeat
def repeat(x: Any, repeats: Any, axis: int | None = None) -> Tensor:
    """Each element of x repeated ``repeats`` times along ``axis``, as ``np.repeat``
    (PyTorch's ``repeat_interleave``). ``axis=None`` repeats the flattened x; ``repeats``
    is an int or one count per element along the axis.

    y = x[idx] with idx = [0]*r₀ + [1]*r₁ + …;  ∂L/∂x[i] = the sum of G over the rᵢ copies
    of element i.
    """
    x = _tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = _axis(axis, x.ndim)
    counts = np.asarray(repeats.data if isinstance(repeats, Tensor) else repeats)
    if counts.dtype.kind not in "iub":
        raise TypeError(f"repeat: repeats must be integers, got {repeats!r}")
    if (counts < 0).any():
        raise ValueError(f"repeat: repeats must be non-negative, got {repeats!r}")
    n = x.shape[axis]
    if counts.ndim == 0:  # every element r times: a broadcast, whose gradient sums
        r = int(counts)
        wide = broadcast_to(
            expand_dims(x, axis + 1), x.shape[: axis + 1] + (r,) + x.shape[axis + 1 :]
        )
        return reshape(wide, x.shape[:axis] + (n * r,) + x.shape[axis + 1 :])
    if counts.shape not in ((n,), (1,)):
        raise ValueError(
            f"repeat: {counts.size} repeats do not match axis {axis} of length {n} "
            f"(shape {x.shape})"
        )
    return getitem(x, _along(axis, np.repeat(np.arange(n), counts)))


# ----------------------------------------------------------------------------- flip
def flip(x: Any, axis: Any = None) -> Tensor:
    """x with the order of its elements reversed along ``axis`` (all axes by default).

    y = x[::-1] along each axis;  ∂L/∂x = flip(G) along the same axes.
    """
    x = _tensor(x)
    axes = range(x.ndim) if axis is None else normalize_axis(axis, x.ndim) or ()
    index = [slice(None)] * x.ndim
    for a in axes:
        index[a] = slice(None, None, -1)
    return getitem(x, tuple(index))


# ----------------------------------------------------------------------------- roll
def roll(x: Any, shift: Any, axis: Any = None) -> Tensor:
    """x shifted cyclically by ``shift`` places along ``axis``, as ``np.roll``: the elements
    pushed off one end come back at the other. ``axis=None`` rolls the flattened x;
    ``shift`` and ``axis`` may be matching tuples (or one int for several axes).

    y[i] = x[(i − shift) mod n];  ∂L/∂x = roll(G, −shift) along the same axes.
    """
    x = _tensor(x)
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, 0), x.shape)
    axes = _axes_list(axis, x.ndim)
    shifts = np.asarray(shift)
    if shifts.dtype.kind not in "iu":
        raise TypeError(f"roll: shift must be integers, got {shift!r}")
    try:
        shifts, axes_array = np.broadcast_arrays(shifts, np.asarray(axes))
    except ValueError as error:
        raise ValueError(f"roll: shift {shift!r} and axis {axis!r} do not match") from error
    total = dict.fromkeys(range(x.ndim), 0)
    for s, a in zip(shifts.ravel().tolist(), axes_array.ravel().tolist()):
        total[a] += s
    y = x
    for a, s in total.items():
        n = x.shape[a]
        s = s % n if n else 0
        if s:  # the last s elements move to the front
            y = concatenate([getitem(y, _along(a, slice(n - s, None))),
                             getitem(y, _along(a, slice(0, n - s)))], axis=a)  # fmt: skip
    return clone(x) if y is x else y


# ---------------------------------------------------------------------------- split
def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """x cut along ``axis`` into a list of tensors, as ``np.split``: an int N gives N equal
    parts (N must divide the length), a sequence of indices gives the cut points.

    yₖ = x[cₖ:cₖ₊₁] along the axis;  ∂L/∂x = the gradients of the pieces side by side
    (zeros where a piece was not used).
    """
    x = _tensor(x)
    if x.ndim == 0:
        raise ValueError("split: a zero-dimensional tensor cannot be split")
    axis = _axis(axis, x.ndim)
    n = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0 or n % sections:
            raise ValueError(
                f"split: {sections} sections do not divide axis {axis} of length {n} "
                f"(shape {x.shape}) equally; give the cut indices instead"
            )
        cuts = list(range(0, n + 1, n // sections)) if n else [0] * (sections + 1)
    else:
        cuts = [0, *(int(i) for i in indices_or_sections), n]
    return [getitem(x, _along(axis, slice(a, b))) for a, b in zip(cuts[:-1], cuts[1:])]


# ------------------------------------------------------------------------- moveaxis
def moveaxis(x: Any, source: Any, destination: Any) -> Tensor:
    """x with the axes ``source`` moved to the positions ``destination`` (the others keep
    their order), as ``np.moveaxis`` (PyTorch's ``movedim``).

    y = transpose(x, order);  ∂L/∂x = transpose(G, order⁻¹).
    """
    x = _tensor(x)
    sources, destinations = _axes_list(source, x.ndim), _axes_list(destination, x.ndim)
    if len(sources) != len(destinations):
        raise ValueError(
            f"moveaxis: source {source!r} and destination {destination!r} need the same "
            "number of axes"
        )
    if len(set(sources)) != len(sources) or len(set(destinations)) != len(destinations):
        raise ValueError(f"moveaxis: repeated axis in {source!r} or {destination!r}")
    order = [a for a in range(x.ndim) if a not in sources]
    for dest, src in sorted(zip(destinations, sources)):
        order.insert(dest, src)
    return transpose(x, tuple(order))


# ------------------------------------------------------------------------------ cat
def cat(tensors: Sequence[Any], axis: int = 0, dim: int | None = None) -> Tensor:
    """``concatenate`` under PyTorch's name: the tensors joined along an existing axis
    (``dim=`` is accepted for ``axis=``).

    y = [x₁, x₂, …] joined;  each xᵢ gets its slice of G.
    """
    if dim is not None:
        if axis != 0:
            raise TypeError("cat: give axis= or dim=, not both")
        axis = dim
    return concatenate(tensors, axis=axis)
