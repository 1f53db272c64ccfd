"""``cr.vmap``: a function of one example, run on a whole batch at once.

``vmap(f, in_axes, out_axes)(*args)`` equals stacking ``f`` of each example along
``out_axes``, where the examples are the slices of the arguments along ``in_axes`` (None:
the argument is the same for every example). It does not loop: f runs once, on
``Batched`` values whose ops apply their batching rules (``chainrule.batching``), so
``vmap(f)`` costs about what f costs on a batch. It composes with the other transforms:
``vmap(grad(loss), in_axes=(None, 0, 0))(params, xs, ys)`` gives one gradient per example,
and vmap nests (each level one more leading batch axis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import batching
from chainrule.batched import LEVELS, Batched, physical
from chainrule.mode import STATE
from chainrule.ops.shape import BroadcastTo, GetItem, Reshape, Transpose, stack
from chainrule.tensor import Tensor
from chainrule.tree import tree_flatten, tree_unflatten

__all__ = ["vmap"]

_LEAVES = (Tensor, np.ndarray, np.generic, int, float, complex)
_next_level = [0]


def vmap(f: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0) -> Callable[..., Any]:
    """f mapped over an axis of its arguments: ``vmap(f)(xs)[i] == f(xs[i])``.

    Args:
        f: a function of arrays and pytrees of arrays (tuples, lists, dicts).
        in_axes: the axis of each argument to map over: an int or None for all of them
            (None: the argument is shared by every example), or a tuple with one entry per
            positional argument, each an int, None, or a pytree matching the argument.
        out_axes: where the batch axis goes in each output (an int, or a pytree of ints
            matching f's output; None for an output that does not vary over the batch).

    Returns:
        The batched function. Its results have the batch axis inserted at ``out_axes``.
        Gradients flow through it; transforms nest inside it, e.g.
        ``vmap(grad(loss), in_axes=(None, 0, 0))`` for per-example gradients.
    """
    name = getattr(f, "__name__", "f")

    def vmapped(*args: Any) -> Any:
        leaves, treedef = tree_flatten(list(args))
        axes, names = _axes_per_leaf(in_axes, args)
        size = _batch_size(leaves, axes, names)
        try:
            return _batched(f, leaves, treedef, axes, size, out_axes)
        except batching.Unbatchable:
            # a transform inside f has no batched form: one call per example instead
            return _looped(f, leaves, treedef, axes, size, out_axes)

    vmapped.__name__ = f"vmap({name})"
    return vmapped


# ------------------------------------------------------------------ in_axes
def _axes_per_leaf(in_axes: Any, args: tuple[Any, ...]) -> tuple[list[Any], list[str]]:
    """One axis (or None) per leaf of the arguments, from in_axes as JAX reads it, and
    each leaf's name for messages ("argument 1", "argument 0, leaf 2")."""
    if isinstance(in_axes, (int, type(None))):
        per_arg: Any = [in_axes] * len(args)
    elif isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            entries = "entry" if len(in_axes) == 1 else "entries"
            raise ValueError(
                f"vmap: in_axes has {len(in_axes)} {entries} for {len(args)} positional "
                f"argument(s); give one per argument (an int, None or a pytree of them)"
            )
        per_arg = list(in_axes)
    else:
        raise TypeError(
            f"vmap: in_axes must be an int, None, or a tuple with one entry per argument, "
            f"got {type(in_axes).__name__}"
        )
    axes: list[Any] = []
    names: list[str] = []
    for number, (spec, arg) in enumerate(zip(per_arg, args)):
        found = _prefix(spec, arg, f"argument {number}")
        axes.extend(found)
        if len(found) == 1:
            names.append(f"argument {number}")
        else:
            names.extend(f"argument {number}, leaf {i}" for i in range(len(found)))
    return axes, names


def _prefix(spec: Any, value: Any, where: str, what: str = "in_axes") -> list[Any]:
    """``spec`` (an axis or a pytree of axes, a prefix of value's structure) per leaf;
    ``what`` and ``where`` name it in messages ("in_axes", "argument 1")."""
    if spec is None or isinstance(spec, int):
        if spec is not None and isinstance(spec, bool):
            raise TypeError(f"vmap: {what} for {where} is a bool; give an int or None")
        return [spec] * len(tree_flatten(value)[0])
    if isinstance(spec, dict) and isinstance(value, dict) and spec.keys() == value.keys():
        return [
            axis for key in sorted(value) for axis in _prefix(spec[key], value[key], where, what)
        ]  # fmt: skip
    if (
        isinstance(spec, (tuple, list))
        and isinstance(value, (tuple, list))
        and len(spec) == len(value)
    ):
        return [axis for s, v in zip(spec, value) for axis in _prefix(s, v, where, what)]
    whose = "the argument's" if what == "in_axes" else "the output's"
    raise ValueError(
        f"vmap: {what} for {where} has the structure {_describe(spec)}, which does not "
        f"match {whose} {_describe(value)}"
    )


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_describe(v) for v in value)
        return (
            f"({inner},)"
            if isinstance(value, tuple) and len(value) == 1
            else (f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
        )
    if value is None:
        return "None"
    if isinstance(value, int):
        return str(value)
    return f"array{_shape(value)}"


def _shape(value: Any) -> tuple[int, ...]:
    """An array's shape; a Batched value's is one example's (inside an enclosing vmap)."""
    return value.shape if isinstance(value, Tensor) else np.shape(value)


def _batch_size(leaves: list[Any], axes: list[Any], names: list[str]) -> int:
    sizes: dict[int, list[str]] = {}
    for leaf, axis, name in zip(leaves, axes, names):
        if axis is None:
            continue
        if not isinstance(leaf, _LEAVES):
            raise TypeError(
                f"vmap: can only map over arrays, got {type(leaf).__name__} for {name}"
            )
        shape = _shape(leaf)
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"vmap: in_axes {axis} is out of range for {name}, of shape {shape}")
        sizes.setdefault(shape[axis], []).append(f"{name} {shape} along axis {axis}")
    if not sizes:
        raise ValueError(
            "vmap: in_axes maps no argument (all None); at least one must have a batch axis"
        )
    if len(sizes) > 1:
        found = "; ".join(f"size {n}: {', '.join(where)}" for n, where in sizes.items())
        raise ValueError(f"vmap: the mapped axes have different sizes ({found})")
    return next(iter(sizes))


