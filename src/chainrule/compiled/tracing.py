"""Running f under a ``Tracer``, twice, and what the two runs must agree on.

``Trace`` is one eager run of f on its arguments (or on perturbed copies of them) with
``STATE.trace`` set: the tracer, the slots of the inputs, and the outputs. ``compare``
refuses f when its second trace ran other steps or read other constants than the first:
a value that changes with the inputs but reached an op as a constant (computed through
``.data``, a random draw) would be replayed frozen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.compiled.trace import (
    Backward,
    Call,
    Derived,
    Op,
    Ref,
    Saved,
    TracedValueError,
    Tracer,
)
from chainrule.mode import STATE
from chainrule.tensor import Tensor
from chainrule.tree import tree_flatten, tree_unflatten

__all__ = ["Trace", "compare", "leaf_array", "same", "second_trace"]

_STATIC = (bool, int, float, complex, str, bytes, type(None))


def leaf_array(leaf: Any) -> np.ndarray | None:
    """The array of an argument leaf, or None for a static leaf (a Python value)."""
    if isinstance(leaf, Tensor):
        refuse_grad(leaf)
        return leaf.data
    if isinstance(leaf, np.ndarray):
        return leaf
    if isinstance(leaf, np.generic):
        return np.asarray(leaf)
    if isinstance(leaf, _STATIC):
        return None
    try:
        hash(leaf)
    except TypeError:
        raise TypeError(
            f"cr.compile: an argument leaf of type {type(leaf).__name__} is neither an "
            "array nor a hashable Python value: pass arrays, Tensors, numbers and pytrees "
            "(tuples, lists, dicts) of them"
        ) from None
    return None


class RequiresGrad(Exception):  # noqa: N818 (a signal, not an error)
    """An argument requires grad: the call must be recorded, so it runs f itself."""


def refuse_grad(tensor: Tensor) -> None:
    """Signal ``RequiresGrad`` for an argument that requires grad (while recording)."""
    if tensor._requires_grad and STATE.grad_enabled:
        raise RequiresGrad


class Trace:
    """One eager run of f under a Tracer: the tracer, the input slots, the output refs."""

    def __init__(self, f: Callable[..., Any], args: tuple, perturb: int = 0) -> None:
        leaves, treedef = tree_flatten(args)
        tracer = Tracer()
        self.inputs: list[int] = []
        traced = []
        for leaf in leaves:
            array = leaf_array(leaf)
            if array is None:
                traced.append(leaf)
                continue
            if perturb:
                array = _perturbed(array, roll=perturb == 2)
            elif id(array) in tracer.slots:  # an array passed twice is two inputs
                array = array.view()
            self.inputs.append(tracer.new_slot(array))
            traced.append(Tensor._make(array, None))
        previous = STATE.trace, STATE.fast
        STATE.trace, STATE.fast = tracer, False
        try:
            out = f(*tree_unflatten(treedef, traced))
        finally:
            # a recorded in-place write during the trace turns the fast path off for good
            STATE.trace = previous[0]
            STATE.fast = previous[1] and not STATE.views_written
        out_leaves, self.out_def = tree_flatten(out)
        self.outputs: list[Ref] = []
        self.tensors: list[bool] = []
        self.results: list[np.ndarray] = []
        for index, leaf in enumerate(out_leaves):
            if isinstance(leaf, Tensor):
                array = leaf.data
            elif isinstance(leaf, np.ndarray):
                array = leaf
            else:
                raise TypeError(
                    f"cr.compile: {getattr(f, '__name__', 'f')} returned a "
                    f"{type(leaf).__name__} as output leaf {index} of {self.out_def}: a "
                    "compiled function returns Tensors or ndarrays (in tuples, lists, dicts)"
                )
            ref = tracer.ref(array)
            self.outputs.append(ref)
            self.tensors.append(isinstance(leaf, Tensor))
            self.results.append(array.copy() if ref[0] == "c" else array)
        self.tracer = tracer


def second_trace(f: Callable[..., Any], args: tuple) -> Trace:
    """f traced on other values: rolled and moved, or only moved when f refuses those
    (a matrix that must stay positive definite), or the same values when it refuses both
    (then only constants that change from call to call, such as random draws, show)."""
    with np.errstate(all="ignore"):
        for perturb in (2, 1):
            try:
                return Trace(f, args, perturb)
            except TracedValueError:
                raise
            except Exception:  # noqa: BLE001, S112 (values outside f's domain: try others)
                continue
    return Trace(f, args)


def _perturbed(array: np.ndarray, roll: bool) -> np.ndarray:
    """Other valid values of the same kind and layout: floats moved (positive values stay
    positive) and, with ``roll``, any values rolled by one along each axis (which changes
    their order too: which element of a window or a row is the largest). A view stays a
    view and a read-only array read-only, so that the engine treats both traces alike."""
    other = np.array(array)
    if roll:  # along every axis: a square matrix stays symmetric, a window's order changes
        axes = [axis for axis, n in enumerate(other.shape) if n > 1]
        if axes:
            other = np.roll(other, 1, axis=axes)
    if other.dtype.kind in "fc":
        other = np.asarray(other * other.dtype.type(1.0625) + other.dtype.type(0.0625))
    if array.base is not None:
        other = other.view()
    other.flags.writeable = array.flags.writeable
    return other


def compare(first: Trace, second: Trace) -> None:
    """Refuse f when the two traces differ in their steps or their constants."""
    a, b = first.tracer, second.tracer
    if first.out_def != second.out_def:
        raise TracedValueError(
            f"cr.compile: the function returned {first.out_def} for its arguments but "
            f"{second.out_def} for other values of the same shapes: the structure of the "
            "output must not depend on the values of the inputs."
        )
    if [_kind(s) for s in a.steps] != [_kind(s) for s in b.steps] or len(a.constants) != len(
        b.constants
    ):
        raise TracedValueError(
            "cr.compile: the function ran different operations on other input values "
            "(data-dependent control flow the trace could not see): a compiled function "
            "must do the same operations for every input of one signature. Use cr.where "
            "for a data-dependent choice, or do not compile this function."
        )
    for index, (x, y) in enumerate(zip(a.constants, b.constants)):
        if isinstance(x, (np.ndarray, np.generic)) and not same(x, y):
            raise TracedValueError(
                f"cr.compile: {_reader(a, index)} uses an array (shape {np.shape(x)}) that "
                "changes with the inputs, or from one call to the next, but was not computed "
                "by the ops the trace records: for example from a tensor's .data, from "
                "np.asarray of a tensor, or a random draw. The compiled program would replay "
                "the first call's value. Compute it with chainrule ops (or pass it as an "
                "argument), or do not compile this function."
            )


def _kind(step: Op | Call | Saved | Backward | Derived) -> Any:
    if isinstance(step, Op):
        return ("op", step.function)
    if isinstance(step, Call):
        return ("call", step.function)
    if isinstance(step, Backward):
        return ("backward", step.op)
    if isinstance(step, Saved):
        return ("saved", step.op, step.index, step.name)
    return (step.kind, step.shape)


def _reader(tracer: Tracer, constant: int) -> str:
    """Which step reads a constant, in words."""

    def mentions(ref: Ref) -> bool:
        if ref[0] == "c":
            return bool(ref[1] == constant)
        return ref[0] == "t" and any(mentions(r) for r in ref[2])

    for step in tracer.steps:
        if isinstance(step, (Op, Call)):
            if any(mentions(r) for r in [*step.args, *step.options.values()]):
                return f"the op {getattr(step.function, '__name__', step.function)}"
        elif isinstance(step, Backward):
            op = tracer.steps[step.op]
            if mentions(step.grad) and isinstance(op, Op):
                return f"the backward of {op.function.__name__}"
        elif isinstance(step, Derived) and any(mentions(r) for r in step.sources):
            return "a gradient sum"
    return "an output of the function"


def same(a: Any, b: Any) -> bool:
    """Equal dtype, shape and bits (NaN where NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
