"""The trace: one eager run of f whose array computations are written down as steps.

While a ``Tracer`` is ``STATE.trace``, four places of the core report to it:

- ``function._apply`` hands every op call to ``Tracer.apply`` (``STATE.fast`` is off, so
  the unrolled ``apply_one``/``apply_pair`` defer to ``_apply``): the forward, and, under
  ``create_graph``, every op of a recorded backward;
- ``runners.runner`` wraps the first-order ``run_plain``, so every node's backward that the
  engine runs on ndarrays is reported (``Tracer.backward``);
- ``runners.fit`` (a gradient summed back to its input's shape and cast), ``engine._deliver``
  (two gradients of one input added) and the engine's copies (``_seed``, ``_own``) report
  the arrays they make (``Tracer.derived``).

Every array is known by ``id`` (each stays referenced until the trace ends, so no id is
reused). An array that no step made and that is not an input is a *constant*: a
closed-over weight, a ``ones`` seed, a table of indices. Constants are kept by reference;
``compile`` traces twice, on the inputs and on perturbed inputs, and refuses a function
whose constants differ between the two (a value computed from the inputs outside the ops
the trace sees, or a random number drawn per call).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.function import _apply
from chainrule.graph import Context
from chainrule.tensor import Tensor

__all__ = ["Tracer", "TracedValueError", "Op", "Call", "Saved", "Backward", "Derived", "Ref"]

#: a reference to a value in a step: ("s", slot) an array computed in the trace (or an
#: input), ("c", index) a constant, ("l", value) a Python literal, ("t", kind, refs) a
#: tuple or list of references, ("o", object) any other object, passed as it is
Ref = tuple


def _as_array(value: Any) -> Any:
    return np.asarray(value) if isinstance(value, np.generic) else value


class TracedValueError(RuntimeError):
    """A traced value was read as a Python value inside ``cr.compile``."""


class Op:
    """One op call: ``out = function.forward(ctx, *args, **options)``."""

    __slots__ = ("function", "args", "options", "out", "needs", "meta", "scalar_out")

    def __init__(
        self,
        function: Any,
        args: list[Ref],
        options: dict[str, Ref],
        out: int,
        needs: tuple[bool, ...],
        meta: tuple[Any, ...],
        scalar_out: bool,
    ) -> None:
        self.function = function
        self.args = args
        self.options = options
        self.out = out
        self.needs = needs
        self.meta = meta
        self.scalar_out = scalar_out


class Call:
    """A NumPy call no gradient flows through: ``out = np.asarray(function(*args,
    **options))`` (``tensor.constant_op``: comparisons, argmax, argsort)."""

    __slots__ = ("function", "args", "options", "out")

    def __init__(self, function: Any, args: list[Ref], options: dict[str, Ref], out: int):
        self.function = function
        self.args = args
        self.options = options
        self.out = out


class Saved:
    """An array an op's forward kept on its Context: ``ctx._saved[index]`` or
    ``ctx.<name>``."""

    __slots__ = ("op", "index", "name", "out")

    def __init__(self, op: int, index: int | None, name: str | None, out: int) -> None:
        self.op = op
        self.index = index
        self.name = name
        self.out = out


class Backward:
    """One node's first-order backward: ``outs = function.backward(ctx of op, grad)``."""

    __slots__ = ("op", "grad", "needs", "outs")

    def __init__(self, op: int, grad: Ref, needs: tuple[bool, ...], outs: list[int | None]):
        self.op = op
        self.grad = grad
        self.needs = needs
        self.outs = outs


class Derived:
    """An array the engine made from another: ``kind`` is "fit" (summed to ``shape``, cast
    to ``dtype``, ``batch`` leading axes kept), "add" (``sources`` added), "copy"."""

    __slots__ = ("kind", "sources", "out", "shape", "dtype", "batch")

    def __init__(
        self,
        kind: str,
        sources: list[Ref],
        out: int,
        shape: tuple[int, ...] = (),
        dtype: Any = None,
        batch: int = 0,
    ) -> None:
        self.kind = kind
        self.sources = sources
        self.out = out
        self.shape = shape
        self.dtype = dtype
        self.batch = batch


