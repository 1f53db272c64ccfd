"""Random programs over chainrule's op set, run on chainrule and on PyTorch by one interpreter.

A ``Program`` is a few float64 inputs and a DAG of ``Node``s over them: every op of
``cr.ops.__all__`` (as a function, a method or an operator), comparisons, and in-place
updates. Each op has one row in ``OPS``: how chainrule spells it (its forms, with a code
template so a failing program prints as runnable code), how PyTorch computes it, and which
values it must keep away from (a kink, a tie, a pole). The strategy ``programs()`` builds a
program node by node, evaluating each candidate on chainrule so that it knows shapes and
values; a node whose inputs sit within ``MARGIN`` of a kink, or whose values leave
[-BOUND, BOUND], is dropped. ``evaluate`` then runs the same description on either side.

Where NumPy and PyTorch disagree, the PyTorch side is written to follow NumPy (chainrule's
contract): integer indices beside an array index, negative slice steps, reductions over
``axis=()`` and 0-d tensors, ``dot``. In-place updates target a node that owns its memory
alone and is not read again, so PyTorch evaluates them out of place (the program's meaning);
chainrule runs them in place and may refuse (a saved value was overwritten), never answer
wrongly.

``cr.linalg`` gets square matrices that the program itself makes well conditioned (T Tᵀ + cI
with T = tanh(x), or 0.3·tanh(x) ± I), and eigh/svd only matrices whose spectrum is spread
(``SPECTRAL_GAP``); their outputs enter the program in gauge-free forms (eigenvalues,
singular values, log|det|).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.nn import functional as F

__all__ = [
    "MARGIN", "BOUND", "OPS", "NOT_FUZZED", "Program", "Node", "Ref", "programs",
    "evaluate", "CR", "TorchBackend", "covered_ops", "NOT_FUZZED_NN", "HUNT", "hunt_settings",
    "weighted_loss",
]  # fmt: skip

MARGIN = 1e-3  # how far piecewise inputs stay from kinks, ties and poles
BOUND = 1e3  # the largest |value| a node may hold
MAX_SIZE = 36  # the most elements a node may have
MAX_NDIM = 4
MAX_OPS = int(os.environ.get("CHAINRULE_HUNT_OPS", "10"))  # ops drawn per program (at most)
HUNT = int(os.environ.get("CHAINRULE_HUNT", "0"))  # random programs per test, for a long hunt


def hunt_settings(examples: int) -> settings:
    """Settings of a test over random programs: ``examples`` derandomized programs (the
    same in every run, as CI needs), or ``CHAINRULE_HUNT`` random ones for a long hunt."""
    return settings(
        max_examples=HUNT or examples,
        derandomize=not HUNT,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --------------------------------------------------------------------------- operands
@dataclass(frozen=True)
class Ref:
    """An operand that is the value of node ``i`` (inputs are nodes 0 .. k-1)."""

    i: int


@dataclass(frozen=True)
class Scalar:
    """A Python float operand."""

    v: float


@dataclass(frozen=True, eq=False)
class Const:
    """An ndarray operand (a constant: chainrule mixes it in raw, PyTorch as a tensor)."""

    a: np.ndarray


@dataclass(frozen=True, eq=False)
class Wrap:
    """An index array given to chainrule as a Tensor (cr.tensor(a))."""

    a: np.ndarray


@dataclass(frozen=True)
class Slot:
    """Inside an index: the node passed as the getitem node's argument number ``k``."""

    k: int


@dataclass
class Node:
    op: str
    args: tuple
    params: dict = field(default_factory=dict)
    form: str = "fn"


