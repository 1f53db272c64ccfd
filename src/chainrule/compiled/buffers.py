"""Buffers reused through ``out=``: a compiled program's large temporaries written into a
workspace allocated once per program, instead of into fresh memory on every call.

glibc serves a block above its mmap threshold with a fresh ``mmap``, zeroed by the kernel
page by page (a fault each), and unmaps it when it is freed: a compiled LeNet-5 step run
as a plain script paid about 625 page faults per call for its ReLU outputs, over a
quarter of its time. ``plan`` writes each line whose value is a new array of at least ``MIN_BYTES``
bytes, made by one NumPy ufunc (an arithmetic operator, a comparison, a matrix product,
``np.tanh``, ``np.maximum``, ...), as that ufunc with ``out=`` a buffer of the workspace
``_b``: ``a1 = np.tanh(f1, out=_b[1])``. A line ``v = L op R`` whose left operand is
itself such a temporary, of v's shape, dtype and memory order, becomes ``v = L`` into a
buffer and ``v op= R`` (``f1 = np.matmul(x, W1, out=_b[0])``, ``f1 += b1``, as the
affine template already wrote it; ``d1 = np.matmul(d2, W2.T, out=_b[2])``,
``d1 *= 1 - a1 * a1``). The ufunc is the one the operator calls (``a @ b`` is
``np.matmul(a, b)``, ``v *= m`` is ``np.multiply(v, m, out=v)``), on the same operands
in the same order, into memory of the dtype, shape and order of axes the fresh result had
at the trace: the same numbers, bit for bit. Temporaries nested inside a line stay fresh
unless ``NESTED`` is set (measured: they removed no further page fault and saved no
time), and so do smaller arrays (NumPy and the C library reuse small blocks; the keyword
costs more than it saves on a 16×16 array).

What is known at build time: ``plan`` runs the program once more with each candidate
expression's value recorded, on the trace's arguments, and reads off each value's shape,
dtype and strides, and which values the program returns (themselves, or through a view).

Why it is safe:

- **One buffer per expression, written once per call.** Nothing in a call reads a buffer
  before the one line that owns it writes it, and nothing writes it after, so no value of
  the call is ever overwritten, whatever views of it (``.T``, a reshape, a Context's
  saved array) exist. A ufunc or matrix product never writes into one of its operands:
  they were computed earlier in the call, and the buffer is the line's own; the one
  operand an update ``v op= R`` writes is v, of exactly the result's shape (elementwise).
- **Results are never buffers.** A value the program returns (itself, or a view of it:
  the trace shows which) keeps a fresh array. An output that may come from a buffer
  through a Function's generic ``forward``/``backward`` (which may return or keep what
  it is given) is checked at each call, ``_own(dK1, _b)``, and copied when it shares
  memory with the workspace: what a call returned is never written by a later call.
- **Nothing else keeps a buffer from one call to the next.** The Contexts of the generic
  calls are the program's own, released after their backward and filled again by the
  next call's forward before its backward reads them. (A Function that stores what it is
  given somewhere other than its Context, to read it after the call, would see it change.)
- **One caller at a time.** A workspace and the Contexts belong to one *instance* of the
  program; a call takes a free instance, or makes a new one when the program is already
  running (another thread, or a call from inside a Function's forward), so concurrent
  calls never share memory (``Instances``).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.graph import Context
from chainrule.ops.im2col import layout

__all__ = ["MIN_BYTES", "Instances", "Spec", "allocate", "plan", "own"]

#: a buffer: its shape, dtype and the order of its axes in memory (slowest first)
Spec = tuple[tuple[int, ...], np.dtype, tuple[int, ...]]

#: the smallest temporary written into the workspace (64 KiB); smaller ones stay fresh
MIN_BYTES = 64 * 1024
#: whether temporaries inside a line's expression get buffers too, not only its value
#: (and the left operands ``v op= R`` updates): off, as measured: the line's value alone
#: removed every page fault of W3 (LeNet-5), which ran no faster with the nested ones
#: buffered too, and the program keeps the lecture's operators (``d1 *= 1 - a1 * a1``)
NESTED = False

_BINARY = {
    ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "true_divide",
    ast.MatMult: "matmul",
}  # fmt: skip
_COMPARE = {
    ast.Gt: "greater", ast.GtE: "greater_equal", ast.Lt: "less", ast.LtE: "less_equal",
    ast.Eq: "equal", ast.NotEq: "not_equal",
}  # fmt: skip
#: NumPy functions (``np.f``) and methods (``x.f``, ``np.add.reduce``) whose result is a
#: new array, never a view of an argument, as the program's text calls them
_FRESH_FUNCTIONS = {"array", "full", "zeros", "ones", "empty", "sum", "mean"}
_FRESH_FUNCTIONS |= {name for name in dir(np) if isinstance(getattr(np, name), np.ufunc)}
_FRESH_METHODS = {"copy", "astype", "sum", "mean", "reduce"}


def own(value: Any, workspace: list[np.ndarray]) -> Any:
    """``value``, or a copy of it when it may share memory with a buffer of the
    workspace (a result handed out must not be written by the next call)."""
    if isinstance(value, np.ndarray):
        for buffer in workspace:
            if np.may_share_memory(value, buffer):
                return value.copy()
    return value


# ---------------------------------------------------------------------- rewriting
def _ufunc_of(node: ast.expr) -> str | None:
    """The NumPy ufunc that computes ``node`` into a new array, if it is one: an
    arithmetic operator, a matrix product, a negation, one comparison, or ``np.f(...)``
    of a ufunc with its inputs only."""
    if isinstance(node, ast.BinOp):
        return _BINARY.get(type(node.op))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return "negative"
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return _COMPARE.get(type(node.ops[0]))
    if isinstance(node, ast.Call) and not node.keywords:
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "np"
            and isinstance(getattr(np, func.attr, None), np.ufunc)
            and len(node.args) == getattr(np, func.attr).nin
            and not any(isinstance(a, ast.Starred) for a in node.args)
        ):
            return func.attr
    return None


def _operands(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Compare):
        return [node.left, node.comparators[0]]
    assert isinstance(node, ast.Call)
    return list(node.args)


class _Candidates(ast.NodeTransformer):
    """Visits the expressions that could write into a buffer, innermost first, numbering
    them; ``decide(number, node)`` returns the replacement (or the node)."""

    def __init__(self, decide: Callable[[int, ast.expr], ast.expr]) -> None:
        self.decide = decide
        self.count = 0

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, (ast.Lambda, ast.If)):  # not run once per call, or maybe not
            return node
        node = self.generic_visit(node)
        if isinstance(node, ast.expr) and _ufunc_of(node) is not None:
            self.count += 1
            return self.decide(self.count, node)
        return node


def _assignments(lines: list[Any]) -> list[ast.Assign]:
    """The statements whose values may be rewritten: ``name = expression``."""
    return [
        line.stmt
        for line in lines
        if isinstance(line.stmt, ast.Assign) and isinstance(line.stmt.targets[0], ast.Name)
    ]


def _probe(
    lines: list[Any], namespace: dict[str, Any], inputs: list[str], arrays: list[np.ndarray]
) -> tuple[dict[int, np.ndarray], list[Any]]:
    """Run the program once with each candidate expression's value recorded: (number ->
    value, the returned values)."""
    seen: dict[int, Any] = {}

    def wrap(number: int, node: ast.expr) -> ast.expr:
        return ast.Call(ast.Name("_probe", ast.Load()), [ast.Constant(number), node], [])

    walker = _Candidates(wrap)
    body = []
    for line in lines:
        stmt = copy.deepcopy(line.stmt)
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            stmt.value = walker.visit(stmt.value)
        body.append(stmt)
    function = ast.FunctionDef(
        "program",
        ast.arguments([], [ast.arg(name) for name in inputs], None, [], [], None, []),
        body,
        [],
    )
    module = ast.fix_missing_locations(ast.Module([function], []))

    def record(number: int, value: Any) -> Any:
        seen[number] = value
        return value

    scope = Instances.fresh_namespace(namespace, [])
    scope["_probe"] = record
    exec(compile(module, "<cr.compile probe>", "exec"), scope)  # noqa: S102 (our own program)
    with np.errstate(all="ignore"):
        returned = scope["program"](*arrays)
    return seen, list(returned)


def _numbers(lines: list[Any]) -> dict[int, int]:
    """id(node) -> its number, for the candidate expressions: the walk ``_probe`` makes
    over its copy of the lines (innermost first, statement by statement), made here over
    the lines themselves, so that both number alike."""
    numbers: dict[int, int] = {}

    def note(number: int, node: ast.expr) -> ast.expr:
        numbers[id(node)] = number
        return node  # unchanged: the lines are only read

    walker = _Candidates(note)
    for stmt in _assignments(lines):
        walker.visit(stmt.value)
    return numbers


class _Into(ast.NodeTransformer):
    """Each candidate expression that ``place`` gives a buffer, written as its ufunc with
    ``out=`` that buffer (innermost first, so buffers are numbered in evaluation order)."""

    def __init__(self, place: Callable[[ast.expr], ast.expr | None]) -> None:
        self.place = place

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Lambda):
            return node
        original = node
        node = self.generic_visit(node)  # in place: ``node`` is ``original``
        ufunc = _ufunc_of(node) if isinstance(node, ast.expr) else None
        if ufunc is not None:
            assert isinstance(original, ast.expr) and isinstance(node, ast.expr)
            slot = self.place(original)
            if slot is not None:
                func = ast.Attribute(ast.Name("np", ast.Load()), ufunc, ast.Load())
                call = ast.Call(func, _operands(node), [ast.keyword("out", slot)])
                return ast.copy_location(call, node)
        return node


_IN_PLACE = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def plan(
    lines: list[Any],
    namespace: dict[str, Any],
    inputs: list[str],
    arrays: list[np.ndarray],
    min_bytes: int | None = None,
) -> list[Spec]:
    """Rewrite the program's large temporaries to write into the workspace ``_b`` (in
    place, on ``lines``; the last line is the ``return`` of a tuple) and guard the results
    that may come from it; returns the workspace's (shape, dtype, memory order) per
    buffer.

    The value of a line goes into a buffer; so does, when ``NESTED``, each large
    temporary inside it. A line ``v = L op R`` whose left operand L is a temporary of v's
    own shape, dtype and memory order becomes ``v = L`` (into a buffer) and ``v op= R``,
    the same ufunc on the same operands: ``f1 = x @ W1 + b1`` reads
    ``f1 = np.matmul(x, W1, out=_b[0])``, ``f1 += b1``, as the affine template writes it.
    """
    smallest = MIN_BYTES if min_bytes is None else min_bytes
    seen, returned = _probe(lines, namespace, inputs, arrays)
    results = [r for r in returned if type(r) is np.ndarray]
    numbers = _numbers(lines)
    specs: list[Spec] = []
    tops: set[int] = set()  # ids of the expressions that are a line's value

    def spec(node: ast.expr) -> Spec | None:
        value = seen.get(numbers.get(id(node), 0))
        if type(value) is not np.ndarray or value.nbytes < smallest or value.dtype.hasobject:
            return None
        order = _order(value)
        if order is None or any(np.may_share_memory(value, r) for r in results):
            return None  # not dense, or returned (itself or a view of it)
        return (value.shape, value.dtype, order)

    def place(node: ast.expr) -> ast.expr | None:
        wanted = spec(node)
        if wanted is None or not (NESTED or id(node) in tops):
            return None
        specs.append(wanted)
        return ast.Subscript(ast.Name("_b", ast.Load()), ast.Constant(len(specs) - 1), ast.Load())

    into = _Into(place)
    for line in lines:
        stmt = line.stmt
        if not (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)):
            continue
        name = stmt.targets[0].id
        node, steps = stmt.value, []
        while (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, _IN_PLACE)
            and spec(node) is not None
            and spec(node) == spec(node.left)
        ):
            steps.append((node.op, node.right))
            node = node.left
        tops.add(id(node))
        stmt.value = into.visit(node)
        if steps:
            updates: list[ast.stmt] = [
                ast.AugAssign(ast.Name(name, ast.Store()), op, into.visit(right))
                for op, right in reversed(steps)
            ]
            line.stmt = ast.Module([stmt, *updates], [])
        ast.fix_missing_locations(line.stmt)
    if specs:
        _guard(lines, namespace)
    return specs


def _order(value: np.ndarray) -> tuple[int, ...] | None:
    """The axes of ``value`` from the slowest to the fastest in memory, when its memory is
    dense (C order: 0, 1, ...; a ufunc of transposed inputs may give another order), so
    that the buffer can be laid out as the fresh result was; None otherwise."""
    order = layout(value)
    if value.transpose(order).flags.c_contiguous:
        return order
    return None


def allocate(specs: list[Spec]) -> list[np.ndarray]:
    """A workspace: an uninitialised array per (shape, dtype, memory order)."""
    workspace = []
    for shape, dtype, order in specs:
        memory = np.empty([shape[axis] for axis in order], dtype)
        workspace.append(memory.transpose(np.argsort(order)))
    return workspace


# ---------------------------------------------------------------------- results
class _Aliases:
    """Which buffers a value may share memory with, read off the program's text: a
    ufunc with ``out=_b[i]`` is buffer i; arithmetic makes new arrays; a view (``.T``,
    a reshape, an index) shares its base's; a generic Function call may return or keep
    anything it is given, so its result may share every buffer any of them was given."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.names: dict[str, set[int]] = {}
        self.opaque: set[int] = set()  # every buffer some generic call was given
        self.contexts = {k for k, v in namespace.items() if type(v) is Context}

    def of(self, node: ast.AST) -> set[int]:
        if isinstance(node, ast.Name):
            if node.id in self.contexts:
                return set(self.opaque)
            return set(self.names.get(node.id, ()))
        if isinstance(node, ast.Constant):
            return set()
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare)):
            for child in ast.iter_child_nodes(node):
                self.of(child)  # generic calls inside give them buffers
            return set()
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "out":
                    value = keyword.value
                    assert isinstance(value, ast.Subscript)
                    assert isinstance(value.slice, ast.Constant)
                    for arg in node.args:
                        self.of(arg)
                    return {int(value.slice.value)}  # type: ignore[arg-type]
            given: set[int] = set()
            for child in [*node.args, *(k.value for k in node.keywords)]:
                given |= self.of(child)
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else None
            on_np = isinstance(func, ast.Attribute) and _is_np(func.value)
            fresh = _FRESH_FUNCTIONS if on_np else _FRESH_METHODS
            if isinstance(func, ast.Attribute) and name in fresh:
                self.of(func.value)  # np.tanh(...), x.sum(), np.add.reduce(...): new
                return set()
            if isinstance(func, ast.Attribute):
                given |= self.of(func.value)  # x.reshape(...), Function.forward(ctx, ...)
            if isinstance(func, ast.Attribute) and name in ("reshape", "transpose", "view"):
                return given
            if on_np:  # np.asarray, np.broadcast_to: maybe a view
                return given
            self.opaque |= given
            return given | self.opaque
        found: set[int] = set()
        for child in ast.iter_child_nodes(node):
            found |= self.of(child)
        return found

    def statement(self, stmt: ast.stmt | ast.Module) -> None:
        if isinstance(stmt, ast.Module):  # v = L, v op= R
            for inner in stmt.body:
                self.statement(inner)
        elif isinstance(stmt, ast.Assign):
            value = self.of(stmt.value)
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    self.names[target.id] = self.names.get(target.id, set()) | value
                else:
                    self.of(target)
        elif isinstance(stmt, ast.If):
            for inner in stmt.body + stmt.orelse:
                self.statement(inner)
        else:
            self.of(stmt)


