"""``Function``: the one way to define a differentiable operation, for built-ins and users.

A Function has a static ``forward(ctx, *inputs)`` that computes on plain ndarrays and a
static ``backward(ctx, grad_out)`` that returns one gradient per forward input (None where
there is none). ``Function.apply`` unwraps Tensors, runs ``forward`` and, when some input
requires grad, records the call as a node of the graph: a ``Context`` (``graph.py``).

Derivative rules are written with operators, methods shared by ndarrays and Tensors
(``reshape``, ``sum``, ``swapaxes``) and the helpers of ``chainrule.ops`` that take either.
The engine calls them with ndarrays on the ordinary first-order path (plain NumPy speed),
and with Tensors under ``create_graph=True``, so that the backward pass is itself recorded
and can be differentiated again.

``apply`` is every op's hot path. Calls with one or two Tensors and no options (the
operators, the unary ops, most users' Functions) take ``apply_one``/``apply_pair``: the
same steps unrolled; anything unusual (anomaly mode, constants, options) takes the general
path, which also runs the checks of ``checks.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.checks import check_forward, refuse_stale_views
from chainrule.graph import Context
from chainrule.mode import STATE
from chainrule.tensor import Tensor
from chainrule.versions import WRITES, root_of

__all__ = ["Function", "Context", "apply_one", "apply_pair"]

_new_context = object.__new__  # every node is made by it (tests count them)
_new_tensor = object.__new__
_make_tensor = Tensor._make
_NO_OPTIONS: dict[str, Any] = {}


class Function:
    """Base class of differentiable operations.

    Subclasses define ``forward(ctx, *inputs, **options)`` on ndarrays (Python scalars and
    other non-array options pass through) and ``backward(ctx, grad_out)``. Use them through
    ``apply``::

        class Cube(cr.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, grad_out):
                (x,) = ctx.saved_tensors
                return 3 * x ** 2 * grad_out

        y = Cube.apply(t)
    """

    #: True when ``backward`` passes extra leading axes of ``grad_out`` (a batch of
    #: cotangents) through to every gradient it returns; jacobian/hessian then run one
    #: batched backward walk instead of one walk per output element.
    batchable: bool = False

    #: How ``cr.vmap`` runs this op on a batch: "elementwise" (forward works elementwise
    #: with NumPy broadcasting: the batch axes are aligned and it runs once), "stacks"
    #: (forward treats leading axes as a stack of independent problems, as np.linalg
    #: does: it runs once on the whole batch), or None: once per example, stacked.
    vmap_rule: str | None = None

    @staticmethod
    def forward(ctx: Context, *inputs: Any, **options: Any) -> Any:
        """y = f(inputs) on ndarrays (a subclass defines it); save what backward needs with
        ``ctx.save_for_backward``."""
        raise NotImplementedError("a Function subclass must define a static forward(ctx, ...)")

    @staticmethod
    def backward(ctx: Context, grad_out: Any) -> Any:
        """Given G = ∂L/∂y, return ∂L/∂xᵢ = Gᵀ ∂y/∂xᵢ for each forward input (None where
        there is none), each shaped like its input or like the broadcast output."""
        raise RuntimeError(
            f"{ctx.name} is not differentiable: it defines no backward(ctx, grad_out), so "
            "backpropagation cannot pass through it. Define backward, or detach() its "
            "inputs if no gradient should flow."
        )

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays and record a graph node if needed."""
        if not options:
            if len(inputs) == 1:
                return apply_one(cls, inputs[0])
            if len(inputs) == 2 and type(inputs[0]) is Tensor and type(inputs[1]) is Tensor:
                return apply_pair(cls, inputs[0], inputs[1])
        return _apply(cls, inputs, options)


def _apply(cls: type[Function], inputs: tuple[Any, ...], options: dict[str, Any]) -> Tensor:
    """``Function.apply`` in general: any inputs and options, anomaly mode, the checks."""
    if STATE.vmap is not None:  # inside cr.vmap: batched inputs go by the op's rule
        batched = STATE.vmap(cls, inputs, options)
        if batched is not None:
            return batched
    trace = STATE.trace
    if trace is not None and not trace.busy:  # cr.compile is tracing: write the call down
        return trace.apply(cls, inputs, options)
    # one pass over the inputs collects the arrays, the parents, needs_input_grad and the
    # (shape, dtype) the engine checks gradients by
    ctx = _new_context(Context)
    ctx.function = cls
    arrays = []
    record = False
    if STATE.grad_enabled:
        parents: list[Any] = []
        needs: list[bool] = []
        meta: list[tuple[Any, Any]] = []
        for x in inputs:
            if isinstance(x, Tensor):
                array = x.data
                arrays.append(array)
                if x._requires_grad:
                    node = x._node
                    parents.append(x if node is None else node)
                    needs.append(True)
                    meta.append((array.shape, array.dtype))
                    record = True
                    continue
            else:
                array = x
                arrays.append(x)
            parents.append(None)
            needs.append(False)
            meta.append((getattr(array, "shape", ()), None))
        if record:
            if STATE.views_written:
                refuse_stale_views(cls, inputs)
            ctx.parents = tuple(parents)
            ctx.needs_input_grad = tuple(needs)
    else:
        watch = STATE.watch
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x.data)
                if watch is not None and x._requires_grad:
                    watch[id(x)] = x  # an input from outside the no_grad() block
            else:
                arrays.append(x)
    if not record:
        ctx.needs_input_grad = (False,) * len(arrays)
    out = cls.forward(ctx, *arrays, **options)
    if type(out) is not np.ndarray:
        out = _output_array(cls, ctx, out)
    if STATE.anomaly:
        check_forward(cls, arrays, out, ctx)
    if not record or out.dtype.kind not in "fc":
        return _make_tensor(out, None)
    ctx.input_meta = tuple(meta)
    if ctx._saved:
        ctx._saved_ids = (id(out), *map(id, arrays))
        ctx._epoch = WRITES.epoch
    if out.base is not None:
        _note_view_of_input(ctx, out, arrays)
    return _make_tensor(out, ctx)


