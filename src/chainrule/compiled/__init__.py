"""``cr.compile(f)``: trace f once per input signature, then replay it as straight-line NumPy.

f is a pure function of arrays and pytrees of arrays, written with chainrule ops,
transforms (``cr.grad``, ``cr.value_and_grad``, ``cr.vjp``) and ``cr.Function``s. The first
call with a new signature (the arguments' tree structure, each array's shape and dtype,
the values of Python numbers and other non-array leaves) runs f eagerly under a tracer
(``compiled.trace``) that writes down every op, every backward the engine runs and every
gradient it sums, fits or copies; ``compiled.program`` turns that into one Python function
of NumPy calls, compiled once. Later calls with the same signature run that function: no
Tensor, no Context, no graph walk; the order of the walk was fixed by the trace, and the
axes that undo broadcasting were worked out there.

Semantics:

- Array arguments reach f as Tensors that do not require grad; f returns Tensors and/or
  ndarrays in any pytree, and the compiled function returns the same structure, each
  Tensor a new Tensor that does not require grad. Every call returns new arrays: nothing a
  call returned is written by a later one.
- A new signature traces again; the last ``cache_size`` programs are kept (least recently
  used out). An argument whose structure changes between calls is a new signature.
- Arrays f closes over (a model's weights, a table of indices) are constants held by
  reference: an in-place update (``w -= lr * g``) is seen by the next call, a rebinding
  (``w = w - lr * g`` in the caller) is not.
- Reading a value that depends on the inputs (``bool``, ``float``, ``int``, ``.item()``,
  ``.numpy()``, ``.tolist()``) raises ``TracedValueError``, as do ``.backward()`` (a side
  effect on ``.grad``) and in-place writes into traced tensors.
- f is traced twice, on the arguments and on perturbed copies of them; a constant that
  differs between the two traces (a value computed from an input outside the ops, e.g.
  through ``.data``; a random draw) is refused with an error naming the op that read it.
  On the first call the program also runs once and must equal the eager trace, bit for
  bit.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.compiled.program import build
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

__all__ = ["compile", "Compiled", "TracedValueError"]

_STATIC = (bool, int, float, complex, str, bytes, type(None))


class _Program:
    """One signature's compiled program (it returns f's output structure) and its text."""

    __slots__ = ("run", "source")

    def __init__(self, run: Callable[..., Any], source: str) -> None:
        self.run = run
        self.source = source


class Compiled:
    """f, compiled: call it as f. ``source`` shows the program of the latest signature,
    ``explain(*args)`` the program for those arguments; ``traces`` counts the traces."""

    def __init__(self, f: Callable[..., Any], cache_size: int = 8) -> None:
        if not callable(f):
            raise TypeError(f"cr.compile needs a function, got {type(f).__name__}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self.f = f
        self.cache_size = cache_size
        self.traces = 0
        self._cache: OrderedDict[Any, _Program] = OrderedDict()
        self._latest: _Program | None = None
        self.__name__ = getattr(f, "__name__", "f")
        self.__doc__ = getattr(f, "__doc__", None)

    def __call__(self, *args: Any) -> Any:
        key, arrays = _signature(args)
        program = self._cache.get(key)
        if program is None:
            program, results = self._compile(key, args, arrays)
            return results
        self._latest = program
        return program.run(*arrays)

    @property
    def source(self) -> str:
        """The Python source of the program of the latest signature called."""
        if self._latest is None:
            raise RuntimeError("compiled function not called yet: nothing traced")
        return self._latest.source

    def explain(self, *args: Any) -> str:
        """The program for these arguments (traced now if their signature is new)."""
        key, arrays = _signature(args)
        program = self._cache.get(key)
        if program is None:
            program, _ = self._compile(key, args, arrays)
        return program.source

    # ------------------------------------------------------------------ tracing
    def _compile(self, key: Any, args: tuple, arrays: list[np.ndarray]) -> tuple[_Program, Any]:
        first = _Trace(self.f, args)
        second = _second_trace(self.f, args)
        _compare(first, second)
        self.traces += 1
        title = f"cr.compile({self.__name__}) for {_describe(args)}"
        names = _input_names(self.f, args)
        source, namespace = build(
            first.tracer, first.inputs, names, first.outputs, first.out_def, first.tensors, title
        )
        exec(builtins.compile(source, f"<cr.compile {self.__name__}>", "exec"), namespace)  # noqa: S102
        run = namespace["program"]
        replayed = run(*arrays)
        leaves, _ = tree_flatten(replayed)
        leaves = [leaf.data if isinstance(leaf, Tensor) else leaf for leaf in leaves]
        for index, (a, b) in enumerate(zip(first.results, leaves)):
            if not _same(a, b):
                raise AssertionError(
                    f"cr.compile: the compiled program of {self.__name__} disagrees with its "
                    f"eager run at output {index} (a bug of cr.compile; please report it "
                    "with the function). Call the function without compile meanwhile."
                )
        program = _Program(run, source)
        self._cache[key] = program
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self._latest = program
        return program, replayed


def compile(f: Callable[..., Any], *, cache_size: int = 8) -> Compiled:  # noqa: A001
    """f traced once per input signature and replayed as straight-line NumPy.

    The replay runs the recorded forward and backward (a[l] = g(f[l]), f[l] = W[l]ᵀ a[l−1],
    then δ[l] = g′(f[l]) ∘ (W[l+1] δ[l+1]) and ∂L/∂W[l] = a[l−1] δ[l]ᵀ) as the NumPy calls
    the eager engine makes, in the same order: the results are bit-identical to f's.

    Args:
        f: a pure function of arrays (ndarrays or Tensors, in pytrees) and Python values,
            built from chainrule ops, transforms and Functions, returning Tensors or
            ndarrays (in any pytree).
        cache_size: how many signatures' programs to keep (least recently used out).

    Returns:
        A ``Compiled`` callable with ``source`` and ``explain(*args)``.
    """
    return Compiled(f, cache_size)


# ---------------------------------------------------------------------- signatures
def _signature(args: tuple) -> tuple[Any, list[np.ndarray]]:
    """(the cache key of these arguments, the arrays the program takes)."""
    arrays: list[np.ndarray] = []
    parts: list[Any] = []
    for arg in args:
        kind = type(arg)
        if kind is np.ndarray:
            arrays.append(arg)
            parts.append((arg.shape, arg.dtype))
        elif kind is Tensor:
            _refuse_grad(arg)
            arrays.append(arg.data)
            parts.append((arg.data.shape, arg.data.dtype))
        else:
            return _slow_signature(args)
    return tuple(parts), arrays


def _slow_signature(args: tuple) -> tuple[Any, list[np.ndarray]]:
    leaves, treedef = tree_flatten(args)
    arrays: list[np.ndarray] = []
    parts: list[Any] = []
    for leaf in leaves:
        array = _leaf_array(leaf)
        if array is not None:
            arrays.append(array)
            parts.append((array.shape, array.dtype))
        else:
            parts.append(("static", type(leaf), leaf))
    return (treedef, tuple(parts)), arrays


def _leaf_array(leaf: Any) -> np.ndarray | None:
    """The array of an argument leaf, or None for a static leaf (a Python value)."""
    if isinstance(leaf, Tensor):
        _refuse_grad(leaf)
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


def _refuse_grad(tensor: Tensor) -> None:
    if tensor._requires_grad and STATE.grad_enabled:
        raise TypeError(
            "cr.compile: an argument requires grad, but a compiled function's results are "
            "not connected to the caller's graph. Differentiate inside the compiled "
            "function (cr.value_and_grad) and pass arrays or detach()ed tensors."
        )


def _describe(args: tuple) -> str:
    leaves, _ = tree_flatten(args)
    shapes = []
    for leaf in leaves:
        array = _leaf_array(leaf)
        shapes.append(repr(leaf) if array is None else f"{array.dtype}{list(array.shape)}")
    return ", ".join(shapes)


# ---------------------------------------------------------------------- the traces
class _Trace:
    """One eager run of f under a Tracer: the tracer, the input slots, the output refs."""

    def __init__(self, f: Callable[..., Any], args: tuple, perturb: int = 0) -> None:
        leaves, treedef = tree_flatten(args)
        tracer = Tracer()
        self.inputs: list[int] = []
        traced = []
        for leaf in leaves:
            array = _leaf_array(leaf)
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


def _second_trace(f: Callable[..., Any], args: tuple) -> _Trace:
    """f traced on other values: rolled and moved, or only moved when f refuses those
    (a matrix that must stay positive definite), or the same values when it refuses both
    (then only constants that change from call to call, such as random draws, show)."""
    with np.errstate(all="ignore"):
        for perturb in (2, 1):
            try:
                return _Trace(f, args, perturb)
            except TracedValueError:
                raise
            except Exception:  # noqa: BLE001, S112 (values outside f's domain: try others)
                continue
    return _Trace(f, args)


def _perturbed(array: np.ndarray, roll: bool) -> np.ndarray:
    """Other valid values of the same kind and layout: floats moved (positive values stay
    positive) and, with ``roll``, any values rolled along the first axis (which changes
    their order too). A view stays a view and a read-only array read-only, so that the
    engine treats both traces alike."""
    other = np.array(array)
    if roll and other.ndim and other.shape[0] > 1:
        other = np.roll(other, 1, axis=0)
    if other.dtype.kind in "fc":
        other = np.asarray(other * other.dtype.type(1.0625) + other.dtype.type(0.0625))
    if array.base is not None:
        other = other.view()
    other.flags.writeable = array.flags.writeable
    return other


def _compare(first: _Trace, second: _Trace) -> None:
    """Refuse f when the two traces differ in their steps or their constants."""
    a, b = first.tracer, second.tracer
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
        if isinstance(x, (np.ndarray, np.generic)) and not _same(x, y):
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


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


# ---------------------------------------------------------------------- readable names
def _input_names(f: Callable[..., Any], args: tuple) -> list[str]:
    """A Python name per array input: the parameter's name, or a pytree key below it."""
    try:
        parameters = [
            p.name
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        parameters = []
    names: list[str] = []
    taken: set[str] = {"np", "program"}

    def add(name: str) -> None:
        if not name.isidentifier() or keyword.iskeyword(name):
            name = f"x_{name}" if name.isidentifier() else "x"
        base, number = name, 1
        while name in taken:
            number += 1
            name = f"{base}_{number}"
        taken.add(name)
        names.append(name)

    def walk(value: Any, name: str) -> None:
        kind = type(value)
        if kind is dict:
            for key in sorted(value):
                label = str(key)
                walk(value[key], label if label.isidentifier() else f"{name}_{label}")
        elif kind in (tuple, list) or (isinstance(value, tuple) and hasattr(value, "_fields")):
            for i, item in enumerate(value):
                walk(item, f"{name}{i}")
        elif value is not None and _leaf_array(value) is not None:
            add(name)

    for position, arg in enumerate(args):
        walk(arg, parameters[position] if position < len(parameters) else f"x{position}")
    return names