# ------------------------------------------------------------------ the batched call
def _batched(
    f: Callable[..., Any], leaves: list, treedef: Any, axes: list, size: int, out_axes: Any
) -> Any:
    level = _next_level[0] = _next_level[0] + 1
    LEVELS.append((level, size))
    saved = STATE.vmap, STATE.fast
    STATE.vmap_depth += 1
    STATE.fast = False
    try:
        with physical():
            inputs = [
                leaf if axis is None else _move_in(leaf, axis, level)
                for leaf, axis in zip(leaves, axes)
            ]
        STATE.vmap = batching.dispatch
        out = f(*tree_unflatten(treedef, inputs))
        return _outputs(out, out_axes, level, size)  # moves axes in physical mode
    finally:
        LEVELS.pop()
        STATE.vmap_depth -= 1
        STATE.vmap, STATE.fast = saved


def _move_in(leaf: Any, axis: int, level: int) -> Batched:
    """The leaf as a Batched value of ``level``: its axis ``axis`` moved behind the batch
    axes of enclosing levels (levels are ordered outermost first)."""
    if not isinstance(leaf, Tensor):
        leaf = Tensor(leaf)
    levels = leaf._levels if type(leaf) is Batched else ()
    k = len(levels)
    ndim = leaf.ndim  # physical mode: the whole array's
    source = k + axis % (ndim - k)
    # a leaf that requires grad gets a node of its own, so its gradient reaches it
    moved = _move_axis(leaf, source, k, always=leaf.requires_grad)
    return Batched.wrap(moved, (*levels, level))


def _move_axis(tensor: Tensor, source: int, target: int, always: bool = False) -> Tensor:
    """The tensor with axis ``source`` moved to position ``target`` (physical mode); the
    tensor itself when nothing moves, unless ``always``."""
    order = [i for i in range(tensor.ndim) if i != source]
    order.insert(target, source)
    if order == list(range(tensor.ndim)) and not always:
        return tensor
    return Transpose.apply(tensor, axes=tuple(order))


def _outputs(out: Any, out_axes: Any, level: int, size: int) -> Any:
    leaves, treedef = tree_flatten(out)
    axes = _prefix(out_axes, out, "the output", "out_axes")
    with physical():
        results = [_move_out(leaf, axis, level, size) for leaf, axis in zip(leaves, axes)]
    return tree_unflatten(treedef, results)


def _move_out(leaf: Any, axis: Any, level: int, size: int) -> Any:
    """The output leaf with this level's batch axis at ``axis`` of its example."""
    if not _is_array(leaf):
        raise TypeError(
            f"vmap: f must return arrays or pytrees of arrays, got {type(leaf).__name__}"
        )
    levels = leaf._levels if type(leaf) is Batched else ()
    if level not in levels:
        if axis is None:
            return leaf
        tensor: Tensor = leaf if isinstance(leaf, Tensor) else Tensor(leaf)
        k = len(levels)
        at = k + axis % (tensor.ndim - k + 1)
        expanded = Reshape.apply(tensor, shape=tensor.shape[:at] + (1,) + tensor.shape[at:])
        spread = BroadcastTo.apply(
            expanded, shape=expanded.shape[:at] + (size,) + expanded.shape[at + 1 :]
        )
        return Batched.wrap(spread, levels) if levels else spread
    if axis is None:
        raise ValueError(
            "vmap: out_axes is None for an output that varies over the batch; give the "
            "axis where its batch axis should go"
        )
    source = levels.index(level)
    rest = tuple(lv for lv in levels if lv != level)
    k = len(rest)
    rank = leaf.ndim - len(levels) + 1  # the output example's rank with the batch axis
    target = k + axis % rank
    moved = _move_axis(leaf, source, target)
    if rest:
        return Batched.wrap(moved, rest)
    return Tensor._make(moved.data, moved._node) if type(moved) is Batched else moved


def _is_array(leaf: Any) -> bool:
    return isinstance(leaf, _LEAVES)


# ------------------------------------------------------------------ the fallback
def _looped(
    f: Callable[..., Any], leaves: list, treedef: Any, axes: list, size: int, out_axes: Any
) -> Any:
    """f once per example, the results stacked: for transforms without a batched form."""
    results = []
    for i in range(size):
        sliced = [
            leaf if axis is None else _slice(leaf, axis, i) for leaf, axis in zip(leaves, axes)
        ]
        results.append(f(*tree_unflatten(treedef, sliced)))
    flat = [tree_flatten(r) for r in results]
    out_def = flat[0][1]
    axes_out = _prefix(out_axes, results[0], "the output", "out_axes")
    stacked = []
    for j, axis in enumerate(axes_out):
        column = [leaves_i[j] for leaves_i, _ in flat]
        stacked.append(column[0] if axis is None else stack(column, axis=axis))
    return tree_unflatten(out_def, stacked)


def _slice(leaf: Any, axis: int, i: int) -> Any:
    if not isinstance(leaf, Tensor):
        return np.take(np.asarray(leaf), i, axis=axis)
    index = (slice(None),) * (axis % leaf.ndim) + (i,)
    return GetItem.apply(leaf, index=index)