@dataclass
class Program:
    inputs: list[np.ndarray]
    nodes: list[Node]
    kinds: list[str]  # per node id: "f" float64, "b" bool, "i" integer
    outputs: list[int]  # float nodes summed (weighted) into the scalar loss
    weights: list[np.ndarray]
    main: int  # the (non-scalar) output of the jacobian/vjp/jvp checks

    def __repr__(self) -> str:
        lines = ["Program:"]
        for i, a in enumerate(self.inputs):
            lines.append(f"    v{i} = cr.tensor({_r(a)}, requires_grad=True)")
        k = len(self.inputs)
        for j, node in enumerate(self.nodes):
            lines.append(f"    v{k + j} = {render(node, f'v{k + j}')}")
        terms = [f"(v{o} * {_r(w)}).sum()" for o, w in zip(self.outputs, self.weights)]
        lines.append("    loss = " + " + ".join(terms))
        lines.append(f"    main output: v{self.main}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis prints falsifying examples with this


def _r(v: Any) -> str:
    """Python source for a parameter value."""
    if isinstance(v, np.ndarray):
        dtype = "" if v.dtype.kind in "fb" else f", dtype=np.{v.dtype}"
        return f"np.array({v.tolist()!r}{dtype})"
    if isinstance(v, Wrap):
        return f"cr.tensor({_r(v.a)})"
    if isinstance(v, Slot):
        return f"<arg{v.k}>"
    if isinstance(v, slice):
        return f"slice({v.start}, {v.stop}, {v.step})"
    if v is Ellipsis:
        return "..."
    if isinstance(v, tuple):
        inner = ", ".join(_r(p) for p in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, (float, np.floating)) and np.isinf(v):
        return "np.inf" if v > 0 else "-np.inf"
    if isinstance(v, np.floating):
        return f"np.float64({float(v)!r})"
    if isinstance(v, np.dtype):
        return f"np.{v}"
    return repr(v)


def _operand_src(arg: Any) -> str:
    if isinstance(arg, Ref):
        return f"v{arg.i}"
    if isinstance(arg, Scalar):
        return repr(arg.v)
    return _r(arg.a)


def render(node: Node, name: str = "") -> str:
    """The node as Python source (``name`` is the node's own variable, for in-place)."""
    template = OPS[node.op].forms[node.form][0]
    operands = [_operand_src(a) for a in node.args]
    params = {k: _r(v) for k, v in node.params.items()}
    if node.op == "getitem":
        params["index"] = _index_src(node.params["index"], operands, node.form == "op")
    if node.op == "inplace":
        return _inplace_src(node, operands, name)
    kw = "".join(f", {k}={v}" for k, v in params.items())
    kwargs = ", ".join(f"{k}={v}" for k, v in params.items())
    return template.format(*operands, kw=kw, kwargs=kwargs, args=", ".join(operands), **params)


def _inplace_src(node: Node, operands: list[str], name: str) -> str:
    how = node.params["how"]
    target, rest = operands[0], operands[1:]
    if how.endswith("="):
        return f"{target}; {name} {how} {rest[0]}  # in place: {name} is {target}"
    args = list(rest)
    for key in ("alpha", "low", "high"):
        if key in node.params:
            value = _r(node.params[key])
            args.append(f"alpha={value}" if key == "alpha" else value)
    return f"{target}.{how}({', '.join(args)})  # in place"


def _index_src(index: Any, operands: list[str], subscript: bool) -> str:
    def part(p: Any) -> str:
        if isinstance(p, Slot):
            return operands[p.k]
        if subscript and isinstance(p, slice):
            text = ":".join("" if x is None else str(x) for x in (p.start, p.stop, p.step))
            return text[:-1] if text.endswith(":") and p.step is None else text
        return _r(p)

    if not isinstance(index, tuple):
        return part(index)
    if subscript:
        return ", ".join(part(p) for p in index) + ("," if len(index) == 1 else "")
    return "(" + ", ".join(part(p) for p in index) + ("," if len(index) == 1 else "") + ")"


# --------------------------------------------------------------------------- the op table
@dataclass
class OpDef:
    """One op: chainrule's spellings {form: (code template, call)}, PyTorch's call
    ``torch(T, *operands, **params)``, and a check on the operand values (kinks, ties)."""

    forms: dict[str, tuple[str, Callable[..., Any]]]
    torch: Callable[..., Any]
    ok: Callable[..., bool] | None = None
    covers: tuple[str, ...] = ()


def _away(x: Any, point: Any = 0.0) -> bool:
    return bool(np.all(np.abs(np.asarray(x) - np.asarray(point)) > MARGIN))


def _positive(x: Any) -> bool:
    return bool(np.all(np.asarray(x) > 0.01))


def _tie_free(x: np.ndarray, axis: Any) -> bool:
    """Along the reduced axes, the extreme values are exact ties or MARGIN apart."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        return True
    axes = tuple(range(x.ndim)) if axis is None else axis
    axes = tuple(a % x.ndim for a in (axes if isinstance(axes, tuple) else (axes,)))
    if not axes:
        return True
    rest = [a for a in range(x.ndim) if a not in axes]
    flat = np.transpose(x, rest + list(axes)).reshape(
        [x.shape[a] for a in rest] + [-1]
    )  # fmt: skip
    flat = np.sort(flat, axis=-1)
    for ends in (flat[..., -1:] - flat, flat - flat[..., :1]):  # gaps to the max, the min
        gaps = ends[ends != 0]
        if gaps.size and gaps.min() < MARGIN:
            return False
    return True


def _unary(name: str, torch_name: str, method: bool = True, ok: Any = None) -> OpDef:
    fn = getattr(cr, name)
    forms = {"fn": (f"cr.{name}({{0}})", fn)}
    if method:  # the unbound method: a Tensor without it fails here, not silently
        forms["method"] = (f"{{0}}.{name}()", getattr(cr.Tensor, name))
    return OpDef(forms, lambda T, x: getattr(T, torch_name)(x), ok, (name,))


def _t(T: Any, v: Any) -> Any:
    """A PyTorch tensor for a scalar or array operand (float64)."""
    return v if isinstance(v, T.Tensor) else T.tensor(v, dtype=T.float64)


def _binary(name: str, symbol: str | None, torch_fn: Callable[..., Any], ok: Any = None) -> OpDef:
    fn = getattr(cr, name)
    forms = {"fn": (f"cr.{name}({{0}}, {{1}})", fn)}
    if symbol is not None:
        forms["op"] = (f"({{0}} {symbol} {{1}})", _OPERATORS[symbol])
    return OpDef(forms, torch_fn, ok, (name,))


_OPERATORS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "**": operator.pow, "@": operator.matmul, ">": operator.gt, "<": operator.lt,
    ">=": operator.ge, "<=": operator.le,
}  # fmt: skip


def _ok_div(a: Any, b: Any, y: Any) -> bool:
    return bool(np.all(np.abs(np.asarray(b)) > 0.05))


def _ok_pow(a: Any, b: Any, y: Any) -> bool:
    return _positive(a)


def _ok_ties(a: Any, b: Any, y: Any, *, same: bool = False) -> bool:
    return same or _away(a, b)


# Reductions: the chainrule call gets the node's params as they are (axis= or dim=,
# keepdims=, ddof=); PyTorch gets them translated, 0-d tensors and axis=() as in NumPy.
def _dims(x: Any, params: dict) -> tuple[int, ...]:
    axis = params.get("axis", params.get("dim"))
    if axis is None:
        return tuple(range(x.ndim))
    return tuple(a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,)))


def _torch_reduction(kind: str) -> Callable[..., Any]:
    def call(T: Any, x: Any, **params: Any) -> Any:
        keep = params.get("keepdims", False)
        dims = _dims(x, params)
        if x.ndim == 0 or not dims:  # nothing reduced (PyTorch's dim=() means all axes)
            x, dims = x.unsqueeze(-1), (-1,)
            keep = False
        if kind == "var":
            return T.var(x, dim=dims, correction=params.get("ddof", 0), keepdim=keep)
        if kind == "std":
            return T.std(x, dim=dims, correction=params.get("ddof", 0), keepdim=keep)
        if kind == "prod":  # torch.prod takes one dim: the reduced axes last, flattened
            dims = tuple(d % x.ndim for d in dims)
            kept = [d for d in range(x.ndim) if d not in dims]
            y = x.permute(*kept, *dims).reshape(*[x.shape[d] for d in kept], -1).prod(-1)
            return y.reshape([1 if d in dims else n for d, n in enumerate(x.shape)]) if keep else y
        fn = {"sum": T.sum, "mean": T.mean, "max": T.amax, "min": T.amin,
              "logsumexp": T.logsumexp}[kind]  # fmt: skip
        return fn(x, dim=dims, keepdim=keep)

    return call


def _reduction(name: str, ok: Any = None) -> OpDef:
    fn = getattr(cr, name)
    forms = {
        "fn": (f"cr.{name}({{0}}{{kw}})", fn),
        "method": (f"{{0}}.{name}({{kwargs}})", _method(name)),
    }
    return OpDef(forms, _torch_reduction(name), ok, (name,))


def _method(name: str) -> Callable[..., Any]:
    return lambda x, **params: getattr(x, name)(**params)


def _ok_reduce_ties(x: Any, y: Any, **params: Any) -> bool:
    return _tie_free(x, params.get("axis", params.get("dim")))


def _torch_softmax(kind: str) -> Callable[..., Any]:
    def call(T: Any, x: Any, **params: Any) -> Any:
        axis = params.get("axis", params.get("dim"))
        return getattr(T, kind)(x, dim=-1 if axis is None else axis)

    return call


def _torch_arg(kind: str) -> Callable[..., Any]:
    def call(T: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if x.ndim == 0:
            return T.zeros((), dtype=T.int64)
        return getattr(T, kind)(x, dim=axis, keepdim=keepdims)

    return call


def _ok_arg(x: Any, y: Any, axis: Any = None, keepdims: bool = False) -> bool:
    return _tie_free(x, axis)


def _torch_transpose(T: Any, x: Any, axes: Any = None) -> Any:
    if axes is None:
        return x.permute(tuple(reversed(range(x.ndim))))
    return x.permute(tuple(a % x.ndim for a in axes))


def _torch_expand_dims(T: Any, x: Any, axis: Any) -> Any:
    axes = axis if isinstance(axis, tuple) else (axis,)
    out_ndim = x.ndim + len(axes)
    for a in sorted(a % out_ndim for a in axes):
        x = x.unsqueeze(a)
    return x


def _torch_squeeze(T: Any, x: Any, axis: Any = None) -> Any:
    if axis is None:
        return x.squeeze() if x.ndim else x.clone()
    if axis == ():
        return x.clone()
    return T.squeeze(x, axis)


def _torch_dot(T: Any, a: Any, b: Any) -> Any:
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return T.matmul(a, b)


def _torch_where(T: Any, a: Any, b: Any, cond: Any, tensor_cond: bool = False) -> Any:
    cond = cond if isinstance(cond, T.Tensor) else T.tensor(np.asarray(cond, dtype=bool))
    if not isinstance(a, T.Tensor) and not isinstance(b, T.Tensor):
        raise ValueError("where: one of a, b must be a node")
    return T.where(cond, a, b)


def _cr_where(a: Any, b: Any, cond: Any, tensor_cond: bool = False) -> Any:
    return cr.where(cr.tensor(cond) if tensor_cond else cond, a, b)


def _cr_where_node(cond: Any, a: Any, b: Any) -> Any:
    return cr.where(cond, a, b)


def _torch_clip(T: Any, x: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    if isinstance(min, np.ndarray) or isinstance(max, np.ndarray):
        lo = None if min is None else T.tensor(np.asarray(min, dtype=np.float64))
        hi = None if max is None else T.tensor(np.asarray(max, dtype=np.float64))
        return T.clamp(x, lo, hi)
    return T.clamp(x, min, max)


def _ok_clip(x: Any, y: Any, min: Any = None, max: Any = None) -> bool:  # noqa: A002
    return all(bound is None or _away(x, bound) for bound in (min, max))


def _ok_pow_const(x: Any, y: Any, p: Any) -> bool:
    if float(p) != int(p):
        return _positive(x)
    return p >= 0 or bool(np.all(np.abs(x) > 0.2))


def _torch_getitem(T: Any, x: Any, *index_nodes: Any, index: Any) -> Any:
    return torch_index(T, x, _resolve_index(index, [x, *index_nodes], wrap=None))


def _cr_getitem(x: Any, *index_nodes: Any, index: Any) -> Any:
    return x[_resolve_index(index, [x, *index_nodes], wrap=cr.tensor)]


def _cr_getitem_fn(x: Any, *index_nodes: Any, index: Any) -> Any:
    return cr.ops.getitem(x, _resolve_index(index, [x, *index_nodes], wrap=cr.tensor))


def _resolve_index(index: Any, args: list[Any], wrap: Any) -> Any:
    def part(p: Any) -> Any:
        if isinstance(p, Slot):
            return args[p.k]
        if isinstance(p, Wrap):
            return wrap(p.a) if wrap is not None else p.a
        return p

    if isinstance(index, tuple):
        return tuple(part(p) for p in index)
    return part(index)


def torch_index(T: Any, x: Any, index: Any) -> Any:
    """x[index] with NumPy's meaning, on a PyTorch tensor.

    PyTorch has no negative slice steps (the axis is flipped and the slice mirrored), and
    it treats an integer beside an array index as a basic index, where NumPy counts it as
    one more advanced index (broadcast with the arrays; it moves the advanced axes to the
    front when a slice, None or Ellipsis separates them): such integers become [i].
    """
    parts = list(index) if isinstance(index, tuple) else [index]
    parts = [np.asarray(p) if isinstance(p, list) else p for p in parts]
    parts = [int(p) if isinstance(p, T.Tensor) and p.ndim == 0 else p for p in parts]

    def is_array(p: Any) -> bool:
        return isinstance(p, (np.ndarray, T.Tensor))

    def width(p: Any) -> int:
        if p is None or p is Ellipsis:
            return 0
        if is_array(p) and p.dtype in (np.bool_, T.bool):
            return p.ndim
        return 1

    advanced = any(is_array(p) for p in parts)
    # NumPy moves the advanced axes to the front when anything separates the advanced
    # indices, even an Ellipsis that stands for no axis (PyTorch sees no separator there)
    at = [i for i, p in enumerate(parts) if is_array(p) or isinstance(p, (int, np.integer))]
    split = advanced and at[-1] - at[0] + 1 != len(at)
    if any(p is Ellipsis for p in parts):
        e = next(i for i, p in enumerate(parts) if p is Ellipsis)
        fill = [slice(None)] * (x.ndim - sum(width(p) for p in parts))
        parts = parts[:e] + fill + parts[e + 1 :]
    out, flips, axis = [], [], 0
    for p in parts:
        if isinstance(p, slice) and p.step is not None and p.step < 0:
            n = x.shape[axis]
            picked = range(n)[p]
            flips.append(axis)
            if len(picked):
                p = slice(n - 1 - picked[0], n - picked[-1], -p.step)
            else:
                p = slice(0, 0)
        elif isinstance(p, (int, np.integer)) and advanced:
            p = T.tensor([int(p)])
        elif isinstance(p, np.ndarray):
            p = T.tensor(p)
        out.append(p)
        axis += width(p)
    if flips:
        x = T.flip(x, flips)
    y = x[tuple(out)]
    at = [i for i, p in enumerate(out) if isinstance(p, T.Tensor)]
    if split and at[-1] - at[0] + 1 == len(at):  # PyTorch kept the block in place
        front = at[0]  # slices and None before it: one result axis each
        block = y.ndim - (len(out) - len(at))
        order = list(range(front, front + block)) + list(range(front))
        y = y.permute(order + list(range(front + block, y.ndim)))
    return y


# in-place updates: (chainrule call on the target, PyTorch's out-of-place meaning)
def _cr_inplace(t: Any, *operand: Any, how: str, alpha: Any = None, low: Any = None,
                high: Any = None) -> Any:  # fmt: skip
    (o,) = operand or (None,)
    if how == "+=":
        t += o
    elif how == "-=":
        t -= o
    elif how == "*=":
        t *= o
    elif how == "/=":
        t /= o
    elif how == "**=":
        t **= o
    elif how in ("add_", "sub_"):
        t = getattr(t, how)(o) if alpha is None else getattr(t, how)(o, alpha=alpha)
    elif how in ("mul_", "div_", "copy_", "fill_"):
        t = getattr(t, how)(o)
    elif how == "clamp_":
        t = t.clamp_(low, high)
    elif how == "zero_":
        t = t.zero_()
    return t


def _torch_inplace(T: Any, t: Any, *operand: Any, how: str, alpha: Any = None,
                   low: Any = None, high: Any = None) -> Any:  # fmt: skip
    (o,) = operand or (None,)
    a = 1 if alpha is None else alpha
    if how in ("+=", "add_"):
        return t + a * o
    if how in ("-=", "sub_"):
        return t - a * o
    if how in ("*=", "mul_"):
        return t * o
    if how in ("/=", "div_"):
        return t / o
    if how == "**=":
        return t**o
    if how == "clamp_":
        return T.clamp(t, low, high)
    if how in ("copy_", "fill_"):
        return T.broadcast_to(_t(T, o), t.shape) + 0 * t  # t keeps a (zero) gradient
    return 0 * t  # zero_


def _ok_inplace(t: Any, *operand: Any, how: str, alpha: Any = None, low: Any = None,
                high: Any = None) -> bool:  # fmt: skip
    (o,) = operand or (None,)
    if how in ("/=", "div_"):
        return bool(np.all(np.abs(np.asarray(o)) > 0.05))
    if how == "**=":
        return _positive(t)
    if how == "clamp_":
        return _ok_clip(t, None, low, high)
    return True


def _ok_compare(a: Any, b: Any, y: Any) -> bool:
    return _away(a, b)


def _ok_exp(x: Any, y: Any) -> bool:
    return bool(np.all(np.asarray(x) < 6))


def _ok_kink(x: Any, y: Any) -> bool:
    return _away(x)


def _ok_positive(x: Any, y: Any) -> bool:
    return _positive(x)


def _ok_std(x: Any, y: Any, **params: Any) -> bool:
    return _away(y)  # std is a cone at 0: its derivative is a convention there


def _ok_floor(x: Any, y: Any) -> bool:
    return _away(x, np.round(x))  # away from the integers, where floor and ceil jump


def _ok_round(x: Any, y: Any) -> bool:
    return _away(x, np.floor(x) + 0.5)  # away from the halves, where round jumps


def _ok_arctan2(y: Any, x: Any, out: Any) -> bool:
    # away from the origin and from the cut along the negative x axis, where θ jumps
    y, x = np.broadcast_arrays(np.asarray(y), np.asarray(x))
    return _away(np.hypot(y, x)) and bool(np.all((x > MARGIN) | (np.abs(y) > MARGIN)))


def _distinct(x: Any, axis: int) -> bool:
    """No two values along ``axis`` closer than MARGIN (so the order is not a near-tie)."""
    gaps = np.diff(np.sort(np.asarray(x, dtype=float), axis=axis), axis=axis)
    return bool(np.all(gaps > MARGIN))


def _ok_sort(x: Any, y: Any, axis: int = -1, **params: Any) -> bool:
    return _distinct(x, axis)


def _ok_logical(x: Any, y: Any, **params: Any) -> bool:
    x = np.asarray(x)
    return x.dtype.kind == "b" or _away(x)  # floats: zero or not, beyond rounding


def _torch_scan(kind: str) -> Callable[..., Any]:
    def call(T: Any, x: Any, axis: Any = None, dim: Any = None) -> Any:
        axis = axis if dim is None else dim
        if axis is None:
            return getattr(T, kind)(x.reshape(-1), 0)
        return getattr(T, kind)(x, axis)

    return call


def _torch_sort(T: Any, x: Any, axis: int = -1) -> Any:
    return T.sort(x, dim=axis, stable=True).values


def _torch_argsort(T: Any, x: Any, axis: int = -1) -> Any:
    return T.argsort(x, dim=axis, stable=True)


def _torch_topk(part: str) -> Callable[..., Any]:
    def call(T: Any, x: Any, k: int, axis: int = -1, largest: bool = True) -> Any:
        return getattr(T.topk(x, k, dim=axis, largest=largest), part)

    return call


def _torch_logical(kind: str) -> Callable[..., Any]:
    def call(T: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        dims = _dims(x, {"axis": axis})
        if x.ndim == 0 or not dims:  # nothing reduced: each element on its own
            return (x != 0) if x.dtype != T.bool else x.clone()
        return getattr(T, kind)(x, dim=dims, keepdim=keepdims)

    return call


def _cr_concatenate(*xs: Any, axis: int, as_tuple: bool = False) -> Any:
    return cr.concatenate(tuple(xs) if as_tuple else list(xs), axis=axis)


def _cr_stack(*xs: Any, axis: int) -> Any:
    return cr.stack(list(xs), axis=axis)


def _cr_einsum(*xs: Any, subscripts: str) -> Any:
    return cr.einsum(subscripts, *xs)


def _build_ops() -> dict[str, OpDef]:
    ops: dict[str, OpDef] = {
        "neg": OpDef(
            {"fn": ("cr.neg({0})", cr.neg), "op": ("(-{0})", operator.neg)},
            lambda T, x: -x, None, ("neg",),
        ),
        "exp": _unary("exp", "exp", ok=_ok_exp),
        "log": _unary("log", "log", ok=_ok_positive),
        "sqrt": _unary("sqrt", "sqrt", ok=_ok_positive),
        "tanh": _unary("tanh", "tanh"),
        "sigmoid": _unary("sigmoid", "sigmoid"),
        "relu": _unary("relu", "relu", ok=_ok_kink),
        "abs": OpDef(
            {"fn": ("cr.abs({0})", cr.abs), "method": ("{0}.abs()", operator.methodcaller("abs")),
             "op": ("abs({0})", abs)},
            lambda T, x: T.abs(x), _ok_kink, ("abs",),
        ),
        "astype": OpDef(
            {"fn": ("cr.astype({0}, np.float64)", lambda x: cr.astype(x, np.float64)),
             "method": ("{0}.astype('float64')", lambda x: x.astype("float64"))},
            lambda T, x: x.to(T.float64, copy=True), None, ("astype",),
        ),
        "clip": OpDef(
            {"fn": ("cr.clip({0}, {min}, {max})", cr.clip),
             "method": ("{0}.clip({min}, {max})", lambda x, **kw: x.clip(**kw))},
            _torch_clip, _ok_clip, ("clip",),
        ),
        "power_const": OpDef(
            {"op": ("({0} ** {p})", lambda x, p: x**p),
             "fn": ("cr.power({0}, {p})", lambda x, p: cr.power(x, p))},
            lambda T, x, p: x ** float(p) if isinstance(p, np.floating) else x**p,
            _ok_pow_const, ("power",),
        ),
        "rpow": OpDef(
            {"op": ("({base} ** {0})", lambda x, base: base**x),
             "fn": ("cr.power({base}, {0})", lambda x, base: cr.power(base, x))},
            lambda T, x, base: base**x, None, ("power",),
        ),
        "add": _binary("add", "+", lambda T, a, b: a + b),
        "sub": _binary("sub", "-", lambda T, a, b: a - b),
        "mul": _binary("mul", "*", lambda T, a, b: a * b),
        "div": _binary("div", "/", lambda T, a, b: a / b, _ok_div),
        "power": _binary("power", "**", lambda T, a, b: _t(T, a) ** b, _ok_pow),
        "maximum": _binary("maximum", None, lambda T, a, b: T.maximum(_t(T, a), _t(T, b))),
        "minimum": _binary("minimum", None, lambda T, a, b: T.minimum(_t(T, a), _t(T, b))),
        "arctan2": _binary(
            "arctan2", None, lambda T, a, b: T.atan2(_t(T, a), _t(T, b)), _ok_arctan2
        ),
        "where": OpDef(
            {"fn": ("cr.where({cond}, {0}, {1})", _cr_where)},
            _torch_where, None, ("where",),
        ),
        "where_node": OpDef(
            {"fn": ("cr.where({0}, {1}, {2})", _cr_where_node)},
            lambda T, c, a, b: _torch_where(T, a, b, c), None, ("where",),
        ),
        "compare": OpDef(
            {sym: (f"({{0}} {sym} {{1}})", _OPERATORS[sym]) for sym in (">", "<", ">=", "<=")},
            None, _ok_compare, (),
        ),
        "sum": _reduction("sum"),
        "mean": _reduction("mean"),
        "var": _reduction("var"),
        "max": _reduction("max", _ok_reduce_ties),
        "min": _reduction("min", _ok_reduce_ties),
        "logsumexp": _reduction("logsumexp"),
        "prod": _reduction("prod"),
        "std": _reduction("std", _ok_std),
        "cumsum": OpDef(
            {"fn": ("cr.cumsum({0}{kw})", cr.cumsum),
             "method": ("{0}.cumsum({kwargs})", _method("cumsum"))},
            _torch_scan("cumsum"), None, ("cumsum",),
        ),
        "cumprod": OpDef(
            {"fn": ("cr.cumprod({0}{kw})", cr.cumprod),
             "method": ("{0}.cumprod({kwargs})", _method("cumprod"))},
            _torch_scan("cumprod"), None, ("cumprod",),
        ),
        "sort": OpDef(
            {"fn": ("cr.sort({0}{kw})", cr.sort),
             "method": ("{0}.sort({kwargs})", _method("sort"))},
            _torch_sort, _ok_sort, ("sort",),
        ),
        "argsort": OpDef(
            {"fn": ("cr.argsort({0}{kw})", cr.argsort),
             "method": ("{0}.argsort({kwargs})", _method("argsort"))},
            _torch_argsort, _ok_sort, ("argsort",),
        ),
        "topk": OpDef(
            {"fn": ("cr.topk({0}{kw})[0]", lambda x, **kw: cr.topk(x, **kw)[0]),
             "method": ("{0}.topk({kwargs})[0]", lambda x, **kw: x.topk(**kw)[0])},
            _torch_topk("values"), _ok_sort, ("topk",),
        ),
        "topk_indices": OpDef(
            {"fn": ("cr.topk({0}{kw})[1]", lambda x, **kw: cr.topk(x, **kw)[1])},
            _torch_topk("indices"), _ok_sort, ("topk",),
        ),
        "all": OpDef(
            {"fn": ("cr.all({0}{kw})", cr.all), "method": ("{0}.all({kwargs})", _method("all"))},
            _torch_logical("all"), _ok_logical, ("all",),
        ),
        "any": OpDef(
            {"fn": ("cr.any({0}{kw})", cr.any), "method": ("{0}.any({kwargs})", _method("any"))},
            _torch_logical("any"), _ok_logical, ("any",),
        ),
        "softmax": OpDef(
            {"fn": ("cr.softmax({0}{kw})", cr.softmax),
             "method": ("{0}.softmax({kwargs})", _method("softmax"))},
            _torch_softmax("softmax"), None, ("softmax",),
        ),
        "log_softmax": OpDef(
            {"fn": ("cr.log_softmax({0}{kw})", cr.log_softmax),
             "method": ("{0}.log_softmax({kwargs})", _method("log_softmax"))},
            _torch_softmax("log_softmax"), None, ("log_softmax",),
        ),
        "argmax": OpDef(
            {"fn": ("cr.argmax({0}{kw})", cr.argmax),
             "method": ("{0}.argmax({kwargs})", _method("argmax"))},
            _torch_arg("argmax"), _ok_arg, ("argmax",),
        ),
        "argmin": OpDef(
            {"fn": ("cr.argmin({0}{kw})", cr.argmin),
             "method": ("{0}.argmin({kwargs})", _method("argmin"))},
            _torch_arg("argmin"), _ok_arg, ("argmin",),
        ),
        "reshape": OpDef(
            {"fn": ("cr.reshape({0}, {shape})", cr.reshape),
             "varargs": ("{0}.reshape(*{shape})", lambda x, shape: x.reshape(*shape)),
             "method": ("{0}.reshape({shape})", lambda x, shape: x.reshape(shape))},
            lambda T, x, shape: T.reshape(x, shape), None, ("reshape",),
        ),
        "flatten": OpDef(
            {"fn": ("cr.flatten({0})", cr.flatten),
             "method": ("{0}.flatten()", operator.methodcaller("flatten"))},
            lambda T, x: x.reshape(-1), None, ("flatten",),
        ),
        "transpose": OpDef(
            {"fn": ("cr.transpose({0}, {axes})", cr.transpose),
             "varargs": ("{0}.transpose(*{axes})",
                         lambda x, axes: x.transpose(*(axes or ()))),
             "method": ("{0}.transpose({axes})", lambda x, axes: x.transpose(axes)),
             "T": ("{0}.T", lambda x, axes: x.T)},
            _torch_transpose, None, ("transpose",),
        ),
        "swapaxes": OpDef(
            {"fn": ("cr.swapaxes({0}, {a}, {b})", lambda x, a, b: cr.swapaxes(x, a, b)),
             "method": ("{0}.swapaxes({a}, {b})", lambda x, a, b: x.swapaxes(a, b))},
            lambda T, x, a, b: T.swapaxes(x, a, b), None, ("swapaxes",),
        ),
        "broadcast_to": OpDef(
            {"fn": ("cr.broadcast_to({0}, {shape})", cr.broadcast_to),
             "method": ("{0}.broadcast_to({shape})", lambda x, shape: x.broadcast_to(shape))},
            lambda T, x, shape: T.broadcast_to(x, shape), None, ("broadcast_to",),
        ),
        "squeeze": OpDef(
            {"fn": ("cr.squeeze({0}, {axis})", cr.squeeze),
             "method": ("{0}.squeeze({axis})", lambda x, axis: x.squeeze(axis))},
            _torch_squeeze, None, ("squeeze",),
        ),
        "expand_dims": OpDef(
            {"fn": ("cr.expand_dims({0}, {axis})", cr.expand_dims),
             "method": ("{0}.expand_dims({axis})", lambda x, axis: x.expand_dims(axis))},
            _torch_expand_dims, None, ("expand_dims",),
        ),
        "clone": OpDef(
            {"fn": ("cr.clone({0})", cr.clone),
             "method": ("{0}.clone()", operator.methodcaller("clone"))},
            lambda T, x: x.clone(), None, ("clone",),
        ),
        "getitem": OpDef(
            {"op": ("{0}[{index}]", _cr_getitem),
             "fn": ("cr.ops.getitem({0}, {index})", _cr_getitem_fn)},
            _torch_getitem, None, ("getitem",),
        ),
        "concatenate": OpDef(
            {"fn": ("cr.concatenate([{args}], axis={axis})", _cr_concatenate)},
            lambda T, *xs, axis, as_tuple=False: T.cat(xs, dim=axis), None, ("concatenate",),
        ),
        "stack": OpDef(
            {"fn": ("cr.stack([{args}], axis={axis})", _cr_stack)},
            lambda T, *xs, axis: T.stack(xs, dim=axis), None, ("stack",),
        ),
        "matmul": OpDef(
            {"op": ("({0} @ {1})", operator.matmul), "fn": ("cr.matmul({0}, {1})", cr.matmul)},
            lambda T, a, b: T.matmul(_t(T, a), _t(T, b)), None, ("matmul",),
        ),
        "dot": OpDef(
            {"fn": ("cr.dot({0}, {1})", cr.dot)}, _torch_dot, None, ("dot",),
        ),
        "outer": OpDef(
            {"fn": ("cr.outer({0}, {1})", cr.outer)},
            lambda T, a, b: T.outer(a.reshape(-1), b.reshape(-1)), None, ("outer",),
        ),
        "einsum": OpDef(
            {"fn": ("cr.einsum({subscripts}, {args})", _cr_einsum)},
            lambda T, *xs, subscripts: T.einsum(subscripts, *xs), None, ("einsum",),
        ),
        "inplace": OpDef(
            {"fn": ("inplace({0}{args}{kw})", _cr_inplace)},
            _torch_inplace, _ok_inplace, (),
        ),
    }  # fmt: skip
    for name, torch_name, ok in EXTRA_UNARY:  # the v0.2 elementwise ops
        ops[name] = _unary(name, torch_name, ok=ok)
    ops.update(_nn_ops())
    ops.update(_v02_shape_ops())
    ops.update(_linalg_ops())
    ops.update(_v02_nn_ops())
    return ops


# ----------------------------------------------------------------- cr.nn.functional
def _nn(
    name: str, template: str, torch_fn: Callable[..., Any], ok: Any = None, ops: tuple = ()
) -> OpDef:
    """F.name; ``ops`` names the ops of cr.ops.__all__ that it is or that it calls."""
    return OpDef({"fn": (template, getattr(F, name))}, torch_fn, ok, (f"F.{name}", *ops))


def _tf(T: Any) -> Any:
    return T.nn.functional


def _torch_linear(T: Any, x: Any, w: Any, b: Any = None) -> Any:
    return _tf(T).linear(x, _t(T, w).T, None if b is None else _t(T, b))


def _torch_conv2d(T: Any, x: Any, w: Any, b: Any = None, stride: int = 1, padding: int = 0) -> Any:
    # contiguous: slow_conv2d's backward refuses a strided weight ("grad_weight must be
    # contiguous", torch 2.13), which the v0.2 shape ops (moveaxis, a reshape of a
    # transpose) now produce
    x, w = _t(T, x).contiguous(), _t(T, w).contiguous()
    return _tf(T).conv2d(x, w, None if b is None else _t(T, b), stride, padding)


def _torch_loss(kind: str) -> Callable[..., Any]:
    def call(T: Any, prediction: Any, target: Any, reduction: str = "mean") -> Any:
        target = _t(T, target)
        if kind == "rmse":
            if reduction == "none":
                return T.abs(prediction - target)
            return T.sqrt(_tf(T).mse_loss(prediction, target, reduction=reduction))
        fn = {"mse": _tf(T).mse_loss, "l1": _tf(T).l1_loss,
              "bce": _tf(T).binary_cross_entropy_with_logits,
              "huber": _tf(T).huber_loss, "smooth_l1": _tf(T).smooth_l1_loss,
              "bce_p": _tf(T).binary_cross_entropy, "kl": _tf(T).kl_div}[kind]  # fmt: skip
        return fn(prediction, target, reduction=reduction)

    return call


def _torch_cross_entropy(T: Any, logits: Any, target: Any, reduction: str = "mean") -> Any:
    if isinstance(target, np.ndarray) and target.dtype.kind in "iu":
        target = T.tensor(target)
    return _tf(T).cross_entropy(logits, _t(T, target), reduction=reduction)


def _ok_residual(prediction: Any, target: Any, y: Any, reduction: str = "mean") -> bool:
    return _away(prediction, target)


def _ok_unit_residual(prediction: Any, target: Any, y: Any, reduction: str = "mean") -> bool:
    """Huber and smooth L1 (δ = β = 1): |residual| away from 1, where the curvature jumps."""
    return _away(np.abs(np.asarray(prediction) - np.asarray(target)), 1.0)


def _ok_probability(p: Any, target: Any, y: Any, reduction: str = "mean") -> bool:
    """BCE of probabilities: p away from 0 and 1, where its logarithms are clamped."""
    return bool(np.all((np.asarray(p) > MARGIN) & (np.asarray(p) < 1 - MARGIN)))


def _torch_nll_loss(T: Any, x: Any, target: Any, reduction: str = "mean") -> Any:
    labels = target.long() if isinstance(target, T.Tensor) else T.tensor(target)
    # contiguous: nll_loss2d's backward refuses a strided input (torch 2.13)
    return _tf(T).nll_loss(x.contiguous(), labels, reduction=reduction)


def _ok_pool(x: Any, y: Any, kernel_size: int, stride: Any = None) -> bool:
    step = kernel_size if stride is None else stride
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel_size,) * 2, axis=(2, 3))
    windows = windows[:, :, ::step, ::step].reshape(windows.shape[:2] + (-1, kernel_size**2))
    return _tie_free(windows, -1)


def _nn_ops() -> dict[str, OpDef]:
    return {
        "softplus": _nn(
            "softplus", "F.softplus({0})", lambda T, x: _tf(T).softplus(x), ops=("softplus",)
        ),
        "logsigmoid": _nn("logsigmoid", "F.logsigmoid({0})", lambda T, x: _tf(T).logsigmoid(x)),
        "linear": _nn("linear", "F.linear({args})", _torch_linear, ops=("affine",)),
        "conv2d": _nn("conv2d", "F.conv2d({args}{kw})", _torch_conv2d, ops=("conv2d",)),
        "max_pool2d": _nn(
            "max_pool2d", "F.max_pool2d({0}{kw})",
            lambda T, x, kernel_size, stride=None: _tf(T).max_pool2d(x, kernel_size, stride),
            _ok_pool, ops=("max_pool2d",),
        ),
        "avg_pool2d": _nn(
            "avg_pool2d", "F.avg_pool2d({0}{kw})",
            lambda T, x, kernel_size, stride=None: _tf(T).avg_pool2d(x, kernel_size, stride),
            ops=("avg_pool2d",),
        ),
        "mse_loss": _nn("mse_loss", "F.mse_loss({0}, {1}{kw})", _torch_loss("mse")),
        "l1_loss": _nn("l1_loss", "F.l1_loss({0}, {1}{kw})", _torch_loss("l1"), _ok_residual),
        "rmse_loss": _nn(
            "rmse_loss", "F.rmse_loss({0}, {1}{kw})", _torch_loss("rmse"), _ok_residual,
            ops=("safe_sqrt",),
        ),
        "cross_entropy": _nn(  # integer labels go to the fused op
            "cross_entropy", "F.cross_entropy({0}, {1}{kw})", _torch_cross_entropy,
            ops=("cross_entropy_with_labels",),
        ),
        "binary_cross_entropy_with_logits": _nn(
            "binary_cross_entropy_with_logits",
            "F.binary_cross_entropy_with_logits({0}, {1}{kw})", _torch_loss("bce"),
        ),
        # v0.2
        "normal_cdf": OpDef(
            {"fn": ("cr.normal_cdf({0})", cr.normal_cdf)}, lambda T, x: T.special.ndtr(x),
            None, ("normal_cdf",),
        ),
        "gelu": _nn("gelu", "F.gelu({0})", lambda T, x: _tf(T).gelu(x), ops=("normal_cdf",)),
        "silu": _nn("silu", "F.silu({0})", lambda T, x: _tf(T).silu(x)),
        "leaky_relu": _nn(
            "leaky_relu", "F.leaky_relu({0})", lambda T, x: _tf(T).leaky_relu(x), _ok_kink
        ),
        "elu": _nn("elu", "F.elu({0})", lambda T, x: _tf(T).elu(x), _ok_kink),
        "huber_loss": _nn(
            "huber_loss", "F.huber_loss({0}, {1}{kw})", _torch_loss("huber"), _ok_unit_residual
        ),
        "smooth_l1_loss": _nn(
            "smooth_l1_loss", "F.smooth_l1_loss({0}, {1}{kw})", _torch_loss("smooth_l1"),
            _ok_unit_residual,
        ),
        "nll_loss": _nn("nll_loss", "F.nll_loss({0}, {1}{kw})", _torch_nll_loss),
        "kl_div": _nn("kl_div", "F.kl_div({0}, {1}{kw})", _torch_loss("kl")),
        "binary_cross_entropy": _nn(
            "binary_cross_entropy", "F.binary_cross_entropy({0}, {1}{kw})",
            _torch_loss("bce_p"), _ok_probability,
        ),
    }  # fmt: skip


# --------------------------------------------------------------------- v0.2: shape ops
def _per_axis(pad_width: Any, ndim: int) -> list[tuple[int, int]]:
    """NumPy's pad_width (an int, one pair, or a pair per axis) as one pair per axis."""
    return [tuple(int(n) for n in p) for p in np.broadcast_to(np.asarray(pad_width), (ndim, 2))]


_TORCH_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
                    "wrap": "circular"}  # fmt: skip


