"""``Function``: the one way to define a differentiable operation, for built-ins and users.

A Function has a static ``forward(ctx, *inputs)`` that computes on plain ndarrays and a
static ``backward(ctx, grad_out)`` that returns one gradient per forward input (None where
there is none). ``Function.apply`` unwraps Tensors, runs ``forward`` and, when some input
requires grad, records the call as a node of the graph: the ``Context``.

Derivative rules are written with operators, methods shared by ndarrays and Tensors
(``reshape``, ``sum``, ``swapaxes``) and the helpers of ``chainrule.ops.either``. The engine
calls them with ndarrays on the ordinary first-order path (plain NumPy speed), and with
Tensors under ``create_graph=True``, so that the backward pass is itself recorded and can
be differentiated again.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import numpy as np

from chainrule.mode import STATE, enable_grad
from chainrule.tensor import Tensor
from chainrule.versions import WRITES, last_writer, root_of, written_since

__all__ = ["Function", "Context", "check_versions", "refuse_stale_views"]

_OUTPUT = -1  # tag of a saved array that is the forward's output
_new_context = object.__new__
_make_tensor = Tensor._make
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Context:
    """A recorded call of a Function: what its backward needs, and where gradients go.

    Attributes read by ``backward``: ``saved_tensors`` and ``needs_input_grad``; a
    Function may also store plain values on it (``ctx.axis = axis``).
    """

    # Class-level defaults: a Context is made for every op call, so __init__ sets only
    # what differs (this keeps the per-op overhead small).
    needs_input_grad: tuple[bool, ...] = ()
    parents: tuple[Any, ...] = ()  # per input: None, a leaf Tensor or a Context
    input_meta: tuple[Any, ...] = ()  # per input: (shape, dtype); dtype None: no gradient
    _saved: tuple[Any, ...] | None = ()
    # ids of the output and the inputs at the call: a saved value with one of these ids is
    # that very array (both were alive together, so ids cannot have been reused)
    _saved_ids: tuple[int, ...] = ()
    _tensor_mode = False  # True while backward runs under create_graph
    # the epoch of in-place writes (chainrule.versions) when the op ran: its saved arrays
    # must not be written after it, nor, while its output is used, the memory it views
    _epoch = 0
    _views_input = False  # its output is a view of an input's memory (reshape, a slice)
    _retained: Any = None  # weakref to a non-leaf Tensor that called retain_grad()
    origin: str | None = None  # user code line, kept in anomaly mode only
    _inputs_finite = True  # anomaly mode: whether the forward's inputs were all finite
    origin_name = ""  # a _NotTwiceDifferentiable node: the Function whose backward it ran

    def __init__(self, function: type[Function]) -> None:
        self.function = function

    @property
    def name(self) -> str:
        """The name of the Function this node records (as in ``grad_fn=<Mul>``)."""
        return self.function.__name__

    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays for backward. Save inputs or the output where possible: under
        ``create_graph`` those come back as Tensors connected to the graph, any other
        array comes back as a constant."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """What forward passed to ``save_for_backward``: ndarrays on the first-order path,
        Tensors connected to the graph under ``create_graph``."""
        if self._saved is None:
            raise RuntimeError(
                f"{self.name}: its saved values were already freed by a backward pass. "
                "Trying to backward through the graph a second time: pass "
                "retain_graph=True to the first backward() to keep them."
            )
        if not self._tensor_mode:
            return self._saved
        ids = self._saved_ids
        tags = [
            _OUTPUT if id(v) == ids[0] else ids.index(id(v), 1) - 1 if id(v) in ids else None
            for v in self._saved
        ]
        return tuple(self._as_tensor(v, tag) for v, tag in zip(self._saved, tags))

    def _as_tensor(self, value: Any, tag: int | None) -> Any:
        """A saved array as a Tensor on the graph, for differentiating the backward."""
        if tag == _OUTPUT:
            return Tensor._make(value, self)
        if tag is not None:
            parent = self.parents[tag]
            if isinstance(parent, Tensor):
                return parent
            if parent is not None:
                return Tensor._make(value, parent)
        if isinstance(value, np.ndarray):
            return Tensor._make(value, None)
        return value  # Python scalars stay weakly typed, so float32 stays float32

    def run_backward(self, grad_out: Any, create_graph: bool, batch: int = 0) -> tuple[Any, ...]:
        """Call the Function's backward and check what it returns."""
        if self._saved is None:
            raise RuntimeError(
                f"{self.name}: its saved values were already freed by a backward pass. "
                "Trying to backward through the graph a second time: pass "
                "retain_graph=True to the first backward() to keep them."
            )
        if create_graph:
            self._tensor_mode = True
            try:
                with enable_grad():
                    grads = self.function.backward(self, grad_out)
            except TypeError as error:
                if "does not support ufuncs" not in str(error) and "__array_ufunc__" not in str(
                    error
                ):
                    raise
                return self._once_differentiable(grad_out)
            finally:
                self._tensor_mode = False
        else:
            grads = self.function.backward(self, grad_out)
        return self.as_gradient_tuple(grads)

    def _once_differentiable(self, grad_out: Tensor) -> tuple[Any, ...]:
        """Under create_graph, a backward written with raw NumPy calls: run it on arrays,
        and give each gradient a node that raises if something differentiates through it.

        So the first-order gradient is right, and a second derivative that would need this
        backward's own derivative fails loudly instead of treating it as a constant.
        """
        self._tensor_mode = False  # saved values as the arrays they are
        grads = self.as_gradient_tuple(self.function.backward(self, grad_out.data))
        return tuple(None if g is None else self.once_differentiable(g, grad_out) for g in grads)

    def once_differentiable(self, grad: Any, grad_out: Tensor) -> Tensor:
        """The array ``grad`` as a Tensor whose node depends on everything this backward
        read (the incoming gradient and the forward's inputs) and refuses to be
        differentiated, naming this Function."""
        node = _new_context(Context)
        node.function = _NotTwiceDifferentiable
        node.origin_name = self.name
        node.parents = (grad_out._node or (grad_out if grad_out._requires_grad else None),)
        node.parents += self.parents
        node.needs_input_grad = tuple(p is not None for p in node.parents)
        node.input_meta = ((grad_out.shape, grad_out.dtype), *self.input_meta)
        array = np.asarray(grad)
        if not any(node.needs_input_grad):
            return Tensor._make(array, None)
        return Tensor._make(array, node)

    def as_gradient_tuple(self, grads: Any) -> tuple[Any, ...]:
        """What backward returned as a tuple of one gradient per input, or a clear error."""
        if type(grads) is list:
            grads = tuple(grads)
        elif type(grads) is not tuple:
            grads = (grads,)
        if len(grads) != len(self.parents):
            raise RuntimeError(
                f"{self.name}.backward returned {len(grads)} gradient(s), but forward "
                f"took {len(self.parents)} input(s): return one per input (None where none)"
            )
        return grads

    def check_gradient(
        self, index: int, grad: Any, create_graph: bool, grad_out: Any, batch: int
    ) -> Any:
        """The gradient for input ``index`` as the engine needs it (an ndarray, or a Tensor
        under create_graph), with a clear error when it cannot be one. The engine calls this
        only off its fast path: when the type or the shape is not the expected one."""
        if create_graph:
            if not isinstance(grad, Tensor):
                # an ndarray under create_graph: computed with raw NumPy calls, so its own
                # derivative is unknown (a zero gradient is a constant, exactly)
                grad = np.asarray(grad)
                grad = self.once_differentiable(grad, grad_out) if np.any(grad) else Tensor(grad)
        elif isinstance(grad, Tensor):
            grad = grad.data
        elif type(grad) is not np.ndarray:
            grad = np.asarray(grad)
        shape = self.input_meta[index][0]
        if grad.shape != shape and not self._reduces_to(grad.shape, shape, grad_out.ndim, batch):
            raise RuntimeError(
                f"{self.name}.backward returned a gradient of shape {grad.shape} for input "
                f"{index}, which has shape {shape}: a gradient must have the input's shape "
                "(or the broadcast output's shape)"
            )
        return grad

    def _reduces_to(
        self, grad_shape: tuple[int, ...], shape: tuple[int, ...], out_ndim: int, batch: int = 0
    ) -> bool:
        """True when ``shape`` broadcasts to ``grad_shape``, so summing recovers ``shape``,
        and ``grad_shape`` has no more axes than the output or some input (an axis that no
        array of the op had cannot come from broadcasting). ``batch`` leading axes of
        cotangents are allowed on top."""
        if len(shape) + batch > len(grad_shape):
            return False
        ndim = len(grad_shape)
        in_ndim = max(len(meta[0]) for meta in self.input_meta)
        if ndim > out_ndim and ndim - batch > in_ndim:
            return False
        tail = grad_shape[len(grad_shape) - len(shape) :]
        return all(s == g or s == 1 for s, g in zip(shape, tail))


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
        # The hot path of every op: one pass over the inputs collects the arrays, the
        # parents, needs_input_grad and the (shape, dtype) the engine checks gradients by.
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
            for x in inputs:
                arrays.append(x.data if isinstance(x, Tensor) else x)
        if not record:
            ctx.needs_input_grad = (False,) * len(arrays)
        out = cls.forward(ctx, *arrays, **options)
        if type(out) is not np.ndarray:
            out = _output_array(cls, ctx, out)
        if STATE.anomaly:
            _check_forward(cls, arrays, out, ctx)
        if not record or out.dtype.kind not in "fc":
            return _make_tensor(out, None)
        ctx.input_meta = tuple(meta)
        if ctx._saved:
            ctx._saved_ids = (id(out), *map(id, arrays))
            ctx._epoch = WRITES.epoch
        if out.base is not None:
            _note_view_of_input(ctx, out, arrays)
        return _make_tensor(out, ctx)