_LITERALS = (bool, int, float, complex, str, type(None), slice, type(Ellipsis))


class Tracer:
    """What one run of f computed, as steps over slots (see the module's docstring)."""

    def __init__(self) -> None:
        self.busy = False  # inside an op's forward: ops it calls are part of it
        self.steps: list[Op | Call | Saved | Backward | Derived] = []
        self.values: list[Any] = []  # slot -> the array it held in the trace
        self.slots: dict[int, int] = {}  # id(array) -> its latest slot
        self.constants: list[Any] = []
        self.constant_ids: dict[int, int] = {}
        self.op_of_node: dict[int, int] = {}  # id(Context) -> index of its Op step
        self.keep: list[Any] = []  # everything seen, so that ids stay unique
        self.ones: set[int] = set()  # constants the engine made as seeds: all ones
        #: id(Tensor) -> (the Tensor, its array): constants reached through a Tensor (a
        #: closed-over parameter), whose array a later rebinding (p.data = ...) replaces
        self.watched: dict[int, tuple[Tensor, Any]] = {}

    # ------------------------------------------------------------------ slots and refs
    def new_slot(self, array: Any) -> int:
        """A new slot holding ``array``, which from now on refers to it."""
        self.keep.append(array)
        self.values.append(array)
        slot = len(self.values) - 1
        self.slots[id(array)] = slot
        return slot

    def ref(self, value: Any) -> Ref:
        """How a step refers to ``value``: a slot when the trace computed it."""
        tensor = None
        if isinstance(value, Tensor):
            tensor, value = value, value.data
        if isinstance(value, (np.ndarray, np.generic)):
            slot = self.slots.get(id(value))
            if slot is not None:
                return ("s", slot)
            if tensor is not None and id(tensor) not in self.watched:
                self.watched[id(tensor)] = (tensor, value)
            index = self.constant_ids.get(id(value))
            if index is None:
                self.keep.append(value)
                self.constants.append(value)
                index = len(self.constants) - 1
                self.constant_ids[id(value)] = index
            return ("c", index)
        if type(value) in _LITERALS:
            return ("l", value)
        if type(value) in (tuple, list):
            return ("t", type(value), [self.ref(v) for v in value])
        return ("o", value)

    def ones_seed(self, seed: np.ndarray) -> None:
        """The engine's seed ∂L/∂L = 1: a constant nobody else holds, all ones."""
        ref = self.ref(seed)
        self.ones.add(ref[1])

    def is_traced(self, value: Any) -> bool:
        """True when ``value`` (a Tensor or an array) depends on the inputs."""
        array = value.data if isinstance(value, Tensor) else value
        return id(array) in self.slots

    # ------------------------------------------------------------------ what the core reports
    def apply(self, function: Any, inputs: tuple[Any, ...], options: dict[str, Any]) -> Tensor:
        """``function._apply`` under the trace: run it, and write the call down."""
        args = [self.ref(x) for x in inputs]
        refs = {name: self.ref(value) for name, value in options.items()}
        self.busy = True
        try:
            out = _apply(function, inputs, options)
        finally:
            self.busy = False
        node = out._node
        if type(node) is Context:
            needs, meta = node.needs_input_grad, node.input_meta
        else:
            needs, meta = (False,) * len(inputs), ()
        slot = self.new_slot(out.data)
        scalar = out.data.ndim == 0
        self.steps.append(Op(function, args, refs, slot, needs, meta, scalar))
        if node is not None:
            index = len(self.steps) - 1
            self.keep.append(node)
            self.op_of_node[id(node)] = index
            self._note_saved(node, index)
        return out

    def _note_saved(self, node: Context, op: int) -> None:
        """Arrays the forward made and kept on its node (a mask, a sign, indices): a
        recorded backward (``create_graph``) reads them as constants, so they get slots,
        read back from the replayed op's Context. A NumPy scalar kept there (the sign of a
        0-d value) becomes a 0-d array on the traced node, so that the backward's use of it
        is followed too, not written into the program as the trace's number."""
        if node._saved and any(isinstance(value, np.generic) for value in node._saved):
            node._saved = tuple(_as_array(value) for value in node._saved)
        for index, value in enumerate(node._saved or ()):
            if isinstance(value, np.ndarray) and id(value) not in self.slots:
                self.steps.append(Saved(op, index, None, self.new_slot(value)))
        for name, value in list(vars(node).items()):
            if isinstance(value, np.generic):
                value = _as_array(value)
                setattr(node, name, value)
            if isinstance(value, np.ndarray) and id(value) not in self.slots:
                self.steps.append(Saved(op, None, name, self.new_slot(value)))

    def call(self, function: Any, args: tuple, options: dict[str, Any], out: Any) -> None:
        """``tensor.constant_op`` computed ``out`` with a NumPy call."""
        if self.busy:
            return  # part of an op's forward or backward: that step replays it
        refs = [self.ref(a) for a in args]
        named = {name: self.ref(value) for name, value in options.items()}
        self.steps.append(Call(function, refs, named, self.new_slot(out)))

    def backward(self, node: Context, grad_out: Any, grads: tuple[Any, ...]) -> None:
        """A node's backward ran on ndarrays and returned ``grads``."""
        op = self.op_of_node.get(id(node))
        if op is None:
            raise TracedValueError(
                f"cr.compile: the function differentiates through a {node.name} node the "
                "trace did not see made: one made before the trace began (a tensor with a "
                "grad_fn, closed over or passed in: pass its value as an argument, or "
                "detach() it), or one made while a backward ran (cr.checkpoint's "
                "recomputation, which compile does not support)."
            )
        grad = self.ref(grad_out)  # before the outputs take their slots: one may be it
        outs = [None if g is None else self.new_slot(g) for g in grads]
        self.steps.append(Backward(op, grad, node.needs_input_grad, outs))

    def derived(self, kind: str, sources: list[Any], out: Any, **details: Any) -> None:
        """The engine made ``out`` from ``sources`` (see ``Derived``)."""
        refs = [self.ref(s) for s in sources]
        if not any(r[0] == "s" for r in refs):
            return  # made from constants: a constant itself
        self.steps.append(Derived(kind, refs, self.new_slot(out), **details))

    def read(self, tensor: Tensor, what: str) -> None:
        """Refuse to read the value of a traced tensor as a Python value."""
        if not self.is_traced(tensor):
            return
        raise TracedValueError(
            f"cr.compile: {what} reads the value of a tensor (shape {tensor.shape}) that "
            "depends on the function's inputs. The compiled function is traced once and "
            "replayed for new inputs, so it cannot take a branch or a number from a value "
            "that changes from call to call. Use cr.where(condition, a, b) instead of an "
            "if, move the branch or the read outside the compiled function, or do not "
            "compile this function."
        )

    def write(self, tensor: Tensor, what: str) -> None:
        """Refuse an in-place write into a traced tensor (the replay would not see it)."""
        if self.is_traced(tensor):
            raise TracedValueError(
                f"cr.compile: {what} writes in place into a tensor that depends on the "
                "function's inputs, which the compiled program cannot replay. Use the "
                "out-of-place op (y = x + 1 instead of x += 1)."
            )

    def refuse_random(self) -> None:
        """A draw from chainrule's default generator would be replayed frozen."""
        raise TracedValueError(
            "cr.compile: the function draws random numbers (cr.randn, cr.rand, dropout, an "
            "initializer) from chainrule's default generator; the compiled program would "
            "replay the first call's draw on every call. Draw outside the compiled function "
            "and pass the noise or the mask as an argument (or use dropout only in eval)."
        )

    def refuse_update(self, what: str) -> None:
        """A module updates its own state (running statistics): a side effect."""
        raise TracedValueError(
            f"cr.compile: {what} updates its running statistics, a side effect the "
            "compiled program does not replay. Compile the model in eval() mode, or "
            "train it without compile."
        )

    def refuse_backward(self) -> None:
        """``.backward()`` fills ``.grad`` of leaves: a side effect a replay would skip."""
        raise TracedValueError(
            "cr.compile: .backward() inside a compiled function fills .grad, a side effect "
            "the compiled program does not replay. Return the gradients instead: "
            "cr.value_and_grad(loss_fn)(params, ...) or cr.grad(...)."
        )