def _torch_pad(T: Any, x: Any, pad_width: Any, mode: str = "constant",
               constant_values: float = 0.0) -> Any:  # fmt: skip
    """np.pad on PyTorch: F.pad one axis at a time (as NumPy pads, the later axes pad the
    corners the earlier ones made), that axis last in a (1, rest, n) batch; "symmetric",
    which PyTorch lacks, by indexing with np.pad's own index map (a second opinion)."""
    for axis, (before, after) in enumerate(_per_axis(pad_width, x.ndim)):
        if before == after == 0:
            continue
        if mode == "symmetric":
            idx = np.pad(np.arange(x.shape[axis]), (before, after), mode="symmetric")
            x = T.index_select(x, axis, T.tensor(idx))
            continue
        moved = T.movedim(x, axis, -1)
        flat = moved.reshape(1, -1, moved.shape[-1])
        kw = {"value": float(constant_values)} if mode == "constant" else {}
        flat = _tf(T).pad(flat, (before, after), mode=_TORCH_PAD_MODES[mode], **kw)
        x = T.movedim(flat.reshape(*moved.shape[:-1], -1), -1, axis)
    return x + 0 if x.ndim else x.clone()


def _torch_repeat(T: Any, x: Any, repeats: Any, axis: Any = None) -> Any:
    if not isinstance(repeats, int):
        repeats = T.tensor(repeats)
    return T.repeat_interleave(x, repeats, dim=axis)