def _is_np(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "np"


def _guard(lines: list[Any], namespace: dict[str, Any]) -> None:
    """Each returned value that may share memory with the workspace: ``_own(v, _b)``."""
    aliases = _Aliases(namespace)
    for line in lines[:-1]:
        aliases.statement(line.stmt)
    stmt = lines[-1].stmt
    assert isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Tuple)
    items = []
    for item in stmt.value.elts:
        if aliases.of(item):
            item = ast.Call(ast.Name("_own", ast.Load()), [item, ast.Name("_b", ast.Load())], [])
        items.append(item)
    stmt.value.elts = items
    ast.fix_missing_locations(stmt)


# ---------------------------------------------------------------------- instances
class Instances:
    """The copies of one program that calls run: each with its own workspace ``_b`` and
    its own Contexts for the generic calls. A call takes a free one; when there is none
    (the program is running in another thread, or calls itself), a new one, which is kept
    afterwards only if no other is free."""

    __slots__ = ("code", "namespace", "specs", "free")

    def __init__(self, code: Any, namespace: dict[str, Any], specs: list[Spec]) -> None:
        self.code = code
        self.namespace = namespace
        self.specs = specs
        self.free: list[Callable[..., Any]] = []

    @staticmethod
    def fresh_namespace(namespace: dict[str, Any], specs: list[Spec]) -> dict[str, Any]:
        """The program's globals with new Contexts and a new workspace."""
        scope = dict(namespace)
        for name, value in namespace.items():
            if type(value) is Context:
                context = copy.copy(value)
                context._saved = ()
                scope[name] = context
        scope["_b"] = allocate(specs)
        return scope

    def make(self) -> Callable[..., Any]:
        """A new instance: the program's function over fresh globals."""
        scope = self.fresh_namespace(self.namespace, self.specs)
        exec(self.code, scope)  # noqa: S102 (our own generated source)
        return scope["program"]

    def __call__(self, *arrays: np.ndarray) -> Any:
        free = self.free
        try:
            run = free.pop()  # atomic: no two callers get the same instance
        except IndexError:
            run = self.make()
        result = run(*arrays)
        if not free:
            free.append(run)
        return result