class _NotTwiceDifferentiable(Function):
    """The node of a gradient computed by a backward written with raw NumPy calls."""

    @staticmethod
    def backward(ctx: Context, grad_out: Any) -> Any:
        raise RuntimeError(
            f"{ctx.origin_name}.backward uses raw NumPy calls, so it can only be "
            "differentiated once: a second derivative through it is unknown. Write its "
            "backward with operators and chainrule functions (they work on both ndarrays "
            "and Tensors) to differentiate it twice."
        )


def check_versions(ctx: Context) -> None:
    """Raise if what ``ctx``'s backward relies on was modified in place after it ran.

    Its saved arrays must hold the values it saw. Never a silently wrong gradient.
    """
    for index, value in enumerate(ctx._saved or ()):
        if written_since(value, ctx._epoch):
            raise RuntimeError(
                f"{ctx.name}: a value it saved for backward (saved value {index}, shape "
                f"{value.shape}) was modified in place by {last_writer(value)} after "
                f"{ctx.name} ran, so its gradient would be wrong. Use an out-of-place op "
                "instead (x = x + y, not x += y), or call backward() before modifying it."
            )


def refuse_stale_views(cls: type[Function], inputs: Any) -> None:
    """Raise if an input is a view (a reshape, a slice) whose memory a recorded in-place
    op rewrote through another tensor after the view was taken: the view's node still
    describes the old values, so a graph built on it would give wrong gradients.

    Checked when the view is used, not when it is taken: a view used before the write is
    fine. Only runs once a recorded in-place write has happened at all.
    """
    for x in inputs:
        node = x._node if isinstance(x, Tensor) else None
        if node is None or not node._views_input:
            continue
        # x.data is the view itself: its root is the memory it views, alive while x is
        if written_since(x.data, node._epoch, recorded=True):
            raise RuntimeError(
                f"{cls.__name__}: an input is a view made by {node.name} of memory that "
                f"{last_writer(x.data)} modified in place afterwards through another "
                "tensor, so its graph describes the old values. Take the view after the "
                "in-place op, or clone() it before."
            )