def _torch_flip(T: Any, x: Any, axis: Any = None) -> Any:
    if axis is None:
        return T.flip(x, tuple(range(x.ndim)))
    return T.flip(x, axis if isinstance(axis, tuple) else (axis,))


def _torch_roll(T: Any, x: Any, shift: Any, axis: Any = None) -> Any:
    if isinstance(axis, tuple) and isinstance(shift, int):
        shift = (shift,) * len(axis)
    return T.roll(x, shift) if axis is None else T.roll(x, shift, axis)


def _weighted_join(pieces: Any, join: Callable[..., Any]) -> Any:
    """The pieces of a split, each times its position + 1, joined again."""
    return join([p * (i + 1) for i, p in enumerate(pieces)])


def _cr_split(x: Any, sections: Any, axis: int = 0, pick: Any = None) -> Any:
    pieces = cr.split(x, sections, axis)
    if pick is not None:
        return pieces[pick]
    return _weighted_join(pieces, lambda ps: cr.concatenate(ps, axis=axis))


def _torch_split(T: Any, x: Any, sections: Any, axis: int = 0, pick: Any = None) -> Any:
    pieces = T.tensor_split(x, sections if isinstance(sections, int) else list(sections), axis)
    if pick is not None:
        return pieces[pick]
    return _weighted_join(pieces, lambda ps: T.cat(ps, dim=axis))


def _cr_cat(*xs: Any, **params: Any) -> Any:
    return cr.cat(list(xs), **params)


def _torch_cat(T: Any, *xs: Any, axis: int = 0, dim: Any = None) -> Any:
    return T.cat(xs, dim=axis if dim is None else dim)


def _torch_take(T: Any, x: Any, indices: Any, axis: Any) -> Any:
    if axis is None:  # take_along_dim's own flattening is a view: refused for a moved x
        return T.take_along_dim(x.reshape(-1), indices, dim=0)
    return T.take_along_dim(x, indices, dim=axis)


def _v02_shape_ops() -> dict[str, OpDef]:
    def fn(name: str, method: bool = False) -> dict[str, tuple[str, Callable[..., Any]]]:
        forms = {"fn": (f"cr.{name}({{0}}{{kw}})", getattr(cr, name))}
        if method:
            forms["method"] = (f"{{0}}.{name}({{kwargs}})", _method(name))
        return forms

    return {
        "pad": OpDef(fn("pad"), _torch_pad, None, ("pad",)),
        "tile": OpDef(fn("tile", True), lambda T, x, reps: T.tile(
            x, reps if isinstance(reps, tuple) else (reps,)), None, ("tile",)),
        "repeat": OpDef(fn("repeat", True), _torch_repeat, None, ("repeat",)),
        "flip": OpDef(fn("flip", True), _torch_flip, None, ("flip",)),
        "roll": OpDef(fn("roll", True), _torch_roll, None, ("roll",)),
        "split": OpDef(  # the pieces weighted by their place and joined again
            {"fn": ("cr.concatenate([p * (i + 1) for i, p in enumerate(cr.split({0}, "
                    "{sections}, {axis}))], axis={axis})", _cr_split)},
            _torch_split, None, ("split",),
        ),
        "split_pick": OpDef(  # one piece
            {"fn": ("cr.split({0}, {sections}, {axis})[{pick}]", _cr_split)},
            _torch_split, None, ("split",),
        ),
        "moveaxis": OpDef(fn("moveaxis"), lambda T, x, source, destination: T.movedim(
            x, source, destination), None, ("moveaxis",)),
        "cat": OpDef({"fn": ("cr.cat([{args}]{kw})", _cr_cat)}, _torch_cat, None, ("cat",)),
        "tril": OpDef(fn("tril"), lambda T, x, k=0: T.tril(x, k), None, ("tril",)),
        "triu": OpDef(fn("triu"), lambda T, x, k=0: T.triu(x, k), None, ("triu",)),
        "diagonal": OpDef(
            fn("diagonal", True),
            lambda T, x, offset=0, axis1=0, axis2=1: T.diagonal(x, offset, axis1, axis2),
            None, ("diagonal",),
        ),
        "trace": OpDef(
            fn("trace", True),
            lambda T, x, offset=0, axis1=0, axis2=1: T.diagonal(x, offset, axis1, axis2).sum(-1),
            None, ("trace",),
        ),
        "take_along_axis": OpDef(
            {"fn": ("cr.take_along_axis({0}, {1}, {axis})",
                    lambda x, i, axis: cr.take_along_axis(x, i, axis))},
            _torch_take, None, ("take_along_axis",),
        ),
    }  # fmt: skip


# --------------------------------------------------------------------- v0.2: cr.linalg
def _torch_norm(T: Any, x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
                keepdims: bool = False) -> Any:  # fmt: skip
    if isinstance(axis, tuple):
        return T.linalg.matrix_norm(x, "fro" if ord is None else ord, axis, keepdims)
    if axis is None and ord is None:  # the flattened 2-norm
        return T.linalg.vector_norm(x, 2, None, keepdims)
    return T.linalg.vector_norm(x, 2 if ord is None else ord, axis, keepdims)


def _ok_norm(x: Any, y: Any, ord: Any = None, axis: Any = None,  # noqa: A002
             keepdims: bool = False) -> bool:  # fmt: skip
    """Away from the norms' kinks: a zero norm (whose gradient is 0 by convention), a zero
    element (|x| in the 1- and ∞-norms), ties of the max/min; distinct singular values."""
    x = np.asarray(x)
    if not _away(y, 0.0) or (ord is not None and ord not in (2, "fro") and not _away(x)):
        return False
    if ord in (np.inf, -np.inf):
        return _tie_free(np.abs(x), axis)
    if isinstance(axis, tuple) and ord in ("nuc", 2):
        return _spectrum_ok(np.linalg.svd(np.moveaxis(x, axis, (-2, -1)), compute_uv=False))
    return True


SPECTRAL_GAP = 0.1  # eigenvalues and singular values: this far apart (and from 0)


def _spectrum_ok(values: np.ndarray, nonzero: bool = True) -> bool:
    """Distinct, non-zero values (the derivatives of eigenvectors and of singular values
    and vectors go as 1/(λᵢ − λⱼ), 1/σ, and their powers at higher order)."""
    values = np.sort(np.asarray(values), axis=-1)
    gaps = np.diff(values, axis=-1)
    far = not nonzero or np.all(np.abs(values) > SPECTRAL_GAP)
    return bool(far and np.all(gaps > SPECTRAL_GAP))


def _cr_eigh(a: Any, part: str) -> Any:
    w, v = cr.linalg.eigh(a)
    return w if part == "w" else v * v


def _torch_eigh(T: Any, a: Any, part: str) -> Any:
    if part == "w":  # a is positive definite: its singular values, ascending
        return T.flip(T.linalg.svdvals(a), (-1,))
    return T.linalg.eigh(a)[1] ** 2


def _ok_eigh(a: Any, y: Any, part: str) -> bool:
    # a 1×1 matrix's eigenvector is ±1, constant: torch.func's nested derivatives of
    # eigh's vectors are NaN there (its F = 1/(λⱼ − λᵢ) has no off-diagonal to mask)
    if part == "v" and np.shape(a)[-1] < 2:
        return False
    return _spectrum_ok(np.linalg.eigvalsh(a), nonzero=False)


def _svd_part(u: Any, s: Any, vt: Any, part: str) -> Any:
    return {"s": s, "u": u * u, "vt": vt * vt}[part]


def _ok_svd(a: Any, y: Any, part: str) -> bool:
    return _spectrum_ok(np.linalg.svd(a, compute_uv=False))


# PyTorch's references for cr.linalg avoid torch.linalg.det, slogdet, solve and eigh: in
# torch 2.13, torch.func's nested derivatives of these are wrong at well-conditioned
# matrices (I + t tᵀ: NaN Hessian-vector products of det, NaN third derivatives of eigh's
# w, third derivatives off for det, slogdet and solve), where torch.autograd's agree with
# the closed forms and with chainrule. Those of lu, inv and svdvals are right, so: det and
# slogdet from the LU factors, solve as inv(a) @ b, the eigenvalues of the (positive
# definite) drawn matrix as its singular values.
def _torch_slogdet(T: Any, a: Any) -> tuple[Any, Any]:
    """(sign, log|det|) from PyTorch's LU: a = P L U, L unit lower triangular."""
    p, _, u = T.linalg.lu(a)
    diag = T.diagonal(u, 0, -2, -1)
    sign = T.linalg.det(p.detach()) * T.prod(T.sign(diag.detach()), -1)
    return sign, T.log(T.abs(diag)).sum(-1)


def _torch_det(T: Any, a: Any) -> Any:
    sign, logabs = _torch_slogdet(T, a)
    return sign * T.exp(logabs)


def _slogdet(sign: Any, logabs: Any, part: str) -> Any:
    return logabs if part == "log" else sign * logabs


def _linalg_ops() -> dict[str, OpDef]:
    L = cr.linalg
    return {
        "norm": OpDef({"fn": ("cr.linalg.norm({0}{kw})", L.norm)}, _torch_norm, _ok_norm,
                      ("norm",)),
        "inv": OpDef({"fn": ("cr.linalg.inv({0})", L.inv)}, lambda T, a: T.linalg.inv(a),
                     None, ("inv",)),
        "det": OpDef({"fn": ("cr.linalg.det({0})", L.det)}, _torch_det, None, ("det",)),
        "slogdet": OpDef(  # log|det|, or sign · log|det| (the sign alone has no gradient)
            {"fn": ("(lambda sign, logabs: logabs if {part} == 'log' else sign * logabs)"
                    "(*cr.linalg.slogdet({0}))", lambda a, part: _slogdet(*L.slogdet(a), part))},
            lambda T, a, part: _slogdet(*_torch_slogdet(T, a), part), None, ("slogdet",),
        ),
        "solve": OpDef({"fn": ("cr.linalg.solve({0}, {1})", L.solve)},
                       lambda T, a, b: T.linalg.inv(a) @ _t(T, b), None, ("solve",)),
        "cholesky": OpDef({"fn": ("cr.linalg.cholesky({0})", L.cholesky)},
                          lambda T, a: T.linalg.cholesky(a), None, ("cholesky",)),
        "eigh": OpDef(  # w, or v ∘ v (unchanged by each eigenvector's sign)
            {"fn": ("(lambda w, v: w if {part} == 'w' else v * v)(*cr.linalg.eigh({0}))",
                    _cr_eigh)},
            _torch_eigh, _ok_eigh, ("eigh",),
        ),
        "svd": OpDef(  # s, u ∘ u or vt ∘ vt (unchanged by the sign of each pair)
            {"fn": ("(lambda u, s, vt: {{'s': s, 'u': u * u, 'vt': vt * vt}}[{part}])"
                    "(*cr.linalg.svd({0}))",
                    lambda a, part: _svd_part(*L.svd(a), part))},
            lambda T, a, part: _svd_part(*T.linalg.svd(a, full_matrices=False), part),
            _ok_svd, ("svd",),
        ),
    }  # fmt: skip


# ------------------------------------------------------------- v0.2: cr.nn.functional
def _cr_layer_norm(x: Any, *affine: Any, **params: Any) -> Any:
    weight, bias = affine or (None, None)
    return F.layer_norm(x, weight=weight, bias=bias, **params)


def _torch_layer_norm(T: Any, x: Any, *affine: Any, normalized_shape: Any,
                      eps: float = 1e-5) -> Any:  # fmt: skip
    """(x − μ) / √(σ² + ε) · γ + β in PyTorch's ops, not F.layer_norm: in torch 2.13
    torch.func's nested derivatives of F.layer_norm (grad of a jvp) are wrong, where this
    agrees with finite differences (F.layer_norm itself is compared with chainrule's to
    second order by tests/nn/test_layers_v02.py)."""
    n = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    dims = tuple(range(x.ndim - n, x.ndim))
    mean = x.mean(dim=dims, keepdim=True)
    y = (x - mean) * T.rsqrt(T.var(x, dim=dims, correction=0, keepdim=True) + eps)
    if affine:
        y = y * _t(T, affine[0]) + _t(T, affine[1])
    return y


LAYER_NORM_VAR = 0.05  # the least variance of a normalised group (1/σ and its powers)


def _ok_layer_norm(x: Any, *rest: Any, normalized_shape: Any, eps: float = 1e-5) -> bool:
    n = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    axes = tuple(range(x.ndim - n, x.ndim))
    return bool(np.all(np.var(x, axis=axes) > LAYER_NORM_VAR))


def _torch_embedding(T: Any, indices: Any, weight: Any) -> Any:
    return _tf(T).embedding(indices.long(), _t(T, weight))


def _v02_nn_ops() -> dict[str, OpDef]:
    ln = ("layer_norm", "F.layer_norm({0}{kw})", _torch_layer_norm, _ok_layer_norm)
    return {
        "layer_norm": OpDef({"fn": (ln[1], _cr_layer_norm)}, *ln[2:], ("F.layer_norm",)),
        "layer_norm_affine": OpDef(
            {"fn": ("F.layer_norm({0}, weight={1}, bias={2}{kw})", _cr_layer_norm)},
            *ln[2:],
            ("F.layer_norm",),
        ),
        "embedding": _nn("embedding", "F.embedding({0}, {1})", _torch_embedding),
    }


