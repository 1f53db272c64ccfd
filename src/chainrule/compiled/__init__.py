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
- Large temporaries (64 KiB or more) are written through ``out=`` into a workspace the
  program allocates once (``compiled.buffers``: ``a1 = np.tanh(f1, out=_b[1])``); the
  results are never among them. Calls that overlap (threads, or a call from inside one of
  f's Functions) each run on a workspace and Contexts of their own.
- A call with an argument that requires grad runs f itself (so that the caller can
  differentiate through it), and so does a call inside another compiled function's
  trace (which then records f's ops in its own program).
- A new signature traces again; the last ``cache_size`` programs are kept (least recently
  used out). An argument whose structure changes between calls is a new signature.
- Arrays f closes over (a model's weights, a table of indices) are constants held by
  reference: an in-place update (``w -= lr * g``) is seen by the next call. A closed-over
  Tensor given a new array (``p.data = new``) makes the next call trace again; a plain
  ndarray rebound by name in the caller (``w = w - lr * g``) is not seen.
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

from chainrule.compiled.buffers import Instances
from chainrule.compiled.program import build
from chainrule.compiled.trace import TracedValueError
from chainrule.compiled.tracing import (
    RequiresGrad,
    Trace,
    compare,
    leaf_array,
    refuse_grad,
    same,
    second_trace,
)
from chainrule.graph import Context
from chainrule.mode import STATE
from chainrule.tensor import Tensor
from chainrule.tree import tree_flatten

__all__ = ["Compiled", "TracedValueError", "compile"]


class _Program:
    """One signature's compiled program (it returns f's output structure), its text, and
    the closed-over Tensors whose arrays it holds (``watched``: Tensor, array pairs)."""

    __slots__ = ("run", "source", "watched")

    def __init__(self, run: Callable[..., Any], source: str, watched: tuple) -> None:
        self.run = run
        self.source = source
        self.watched = watched

    def current(self) -> bool:
        """No closed-over Tensor holds another array than at the trace (``p.data = new``
        rebinds it; ``p.data -= ...`` writes the same array, which the program sees)."""
        for tensor, array in self.watched:
            if tensor.data is not array:
                return False
        return True


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
        self._parameters: inspect.Signature | None = None
        self.__name__ = getattr(f, "__name__", "f")
        self.__doc__ = getattr(f, "__doc__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            args = self._positional(args, kwargs)
        if STATE.trace is not None or STATE.vmap is not None:
            # inside another compiled function's trace, or inside vmap's f (its arguments
            # may be batched): be f
            return self.f(*args)
        try:
            key, arrays = _signature(args)
        except RequiresGrad:  # the caller differentiates through this call: record it
            return self.f(*args)
        program = self._cache.get(key)
        if program is None or (program.watched and not program.current()):
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

    def explain(self, *args: Any, **kwargs: Any) -> str:
        """The program for these arguments (traced now if their signature is new)."""
        if kwargs:
            args = self._positional(args, kwargs)
        key, arrays = _signature(args)
        program = self._cache.get(key)
        if program is None:
            program, _ = self._compile(key, args, arrays)
        return program.source

    def _positional(self, args: tuple, kwargs: dict[str, Any]) -> tuple:
        """The arguments by position: those given by name put in their parameters' places
        (the program, and the signature a call is cached by, take f's arguments in order;
        ``f(W, x, y=y)`` is the call ``f(W, x, y)``), with the defaults of parameters
        skipped before a named one filled in."""
        if self._parameters is None:
            try:
                self._parameters = inspect.signature(self.f)
            except (TypeError, ValueError):
                raise TypeError(
                    f"{self.__name__}() was called with keyword arguments "
                    f"({', '.join(kwargs)}), but its signature cannot be read to place them: "
                    "pass them by position"
                ) from None
        try:
            bound = self._parameters.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{self.__name__}(): {error}") from None
        if bound.kwargs:  # a parameter before a named one was left to its default
            bound.apply_defaults()
        if bound.kwargs:
            raise TypeError(
                f"cr.compile: {self.__name__}'s keyword-only arguments "
                f"({', '.join(bound.kwargs)}) cannot be passed to the compiled program, which "
                "takes f's arguments by position: make them ordinary parameters, or close "
                "over them (a function of the remaining arguments)"
            )
        return bound.args

    # ------------------------------------------------------------------ tracing
    def _compile(self, key: Any, args: tuple, arrays: list[np.ndarray]) -> tuple[_Program, Any]:
        first = Trace(self.f, args)
        second = second_trace(self.f, args)
        compare(first, second)
        self.traces += 1
        title = f"cr.compile({self.__name__}) for {_describe(args)}"
        names = _input_names(self.f, args)
        source, namespace, specs = build(
            first.tracer,
            first.inputs,
            names,
            first.outputs,
            first.out_def,
            first.tensors,
            title,
        )
        code = builtins.compile(source, f"<cr.compile {self.__name__}>", "exec")
        run: Callable[..., Any]
        if specs or any(type(v) is Context for v in namespace.values()):
            run = Instances(code, namespace, specs)  # a workspace, Contexts: one per caller
        else:
            exec(code, namespace)  # noqa: S102 (our own generated source)
            run = namespace["program"]
        replayed = run(*arrays)
        leaves, _ = tree_flatten(replayed)
        leaves = [leaf.data if isinstance(leaf, Tensor) else leaf for leaf in leaves]
        for index, (a, b) in enumerate(zip(first.results, leaves)):
            if not same(a, b):
                raise AssertionError(
                    f"cr.compile: the compiled program of {self.__name__} disagrees with its "
                    f"eager run at output {index} (a bug of cr.compile; please report it "
                    "with the function). Call the function without compile meanwhile."
                )
        program = _Program(run, source, tuple(first.tracer.watched.values()))
        self._cache[key] = program
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self._latest = program
        return program, replayed


def compile(f: Callable[..., Any], *, cache_size: int = 8) -> Compiled:
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
            refuse_grad(arg)
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
        array = leaf_array(leaf)
        if array is not None:
            arrays.append(array)
            parts.append((array.shape, array.dtype))
        else:
            parts.append(("static", type(leaf), leaf))
    return (treedef, tuple(parts)), arrays


def _describe(args: tuple) -> str:
    leaves, _ = tree_flatten(args)
    shapes = []
    for leaf in leaves:
        array = leaf_array(leaf)
        shapes.append(repr(leaf) if array is None else f"{array.dtype}{list(array.shape)}")
    return ", ".join(shapes)


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
    taken: set[str] = {"np", "program", "_b", "_own", "_T", "_grads", "_output_array"}

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
        elif value is not None and leaf_array(value) is not None:
            add(name)

    for position, arg in enumerate(args):
        walk(arg, parameters[position] if position < len(parameters) else f"x{position}")
    return names
