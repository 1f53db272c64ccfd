"""Batching rules: each op on a whole batch at once, for ``cr.vmap``.

Inside ``vmap`` an op meets ``Batched`` inputs (``chainrule.batched``): arrays with one
leading batch axis per vmap level, whose example is the rest. ``dispatch`` finds the op's
rule, which calls the op itself once on the whole batch with its options moved past the
batch axes (a sum over the example's axis 0 is a sum over axis k of the batch), and
records that call on the graph as usual: gradients, first and second order, flow through
batched calls as through any other.

The rules, by kind of op:

- elementwise ops: operands get size-1 axes for the levels they lack and for the example
  rank they lack, then NumPy broadcasts (unbatched operands are left alone);
- reductions, scans and softmax: axes shifted by the number of batch axes;
- reshape, transpose, broadcast_to, indexing, concatenate: the batch axes put in front of
  the shape, the permutation, the index;
- matmul: vectors made matrices and back, stacks aligned; ``affine`` is matmul and add;
- einsum: one more letter per batch axis; conv2d and pooling: batch folded into N;
- cross-entropy with batched labels: per-element losses on the folded batch, then reduced.

An op without a rule (a user's ``Function``, decompositions, checkpoint) runs once per
example and the results are stacked: correct, at a Python loop's speed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.batched import (
    LEVELS,
    Batched,
    aligned_shape,
    batch_levels,
    example_ndim,
    physical,
    shift_axes,
)
from chainrule.function import Function
from chainrule.ops import (
    conv,
    decompositions,
    elementwise,
    exponential,
    inverse,
    linalg,
    losses,
    normal,
    piecewise,
    pool,
    powers,
    reduction,
    rounding,
    scan,
    shape,
    special,
    trigonometric,
)
from chainrule.ops.einsum import Einsum
from chainrule.tensor import Tensor

__all__ = ["dispatch", "lift", "Unbatchable", "RULES", "rule_for"]

Rule = Callable[[type[Function], list[Any], dict[str, Any], tuple[int, ...]], Tensor]


class Unbatchable(Exception):
    """A transform without a batched form was called inside vmap: the enclosing vmap
    falls back to calling the function once per example."""


def dispatch(cls: type[Function], inputs: tuple[Any, ...], options: dict[str, Any]) -> Any:
    """``cls.apply(*inputs, **options)`` for batched inputs, by the op's rule; None when no
    input or option is batched (the op runs as usual)."""
    levels: set[int] = set()
    for value in (*inputs, *options.values()):
        if type(value) is Batched:
            levels.update(value._levels)
        elif type(value) is tuple:  # an index with a batched part
            for part in value:
                if type(part) is Batched:
                    levels.update(part._levels)
    if not levels:
        return None
    union = tuple(sorted(levels))
    rule = _rule(cls)
    if cls in _LOGICAL:  # a rule written with other ops, which dispatch in turn
        return rule(cls, list(inputs), dict(options), union)
    with physical():
        out = rule(cls, list(inputs), dict(options), union)
    return Batched.wrap(out, union)


def rule_for(cls: type[Function]) -> str:
    """The name of the rule that batches ``cls`` ("per example" when it has none)."""
    return _rule(cls).__name__.strip("_").replace("_", " ")


def _rule(cls: type[Function]) -> Rule:
    return _LOGICAL.get(cls) or RULES.get(cls) or _declared(cls)


# ------------------------------------------------------------------ helpers (physical)
def _sizes(levels: tuple[int, ...]) -> tuple[int, ...]:
    size = dict(LEVELS)
    return tuple(size[level] for level in levels)


def _aligned(value: Any, levels: tuple[int, ...], rank: int | None = None) -> Any:
    """A Batched value with an axis per level (size 1 where it lacks one) and its example
    padded to ``rank`` axes; anything else as it is."""
    if type(value) is not Batched:
        return value
    target = aligned_shape(value, levels, example_ndim(value) if rank is None else rank)
    if target == value.array.shape:
        return value
    return shape.Reshape.apply(value, shape=target)


def _full(value: Any, levels: tuple[int, ...]) -> Any:
    """The value with all of ``levels``' batch axes at full size (unbatched values are
    broadcast: a view, and on the graph for a Tensor)."""
    sizes = _sizes(levels)
    k = len(levels)
    if type(value) is Batched:
        value = _aligned(value, levels)
        if value.shape[:k] == sizes:
            return value
        return shape.BroadcastTo.apply(value, shape=sizes + value.shape[k:])
    if isinstance(value, Tensor):
        return shape.BroadcastTo.apply(value, shape=sizes + value.shape)
    array = np.asarray(value)
    return np.broadcast_to(array, sizes + array.shape)


def _array(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _per_example(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    """The fallback: the op once per example, the results stacked (on the graph)."""
    sizes = _sizes(levels)
    inputs = [_full(x, levels) if type(x) is Batched else x for x in inputs]
    options = {name: _full_option(value, levels) for name, value in options.items()}
    outs = []
    for index in np.ndindex(*sizes):
        xs = [shape.GetItem.apply(x, index=index) if type(x) is Batched else x for x in inputs]
        opts = {name: _option_at(value, index) for name, value in options.items()}
        outs.append(cls.apply(*xs, **opts))
    shapes = {out.shape for out in outs}
    if len(shapes) != 1:
        raise ValueError(
            f"vmap: {cls.__name__} gives results of different shapes for different examples "
            f"({sorted(shapes)}); vmap needs one shape per batch"
        )
    (example,) = shapes
    rows = [shape.Reshape.apply(out, shape=(1, *example)) for out in outs]
    stacked = rows[0] if len(rows) == 1 else shape.Concatenate.apply(*rows, axis=0)
    return shape.Reshape.apply(stacked, shape=sizes + example)


class _PerExample:
    """An option that differs per example: the whole batch's array, batch axes first."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _full_option(value: Any, levels: tuple) -> Any:
    if type(value) is Batched:
        return _PerExample(_array(_full(value, levels)))
    if type(value) is tuple and any(type(part) is Batched for part in value):
        return tuple(_full_option(part, levels) for part in value)
    return value