# v0.2's elementwise ops. Their inputs are prepared by DOMAINS below (e.g. arcsin gets
# 0.9·tanh(x)).
EXTRA_UNARY = [
    ("sin", "sin", None), ("cos", "cos", None), ("tan", "tan", None),
    ("arcsin", "asin", None), ("arccos", "acos", None), ("arctan", "atan", None),
    ("sinh", "sinh", None), ("cosh", "cosh", None), ("log1p", "log1p", None),
    ("expm1", "expm1", None), ("log2", "log2", _ok_positive), ("log10", "log10", _ok_positive),
    ("square", "square", None), ("reciprocal", "reciprocal", None), ("erf", "erf", None),
    ("sign", "sign", _ok_kink), ("floor", "floor", _ok_floor), ("ceil", "ceil", _ok_floor),
    ("round", "round", _ok_round),
]  # fmt: skip
DOMAINS = {
    "log": "positive", "sqrt": "positive", "log2": "positive", "log10": "positive",
    "log1p": "positive", "reciprocal": "positive", "exp": "bounded", "sinh": "bounded",
    "cosh": "bounded", "expm1": "bounded", "arcsin": "unit", "arccos": "unit", "tan": "unit",
}  # fmt: skip

OPS = _build_ops()

# Ops of cr.ops.__all__ (and of cr.nn.functional) that the generator leaves out, and why.
NOT_FUZZED: dict[str, str] = {
    "conv2d_input": "run as conv2d's recorded backward by every second-order check of a "
    "program with a conv2d node; as a node of its own its x_shape would have to fit g and w",
    "conv2d_weight": "run as conv2d's recorded backward by every second-order check of a "
    "program with a conv2d node; as a node of its own its w_shape would have to fit x and g",
}
NOT_FUZZED_NN = {
    "dropout": "random by design (its mask is not PyTorch's)",
}


def covered_ops() -> set[str]:
    return {name for op in OPS.values() for name in op.covers}


# --------------------------------------------------------------------------- interpreter
class _CR:
    """Runs nodes on chainrule: the op's form, on Tensors, ndarrays and Python floats."""

    def operand(self, arg: Any, values: list[Any]) -> Any:
        if isinstance(arg, Ref):
            return values[arg.i]
        if isinstance(arg, Scalar):
            return arg.v
        return arg.a

    def apply(self, node: Node, values: list[Any]) -> Any:
        operands = [self.operand(a, values) for a in node.args]
        call = OPS[node.op].forms[node.form][1]
        return call(*operands, **node.params)


CR = _CR()


class TorchBackend:
    """Runs nodes on PyTorch (float64): the op's ``torch`` column. In-place updates run
    out of place (the program's meaning), or in place with ``inplace=True`` (to see
    whether PyTorch, too, refuses a backward through an overwritten value)."""

    def __init__(self, torch: Any, inplace: bool = False) -> None:
        self.T = torch
        self.inplace = inplace

    def operand(self, arg: Any, values: list[Any]) -> Any:
        if isinstance(arg, Ref):
            return values[arg.i]
        if isinstance(arg, Scalar):
            return arg.v
        return self.T.tensor(arg.a)

    def apply(self, node: Node, values: list[Any]) -> Any:
        operands = [self.operand(a, values) for a in node.args]
        if node.op == "compare":
            return _OPERATORS[node.form](*operands)
        if node.op == "inplace" and self.inplace:
            return _torch_inplace_really(self.T, *operands, **node.params)
        return OPS[node.op].torch(self.T, *operands, **node.params)


def _torch_inplace_really(T: Any, t: Any, *operand: Any, how: str, alpha: Any = None,
                          low: Any = None, high: Any = None) -> Any:  # fmt: skip
    (o,) = operand or (None,)
    if how in ("+=", "-=", "*=", "/=", "**="):
        method = {"+=": "add_", "-=": "sub_", "*=": "mul_", "/=": "div_", "**=": "pow_"}[how]
        return getattr(t, method)(o)
    if how in ("add_", "sub_"):
        return getattr(t, how)(o, alpha=1 if alpha is None else alpha)
    if how in ("mul_", "div_", "fill_"):
        return getattr(t, how)(o)
    if how == "copy_":
        return t.copy_(T.broadcast_to(_t(T, o), t.shape))
    if how == "clamp_":
        return t.clamp_(low, high)
    return t.zero_()


def evaluate(program: Program, backend: Any, leaves: list[Any], snapshot: Any = None) -> list:
    """Every node's value, inputs first; ``snapshot(i, value)`` sees each right after it
    is made (later in-place updates change chainrule's tensors)."""
    values = list(leaves)
    for i, value in enumerate(values):
        if snapshot is not None:
            snapshot(i, value)
    for node in program.nodes:
        value = backend.apply(node, values)
        if snapshot is not None:
            snapshot(len(values), value)
        values.append(value)
    return values


def weighted_loss(program: Program) -> Callable[..., Any]:
    """The program's loss on chainrule, as a function of its inputs (Tensors, or arrays
    made Tensors): L = Σ over its outputs of (value ∘ weight) summed."""

    def loss(*xs: Any) -> Any:
        leaves = [x if isinstance(x, cr.Tensor) else cr.tensor(x) for x in xs]
        values = evaluate(program, CR, leaves)
        return sum((values[o] * w).sum() for o, w in zip(program.outputs, program.weights))

    return loss


# --------------------------------------------------------------------------- generation
class Builder:
    """Draws a program node by node; each candidate is evaluated on chainrule (no grad)."""

    def __init__(self, draw: Any, min_inputs: int, max_inputs: int) -> None:
        self.draw = draw
        self.rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        self.nodes: list[Node] = []
        self.values: list[Any] = []
        self.kinds: list[str] = []
        self.dead: set[int] = set()
        self.used: set[int] = set()  # nodes that another node reads
        self._draw_inputs(min_inputs, max_inputs)

    # ----------------------------------------------------------- choices
    def int(self, lo: int, hi: int) -> int:
        # From the seeded generator, not from hypothesis: its draws within one example
        # favour 0 (every choice list's first entry) and repeat, which skews the op mix.
        return int(self.rng.integers(lo, hi + 1))

    def coin(self, percent: int = 50) -> bool:
        return self.int(0, 99) < percent

    def choice(self, seq: Any) -> Any:
        return seq[self.int(0, len(seq) - 1)]

    def shape(self, i: int) -> tuple[int, ...]:
        return self.values[i].shape

    def data(self, i: int) -> np.ndarray:
        return self.values[i].data

    def ndim_of(self, i: int) -> int:
        return len(self.shape(i))

    def live(self, kind: str = "f", pred: Any = None) -> list[int]:
        return [
            i for i in range(len(self.values))
            if self.kinds[i] == kind and i not in self.dead and (pred is None or pred(i))
        ]  # fmt: skip

    def pick(self, kind: str = "f", pred: Any = None) -> int | None:
        ids = self.live(kind, pred)
        if not ids:
            return None
        unused = [i for i in ids if i not in self.used]
        if unused and self.coin(40):  # lean towards nodes nothing reads yet: all inputs
            ids = unused  # flow into the outputs, and meet there
        elif self.coin(40):  # and towards recent nodes: deeper graphs
            ids = ids[-2:]
        return self.choice(ids)

    def _draw_inputs(self, lo: int, hi: int) -> None:
        ndim = self.int(0, 3)
        base = tuple(self.int(1, 3) for _ in range(ndim))
        self.n_inputs = self.int(lo, hi)
        for _ in range(self.n_inputs):
            kind = self.choice(["base", "base", "broadcast", "scalar", "swap", "random"])
            if kind == "base":
                shape = base
            elif kind == "broadcast":
                shape = base[self.int(0, len(base)) :]
                shape = tuple(1 if self.coin(30) else n for n in shape)
            elif kind == "scalar":
                shape = ()
            elif kind == "swap" and len(base) >= 2:
                shape = base[:-2] + (base[-1], base[-2])
            else:
                shape = tuple(self.int(1, 3) for _ in range(self.int(0, 3)))
            array = self.rng.uniform(-2.0, 2.0, shape)
            self.values.append(cr.tensor(array))
            self.kinds.append("f")

    # ----------------------------------------------------------- adding nodes
    def add(self, node: Node) -> int | None:
        """Evaluate ``node``; keep it if it is valid, away from kinks and small."""
        operands = [self._value(a) for a in node.args]
        with cr.no_grad():
            out = CR.apply(node, self.values)
        if not self._valid(node, operands, out):
            return None
        self.nodes.append(node)
        self.used.update(a.i for a in node.args if isinstance(a, Ref))
        self.values.append(out)
        self.kinds.append({"f": "f", "b": "b"}.get(out.dtype.kind, "i"))
        return len(self.values) - 1

    def _value(self, arg: Any) -> Any:
        if isinstance(arg, Ref):
            return self.data(arg.i)
        if isinstance(arg, Scalar):
            return np.float64(arg.v)
        return arg.a

    def _valid(self, node: Node, operands: list[Any], out: Any) -> bool:
        data = out.data
        if not 0 < data.size <= MAX_SIZE or data.ndim > MAX_NDIM:
            return False
        if data.dtype.kind == "f" and not (
            np.all(np.isfinite(data)) and np.abs(data).max() <= BOUND
        ):
            return False
        ok = OPS[node.op].ok
        if ok is None:
            return True
        if node.op in ("maximum", "minimum"):
            same = isinstance(node.args[0], Ref) and node.args[0] == node.args[1]
            return _ok_ties(*operands, data, same=same)
        if node.op == "inplace":
            return True  # checked before the write
        return ok(*operands, data, **node.params)

    # ----------------------------------------------------------- operand helpers
    def positive(self, x: int) -> int | None:
        """A node > 0 made from x: x itself, x·x + c, exp(x), σ(x) + c or |x| + c."""
        if np.all(self.data(x) > 0.1) and self.coin():
            return x
        how = self.choice(["square", "square", "exp", "sigmoid", "abs"])
        if how == "square":
            y = self.add(Node("mul", (Ref(x), Ref(x)), form="op"))
            c = self.choice([0.25, 0.5, 1.0])
        elif how == "exp":
            y = self.add(Node("exp", (Ref(x),), form=self.choice(["fn", "method"])))
            c = None
        elif how == "sigmoid":
            y = self.add(Node("sigmoid", (Ref(x),)))
            c = 0.1
        else:
            y = self.add(Node("abs", (Ref(x),), form=self.choice(["fn", "op", "method"])))
            c = 0.5
        if y is None or c is None:
            return y if y is None or np.all(self.data(y) > 0.05) else None
        return self.add(Node("add", (Ref(y), Scalar(c)), form=self.choice(["op", "fn"])))

    def bounded(self, x: int, limit: float = 4.0) -> int | None:
        if np.abs(self.data(x)).max() < limit:
            return x
        return self.add(Node("tanh", (Ref(x),)))

    def unit(self, x: int) -> int | None:
        y = self.add(Node("tanh", (Ref(x),), form="method"))
        return None if y is None else self.add(Node("mul", (Ref(y), Scalar(0.9)), form="op"))

    def broadcast_partner(self, x: int) -> int | None:
        def fits(j: int) -> bool:
            try:
                shape = np.broadcast_shapes(self.shape(x), self.shape(j))
            except ValueError:
                return False
            return int(np.prod(shape)) <= MAX_SIZE

        return self.pick("f", fits)

    def const_like(self, shape: tuple[int, ...], low: float = -2.0, high: float = 2.0) -> Const:
        """A constant array that broadcasts with ``shape``: its suffix, some axes 1."""
        own = shape[self.int(0, len(shape)) :]
        own = tuple(1 if self.coin(30) else n for n in own)
        return Const(self.rng.uniform(low, high, own))

    def midpoint(self, x: int) -> float:
        """A number between two neighbouring values of x (or outside them): a threshold
        at least MARGIN from every element where the values allow."""
        values = np.unique(np.round(self.data(x).ravel(), 6))
        cuts = np.concatenate([[values[0] - 0.5], (values[:-1] + values[1:]) / 2,
                               [values[-1] + 0.5]])  # fmt: skip
        return float(np.round(self.choice(list(cuts)), 6))