def apply_one(cls: type[Function], a: Any, options: dict[str, Any] = _NO_OPTIONS) -> Tensor:
    """``cls.apply(a, **options)`` for one input: the unary ops' and full reductions' path.

    ``_apply`` unrolled for a single Tensor that requires grad; any other case goes
    through ``_apply``.
    """
    if type(a) is not Tensor or not a._requires_grad or not STATE.grad_enabled or not STATE.fast:
        return _apply(cls, (a,), dict(options))  # a copy: vmap's rules rewrite options
    x = a.data
    ctx = _new_context(Context)
    ctx.function = cls
    ctx.needs_input_grad = (True,)
    ctx.parents = (a._node or a,)
    ctx.input_meta = ((x.shape, x.dtype),)
    out = cls.forward(ctx, x, **options)
    if type(out) is not np.ndarray:
        out = _output_array(cls, ctx, out)
    if out.dtype.kind not in "fc":
        return _make_tensor(out, None)
    if ctx._saved:
        ctx._saved_ids = (id(out), id(x))
        ctx._epoch = WRITES.epoch
    if out.base is not None:
        _note_view_of_input(ctx, out, [x])
    # Tensor._make(out, ctx), written out: this is every op's last step
    result = _new_tensor(Tensor)
    result.data, result._grad, result._node, result._requires_grad = out, None, ctx, True
    return result


def apply_pair(cls: type[Function], a: Tensor, b: Tensor) -> Tensor:
    """``cls.apply(a, b)`` for two Tensors and no options: the arithmetic operators' path.

    The same steps as ``_apply`` unrolled for two inputs; anything unusual (no recording,
    anomaly mode, a non-array or non-float output) goes through ``_apply``.
    """
    grad_a, grad_b = a._requires_grad, b._requires_grad
    if not (grad_a or grad_b) or not STATE.grad_enabled or not STATE.fast:
        return _apply(cls, (a, b), {})
    x, y = a.data, b.data
    ctx = _new_context(Context)
    ctx.function = cls
    ctx.needs_input_grad = (grad_a, grad_b)
    ctx.parents = (a._node or a if grad_a else None, b._node or b if grad_b else None)
    ctx.input_meta = (
        (x.shape, x.dtype if grad_a else None),
        (y.shape, y.dtype if grad_b else None),
    )
    out = cls.forward(ctx, x, y)
    if type(out) is not np.ndarray:
        out = _output_array(cls, ctx, out)
    if out.dtype.kind not in "fc":
        return _make_tensor(out, None)
    if ctx._saved:
        ctx._saved_ids = (id(out), id(x), id(y))
        ctx._epoch = WRITES.epoch
    if out.base is not None:
        _note_view_of_input(ctx, out, [x, y])
    result = _new_tensor(Tensor)
    result.data, result._grad, result._node, result._requires_grad = out, None, ctx, True
    return result


def _output_array(cls: type[Function], ctx: Context, out: Any) -> np.ndarray:
    """What forward returned, as an array (a 0-d forward returns a NumPy scalar)."""
    if isinstance(out, (tuple, list)):
        # np.asarray would silently stack several outputs into one array
        raise TypeError(
            f"{cls.__name__}.forward returned a {type(out).__name__}: a Function "
            "has exactly one output array"
        )
    returned, out = out, np.asarray(out)
    if ctx._saved:
        # save the output array in the scalar's place, so that it is still recognised as
        # the output under create_graph
        ctx._saved = tuple(out if value is returned else value for value in ctx._saved)
    return out


def _note_view_of_input(ctx: Context, out: np.ndarray, arrays: list[Any]) -> None:
    """Mark ``ctx`` when ``out`` is a view of an input's memory (reshape, transpose, a
    slice), not of a buffer private to the op: see ``checks.refuse_stale_views`` and
    ``inplace.modify``."""
    root = root_of(out)
    if any(type(a) is np.ndarray and root_of(a) is root for a in arrays):
        ctx._views_input = True
        ctx._epoch = WRITES.epoch