def _option_at(value: Any, index: tuple[int, ...]) -> Any:
    if type(value) is _PerExample:
        return value.array[index]
    if type(value) is tuple:
        return tuple(_option_at(part, index) for part in value)
    return value


# ------------------------------------------------------------------ the rules
def _elementwise(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    batched_options = [v for v in options.values() if type(v) is Batched]
    rank = max(example_ndim(v) for v in (*inputs, *batched_options))
    inputs = [_aligned(x, levels, rank) for x in inputs]
    for name, value in options.items():
        if type(value) is Batched:
            options[name] = _array(_aligned(value, levels, rank))
    return cls.apply(*inputs, **options)


def _reduction(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    (x,) = inputs
    options["axes"] = shift_axes(options["axes"], len(levels), example_ndim(x))
    return cls.apply(x, **options)


def _along_axis(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    (x,) = inputs
    if options["axis"] is None:  # over the flattened example
        return _per_example(cls, inputs, options, levels)
    options["axis"] = options["axis"] % example_ndim(x) + len(levels)
    return cls.apply(x, **options)


def _reshape(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    (x,) = inputs
    return cls.apply(x, shape=x.shape[: len(levels)] + tuple(options["shape"]))


def _transpose(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    (x,) = inputs
    k = len(levels)
    rank = example_ndim(x)
    axes = options["axes"]
    axes = reversed(range(rank)) if axes is None else (a % rank for a in axes)
    return cls.apply(x, axes=(*range(k), *(a + k for a in axes)))


def _broadcast_to(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    target = tuple(options["shape"])
    x = _aligned(inputs[0], levels, len(target))
    return cls.apply(x, shape=x.shape[: len(levels)] + target)


def _getitem(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    index = options["index"]
    index = index if isinstance(index, tuple) else (index,)
    # beside an array, an integer is an advanced index too; advanced indices that are not
    # next to each other move their axes to the front, in front of the batch axes
    arrays = [i for i, part in enumerate(index) if isinstance(part, np.ndarray)]
    if arrays:
        arrays = [
            i for i, part in enumerate(index)
            if isinstance(part, (np.ndarray, int, np.integer)) and not isinstance(part, bool)
        ]  # fmt: skip
    simple = all(
        isinstance(part, (int, np.integer, slice, type(None), type(Ellipsis), np.ndarray))
        and not (isinstance(part, np.ndarray) and part.dtype == bool)
        and not isinstance(part, (bool, np.bool_))
        for part in index
    )
    adjacent = not arrays or arrays == list(range(arrays[0], arrays[-1] + 1))
    if not simple or not adjacent:
        return _per_example(cls, inputs, options, levels)
    return cls.apply(inputs[0], index=(slice(None),) * len(levels) + index)


def _concatenate(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    rank = max(example_ndim(x) for x in inputs)
    xs = [_full(x, levels) for x in inputs]
    return cls.apply(*xs, axis=options["axis"] % rank + len(levels))


def _matmul(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    a, b = inputs
    k = len(levels)
    batched_a, batched_b = type(a) is Batched, type(b) is Batched
    matrix_b = batched_b or np.ndim(_array(b)) >= 2  # else NumPy drops b's column axis
    vector_a = batched_a and example_ndim(a) == 1
    vector_b = batched_b and example_ndim(b) == 1
    # a batched vector becomes a matrix; stacks of matrices are aligned from the right
    rank = max(
        max(example_ndim(a), 2) if batched_a else np.ndim(_array(a)),
        max(example_ndim(b), 2) if batched_b else np.ndim(_array(b)),
    )
    if batched_a:
        a = _aligned(a, levels)
        if vector_a:  # (n) as a (1, n) matrix
            a = shape.Reshape.apply(a, shape=a.shape[:k] + (1,) + a.shape[k:])
        a = _pad(a, k, rank)
    if batched_b:
        b = _aligned(b, levels)
        if vector_b:  # (n) as an (n, 1) matrix
            b = shape.Reshape.apply(b, shape=b.shape + (1,))
        b = _pad(b, k, rank)
    out = cls.apply(a, b)
    if vector_a or vector_b:
        drop = {out.ndim - 2 if matrix_b else out.ndim - 1} if vector_a else set()
        drop |= {out.ndim - 1} if vector_b else set()
        kept = tuple(n for i, n in enumerate(out.shape) if i not in drop)
        out = shape.Reshape.apply(out, shape=kept)
    return out


def _pad(x: Tensor, k: int, rank: int) -> Tensor:
    """x (k batch axes first) with size-1 axes after the batch axes up to ``rank``
    example axes."""
    extra = rank - (x.ndim - k)
    if extra <= 0:
        return x
    return shape.Reshape.apply(x, shape=x.shape[:k] + (1,) * extra + x.shape[k:])


def _affine(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    x, w = inputs[0], inputs[1]
    out = linalg.MatMul.apply(x, w)
    if len(inputs) > 2 and inputs[2] is not None:
        out = elementwise.Add.apply(out, inputs[2])
    return out


def _einsum(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    terms, output = list(options["inputs"]), options["output"]
    used = set("".join(terms) + output)
    if "." in "".join(terms) + output:
        return _per_example(cls, inputs, options, levels)
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    prefix = "".join(free[: len(levels)])
    operands = []
    for i, x in enumerate(inputs):
        if type(x) is Batched:
            operands.append(_full(x, levels))
            terms[i] = prefix + terms[i]
        else:
            operands.append(x)
    return cls.apply(*operands, inputs=type(options["inputs"])(terms), output=prefix + output)


def _stacks(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    """Ops on the last axes that take stacks already (det, inv, cholesky, ...)."""
    return cls.apply(*[_full(x, levels) if type(x) is Batched else x for x in inputs], **options)


def _images(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    """conv2d and pooling with batched images and unbatched weights: the batch folded
    into N, then unfolded."""
    if any(type(x) is Batched for x in inputs[1:]):
        return _per_example(cls, inputs, options, levels)
    k = len(levels)
    x = _full(inputs[0], levels)
    folded = shape.Reshape.apply(x, shape=(-1,) + x.shape[k + 1 :])
    out = cls.apply(folded, *inputs[1:], **options)
    return shape.Reshape.apply(out, shape=x.shape[: k + 1] + out.shape[1:])


def _cross_entropy(cls: type[Function], inputs: list, options: dict, levels: tuple) -> Tensor:
    """Per-element losses with the batch folded into N, then each example's reduction."""
    k = len(levels)
    x = _full(inputs[0], levels)
    labels = _array(_full(options["labels"], levels))
    if options["axis"] == 0:  # one example's logits (C): the batch is N
        folded = shape.Reshape.apply(x, shape=(-1, x.shape[-1]))
        flat_labels = np.reshape(labels, (-1,))
    else:
        folded = shape.Reshape.apply(x, shape=(-1,) + x.shape[k + 1 :])
        flat_labels = np.reshape(labels, (-1,) + labels.shape[k + 1 :])
    losses_ = cls.apply(folded, labels=flat_labels, axis=1, reduction="none")
    per_element = shape.Reshape.apply(losses_, shape=labels.shape)
    if options["reduction"] == "none":
        return per_element
    axes = tuple(range(k, per_element.ndim))
    reduce = reduction.Mean if options["reduction"] == "mean" else reduction.Sum
    return reduce.apply(per_element, axes=axes, keepdims=False)


# ------------------------------------------------------------------ the table
RULES: dict[type[Function], Rule] = {}
_LOGICAL: dict[type[Function], Rule] = {linalg.Affine: _affine}

_ELEMENTWISE = [
    elementwise.Add, elementwise.Sub, elementwise.Mul, elementwise.Div, elementwise.Pow,
    elementwise.Neg, elementwise.Exp, elementwise.Log, elementwise.Sqrt, elementwise.Tanh,
    elementwise.Sigmoid, elementwise.Softplus, elementwise.PowConst, elementwise.Astype,
    exponential.Expm1, exponential.Log10, exponential.Log1p, exponential.Log2,
    normal.NormalCdf, piecewise.Abs, piecewise.Clip, piecewise.Maximum, piecewise.Minimum,
    piecewise.Relu, piecewise.SafeSqrt, piecewise.Where, powers.Reciprocal, powers.Square,
    rounding.Ceil, rounding.Floor, rounding.Round, rounding.Sign, special.Erf,
    trigonometric.Arccos, trigonometric.Arcsin, trigonometric.Arctan, trigonometric.Arctan2,
    trigonometric.Cos, trigonometric.Cosh, trigonometric.Sin, trigonometric.Sinh,
    trigonometric.Tan, shape.Clone,
]  # fmt: skip
RULES.update(dict.fromkeys(_ELEMENTWISE, _elementwise))
RULES.update(dict.fromkeys(
    [reduction.Sum, reduction.Mean, reduction.MaxMin, reduction.LogSumExp], _reduction
))  # fmt: skip
RULES.update(dict.fromkeys(
    [reduction.Softmax, reduction.LogSoftmax, scan.Cumsum, scan.Cumprod], _along_axis
))  # fmt: skip
RULES.update({
    shape.Reshape: _reshape, shape.Transpose: _transpose, shape.BroadcastTo: _broadcast_to,
    shape.GetItem: _getitem, shape.Concatenate: _concatenate, linalg.MatMul: _matmul,
    Einsum: _einsum, conv.Conv2dFunction: _images, pool.MaxPool2dFunction: _images,
    pool.AvgPool2dFunction: _images, losses.CrossEntropyWithLabels: _cross_entropy,
})  # fmt: skip
RULES.update(
    dict.fromkeys([inverse.Det, inverse.Inv, inverse.LogAbsDet, decompositions.Cholesky], _stacks)
)


def lift(value: Any) -> Batched:
    """``value`` varying over every active vmap level (a transform inside vmap
    differentiates each example's function with respect to its own copy of an unbatched
    argument: per-example gradients). Unbatched data is broadcast as a view."""
    levels = tuple(level for level, _ in LEVELS)
    if batch_levels(value) == levels:
        return value
    with physical():
        return Batched.wrap(_as_tensor(_full(value, levels)), levels)


def _as_tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor._make(np.asarray(value), None)


#: the rules a Function may declare with its ``vmap_rule`` attribute (users' Functions)
_DECLARED: dict[str | None, Rule] = {
    None: _per_example, "elementwise": _elementwise, "stacks": _stacks
}  # fmt: skip


def _declared(cls: type[Function]) -> Rule:
    rule = _DECLARED.get(cls.vmap_rule)
    if rule is None:
        raise ValueError(
            f"{cls.__name__}.vmap_rule is {cls.vmap_rule!r}; it must be 'elementwise', "
            "'stacks' or None (once per example)"
        )
    return rule