def _note_view_of_input(ctx: Context, out: np.ndarray, arrays: list[Any]) -> None:
    """Mark ``ctx`` when ``out`` is a view of an input's memory (reshape, transpose, a
    slice), not of a buffer private to the op: see ``refuse_stale_views`` and
    ``inplace.modify``."""
    root = root_of(out)
    if any(type(a) is np.ndarray and root_of(a) is root for a in arrays):
        ctx._views_input = True
        ctx._epoch = WRITES.epoch


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


def apply_one(cls: type[Function], a: Any) -> Tensor:
    """``cls.apply(a)`` for one input and no options: the unary ops' path.

    ``Function.apply`` unrolled for a single Tensor that requires grad; any other case goes
    through ``apply``.
    """
    if type(a) is not Tensor or not a._requires_grad or not STATE.grad_enabled or not STATE.fast:
        return cls.apply(a)
    x = a.data
    ctx = _new_context(Context)
    ctx.function = cls
    ctx.needs_input_grad = (True,)
    ctx.parents = (a._node or a,)
    ctx.input_meta = ((x.shape, x.dtype),)
    out = cls.forward(ctx, x)
    if type(out) is not np.ndarray:
        out = _output_array(cls, ctx, out)
    if out.dtype.kind not in "fc":
        return _make_tensor(out, None)
    if ctx._saved:
        ctx._saved_ids = (id(out), id(x))
        ctx._epoch = WRITES.epoch
    return _make_tensor(out, ctx)


def apply_pair(cls: type[Function], a: Tensor, b: Tensor) -> Tensor:
    """``cls.apply(a, b)`` for two Tensors and no options: the arithmetic operators' path.

    The same steps as ``Function.apply`` unrolled for two inputs; anything unusual (no
    recording, anomaly mode, a non-array or non-float output) goes through ``apply``.
    """
    grad_a, grad_b = a._requires_grad, b._requires_grad
    if not (grad_a or grad_b) or not STATE.grad_enabled or not STATE.fast:
        return cls.apply(a, b)
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
    return _make_tensor(out, ctx)


def _check_forward(cls: type[Function], arrays: list[Any], out: np.ndarray, ctx: Context) -> None:
    """Anomaly mode: remember the user's line; fail on a NaN/Inf born in this op."""
    ctx.origin = user_frame()
    # NaN/Inf that came in through the inputs were not made here, forward or backward
    ctx._inputs_finite = all(_finite(a) for a in arrays)
    if out.dtype.kind not in "fc" or np.all(np.isfinite(out)):
        return
    if ctx._inputs_finite:
        raise FloatingPointError(
            f"{cls.__name__} produced NaN/Inf in its forward from finite inputs"
            f" (created at {ctx.origin})"
        )


def _finite(value: Any) -> bool:
    """False for a floating-point array or number holding NaN or Inf."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.all(np.isfinite(value)))
    if isinstance(value, (float, np.floating)):
        return bool(np.isfinite(value))
    return True


def user_frame() -> str:
    """'file:line in function' of the innermost stack frame outside the chainrule package."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"
