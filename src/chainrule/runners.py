"""Running one node's backward, in each of the engine's modes, and fitting what it returns.

- ``run_plain``: the first-order call, on ndarrays.
- ``run_recorded``: under ``create_graph``, on Tensors, so that the backward is itself
  recorded. A backward written with raw NumPy calls still gives the right first-order
  gradient there, with a node that raises if anything differentiates through it (as
  PyTorch's ``once_differentiable``), instead of acting as a constant.
- ``checked(run)``: either of them under ``detect_anomaly()``: a NaN/Inf born here raises.
- ``fit``: a returned gradient as the engine needs it, the expected type (an ndarray, or a
  Tensor under ``create_graph``) summed back to its input's shape and cast to its dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.checks import check_backward, check_gradient_shape, gradient_tuple, refuse_freed
from chainrule.function import Function
from chainrule.graph import Context
from chainrule.mode import STATE, enable_grad
from chainrule.tensor import Tensor

__all__ = ["Runner", "run_plain", "run_recorded", "checked", "runner", "fit", "sum_to_shape"]

#: how a walk calls one node's backward: (node, grad_out) -> one gradient per input
Runner = Callable[[Context, Any], tuple[Any, ...]]

_new_context = object.__new__


def run_plain(node: Context, grad_out: Any) -> tuple[Any, ...]:
    """The first-order call: ndarrays in, one gradient per input out."""
    refuse_freed(node)
    return gradient_tuple(node, node.function.backward(node, grad_out))


def checked(run: Runner) -> Runner:
    """``run`` in anomaly mode: raise if a finite gradient turned into NaN/Inf here."""

    def run_and_check(node: Context, grad_out: Any) -> tuple[Any, ...]:
        grads = run(node, grad_out)
        check_backward(node, grad_out, grads)
        return grads

    return run_and_check


def runner(create_graph: bool) -> Runner:
    """The way to run backwards for a walk, by its mode and anomaly mode."""
    run: Runner = run_recorded if create_graph else run_plain
    if STATE.trace is not None and not create_graph:
        run = _traced(run)
    return checked(run) if STATE.anomaly else run


def _traced(run: Runner) -> Runner:
    """``run`` inside ``cr.compile``'s trace: each backward is reported to the tracer."""

    def run_and_report(node: Context, grad_out: Any) -> tuple[Any, ...]:
        trace = STATE.trace
        trace.busy = True  # ops a rule calls on ndarrays belong to this backward
        try:
            grads = run(node, grad_out)
        finally:
            trace.busy = False
        trace.backward(node, grad_out, grads)
        return grads

    return run_and_report


def run_recorded(node: Context, grad_out: Tensor) -> tuple[Any, ...]:
    """The call under ``create_graph``: saved values and gradients are Tensors, and every op
    of the backward is recorded."""
    refuse_freed(node)
    node._tensor_mode = True
    try:
        with enable_grad():
            grads = node.function.backward(node, grad_out)
    except TypeError as error:
        # a rule that works on arrays but not on Tensors uses raw NumPy calls: it is
        # differentiable once. Anything else fails on arrays too, and is re-raised.
        node._tensor_mode = False
        try:
            arrays = gradient_tuple(node, node.function.backward(node, grad_out.data))
        except Exception:
            raise error from None
        return tuple(None if g is None else once_differentiable(node, g, grad_out) for g in arrays)
    finally:
        node._tensor_mode = False
    return gradient_tuple(node, grads)


class NotTwiceDifferentiable(Function):
    """The node of a gradient computed by a backward written with raw NumPy calls."""

    @staticmethod
    def backward(ctx: Context, grad_out: Any) -> Any:
        """Refuse: the derivative of a raw-NumPy backward is unknown."""
        raise RuntimeError(
            f"{ctx.origin_name}.backward uses raw NumPy calls, so it can only be "
            "differentiated once: a second derivative through it is unknown. Write its "
            "backward with operators and chainrule functions (they work on both ndarrays "
            "and Tensors) to differentiate it twice."
        )


def once_differentiable(node: Context, grad: Any, grad_out: Tensor) -> Tensor:
    """The array ``grad`` as a Tensor whose node depends on everything ``node``'s backward
    read (the incoming gradient and the forward's inputs) and refuses to be
    differentiated, naming that Function."""
    marker = _new_context(Context)
    marker.function = NotTwiceDifferentiable
    marker.origin_name = node.name
    marker.parents = (grad_out._node or (grad_out if grad_out._requires_grad else None),)
    marker.parents += node.parents
    marker.needs_input_grad = tuple(p is not None for p in marker.parents)
    marker.input_meta = ((grad_out.shape, grad_out.dtype), *node.input_meta)
    array = np.asarray(grad)
    return Tensor._make(array, marker if any(marker.needs_input_grad) else None)


def fit(
    node: Context, index: int, grad: Any, grad_out: Any, create_graph: bool, batch: int
) -> Any:
    """Gradient ``grad`` for input ``index`` of ``node``, as the walk passes it on: of the
    expected type, summed back to the input's shape (keeping ``batch`` leading axes of
    cotangents), in the input's dtype; a clear error when it cannot be."""
    given = grad
    if create_graph:
        if not isinstance(grad, Tensor):
            # an ndarray under create_graph: computed with raw NumPy calls, so its own
            # derivative is unknown (a zero gradient is a constant, exactly)
            grad = np.asarray(grad)
            grad = once_differentiable(node, grad, grad_out) if np.any(grad) else Tensor(grad)
    elif isinstance(grad, Tensor):
        grad = grad.data
    elif type(grad) is not np.ndarray:
        grad = np.asarray(grad)
    shape, dtype = node.input_meta[index]
    if grad.shape[batch:] != shape or grad.ndim != batch + len(shape):
        check_gradient_shape(node, index, grad.shape, grad_out.ndim, batch)
        grad = sum_to_shape(grad, shape, batch)
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    if STATE.trace is not None and not create_graph and grad is not given:
        STATE.trace.derived("fit", [given], grad, shape=shape, dtype=dtype, batch=batch)
    return grad


def sum_to_shape(grad: Any, shape: tuple[int, ...], keep: int = 0) -> Any:
    """Undo NumPy broadcasting: add up ``grad`` (ndarray or Tensor) until it has ``shape``.

    The first ``keep`` axes (a batch of cotangents, see ``engine.grad(..., batch=k)``) are
    kept as they are. float32 and float16 sums accumulate in float64.
    """
    target = grad.shape[:keep] + tuple(shape)
    lead = grad.ndim - len(target)
    axes = tuple(range(keep, keep + lead)) + tuple(
        keep + lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[keep + lead + i] != 1
    )
    if axes:
        if isinstance(grad, np.ndarray):
            # a 0-d result of np.sum is a NumPy scalar: keep it an array
            if grad.dtype.kind == "f" and grad.dtype.itemsize < 8:
                grad = np.asarray(np.sum(grad, axis=axes, dtype=np.float64), grad.dtype)
            else:
                grad = np.asarray(np.sum(grad, axis=axes))
        else:
            grad = grad.sum(axis=axes)
    return grad.reshape(target) if grad.shape != target else grad