def _factor(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


# --------------------------------------------------------------------------- node builders
def b_unary(b: Builder) -> int | None:
    names = ["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "astype"]
    names += [n for n, _, _ in EXTRA_UNARY]
    name = b.choice(names)
    x = b.pick()
    domain = DOMAINS.get(name)
    if domain == "positive":
        x = b.positive(x)
    elif domain == "bounded":
        x = b.bounded(x)
    elif domain == "unit":
        x = b.unit(x)
    if x is None:
        return None
    return b.add(Node(name, (Ref(x),), form=b.choice(sorted(OPS[name].forms))))


def b_power_const(b: Builder) -> int | None:
    x = b.pick()
    if b.coin(30):
        base = b.choice([2.0, 0.5, 1.5])
        x = b.bounded(x)
        if x is None:
            return None
        return b.add(Node("rpow", (Ref(x),), {"base": base}, b.choice(["op", "fn"])))
    p = b.choice([2, 3, 0, 1, -1, -2, 0.5, -1.5, 2.5, np.float64(2.5)])
    if float(p) != int(p) or p < 0:
        x = b.positive(x)
    if x is None:
        return None
    return b.add(Node("power_const", (Ref(x),), {"p": p}, b.choice(["op", "fn"])))


def b_binary(b: Builder) -> int | None:
    name = b.choice(
        ["add", "sub", "mul", "div", "power", "maximum", "minimum", "add", "mul", "arctan2"]
    )
    x = b.pick()
    kind = b.choice(["node", "node", "same", "scalar", "const"])
    if kind == "node":
        other = b.broadcast_partner(x)
        operand: Any = Ref(other) if other is not None else Ref(x)
    elif kind == "same":
        operand = Ref(x)
    elif kind == "scalar":
        operand = Scalar(b.choice([1.5, -0.5, 2.0, 0.3]))
    else:
        operand = b.const_like(b.shape(x))
    args = [Ref(x), operand]
    if b.coin(35) and not (name in ("maximum", "minimum") and kind == "same"):
        args.reverse()
    left, right = args
    if name == "div":
        right = _away_from_zero(b, right)
    elif name == "power":
        left = _positive_operand(b, left)
        if isinstance(right, Ref):
            bounded = b.bounded(right.i, 2.0)
            right = None if bounded is None else Ref(bounded)
        elif isinstance(right, Const):
            right = Const(np.clip(right.a, -2, 2))
    if left is None or right is None or (not isinstance(left, Ref) and not isinstance(right, Ref)):
        return None
    forms = sorted(OPS[name].forms)
    return b.add(Node(name, (left, right), form=b.choice(forms)))


def _away_from_zero(b: Builder, arg: Any) -> Any:
    if isinstance(arg, Ref):
        if np.all(np.abs(b.data(arg.i)) > 0.2):
            return arg
        y = b.positive(arg.i)
        return None if y is None else Ref(y)
    if isinstance(arg, Scalar):
        return arg if abs(arg.v) > 0.2 else Scalar(1.5)
    return Const(np.where(np.abs(arg.a) < 0.2, 0.7, arg.a))


def _positive_operand(b: Builder, arg: Any) -> Any:
    if isinstance(arg, Ref):
        y = b.positive(arg.i)
        return None if y is None else Ref(y)
    if isinstance(arg, Scalar):
        return Scalar(abs(arg.v) + 0.1)
    return Const(np.abs(arg.a) + 0.1)


def b_where(b: Builder) -> int | None:
    x = b.pick()
    other = b.broadcast_partner(x) if b.coin(70) else None
    second: Any = Ref(other) if other is not None else Scalar(b.choice([0.0, -1.0, 0.5]))
    args = [Ref(x), second]
    if b.coin(30):
        args.reverse()
    shape = np.broadcast_shapes(b.shape(x), np.shape(b._value(second)))
    masks = b.live("b", lambda j: _broadcasts(b.shape(j), shape))
    if masks and b.coin(60):
        return b.add(Node("where_node", (Ref(b.choice(masks)), *args)))
    cond_shape = shape[b.int(0, len(shape)) :]
    cond_shape = tuple(1 if b.coin(25) else n for n in cond_shape)
    cond = b.rng.random(cond_shape) < 0.5
    params = {"cond": cond, "tensor_cond": b.coin(30)}
    return b.add(Node("where", tuple(args), params))


def _broadcasts(small: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(small, shape) == tuple(shape)
    except ValueError:
        return False


def b_compare(b: Builder) -> int | None:
    x = b.pick()
    if b.coin(70):
        operand: Any = Scalar(b.midpoint(x))
    else:
        other = b.broadcast_partner(x)
        if other is None or other == x:
            return None
        operand = Ref(other)
    return b.add(Node("compare", (Ref(x), operand), form=b.choice([">", "<", ">=", "<="])))


def b_clip(b: Builder) -> int | None:
    x = b.pick()
    lo: Any = b.midpoint(x) if b.coin(75) else None
    hi: Any = b.midpoint(x) if b.coin(75) or lo is None else None
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    if b.ndim_of(x) and b.coin(20):
        lo = b.rng.uniform(-1.5, 0.0, b.shape(x)[-1:])
        hi = None if b.coin() else lo + 1.0
    form = b.choice(["fn", "method"])
    return b.add(Node("clip", (Ref(x),), {"min": lo, "max": hi}, form))


def _axis_params(b: Builder, ndim: int, *, tuple_ok: bool = True) -> Any:
    """None, an int (maybe negative) or a tuple of distinct axes."""
    if ndim == 0:
        return None
    how = b.choice(["none", "int", "int", "tuple"] if tuple_ok else ["none", "int", "int"])
    if how == "none":
        return None
    if how == "int":
        a = b.int(0, ndim - 1)
        return a - ndim if b.coin(30) else a
    axes = [a for a in range(ndim) if b.coin()]
    return tuple(a - ndim if b.coin(30) else a for a in axes)


def b_reduce(b: Builder) -> int | None:
    name = b.choice(["sum", "mean", "var", "max", "min", "logsumexp", "sum", "max", "prod", "std"])
    x = b.pick()
    ndim = b.ndim_of(x)
    axis = _axis_params(b, ndim)
    form = b.choice(["fn", "method"])
    params: dict[str, Any] = {}
    if axis is not None or b.coin(30):
        key = "dim" if form == "fn" and b.coin(25) else "axis"
        params[key] = axis
    if b.coin():
        params["keepdims"] = b.coin()
    if name == "logsumexp" and form == "method":
        params = {"axis": axis, "keepdims": params.get("keepdims", False)}
    if name in ("var", "std") and b.coin(40):
        axes = _dims(b.data(x), {"axis": axis})
        n = int(np.prod([b.shape(x)[a] for a in axes]))
        if n > 1:
            params["ddof"] = 1
    return b.add(Node(name, (Ref(x),), params, form))


def b_scan(b: Builder) -> int | None:
    name = b.choice(["cumsum", "cumprod"])
    x = b.pick() if name == "cumsum" else b.bounded(b.pick(), 2.0)
    if x is None:
        return None
    ndim = b.ndim_of(x)
    form = b.choice(["fn", "method"])
    params: dict[str, Any] = {}
    if ndim and b.coin(70):
        a = b.int(-ndim, ndim - 1)
        params["dim" if b.coin(25) else "axis"] = a
    return b.add(Node(name, (Ref(x),), params, form))


def b_sort(b: Builder) -> int | None:
    name = b.choice(["sort", "sort", "argsort", "topk", "topk", "topk_indices"])
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    ndim = b.ndim_of(x)
    axis = b.int(-ndim, ndim - 1)
    params: dict[str, Any] = {"axis": axis} if b.coin(60) else {}
    if name.startswith("topk"):
        n = b.shape(x)[params.get("axis", -1)]  # the axis topk runs along (-1 by default)
        params = {"k": b.int(1, n), **params, "largest": b.coin()}
    forms = sorted(OPS[name].forms)
    return b.add(Node(name, (Ref(x),), params, b.choice(forms)))


def b_logical(b: Builder) -> int | None:
    name = b.choice(["all", "any"])
    masks = b.live("b")
    x = b.choice(masks) if masks and b.coin(60) else b.pick()
    if x is None:
        return None
    params = {"axis": _axis_params(b, b.ndim_of(x)), "keepdims": b.coin(30)}
    return b.add(Node(name, (Ref(x),), params, b.choice(["fn", "method"])))


def b_softmax(b: Builder) -> int | None:
    name = b.choice(["softmax", "log_softmax"])
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    ndim = b.ndim_of(x)
    form = b.choice(["fn", "method"])
    params: dict[str, Any] = {}
    if b.coin(70):
        a = b.int(-ndim, ndim - 1)
        params["dim" if b.coin(30) else "axis"] = a
    return b.add(Node(name, (Ref(x),), params, form))


def b_argmax(b: Builder) -> int | None:
    name = b.choice(["argmax", "argmin"])
    x = b.pick()
    axis = _axis_params(b, b.ndim_of(x), tuple_ok=False)
    params = {"axis": axis, "keepdims": b.coin(30)}
    return b.add(Node(name, (Ref(x),), params, b.choice(["fn", "method"])))


def b_reshape(b: Builder) -> int | None:
    x = b.pick()
    factors = _factor(b.data(x).size)
    dims: list[int] = []
    for f in factors:
        if dims and b.coin():
            dims[b.int(0, len(dims) - 1)] *= f
        else:
            dims.append(f)
    for _ in range(b.int(0, 2)):
        dims.insert(b.int(0, len(dims)), 1)
    dims = dims[:MAX_NDIM] if len(dims) <= MAX_NDIM else [int(np.prod(dims))]
    order = list(b.rng.permutation(len(dims)))
    shape = [dims[i] for i in order]
    if shape and b.coin(30):
        shape[b.int(0, len(shape) - 1)] = -1
    forms = ["fn", "method"] + (["varargs"] if shape else [])
    return b.add(Node("reshape", (Ref(x),), {"shape": tuple(shape)}, b.choice(forms)))


def b_transpose(b: Builder) -> int | None:
    x = b.pick()
    ndim = b.ndim_of(x)
    if b.coin(25):
        return b.add(Node("transpose", (Ref(x),), {"axes": None}, b.choice(["fn", "T"])))
    perm = [int(a) - (ndim if b.coin(25) else 0) for a in b.rng.permutation(ndim)]
    form = b.choice(["fn", "method", "varargs"] if ndim else ["fn", "method"])
    if form == "varargs" and not perm:
        return None
    if form == "T":
        return None
    return b.add(Node("transpose", (Ref(x),), {"axes": tuple(perm)}, form))


def b_swapaxes(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    ndim = b.ndim_of(x)
    params = {"a": b.int(-ndim, ndim - 1), "b": b.int(-ndim, ndim - 1)}
    return b.add(Node("swapaxes", (Ref(x),), params, b.choice(["fn", "method"])))


def b_broadcast_to(b: Builder) -> int | None:
    x = b.pick()
    shape = [b.choice([2, 3]) if n == 1 and b.coin(60) else n for n in b.shape(x)]
    shape = [b.int(1, 3) for _ in range(b.int(0, 2))] + shape
    return b.add(Node("broadcast_to", (Ref(x),), {"shape": tuple(shape)},
                      b.choice(["fn", "method"])))  # fmt: skip


def b_flatten(b: Builder) -> int | None:
    return b.add(Node("flatten", (Ref(b.pick()),), form=b.choice(["fn", "method"])))


def b_squeeze(b: Builder) -> int | None:
    x = b.pick()
    shape = b.shape(x)
    ones = [a for a, n in enumerate(shape) if n == 1]
    if ones and b.coin(70):
        chosen = [a - len(shape) if b.coin(30) else a for a in ones if b.coin(60)]
        axis: Any = chosen[0] if len(chosen) == 1 and b.coin() else tuple(chosen)
    else:
        axis = None
    return b.add(Node("squeeze", (Ref(x),), {"axis": axis}, b.choice(["fn", "method"])))


def b_expand_dims(b: Builder) -> int | None:
    x = b.pick()
    count = b.int(1, 2)
    out_ndim = b.ndim_of(x) + count
    if out_ndim > MAX_NDIM:
        return None
    axes = sorted(set(int(a) for a in b.rng.choice(out_ndim, count, replace=False)))
    axes = [a - out_ndim if b.coin(30) else a for a in axes]
    axis: Any = axes[0] if len(axes) == 1 and b.coin() else tuple(axes)
    return b.add(Node("expand_dims", (Ref(x),), {"axis": axis}, b.choice(["fn", "method"])))


def b_clone(b: Builder) -> int | None:
    return b.add(Node("clone", (Ref(b.pick()),), form=b.choice(["fn", "method"])))


def b_getitem(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1) if b.coin(90) else b.pick()
    if x is None:
        return None
    drawn = _draw_index(b, x)
    if drawn is None:
        return None
    index, extra = drawn
    try:
        resolved = _resolve_index(index, [b.data(x)] + [b.data(j) for j in extra], wrap=None)
        probe = np.empty(b.shape(x))[resolved]
    except (IndexError, ValueError, TypeError):
        return None
    if not 0 < probe.size <= MAX_SIZE:
        return None
    args = (Ref(x), *(Ref(j) for j in extra))
    return b.add(Node("getitem", args, {"index": index}, b.choice(["op", "op", "fn"])))


def _draw_index(b: Builder, x: int) -> tuple[Any, list[int]] | None:
    """An index for node x: ints, slices (any step), None, Ellipsis, integer arrays (with
    repeats, negative, 2-D, as lists or tensors), boolean masks over 1-2 axes, and nodes
    (a comparison's mask, an argmax's indices). Returns the index and its node arguments."""
    shape = b.shape(x)
    d = len(shape)
    if d == 0:
        return (b.choice([(), Ellipsis, None, (None, Ellipsis)]), [])
    mode = b.choice(["int", "slice", "basic", "basic", "array", "arrays", "mask", "nodes"])
    if mode == "int":
        return (b.int(-shape[0], shape[0] - 1), [])
    if mode == "slice":
        return (_draw_slice(b, shape[0]), [])
    use_ellipsis = b.coin(30)
    count = b.int(0 if mode == "basic" else 1, d)
    pre = b.int(0, count) if use_ellipsis else count
    axes = list(range(pre)) + list(range(d - (count - pre), d))
    kinds = ["basic"] * count
    if mode in ("array", "arrays"):
        for k in b.rng.choice(count, 1 if mode == "array" else b.int(1, count), replace=False):
            kinds[int(k)] = "array"
    elif mode in ("mask", "nodes"):
        kinds[0] = mode
    adv = [b.int(1, 3)] if b.coin(70) else [b.int(1, 2), b.int(1, 3)]
    parts: list[Any] = []
    starts: list[int] = []  # which of ``axes`` each part starts at
    extra: list[int] = []
    k = 0
    while k < count:
        axis, n = axes[k], shape[axes[k]]
        starts.append(k)
        width = 1
        if kinds[k] in ("mask", "nodes"):
            if k + 1 < count and axes[k + 1] == axis + 1 and b.coin(40):
                width = 2
            mask_shape = shape[axis : axis + width]
            masks = b.live("b", lambda j, s=mask_shape: b.shape(j) == s)
            ints = b.live("i", lambda j, n=n: b.ndim_of(j) <= 1 and _in_range(b.data(j), n))
            if kinds[k] == "nodes" and (masks or ints):
                j = b.choice(masks + ints)
                extra.append(j)
                parts.append(Slot(len(extra)))
                width = width if j in masks else 1
            else:
                mask = b.rng.random(mask_shape) < 0.6
                if not mask.any():
                    mask.flat[b.int(0, mask.size - 1)] = True
                parts.append(Wrap(mask) if b.coin(25) else mask)
        elif kinds[k] == "array":
            arr = b.rng.integers(-n, n, adv if b.coin(80) else [1] * len(adv))
            if arr.ndim == 1 and b.coin(25):
                parts.append(arr.tolist())
            else:
                parts.append(Wrap(arr) if b.coin(20) else arr)
        elif b.coin(45):
            parts.append(b.int(-n, n - 1))
        else:
            parts.append(_draw_slice(b, n))
        k += width
    if use_ellipsis:
        parts.insert(sum(1 for k in starts if k < pre), Ellipsis)
    for _ in range(b.choice([0, 0, 1, 2])):
        parts.insert(b.int(0, len(parts)), None)
    if len(parts) == 1 and b.coin():
        return (parts[0], extra)
    return (tuple(parts), extra)


def _in_range(idx: np.ndarray, n: int) -> bool:
    return idx.size > 0 and int(idx.max()) < n and int(idx.min()) >= -n


def _draw_slice(b: Builder, n: int) -> slice:
    step = b.choice([None, None, 1, 2, -1, -2])
    start = b.choice([None, None, b.int(-n, n)])
    stop = b.choice([None, None, b.int(-n, n)])
    return slice(start, stop, step)


def b_concatenate(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    shape = b.shape(x)
    ndim = len(shape)
    axis = b.int(-ndim, ndim - 1)
    a = axis % ndim

    def fits(j: int) -> bool:
        s = b.shape(j)
        return len(s) == ndim and s[:a] + s[a + 1 :] == shape[:a] + shape[a + 1 :]

    members = [x] + [j for j in (b.pick("f", fits) for _ in range(b.int(1, 2))) if j is not None]
    if b.coin(30):  # a slice of x along the axis as a partner
        index = (slice(None),) * a + (slice(0, b.int(1, shape[a])),)
        part = b.add(Node("getitem", (Ref(x),), {"index": index}, "op"))
        if part is not None:
            members.append(part)
    if b.coin(30):
        members.reverse()
    params = {"axis": axis}
    if b.coin(30):
        params["as_tuple"] = True
    node = Node("concatenate", tuple(Ref(j) for j in members), params)
    return b.add(node)


def b_stack(b: Builder) -> int | None:
    x = b.pick()
    shape = b.shape(x)
    same = [b.pick("f", lambda j: b.shape(j) == shape) for _ in range(b.int(1, 2))]
    members = [x] + [j for j in same if j is not None]
    ndim = len(shape) + 1
    params = {"axis": b.int(-ndim, ndim - 1)}
    return b.add(Node("stack", tuple(Ref(j) for j in members), params))


def _matmul_ok(sa: tuple[int, ...], sb: tuple[int, ...]) -> bool:
    if not sa or not sb:
        return False
    k = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != k:
        return False
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        return False
    return True


def b_matmul(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    sx = b.shape(x)
    right = b.coin(65)
    if right:
        partners = b.live("f", lambda j: _matmul_ok(sx, b.shape(j)))
    else:
        partners = b.live("f", lambda j: _matmul_ok(b.shape(j), sx))
    if partners and b.coin(75):
        other: Any = Ref(b.choice(partners))
    elif len(sx) >= 2 and b.coin():
        t = b.add(Node("swapaxes", (Ref(x),), {"a": -1, "b": -2}, "method"))
        if t is None:
            return None
        other = Ref(t)
    else:
        k = sx[-1] if right else (sx[0] if len(sx) == 1 else sx[-2])
        tail = [b.int(1, 3)] if b.coin(70) else []
        shape = (k, *tail) if right else (*tail, k)
        other = Const(b.rng.uniform(-1.5, 1.5, shape))
    args = (Ref(x), other) if right else (other, Ref(x))
    return b.add(Node("matmul", args, form=b.choice(["op", "op", "fn"])))


def _dot_ok(sa: tuple[int, ...], sb: tuple[int, ...]) -> bool:
    if not sa or not sb:
        return True
    if len(sa) > 2 or len(sb) > 2:
        return False
    return _matmul_ok(sa, sb)


def b_dot(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) <= 2)
    if x is None:
        return None
    other = b.pick("f", lambda j: _dot_ok(b.shape(x), b.shape(j)))
    if other is None:
        return None
    return b.add(Node("dot", (Ref(x), Ref(other))))


def b_outer(b: Builder) -> int | None:
    x = b.pick()
    y = b.pick("f", lambda j: b.data(j).size * b.data(x).size <= MAX_SIZE)
    if y is None:
        return None
    return b.add(Node("outer", (Ref(x), Ref(y))))


def b_einsum(b: Builder) -> int | None:
    count = b.choice([1, 2, 2, 3])
    members = [b.pick("f", lambda i: b.ndim_of(i) <= 3) for _ in range(count)]
    if any(m is None for m in members):
        return None
    letters = iter("abcdefghij")
    sizes: dict[str, int] = {}
    terms: list[str] = []
    use_ellipsis = b.coin(20)
    leads: list[tuple[int, ...]] = []
    for m in members:
        shape = b.shape(m)
        lead = b.int(0, len(shape)) if use_ellipsis else 0
        leads.append(shape[:lead])
        term = ""
        for n in shape[lead:]:
            reuse = [c for c, size in sizes.items() if size == n and c not in term]
            if reuse and b.coin(60):
                c = b.choice(sorted(reuse))
            else:
                c = next(letters)
                sizes[c] = n
            term += c
        terms.append(("..." if use_ellipsis else "") + term)
    if use_ellipsis:
        try:
            np.broadcast_shapes(*leads)
        except ValueError:
            return None
    used = sorted({c for t in terms for c in t if c != "."})
    subscripts = ",".join(terms)
    if b.coin(70):
        out = [c for c in used if b.coin()]
        out = [out[i] for i in b.rng.permutation(len(out))]
        dots = "..." if use_ellipsis else ""
        subscripts += "->" + (dots + "".join(out) if b.coin() else "".join(out) + dots)
    try:
        probe = np.einsum(subscripts, *(b.data(m) for m in members))
    except ValueError:
        return None
    if not 0 < np.size(probe) <= MAX_SIZE:
        return None
    node = Node("einsum", tuple(Ref(m) for m in members), {"subscripts": subscripts})
    return b.add(node)


def b_inplace(b: Builder) -> int | None:
    """An in-place update of an intermediate that owns its memory alone; the old node is
    not read again (its id goes dead), so the program means the out-of-place update."""

    def owned(i: int) -> bool:
        data = b.data(i)
        if i < b.n_inputs or data.base is not None or not data.flags.writeable:
            return False
        return not any(j != i and np.shares_memory(data, b.data(j)) for j in range(len(b.values)))

    target = b.pick("f", owned)
    if target is None:
        return None
    how = b.choice(["+=", "-=", "*=", "/=", "**=", "add_", "sub_", "mul_", "div_", "clamp_",
                    "copy_", "fill_", "zero_", "+=", "*="])  # fmt: skip
    shape = b.shape(target)
    params: dict[str, Any] = {"how": how}
    operand: list[Any] = []
    if how == "clamp_":
        params["low"] = b.midpoint(target)
        params["high"] = params["low"] + b.choice([0.5, 1.0, 10.0])
    elif how == "**=":
        if not np.all(b.data(target) > 0.05):
            return None
        operand = [Scalar(b.choice([2.0, 0.5, 3.0]))]
    elif how == "fill_":
        operand = [Scalar(b.choice([0.5, -1.0]))]
    elif how != "zero_":
        j = b.pick("f", lambda k: _broadcasts(b.shape(k), shape) and k != target)
        if j is not None and b.coin(75):
            operand = [Ref(j)]
        elif how == "copy_":
            operand = [b.const_like(shape)]
        else:
            operand = [b.choice([Scalar(1.5), Scalar(-0.5), b.const_like(shape)])]
        if how in ("/=", "div_"):
            operand = [_away_from_zero(b, operand[0])]
            if operand[0] is None:
                return None
        if how in ("add_", "sub_") and b.coin():
            params["alpha"] = b.choice([2.0, -0.5])
    values = [b._value(a) for a in operand]
    if not _ok_inplace(b.data(target), *values, **params):
        return None
    # the result must be valid before the write: run it out of place on a copy first
    with cr.no_grad():
        trial = _cr_inplace(cr.tensor(b.data(target).copy()),
                            *(b.values[a.i] if isinstance(a, Ref) else b._value(a)
                              for a in operand), **params)  # fmt: skip
    data = trial.data
    if not (np.all(np.isfinite(data)) and np.abs(data).max() <= BOUND):
        return None
    node = Node("inplace", (Ref(target), *operand), params)
    new = b.add(node)
    if new is not None:
        b.dead.add(target)
    return new


def b_nn_elementwise(b: Builder) -> int | None:
    name = b.choice(["softplus", "logsigmoid", "normal_cdf", "gelu", "silu", "leaky_relu", "elu"])
    return b.add(Node(name, (Ref(b.pick()),)))


def b_linear(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    n_in = b.shape(x)[-1]
    weights = b.live("f", lambda j: b.ndim_of(j) == 2 and b.shape(j)[0] == n_in)
    if weights and b.coin(60):
        w: Any = Ref(b.choice(weights))
    else:
        w = Const(b.rng.uniform(-1.0, 1.0, (n_in, b.int(1, 3))))
    n_out = b._value(w).shape[1]
    args = [Ref(x), w]
    if b.coin(60):
        biases = b.live("f", lambda j: b.shape(j) == (n_out,))
        args.append(
            Ref(b.choice(biases)) if biases and b.coin() else Const(b.rng.uniform(-1, 1, n_out))
        )
    return b.add(Node("linear", tuple(args)))


def _as_nchw(b: Builder, x: int) -> int | None:
    """x as an NCHW batch: new leading axes of 1 (a reshape node) up to 4 dimensions."""
    shape = b.shape(x)
    if len(shape) == 4:
        return x
    if len(shape) < 2:
        return None
    return b.add(Node("reshape", (Ref(x),), {"shape": (1,) * (4 - len(shape)) + shape}))


def b_conv2d(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 2)
    x = None if x is None else _as_nchw(b, x)
    if x is None:
        return None
    _, c, h, w_ = b.shape(x)
    padding = b.choice([0, 0, 1])
    kh, kw = b.int(1, min(2, h + 2 * padding)), b.int(1, min(2, w_ + 2 * padding))
    out = b.int(1, 2)
    size = out * c * kh * kw
    sources = b.live("f", lambda j: b.data(j).size == size)
    weight: Any = Const(b.rng.uniform(-1.0, 1.0, (out, c, kh, kw)))
    if sources and b.coin(60):
        node = b.add(Node("reshape", (Ref(b.choice(sources)),), {"shape": (out, c, kh, kw)}))
        weight = weight if node is None else Ref(node)
    args = [Ref(x), weight]
    if b.coin():
        args.append(Const(b.rng.uniform(-1.0, 1.0, out)))
    params = {"stride": b.choice([1, 1, 2]), "padding": padding}
    return b.add(Node("conv2d", tuple(args), params))


def b_pool(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 2)
    x = None if x is None else _as_nchw(b, x)
    if x is None:
        return None
    h, w_ = b.shape(x)[2:]
    k = b.int(1, min(2, h, w_))
    params: dict[str, Any] = {"kernel_size": k}
    if b.coin():
        params["stride"] = b.choice([1, 2])
    return b.add(Node(b.choice(["max_pool2d", "avg_pool2d"]), (Ref(x),), params))


def b_loss(b: Builder) -> int | None:
    name = b.choice(["mse_loss", "l1_loss", "rmse_loss", "cross_entropy",
                     "binary_cross_entropy_with_logits", "huber_loss", "smooth_l1_loss",
                     "nll_loss", "kl_div", "binary_cross_entropy"])  # fmt: skip
    with_classes = name in ("cross_entropy", "nll_loss")
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1) if with_classes else b.pick()
    if x is None:
        return None
    shape = b.shape(x)
    reduction = b.choice(["mean", "mean", "sum", "none"])
    same = b.live("f", lambda j: b.shape(j) == shape and j != x)
    if name == "nll_loss":
        axis = 1 if len(shape) > 1 else 0
        target: Any = Const(b.rng.integers(0, shape[axis], shape[:axis] + shape[axis + 1 :]))
    elif name == "kl_div":  # log q anything, t a positive "distribution" (torch: no "mean")
        reduction = b.choice(["batchmean", "sum", "none"])
        target = Const(b.rng.uniform(0.05, 1.0, shape))
    elif name == "binary_cross_entropy":  # p = σ(x) in (0, 1)
        p = b.add(Node("sigmoid", (Ref(x),)))
        if p is None:
            return None
        x, target = p, Const(b.rng.uniform(0.0, 1.0, shape))
    elif name == "cross_entropy" and b.coin(60):
        axis = 1 if len(shape) > 1 else 0
        labels = shape[:axis] + shape[axis + 1 :]
        target = Const(b.rng.integers(0, shape[axis], labels))
    elif name == "cross_entropy":
        if not same:
            return None
        soft = b.add(Node("softmax", (Ref(b.choice(same)),), {"axis": 1 if len(shape) > 1 else 0}))
        if soft is None:
            return None
        target = Ref(soft)
    elif name == "binary_cross_entropy_with_logits":
        target = Const(b.rng.uniform(0.0, 1.0, shape))
        if same and b.coin():
            soft = b.add(Node("sigmoid", (Ref(b.choice(same)),)))
            target = target if soft is None else Ref(soft)
    else:
        target = Ref(b.choice(same)) if same and b.coin(60) else Const(b.rng.uniform(-2, 2, shape))
    return b.add(Node(name, (Ref(x), target), {"reduction": reduction}))


def _join(b: Builder) -> None:
    """Combine what nothing reads yet into the last node (products and sums, a scalar
    reduction where the shapes do not broadcast, a nonlinearity), so that every input
    reaches the main output with cross terms: mixed partials and third derivatives that
    are not all zero."""
    for _ in range(8):
        loose = [i for i in b.live("f") if i not in b.used]
        if len(loose) < 2:
            break
        last, other = loose[-1], b.choice(loose[:-1])
        try:
            fits = np.prod(np.broadcast_shapes(b.shape(last), b.shape(other))) <= MAX_SIZE
        except ValueError:
            fits = False
        if not fits:
            reduction = b.choice(["sum", "mean", "logsumexp"])
            other = b.add(Node(reduction, (Ref(other),), form=b.choice(["fn", "method"])))
            if other is None:
                continue
        name = b.choice(["mul", "mul", "mul", "add", "sub", "maximum"])
        form = b.choice(sorted(OPS[name].forms))
        joined = b.add(Node(name, (Ref(last), Ref(other)), form=form))
        if joined is not None:
            _nonlinear(b, joined, 50)
    _nonlinear(b, b.live("f")[-1], 60)


def _nonlinear(b: Builder, x: int, percent: int) -> None:
    """Sometimes a smooth nonlinearity on x: tanh, σ, exp or a cube (higher derivatives)."""
    if not b.coin(percent):
        return
    inner = b.bounded(x, 3.0)
    if inner is None:
        return
    name = b.choice(["tanh", "sigmoid", "exp", "power_const"])
    params = {"p": 3} if name == "power_const" else {}
    b.add(Node(name, (Ref(inner),), params, form="op" if params else "fn"))


# ------------------------------------------------------------ v0.2 builders: shape ops
def b_pad(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    shape = b.shape(x)
    mode = b.choice(["constant", "constant", "reflect", "edge", "wrap", "symmetric"])
    # reflect (PyTorch's) reflects once: a width below the axis length; wrap at most it
    limit = {"reflect": lambda n: n - 1, "wrap": lambda n: n}.get(mode, lambda n: 2)
    pairs = [tuple(b.int(0, min(2, limit(n))) for _ in range(2)) for n in shape]
    how = b.choice(["int", "pair", "axes", "axes"])
    if how == "int":
        width: Any = min(min(p) for p in pairs) if pairs else 0
        width = max(width, min(1, min(limit(n) for n in shape)))
    elif how == "pair":
        width = tuple(min(p[k] for p in pairs) for k in range(2))
    else:
        width = tuple(pairs)
    params: dict[str, Any] = {"pad_width": width}
    if mode != "constant" or b.coin():
        params["mode"] = mode
    if mode == "constant" and b.coin():
        params["constant_values"] = b.choice([1.5, -0.5])
    return b.add(Node("pad", (Ref(x),), params))


def b_tile(b: Builder) -> int | None:
    x = b.pick()
    reps: Any = tuple(b.choice([1, 1, 2]) for _ in range(b.int(1, min(3, b.ndim_of(x) + 1))))
    if len(reps) == 1 and b.coin():
        reps = reps[0]
    return b.add(Node("tile", (Ref(x),), {"reps": reps}, b.choice(["fn", "method"])))


def b_repeat(b: Builder) -> int | None:
    x = b.pick()
    ndim = b.ndim_of(x)
    axis = b.int(-ndim, ndim - 1) if ndim and b.coin(75) else None
    n = b.data(x).size if axis is None else b.shape(x)[axis]
    repeats: Any = b.int(1, 3) if b.coin() else [b.int(0, 2) for _ in range(n)]
    params: dict[str, Any] = {"repeats": repeats}
    if axis is not None or b.coin():
        params["axis"] = axis
    return b.add(Node("repeat", (Ref(x),), params, b.choice(["fn", "method"])))


def _some_axes(b: Builder, ndim: int) -> Any:
    """None, an int or a tuple of distinct axes (maybe negative)."""
    return _axis_params(b, ndim) if ndim else b.choice([None, ()])


def b_flip(b: Builder) -> int | None:
    x = b.pick()
    params = {"axis": _some_axes(b, b.ndim_of(x))}
    if params["axis"] is None and b.coin():
        params = {}
    return b.add(Node("flip", (Ref(x),), params, b.choice(["fn", "method"])))


def b_roll(b: Builder) -> int | None:
    x = b.pick()
    ndim = b.ndim_of(x)
    axis = _axis_params(b, ndim) if ndim else None
    if isinstance(axis, tuple) and not axis:
        axis = None
    if isinstance(axis, tuple) and b.coin():
        shift: Any = tuple(b.int(-4, 4) for _ in axis)
    else:
        shift = b.int(-5, 5)
    params: dict[str, Any] = {"shift": shift}
    if axis is not None or b.coin():
        params["axis"] = axis
    return b.add(Node("roll", (Ref(x),), params, b.choice(["fn", "method"])))


def b_split(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    ndim = b.ndim_of(x)
    axis = b.int(-ndim, ndim - 1)
    n = b.shape(x)[axis]
    if b.coin():
        sections: Any = b.choice([d for d in range(1, n + 1) if n % d == 0])
        count = sections
    else:  # cut points: sorted, maybe repeated (an empty piece) or past the end
        sections = sorted(b.int(0, n + 1) for _ in range(b.int(1, 3)))
        sections = sections if b.coin(70) else tuple(sections)
        count = len(sections) + 1
    params: dict[str, Any] = {"sections": sections, "axis": axis}
    if b.coin(35):
        params["pick"] = b.int(-count, count - 1)
        return b.add(Node("split_pick", (Ref(x),), params))
    return b.add(Node("split", (Ref(x),), params))


def b_moveaxis(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    ndim = b.ndim_of(x)
    count = b.int(1, ndim)
    source = [int(a) for a in b.rng.permutation(ndim)[:count]]
    destination = [int(a) for a in b.rng.permutation(ndim)[:count]]
    source = [a - ndim if b.coin(25) else a for a in source]
    params: dict[str, Any] = {"source": tuple(source), "destination": tuple(destination)}
    if count == 1 and b.coin():
        params = {"source": source[0], "destination": destination[0]}
    return b.add(Node("moveaxis", (Ref(x),), params))


def b_cat(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    shape = b.shape(x)
    ndim = len(shape)
    axis = b.int(-ndim, ndim - 1) if b.coin(70) else 0
    a = axis % ndim

    def fits(j: int) -> bool:
        s = b.shape(j)
        return len(s) == ndim and s[:a] + s[a + 1 :] == shape[:a] + shape[a + 1 :]

    members = [x] + [j for j in (b.pick("f", fits) for _ in range(b.int(1, 2))) if j is not None]
    if b.coin(30):
        members.reverse()
    params: dict[str, Any] = {}
    if axis or b.coin(30):
        params["dim" if b.coin() else "axis"] = axis
    return b.add(Node("cat", tuple(Ref(j) for j in members), params))


def b_triangle(b: Builder) -> int | None:
    name = b.choice(["tril", "triu", "diagonal", "trace", "diagonal", "trace"])
    x = b.pick("f", lambda i: b.ndim_of(i) >= 2)
    if x is None:
        return None
    ndim = b.ndim_of(x)
    params: dict[str, Any] = {}
    if name in ("tril", "triu"):
        if b.coin(60):
            params["k"] = b.int(-2, 2)
        return b.add(Node(name, (Ref(x),), params))
    if b.coin(60):
        params["offset"] = b.int(-1, 1)
    if ndim > 2 or b.coin(40):
        axis1, axis2 = (int(a) for a in b.rng.choice(ndim, 2, replace=False))
        params["axis1"] = axis1 - ndim if b.coin(25) else axis1
        params["axis2"] = axis2 - ndim if b.coin(25) else axis2
    return b.add(Node(name, (Ref(x),), params, b.choice(["fn", "method"])))


def b_take_along_axis(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    shape = b.shape(x)
    ndim = len(shape)
    if b.coin(15):  # from the flattened x
        idx = b.rng.integers(0, b.data(x).size, b.int(1, 4))
        return b.add(Node("take_along_axis", (Ref(x), Const(idx)), {"axis": None}))
    axis = b.int(-ndim, ndim - 1)
    a = axis % ndim

    def fits(j: int) -> bool:  # an integer node (argsort, argmax with keepdims) in range
        s = b.shape(j)
        return (len(s) == ndim and _in_range(b.data(j), shape[a]) and int(b.data(j).min()) >= 0
                and all(k == a or s[k] in (1, shape[k]) for k in range(ndim)))  # fmt: skip

    ints = b.live("i", fits)
    if ints and b.coin(40):
        indices: Any = Ref(b.choice(ints))
    else:
        idx_shape = [b.int(1, 3) if k == a else (1 if b.coin(25) else n)
                     for k, n in enumerate(shape)]  # fmt: skip
        indices = Const(b.rng.integers(0, shape[a], idx_shape))
    return b.add(Node("take_along_axis", (Ref(x), indices), {"axis": axis}))


# ------------------------------------------------------------- v0.2 builders: cr.linalg
def b_norm(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    ndim = b.ndim_of(x)
    params: dict[str, Any] = {}
    how = b.choice(["vector", "vector", "matrix", "flat"] if ndim >= 2 else ["vector", "flat"])
    if how == "vector":
        params["ord"] = b.choice([None, 2, 1, np.inf, -np.inf])
        if ndim > 1 or b.coin():
            params["axis"] = b.int(-ndim, ndim - 1)
    elif how == "matrix":
        params["ord"] = b.choice(NORM_MATRIX_ORDS)
        axes = [int(a) for a in b.rng.choice(ndim, 2, replace=False)]
        params["axis"] = tuple(a - ndim if b.coin(25) else a for a in axes)
    if b.coin(30):
        params["keepdims"] = True
    return b.add(Node("norm", (Ref(x),), params))


def _well_conditioned(b: Builder, symmetric: bool) -> int | None:
    """A square matrix (stack) made in the program from a node of ≥ 2 dimensions:
    T Tᵀ + c I with T = tanh(x) (symmetric positive definite, eigenvalues in [c, c + 3]),
    or, for a square x, 0.3 tanh(x) ± I (diagonally dominant: no eigenvalue within 0.1 of
    0, det's sign ±)."""
    x = b.pick("f", lambda i: b.ndim_of(i) >= 2)
    if x is None:
        return None
    t = b.add(Node("tanh", (Ref(x),), form=b.choice(["fn", "method"])))
    if t is None:
        return None
    m, n = b.shape(t)[-2:]
    if symmetric or m != n or b.coin(40):
        tt = b.add(Node("swapaxes", (Ref(t),), {"a": -1, "b": -2}, "method"))
        g = None if tt is None else b.add(Node("matmul", (Ref(t), Ref(tt)), form="op"))
        c = b.choice([0.5, 1.0])
    else:
        g = b.add(Node("mul", (Ref(t), Scalar(0.3)), form="op"))
        c = b.choice([1.0, 1.0, -1.0])
        m = n
    if g is None:
        return None
    return b.add(Node("add", (Ref(g), Const(c * np.eye(m))), form="op"))


# eigh and svd are drawn on matrices with a spread spectrum (their vector terms divide by
# the gaps), and norm's "nuc" and 2 through svd. (The hunt found cr.jvp wrong through their
# vectors until their backward stopped skipping a zero cotangent that jvp differentiates.)
LINALG_DRAWN = ["inv", "det", "slogdet", "solve", "cholesky", "eigh", "svd"]
VECTOR_PARTS = {"eigh": ["w", "v"], "svd": ["s", "s", "u", "vt"]}
NORM_MATRIX_ORDS = [None, "fro", "nuc", 2]


def b_linalg(b: Builder) -> int | None:
    name = b.choice(LINALG_DRAWN)
    if name == "svd":
        x = b.pick("f", lambda i: b.ndim_of(i) >= 2)
        if x is None:
            return None
        return b.add(Node("svd", (Ref(x),), {"part": b.choice(VECTOR_PARTS["svd"])}))
    a = _well_conditioned(b, symmetric=name in ("cholesky", "eigh"))
    if a is None:
        return None
    if name == "eigh":
        return b.add(Node("eigh", (Ref(a),), {"part": b.choice(VECTOR_PARTS["eigh"])}))
    if name == "slogdet":
        return b.add(Node("slogdet", (Ref(a),), {"part": b.choice(["log", "signed"])}))
    if name != "solve":
        return b.add(Node(name, (Ref(a),)))
    shape = b.shape(a)
    m = shape[-1]
    # b: a vector (m,), or matrices (..., m, k) with a's batch (NumPy ≥ 2 and PyTorch
    # read a (..., m) b differently)
    wanted = [(m,)] + [shape[:-1] + (k,) for k in (1, 2, 3)]
    rhs = b.live("f", lambda j: b.shape(j) in wanted)
    if rhs and b.coin(70):
        other: Any = Ref(b.choice(rhs))
    else:
        other = Const(b.rng.uniform(-1.5, 1.5, b.choice(wanted)))
    return b.add(Node("solve", (Ref(a), other)))


# ------------------------------------------------------------- v0.2 builders: nn
def b_layer_norm(b: Builder) -> int | None:
    x = b.pick("f", lambda i: b.ndim_of(i) >= 1)
    if x is None:
        return None
    shape = b.shape(x)
    count = b.int(1, min(2, len(shape)))
    normalized = tuple(shape[len(shape) - count :])
    params: dict[str, Any] = {"normalized_shape": normalized}
    if count == 1 and b.coin():
        params["normalized_shape"] = normalized[0]
    if b.coin(25):
        params["eps"] = 1e-3
    if b.coin(50):
        same = b.live("f", lambda j: b.shape(j) == normalized)
        w: Any = (
            Ref(b.choice(same))
            if same and b.coin()
            else Const(b.rng.uniform(0.5, 1.5, normalized))
        )
        bias = Const(b.rng.uniform(-1.0, 1.0, normalized))
        return b.add(Node("layer_norm_affine", (Ref(x), w, bias), params))
    return b.add(Node("layer_norm", (Ref(x),), params))


def b_embedding(b: Builder) -> int | None:
    w = b.pick("f", lambda i: b.ndim_of(i) == 2)
    if w is None:
        return None
    rows = b.shape(w)[0]
    ints = b.live("i", lambda j: _in_range(b.data(j), rows) and int(b.data(j).min()) >= 0
                  and b.ndim_of(j) <= 2)  # fmt: skip
    if ints and b.coin(40):
        indices: Any = Ref(b.choice(ints))
    else:
        shape = b.choice([(), (b.int(1, 4),), (b.int(1, 2), b.int(1, 3))])
        indices = Const(b.rng.integers(0, rows, shape))
    return b.add(Node("embedding", (indices, Ref(w))))


BUILDERS: list[tuple[int, Callable[[Builder], int | None]]] = [
    (6, b_unary), (2, b_power_const), (7, b_binary), (2, b_where), (2, b_compare),
    (2, b_clip), (5, b_reduce), (2, b_softmax), (1, b_argmax), (2, b_reshape),
    (2, b_transpose), (1, b_swapaxes), (2, b_broadcast_to), (1, b_flatten), (1, b_squeeze),
    (1, b_expand_dims), (1, b_clone), (5, b_getitem), (2, b_concatenate), (2, b_stack),
    (3, b_matmul), (1, b_dot), (1, b_outer), (2, b_einsum), (2, b_inplace),
    (1, b_nn_elementwise), (1, b_linear), (1, b_conv2d), (1, b_pool), (2, b_loss),
    (1, b_scan), (1, b_sort), (1, b_logical),
    # v0.2
    (1, b_pad), (1, b_tile), (1, b_repeat), (1, b_flip), (1, b_roll), (1, b_split),
    (1, b_moveaxis), (1, b_cat), (2, b_triangle), (1, b_take_along_axis), (1, b_norm),
    (2, b_linalg), (1, b_layer_norm), (1, b_embedding),
]  # fmt: skip
_BUILDER_TABLE = [builder for weight, builder in BUILDERS for _ in range(weight)]


@st.composite
def programs(
    draw: Any, min_inputs: int = 1, max_inputs: int = 3, max_ops: int = MAX_OPS
) -> Program:
    """A random program: 1-3 float64 inputs and up to ``max_ops`` ops over them."""
    b = Builder(draw, min_inputs, max_inputs)
    wanted = b.int(1, max_ops)
    made = tries = 0
    while made < wanted and tries < 3 * wanted:
        tries += 1
        if b.choice(_BUILDER_TABLE)(b) is not None:
            made += 1
    if b.coin(85):
        _join(b)
    floats = b.live("f")
    main = floats[-1]
    outputs = [main] + [i for i in floats[:-1] if i >= b.n_inputs and b.coin(25)][:2]
    weights = [b.rng.uniform(-1.0, 1.0, b.shape(o)) for o in outputs]
    inputs = [np.array(v.data) for v in b.values[: b.n_inputs]]
    return Program(inputs, b.nodes, b.kinds, outputs, weights, main)
