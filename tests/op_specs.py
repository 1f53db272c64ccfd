"""The single table of op specs that drives tests/test_ops.py and tests/test_ops_torch.py.

Each ``OpSpec`` is one way of calling one op of ``cr.ops.__all__``: the chainrule call, the
same computation on ndarrays (the NumPy reference), optionally on torch tensors (the
PyTorch oracle), the shapes of its float inputs and where those inputs are drawn from.
Everything that is not a float input (axes, indices, conditions, Python scalars) is fixed
inside the callables, so every float input is differentiated.

Domains keep inputs away from kinks and poles: log, sqrt, safe_sqrt and the base of a tensor
power are positive, denominators and the inputs of relu/abs stay away from 0, clip's inputs
stay away from its bounds, and max/min/maximum/minimum and max-pooling get tie-free inputs
(``distinct=True``). Inputs have at most 12 elements (24 for the (2, 3, 4) & (4,) broadcast
and for the conv and pooling images, which need a few pixels per window), so finite
differences stay cheap.

The neural-network primitives (the affine map, softplus, safe_sqrt, conv2d and its two
adjoints, the poolings, cross-entropy with labels) have rows like every other op: the
layers and losses of ``cr.nn`` are made of them.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import chainrule as cr

__all__ = ["OpSpec", "OP_SPECS", "SPEC_METHODS", "SPEC_OPERATORS"]

Domain = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape)


def uniform(low: float, high: float) -> Domain:
    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(low, high, shape)

    return draw


def signed(low: float, high: float) -> Domain:
    """|x| in [low, high] with a random sign: away from 0."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)

    return draw


def avoiding(*points: float, gap: float = 0.1, low: float = -2.0, high: float = 2.0) -> Domain:
    """Uniform in [low, high], at least ``gap`` away from each of ``points``."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        x = np.asarray(rng.uniform(low, high, shape))
        while True:
            near = np.zeros(x.shape, dtype=bool)
            for p in points:
                near |= np.abs(x - p) < gap
            if not near.any():
                return x
            x[near] = rng.uniform(low, high, int(near.sum()))

    return draw


POSITIVE = uniform(0.5, 3.0)
NONZERO = signed(0.2, 2.0)


@dataclass(frozen=True)
class OpSpec:
    """One call of one op, with its references and input domain.

    Attributes:
        name: the op of ``cr.ops.__all__`` this entry exercises.
        fn: the call on chainrule Tensors, one per float input.
        ref: the same computation on ndarrays (NumPy).
        shapes: the shapes of the float inputs.
        label: what this entry exercises (for the test id).
        domain: where inputs are drawn from (one for all, or one per input).
        torch: the same on torch tensors, ``torch(torch_module, *xs)``; None if none.
        via: "function", "method" or "operator": how the op is reached.
        differentiable: False for argmax/argmin (forward only).
        distinct: draw all input elements tie-free, at least ~0.15 apart.
        out_dtype: the output dtype when it is not the inputs' (astype).
    """

    name: str
    fn: Callable[..., Any]
    ref: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    label: str = ""
    domain: Domain | tuple[Domain, ...] = normal
    torch: Callable[..., Any] | None = None
    via: str = "function"
    differentiable: bool = True
    distinct: bool = False
    out_dtype: Any = None

    @property
    def id(self) -> str:
        shapes = "&".join("x".join(map(str, s)) if s else "0d" for s in self.shapes)
        parts = [self.name, self.label, shapes] if self.label else [self.name, shapes]
        return "-".join(parts)

    def inputs(self, rng: np.random.Generator, dtype: Any = np.float64) -> list[np.ndarray]:
        """Random inputs of ``shapes`` in the spec's domain, as ``dtype`` arrays."""
        if self.distinct:
            sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
            total = sum(sizes)
            values = (rng.permutation(total) - total / 2) * 0.25
            values = values + rng.uniform(-0.05, 0.05, total)
            pieces = np.split(values, np.cumsum(sizes)[:-1])
            return [p.reshape(s).astype(dtype) for p, s in zip(pieces, self.shapes)]
        domains = (
            self.domain if isinstance(self.domain, tuple) else (self.domain,) * len(self.shapes)
        )
        return [np.asarray(d(rng, s), dtype=dtype) for d, s in zip(domains, self.shapes)]


def spec_id(spec: OpSpec) -> str:
    return spec.id


# --------------------------------------------------------------------------- constants
# Indices, masks and conditions are constants of the call (they are not differentiated).
ROWS_REPEATED = np.array([0, 2, 0, 0])  # row 0 three times: its gradient must add up
PAIR_ROWS = np.array([0, 1, 0, 2])
PAIR_COLS = np.array([1, 1, 1, 3])  # element (0, 1) twice
INDEX_2D = np.array([[0, 1], [1, 1]])
MASK_3X4 = np.array(
    [[True, False, True, True], [False, False, True, False], [True, True, False, True]]
)
ROW_MASK = np.array([True, False, True])
COND_3X1 = np.array([[True], [False], [True]])  # broadcast against (3, 4)
COND_3X4 = MASK_3X4
LOW_BOUNDS = np.array([-0.5, 0.0, -1.0, 0.5])  # per-column clip bounds for (3, 4)
CLIP_DOMAIN = avoiding(-1.0, -0.5, 0.0, 0.5, 1.0, gap=0.1)


# --------------------------------------------------------------------------- elementwise
def _binary(
    name: str,
    cr_fn: Callable[..., Any],
    np_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    domain: tuple[Domain, Domain] = (normal, normal),
    distinct: bool = False,
    scalar: float = 1.5,
) -> list[OpSpec]:
    """A binary broadcasting op: equal shapes, broadcast pairs, 0-d, Python scalars."""
    pairs = [
        ((3, 4), (3, 4)),
        ((3, 1), (1, 4)),
        ((2, 3, 4), (4,)),
        ((), (3,)),
        ((3,), ()),
        ((), ()),
    ]
    specs = [
        OpSpec(name, cr_fn, np_fn, pair, domain=domain, distinct=distinct, torch=torch_fn)
        for pair in pairs
    ]
    # A Python scalar on either side: it must not promote float32, and gets no gradient.
    near_scalar = avoiding(scalar, gap=0.15) if distinct else None
    specs.append(
        OpSpec(
            name,
            lambda a: cr_fn(a, scalar),
            lambda a: np_fn(a, scalar),
            ((3, 4),),
            label="python-scalar-right",
            domain=near_scalar or domain[0],
            torch=lambda T, a: torch_fn(T, a, T.tensor(scalar, dtype=a.dtype)),
        )
    )
    specs.append(
        OpSpec(
            name,
            lambda b: cr_fn(scalar, b),
            lambda b: np_fn(scalar, b),
            ((3, 4),),
            label="python-scalar-left",
            domain=near_scalar or domain[1],
            torch=lambda T, b: torch_fn(T, T.tensor(scalar, dtype=b.dtype), b),
        )
    )
    return specs


def _operator(
    name: str,
    op: Callable[..., Any],
    shapes: tuple[tuple[int, ...], ...],
    label: str,
    domain: Any = normal,
) -> OpSpec:
    """An operator (``a + b``, ``-a``, ``abs(a)``): the same callable serves all three."""
    return OpSpec(
        name,
        op,
        op,
        shapes,
        label=label,
        domain=domain,
        torch=lambda T, *xs: op(*xs),
        via="operator",
    )


def _unary(
    name: str,
    cr_fn: Callable[..., Any],
    np_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    domain: Domain = normal,
) -> list[OpSpec]:
    """A unary op on a matrix and on a 0-d tensor, as a function and as a method."""
    method = operator.methodcaller(name)
    return [
        OpSpec(name, cr_fn, np_fn, ((3, 4),), domain=domain, torch=torch_fn),
        OpSpec(name, cr_fn, np_fn, ((),), domain=domain, torch=torch_fn),
        OpSpec(
            name,
            method,
            np_fn,
            ((2, 3),),
            label="method",
            domain=domain,
            torch=torch_fn,
            via="method",
        ),
    ]


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _np_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _np_erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[x.dtype])(x)  # the standard library's, not ours


ELEMENTWISE = [
    *_binary("add", cr.add, np.add, lambda T, a, b: T.add(a, b)),
    *_binary("sub", cr.sub, np.subtract, lambda T, a, b: T.sub(a, b)),
    *_binary("mul", cr.mul, np.multiply, lambda T, a, b: T.mul(a, b)),
    *_binary("div", cr.div, np.divide, lambda T, a, b: T.div(a, b), domain=(normal, NONZERO)),
    *_binary(
        "maximum", cr.maximum, np.maximum, lambda T, a, b: T.maximum(a, b), distinct=True,
        scalar=0.3,
    ),
    *_binary(
        "minimum", cr.minimum, np.minimum, lambda T, a, b: T.minimum(a, b), distinct=True,
        scalar=0.3,
    ),
    *_binary("power", cr.power, np.power, lambda T, a, b: T.pow(a, b), domain=(POSITIVE, normal)),
    # A constant exponent takes the cheaper rule, for any sign of the base when it is an int.
    OpSpec(
        "power", lambda x: x**3, lambda x: x**3, ((3, 4),), label="cube",
        torch=lambda T, x: x**3, via="operator",
    ),
    OpSpec(
        "power", lambda x: x**2, lambda x: x**2, ((3, 4),), label="square",
        torch=lambda T, x: x**2, via="operator",
    ),
    OpSpec(
        "power", lambda x: x**0.5, lambda x: x**0.5, ((3, 4),), label="root",
        domain=POSITIVE, torch=lambda T, x: x**0.5, via="operator",
    ),
    OpSpec(
        "power", lambda x: cr.power(x, -1.5), lambda x: x**-1.5, ((3, 4),),
        label="negative-exponent", domain=POSITIVE, torch=lambda T, x: T.pow(x, -1.5),
    ),
    OpSpec(
        "power", lambda x: x ** np.float64(2.5), lambda x: x**2.5, ((2, 3),),
        label="numpy-scalar-exponent", domain=POSITIVE, torch=lambda T, x: x**2.5,
        via="operator",
    ),
    OpSpec(
        "power", lambda b: 2.0**b, lambda b: 2.0**b, ((3, 4),), label="python-scalar-base",
        torch=lambda T, b: 2.0**b, via="operator",
    ),
    _operator("add", operator.add, ((3, 1), (1, 4)), "a+b"),
    _operator("sub", operator.sub, ((3, 1), (1, 4)), "a-b"),
    _operator("mul", operator.mul, ((3, 1), (1, 4)), "a*b"),
    _operator("div", operator.truediv, ((3, 1), (1, 4)), "a/b", domain=(normal, NONZERO)),
    _operator("power", operator.pow, ((3, 1), (1, 4)), "a**b", domain=(POSITIVE, normal)),
    _operator("sub", lambda a: 2.5 - a, ((3, 4),), "2.5-a"),
    _operator("div", lambda b: 2.5 / b, ((3, 4),), "2.5/b", domain=NONZERO),
    _operator("add", lambda a, b: a + b * 2.0 - 1.0, ((2, 3), (3,)), "expression"),
    _operator("neg", operator.neg, ((3, 4),), "-a"),
    _operator("abs", abs, ((3, 4),), "abs()", domain=NONZERO),
    *_unary("neg", cr.neg, np.negative, lambda T, x: T.neg(x))[:2],
    *_unary("exp", cr.exp, np.exp, lambda T, x: T.exp(x)),
    *_unary("log", cr.log, np.log, lambda T, x: T.log(x), domain=POSITIVE),
    *_unary("sqrt", cr.sqrt, np.sqrt, lambda T, x: T.sqrt(x), domain=POSITIVE),
    *_unary("tanh", cr.tanh, np.tanh, lambda T, x: T.tanh(x)),
    *_unary("sigmoid", cr.sigmoid, _np_sigmoid, lambda T, x: T.sigmoid(x)),
    *_unary("relu", cr.relu, _np_relu, lambda T, x: T.relu(x), domain=NONZERO),
    *_unary("abs", cr.abs, np.abs, lambda T, x: T.abs(x), domain=NONZERO),
    OpSpec(
        "clip", lambda x: cr.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), ((3, 4),),
        label="both-bounds", domain=CLIP_DOMAIN, torch=lambda T, x: T.clip(x, -0.5, 0.5),
    ),
    OpSpec(
        "clip", lambda x: cr.clip(x, min=0.0), lambda x: np.clip(x, 0.0, None), ((3, 4),),
        label="min-only", domain=CLIP_DOMAIN, torch=lambda T, x: T.clip(x, min=0.0),
    ),
    OpSpec(
        "clip", lambda x: cr.clip(x, max=0.5), lambda x: np.clip(x, None, 0.5), ((3, 4),),
        label="max-only", domain=CLIP_DOMAIN, torch=lambda T, x: T.clip(x, max=0.5),
    ),
    OpSpec(
        "clip", lambda x: cr.clip(x, LOW_BOUNDS, 1.0), lambda x: np.clip(x, LOW_BOUNDS, 1.0),
        ((3, 4),), label="array-bounds", domain=CLIP_DOMAIN,
        torch=lambda T, x: T.clip(x, T.tensor(LOW_BOUNDS), T.tensor(1.0, dtype=x.dtype)),
    ),
    OpSpec(
        "clip", lambda x: x.clip(-1.0, 0.5), lambda x: x.clip(-1.0, 0.5), ((3, 4),),
        label="method", domain=CLIP_DOMAIN, torch=lambda T, x: x.clip(-1.0, 0.5), via="method",
    ),
    OpSpec(
        "clip", lambda x: cr.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), ((),),
        domain=CLIP_DOMAIN, torch=lambda T, x: T.clip(x, -0.5, 0.5),
    ),
    OpSpec(
        "where", lambda a, b: cr.where(COND_3X4, a, b), lambda a, b: np.where(COND_3X4, a, b),
        ((3, 4), (3, 4)), torch=lambda T, a, b: T.where(T.tensor(COND_3X4), a, b),
    ),
    OpSpec(
        "where", lambda a, b: cr.where(COND_3X1, a, b), lambda a, b: np.where(COND_3X1, a, b),
        ((1, 4), (4,)), label="broadcast-condition",
        torch=lambda T, a, b: T.where(T.tensor(COND_3X1), a, b),
    ),
    OpSpec(
        "where", lambda a: cr.where(cr.tensor(COND_3X1), a, 0.0),
        lambda a: np.where(COND_3X1, a, 0.0), ((3, 4),), label="tensor-condition-scalar",
        torch=lambda T, a: T.where(T.tensor(COND_3X1), a, 0.0),
    ),
    OpSpec(
        "where", lambda b: cr.where(COND_3X4, -1.0, b), lambda b: np.where(COND_3X4, -1.0, b),
        ((3, 4),), label="scalar-first",
        torch=lambda T, b: T.where(T.tensor(COND_3X4), -1.0, b),
    ),
    # float64 -> float64 goes through Astype too; float32 <-> float64 has its own tests.
    OpSpec(
        "astype", lambda x: cr.astype(x, np.float64), lambda x: x.astype(np.float64),
        ((3, 4),), torch=lambda T, x: x.to(T.float64), out_dtype=np.float64,
    ),
    OpSpec(
        "astype", lambda x: x.astype("float64") * 2.0, lambda x: x.astype("float64") * 2.0,
        ((2, 3),), label="method", torch=lambda T, x: x.to(T.float64) * 2.0,
        out_dtype=np.float64, via="method",
    ),
]  # fmt: skip


# --------------------------------------------------------------------------- reductions
def _np_var(x: np.ndarray, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    return np.var(x, axis=axis, keepdims=keepdims, ddof=ddof)


def _torch_logsumexp(T: Any, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    # torch.logsumexp has no dim=None (the other reductions take it): name every axis.
    return T.logsumexp(x, tuple(range(x.ndim)) if dim is None else dim, keepdim=keepdim)


def _np_logsumexp(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    shift = np.max(x, axis=axis, keepdims=True)
    y = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return y if keepdims else np.squeeze(y, axis=axis)


def _np_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x - _np_logsumexp(x, axis=axis, keepdims=True)


def _torch_var(T: Any, x: Any, dim: Any = None, keepdim: bool = False, ddof: int = 0) -> Any:
    return T.var(x, dim=dim, correction=ddof, keepdim=keepdim)


def _reduction(
    name: str,
    cr_fn: Callable[..., Any],
    np_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    distinct: bool = False,
    differentiable: bool = True,
) -> list[OpSpec]:
    """axis None / int / negative / tuple, keepdims, the ``dim=`` alias, the method, 0-d."""
    axes = [
        ("all", (3, 4), {}, {}),
        ("axis=1", (3, 4), {"axis": 1}, {"dim": 1}),
        ("axis=-1-keepdims", (3, 4), {"axis": -1, "keepdims": True}, {"dim": -1, "keepdim": True}),
        ("axis=(0,2)", (2, 3, 2), {"axis": (0, 2)}, {"dim": (0, 2)}),
        ("axis=(0,2)-keepdims", (2, 3, 2), {"axis": (0, 2), "keepdims": True},
         {"dim": (0, 2), "keepdim": True}),
        ("all-keepdims", (2, 3), {"keepdims": True}, {"dim": None, "keepdim": True}),
        ("0d", (), {}, {}),
    ]  # fmt: skip
    specs = []
    for label, shape, kwargs, torch_kwargs in axes:
        specs.append(
            OpSpec(
                name,
                lambda x, kw=kwargs: cr_fn(x, **kw),
                lambda x, kw=kwargs: np_fn(x, **kw),
                (shape,),
                label=label,
                distinct=distinct,
                differentiable=differentiable,
                torch=lambda T, x, kw=torch_kwargs: torch_fn(T, x, **kw),
            )
        )
    specs.append(
        OpSpec(
            name,
            lambda x: cr_fn(x, dim=0),
            lambda x: np_fn(x, axis=0),
            ((3, 4),),
            label="dim-alias",
            distinct=distinct,
            differentiable=differentiable,
            torch=lambda T, x: torch_fn(T, x, dim=0),
        )
    )
    specs.append(
        OpSpec(
            name,
            lambda x: getattr(x, name)(axis=0),
            lambda x: getattr(x, name)(axis=0),
            ((3, 4),),
            label="method",
            distinct=distinct,
            differentiable=differentiable,
            torch=lambda T, x: torch_fn(T, x, dim=0),
            via="method",
        )
    )
    return specs


def _argreduction(name: str, cr_fn: Callable[..., Any], np_fn: Callable[..., Any],
                  torch_fn: Callable[..., Any]) -> list[OpSpec]:  # fmt: skip
    """argmax/argmin: forward only, a single axis or none."""
    cases = [
        ("all", {}, {}),
        ("axis=1", {"axis": 1}, {"dim": 1}),
        ("axis=-1-keepdims", {"axis": -1, "keepdims": True}, {"dim": -1, "keepdim": True}),
        ("all-keepdims", {"keepdims": True}, {"dim": None, "keepdim": True}),
    ]
    specs = [
        OpSpec(
            name,
            lambda x, kw=kwargs: cr_fn(x, **kw),
            lambda x, kw=kwargs: np_fn(x, **kw),
            ((3, 4),),
            label=label,
            distinct=True,
            differentiable=False,
            torch=lambda T, x, kw=torch_kwargs: torch_fn(T, x, **kw),
        )
        for label, kwargs, torch_kwargs in cases
    ]
    specs.append(
        OpSpec(
            name, lambda x: cr_fn(x, dim=0), lambda x: np_fn(x, axis=0), ((3, 4),),
            label="dim-alias", distinct=True, differentiable=False,
            torch=lambda T, x: torch_fn(T, x, dim=0),
        )
    )  # fmt: skip
    specs.append(
        OpSpec(
            name, lambda x: getattr(x, name)(axis=1), lambda x: getattr(x, name)(axis=1),
            ((3, 4),), label="method", distinct=True, differentiable=False,
            torch=lambda T, x: torch_fn(T, x, dim=1), via="method",
        )
    )  # fmt: skip
    return specs


def _softmax_like(name: str, cr_fn: Callable[..., Any], np_fn: Callable[..., Any],
                  torch_name: str) -> list[OpSpec]:  # fmt: skip
    """softmax/log_softmax: default (last) axis, axis=0, the dim alias, 1-D, 3-D, method."""

    def on_torch(dim: int) -> Callable[..., Any]:
        return lambda T, x: getattr(T, torch_name)(x, dim)

    return [
        OpSpec(name, cr_fn, np_fn, ((3, 4),), label="default-axis", torch=on_torch(-1)),
        OpSpec(
            name, lambda x: cr_fn(x, axis=0), lambda x: np_fn(x, axis=0), ((3, 4),),
            label="axis=0", torch=on_torch(0),
        ),
        OpSpec(
            name, lambda x: cr_fn(x, dim=1), lambda x: np_fn(x, axis=1), ((2, 3, 2),),
            label="dim=1", torch=on_torch(1),
        ),
        OpSpec(name, cr_fn, np_fn, ((5,),), torch=on_torch(0)),
        OpSpec(
            name, lambda x: getattr(x, name)(axis=-2), lambda x: np_fn(x, axis=-2), ((3, 4),),
            label="method", torch=on_torch(-2), via="method",
        ),
    ]  # fmt: skip


REDUCTIONS = [
    *_reduction("sum", cr.sum, np.sum, lambda T, x, **kw: T.sum(x, **kw)),
    *_reduction("mean", cr.mean, np.mean, lambda T, x, **kw: T.mean(x, **kw)),
    *_reduction("var", cr.var, _np_var, _torch_var),
    OpSpec(
        "var", lambda x: cr.var(x, ddof=1), lambda x: np.var(x, ddof=1), ((3, 4),),
        label="ddof=1", torch=lambda T, x: T.var(x, correction=1),
    ),
    OpSpec(
        "var", lambda x: cr.var(x, axis=(0, 2), ddof=1, keepdims=True),
        lambda x: np.var(x, axis=(0, 2), ddof=1, keepdims=True), ((2, 3, 2),),
        label="axis=(0,2)-ddof=1-keepdims",
        torch=lambda T, x: T.var(x, dim=(0, 2), correction=1, keepdim=True),
    ),
    OpSpec(
        "var", lambda x: x.var(axis=1, ddof=2), lambda x: x.var(axis=1, ddof=2), ((3, 4),),
        label="method-ddof=2", torch=lambda T, x: T.var(x, dim=1, correction=2),
        via="method",
    ),
    *_reduction("max", cr.max, np.max, lambda T, x, **kw: T.amax(x, **kw), distinct=True),
    *_reduction("min", cr.min, np.min, lambda T, x, **kw: T.amin(x, **kw), distinct=True),
    # (Tensor.logsumexp takes axis and keepdims only, so the method entry is its own.)
    *_reduction("logsumexp", cr.logsumexp, _np_logsumexp, _torch_logsumexp)[:-1],
    OpSpec(
        "logsumexp", lambda x: x.logsumexp(axis=1, keepdims=True),
        lambda x: _np_logsumexp(x, axis=1, keepdims=True), ((3, 4),), label="method",
        torch=lambda T, x: T.logsumexp(x, 1, keepdim=True), via="method",
    ),
    *_softmax_like("softmax", cr.softmax, _np_softmax, "softmax"),
    *_softmax_like("log_softmax", cr.log_softmax, _np_log_softmax, "log_softmax"),
    *_argreduction("argmax", cr.argmax, np.argmax, lambda T, x, **kw: T.argmax(x, **kw)),
    *_argreduction("argmin", cr.argmin, np.argmin, lambda T, x, **kw: T.argmin(x, **kw)),
]  # fmt: skip


# --------------------------------------------------------------------------- linalg
def _torch_dot(T: Any, a: Any, b: Any) -> Any:
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.ndim == 1 and b.ndim == 1:
        return T.dot(a, b)
    return T.matmul(a, b)


def _einsum(subscripts: str, *shapes: tuple[int, ...], label: str) -> OpSpec:
    return OpSpec(
        "einsum",
        lambda *xs: cr.einsum(subscripts, *xs),
        lambda *xs: np.einsum(subscripts, *xs),
        shapes,
        label=label,
        torch=lambda T, *xs: T.einsum(subscripts, *xs),
    )


LINALG = [
    *(
        OpSpec("matmul", cr.matmul, np.matmul, shapes, label=label,
               torch=lambda T, a, b: T.matmul(a, b))
        for label, shapes in [
            ("vec@vec", ((4,), (4,))),
            ("vec@mat", ((3,), (3, 4))),
            ("mat@vec", ((3, 4), (4,))),
            ("mat@mat", ((2, 3), (3, 4))),
            ("batch@mat", ((2, 2, 3), (3, 2))),
            ("mat@batch", ((2, 3), (2, 3, 2))),
            ("broadcast-batch", ((2, 1, 2, 2), (3, 2, 2))),
            ("vec@batch", ((3,), (2, 3, 2))),
            ("batch@vec", ((2, 2, 3), (3,))),
        ]
    ),
    _operator("matmul", operator.matmul, ((2, 3), (3, 4)), "a@b"),
    _operator("matmul", operator.matmul, ((3,), (3, 2)), "vec@mat-operator"),
    *(
        OpSpec("dot", cr.dot, np.dot, shapes, label=label, torch=_torch_dot)
        for label, shapes in [
            ("vec.vec", ((4,), (4,))),
            ("mat.mat", ((2, 3), (3, 4))),
            ("mat.vec", ((3, 4), (4,))),
            ("scalar.vec", ((), (3,))),
        ]
    ),
    OpSpec("outer", cr.outer, np.outer, ((3,), (4,)), torch=lambda T, a, b: T.outer(a, b)),
    OpSpec(
        "outer", cr.outer, np.outer, ((2, 2), (3,)), label="flattens",
        torch=lambda T, a, b: T.outer(a.flatten(), b.flatten()),
    ),
    _einsum("ij,jk->ik", (2, 3), (3, 4), label="explicit"),
    _einsum("ij,jk", (2, 3), (3, 4), label="implicit"),
    _einsum("ji,jk", (3, 2), (3, 4), label="implicit-order"),
    _einsum("...ij,...jk->...ik", (2, 2, 3), (2, 3, 2), label="ellipsis"),
    _einsum("...ij,...jk", (1, 2, 3), (2, 3, 2), label="ellipsis-broadcast-implicit"),
    _einsum("bi,...i->b...", (2, 3), (2, 3), label="ellipsis-out"),
    _einsum("ij,kl->ik", (2, 3), (3, 2), label="summed-out-of-one-operand"),
    _einsum("ij->i", (3, 4), label="row-sum"),
    _einsum("ij->", (3, 4), label="full-sum"),
    _einsum("ij->ji", (3, 4), label="transpose"),
    _einsum("i,j->ij", (3,), (4,), label="outer"),
    _einsum("bij,bjk->bik", (2, 2, 3), (2, 3, 2), label="batched"),
    _einsum("ij,jk,kl->il", (2, 3), (3, 2), (2, 4), label="three-operands"),
    _einsum("i,ij,j", (3,), (3, 2), (2,), label="three-operands-implicit"),
    _einsum(",i->i", (), (3,), label="scalar-operand"),
]  # fmt: skip


# --------------------------------------------------------------------------- shape
def _getitem(
    label: str,
    index: Any,
    shape: tuple[int, ...],
    torch_index: Any = None,
    torch_fn: Callable[..., Any] | None = None,
    via: str = "operator",
) -> OpSpec:
    """x[index]; the torch index defaults to the same one."""
    if torch_fn is None:
        t_index = index if torch_index is None else torch_index
        torch_fn = lambda T, x: x[t_index(T) if callable(t_index) else t_index]  # noqa: E731
    if via == "function":
        fn = lambda x: cr.ops.getitem(x, index)  # noqa: E731
    else:
        fn = lambda x: x[index]  # noqa: E731
    return OpSpec(
        "getitem", fn, lambda x: x[index], (shape,), label=label, torch=torch_fn, via=via
    )


class _TensorIndex:
    """An index made of chainrule tensors, with its NumPy and torch twins."""

    def __init__(self, *parts: np.ndarray) -> None:
        self.parts = parts

    def cr(self) -> Any:
        return tuple(cr.tensor(p) for p in self.parts)

    def torch(self, T: Any) -> Any:
        return tuple(T.tensor(p) for p in self.parts)


TENSOR_ROWS = _TensorIndex(ROWS_REPEATED)
TENSOR_MASK = _TensorIndex(MASK_3X4)

SHAPE = [
    OpSpec(
        "reshape", lambda x: cr.reshape(x, (2, 6)), lambda x: np.reshape(x, (2, 6)), ((3, 4),),
        torch=lambda T, x: T.reshape(x, (2, 6)),
    ),
    OpSpec(
        "reshape", lambda x: cr.reshape(x, (2, -1, 3)), lambda x: np.reshape(x, (2, -1, 3)),
        ((3, 4),), label="minus-one", torch=lambda T, x: T.reshape(x, (2, -1, 3)),
    ),
    OpSpec(
        "reshape", lambda x: cr.reshape(x, (1, 1)), lambda x: np.reshape(x, (1, 1)), ((),),
        torch=lambda T, x: T.reshape(x, (1, 1)),
    ),
    OpSpec(
        "reshape", lambda x: x.reshape(4, 3), lambda x: x.reshape(4, 3), ((3, 4),),
        label="method-varargs", torch=lambda T, x: x.reshape(4, 3), via="method",
    ),
    OpSpec(
        "reshape", lambda x: x.reshape((6, 2)), lambda x: x.reshape((6, 2)), ((3, 4),),
        label="method-tuple", torch=lambda T, x: x.reshape((6, 2)), via="method",
    ),
    OpSpec(
        "transpose", cr.transpose, np.transpose, ((2, 3, 2),), label="reverse",
        torch=lambda T, x: x.permute(2, 1, 0),
    ),
    OpSpec(
        "transpose", lambda x: cr.transpose(x, (1, 0, 2)), lambda x: np.transpose(x, (1, 0, 2)),
        ((2, 3, 2),), label="axes", torch=lambda T, x: x.permute(1, 0, 2),
    ),
    OpSpec(
        "transpose", lambda x: cr.transpose(x, (-1, 0, 1)),
        lambda x: np.transpose(x, (-1, 0, 1)), ((2, 3, 2),), label="negative-axes",
        torch=lambda T, x: x.permute(2, 0, 1),
    ),
    OpSpec(
        "transpose", lambda x: x.T, lambda x: x.T, ((3, 4),), label=".T",
        torch=lambda T, x: x.T, via="method",
    ),
    OpSpec(
        "transpose", lambda x: x.transpose(1, 0), lambda x: x.transpose(1, 0), ((3, 4),),
        label="method-varargs", torch=lambda T, x: x.permute(1, 0), via="method",
    ),
    OpSpec(
        "transpose", lambda x: x.transpose((2, 0, 1)), lambda x: x.transpose((2, 0, 1)),
        ((2, 3, 2),), label="method-tuple", torch=lambda T, x: x.permute(2, 0, 1),
        via="method",
    ),
    OpSpec(
        "swapaxes", lambda x: cr.swapaxes(x, 0, 2), lambda x: np.swapaxes(x, 0, 2),
        ((2, 3, 2),), torch=lambda T, x: T.swapaxes(x, 0, 2),
    ),
    OpSpec(
        "swapaxes", lambda x: x.swapaxes(-1, 0), lambda x: x.swapaxes(-1, 0), ((3, 4),),
        label="method-negative", torch=lambda T, x: T.swapaxes(x, -1, 0), via="method",
    ),
    OpSpec(
        "broadcast_to", lambda x: cr.broadcast_to(x, (2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 3, 4)), ((3, 1),),
        torch=lambda T, x: T.broadcast_to(x, (2, 3, 4)),
    ),
    OpSpec(
        "broadcast_to", lambda x: cr.broadcast_to(x, (3, 4)),
        lambda x: np.broadcast_to(x, (3, 4)), ((4,),), torch=lambda T, x: x.expand(3, 4),
    ),
    OpSpec(
        "broadcast_to", lambda x: x.broadcast_to((2, 3)), lambda x: np.broadcast_to(x, (2, 3)),
        ((),), label="method", torch=lambda T, x: x.expand(2, 3), via="method",
    ),
    _getitem("slices", (slice(1, None), slice(None, None, 2)), (3, 4)),
    _getitem(
        "negative-steps", (slice(None, None, -1), slice(None, None, -2)), (3, 4),
        torch_fn=lambda T, x: T.flip(x, (0, 1))[:, ::2],
    ),
    _getitem("none-and-int", (None, 1), (3, 4)),
    _getitem("ellipsis", (Ellipsis, 1), (2, 3, 2)),
    _getitem("ellipsis-none", (Ellipsis, None, 0), (2, 3, 2)),
    _getitem("negative-ints", (-1, -2), (3, 4)),
    _getitem("int", 1, (3, 4), via="function"),
    _getitem("empty-tuple", (), ()),
    _getitem(
        "repeated-rows", ROWS_REPEATED, (3, 4),
        torch_index=lambda T: T.tensor(ROWS_REPEATED),
    ),
    _getitem(
        "repeated-elements", (PAIR_ROWS, PAIR_COLS), (3, 4),
        torch_index=lambda T: (T.tensor(PAIR_ROWS), T.tensor(PAIR_COLS)), via="function",
    ),
    _getitem(
        "repeated-2d-index", INDEX_2D, (3, 4), torch_index=lambda T: T.tensor(INDEX_2D)
    ),
    _getitem(
        "array-and-slice", (np.array([2, 2, 0]), slice(1, None)), (3, 4),
        torch_index=lambda T: (T.tensor([2, 2, 0]), slice(1, None)),
    ),
    _getitem("list", [0, 0, 1], (3, 4)),
    _getitem("bool-mask", MASK_3X4, (3, 4), torch_index=lambda T: T.tensor(MASK_3X4)),
    _getitem("row-mask", ROW_MASK, (3, 4), torch_index=lambda T: T.tensor(ROW_MASK)),
    OpSpec(
        "getitem", lambda x: x[TENSOR_ROWS.cr()], lambda x: x[(ROWS_REPEATED,)], ((3, 4),),
        label="tensor-index", torch=lambda T, x: x[TENSOR_ROWS.torch(T)], via="operator",
    ),
    OpSpec(
        "getitem", lambda x: x[TENSOR_MASK.cr()], lambda x: x[(MASK_3X4,)], ((3, 4),),
        label="tensor-mask", torch=lambda T, x: x[TENSOR_MASK.torch(T)], via="operator",
    ),
    OpSpec(
        "concatenate", lambda a, b: cr.concatenate([a, b]), lambda a, b: np.concatenate([a, b]),
        ((2, 3), (1, 3)), label="axis=0", torch=lambda T, a, b: T.cat([a, b]),
    ),
    OpSpec(
        "concatenate", lambda a, b: cr.concatenate([a, b], axis=1),
        lambda a, b: np.concatenate([a, b], axis=1), ((2, 1), (2, 3)), label="axis=1",
        torch=lambda T, a, b: T.cat([a, b], 1),
    ),
    OpSpec(
        "concatenate", lambda *xs: cr.concatenate(xs, axis=-1),
        lambda *xs: np.concatenate(xs, axis=-1), ((2, 2), (2, 1), (2, 3)), label="axis=-1",
        torch=lambda T, *xs: T.cat(xs, -1),
    ),
    OpSpec(
        "concatenate", lambda a, b: cr.concatenate((a, b)), lambda a, b: np.concatenate((a, b)),
        ((3,), (2,)), label="1d", torch=lambda T, a, b: T.cat((a, b)),
    ),
    OpSpec(
        "stack", lambda a, b: cr.stack([a, b]), lambda a, b: np.stack([a, b]),
        ((2, 3), (2, 3)), label="axis=0", torch=lambda T, a, b: T.stack([a, b]),
    ),
    OpSpec(
        "stack", lambda a, b: cr.stack([a, b], axis=1), lambda a, b: np.stack([a, b], axis=1),
        ((2, 3), (2, 3)), label="axis=1", torch=lambda T, a, b: T.stack([a, b], 1),
    ),
    OpSpec(
        "stack", lambda *xs: cr.stack(xs, axis=-1), lambda *xs: np.stack(xs, axis=-1),
        ((3,), (3,), (3,)), label="axis=-1", torch=lambda T, *xs: T.stack(xs, -1),
    ),
    OpSpec(
        "stack", lambda a, b: cr.stack([a, b]), lambda a, b: np.stack([a, b]), ((), ()),
        label="0d", torch=lambda T, a, b: T.stack([a, b]),
    ),
    OpSpec("flatten", cr.flatten, np.ravel, ((2, 3, 2),), torch=lambda T, x: T.flatten(x)),
    OpSpec("flatten", cr.flatten, np.ravel, ((),), torch=lambda T, x: x.reshape(1)),
    OpSpec(
        "flatten", lambda x: x.flatten(), lambda x: x.flatten(), ((3, 4),), label="method",
        torch=lambda T, x: x.flatten(), via="method",
    ),
    OpSpec(
        "squeeze", cr.squeeze, np.squeeze, ((3, 1, 2, 1),), label="all",
        torch=lambda T, x: T.squeeze(x),
    ),
    OpSpec(
        "squeeze", lambda x: cr.squeeze(x, 1), lambda x: np.squeeze(x, 1), ((3, 1, 2, 1),),
        label="axis=1", torch=lambda T, x: T.squeeze(x, 1),
    ),
    OpSpec(
        "squeeze", lambda x: cr.squeeze(x, (1, -1)), lambda x: np.squeeze(x, (1, -1)),
        ((3, 1, 2, 1),), label="axis=(1,-1)", torch=lambda T, x: T.squeeze(x, (1, 3)),
    ),
    OpSpec(
        "squeeze", lambda x: x.squeeze(0), lambda x: x.squeeze(0), ((1, 4),), label="method",
        torch=lambda T, x: x.squeeze(0), via="method",
    ),
    OpSpec(
        "expand_dims", lambda x: cr.expand_dims(x, 0), lambda x: np.expand_dims(x, 0),
        ((3, 4),), label="axis=0", torch=lambda T, x: x.unsqueeze(0),
    ),
    OpSpec(
        "expand_dims", lambda x: cr.expand_dims(x, -1), lambda x: np.expand_dims(x, -1),
        ((3, 4),), label="axis=-1", torch=lambda T, x: x.unsqueeze(-1),
    ),
    OpSpec(
        "expand_dims", lambda x: cr.expand_dims(x, (0, 2)), lambda x: np.expand_dims(x, (0, 2)),
        ((3, 4),), label="axis=(0,2)", torch=lambda T, x: x.unsqueeze(0).unsqueeze(2),
    ),
    OpSpec(
        "expand_dims", lambda x: x.expand_dims(1), lambda x: np.expand_dims(x, 1), ((4,),),
        label="method", torch=lambda T, x: x.unsqueeze(1), via="method",
    ),
    OpSpec("clone", cr.clone, np.copy, ((3, 4),), torch=lambda T, x: x.clone()),
    OpSpec("clone", cr.clone, np.copy, ((),), torch=lambda T, x: x.clone()),
    OpSpec(
        "clone", lambda x: x.clone(), np.copy, ((2, 3),), label="method",
        torch=lambda T, x: x.clone(), via="method",
    ),
]  # fmt: skip


# --------------------------------------------------------------------------- nn primitives
# The fused ops behind cr.nn's layers and losses, with plain NumPy references: a loop over
# output pixels for convolution and pooling, the textbook formulas for the rest. Every
# reference checks its shapes as chainrule does (a ValueError), so test_zero_d's shrunken
# variants are skipped exactly where chainrule refuses them.
Shape = tuple[int, ...]


def _pairs(*values: Any) -> list[tuple[int, int]]:
    return [(v, v) if isinstance(v, int) else tuple(v) for v in values]


def _np_conv_shapes(x_shape: Shape, w_shape: Shape, stride: Any, padding: Any) -> tuple[int, int]:
    """(Ho, Wo) of a valid convolution, or the ValueError chainrule raises."""
    (sh, sw), (ph, pw) = _pairs(stride, padding)
    if len(x_shape) != 4 or len(w_shape) != 4 or x_shape[1] != w_shape[1]:
        raise ValueError(f"conv: shapes {x_shape} and {w_shape} do not fit")
    ho = (x_shape[2] + 2 * ph - w_shape[2]) // sh + 1
    wo = (x_shape[3] + 2 * pw - w_shape[3]) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"conv: input {x_shape} is smaller than the kernel {w_shape}")
    return ho, wo


def _np_conv2d(
    x: np.ndarray, w: np.ndarray, b: Any = None, stride: Any = 1, padding: Any = 0
) -> np.ndarray:
    """y[n, o, i, j] = Σ_{c,u,v} w[o, c, u, v] x_pad[n, c, i·sh + u, j·sw + v] + b[o]."""
    ho, wo = _np_conv_shapes(x.shape, w.shape, stride, padding)
    (sh, sw), (ph, pw) = _pairs(stride, padding)
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", window, w)
    if b is not None:
        if b.shape != (w.shape[0],):
            raise ValueError(f"conv2d: bias {b.shape} for {w.shape[0]} filters")
        y += b[:, None, None]
    return y


def _np_conv2d_input(
    g: np.ndarray, w: np.ndarray, x_shape: Shape, stride: Any = 1, padding: Any = 0
) -> np.ndarray:
    """The adjoint of x ↦ conv2d(x, w): each output pixel's Σ_o g·w added onto its window."""
    ho, wo = _np_conv_shapes(x_shape, w.shape, stride, padding)
    if g.shape != (x_shape[0], w.shape[0], ho, wo):
        raise ValueError(f"conv2d_input: gradient {g.shape} for output {(ho, wo)}")
    (sh, sw), (ph, pw) = _pairs(stride, padding)
    kh, kw = w.shape[2:]
    n, c, h, wd = x_shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    for i in range(ho):
        for j in range(wo):
            xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += np.einsum(
                "no,ochw->nchw", g[:, :, i, j], w
            )
    return xp[:, :, ph : ph + h, pw : pw + wd]


def _np_conv2d_weight(
    x: np.ndarray, g: np.ndarray, w_shape: Shape, stride: Any = 1, padding: Any = 0
) -> np.ndarray:
    """The adjoint of w ↦ conv2d(x, w): Σ over output pixels of g times x's window."""
    ho, wo = _np_conv_shapes(x.shape, w_shape, stride, padding)
    if g.shape != (x.shape[0], w_shape[0], ho, wo):
        raise ValueError(f"conv2d_weight: gradient {g.shape} for output {(ho, wo)}")
    (sh, sw), (ph, pw) = _pairs(stride, padding)
    kh, kw = w_shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gw = np.zeros(w_shape)
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            gw += np.einsum("no,nchw->ochw", g[:, :, i, j], window)
    return gw


def _np_pool(reduce: Callable[..., Any]) -> Callable[..., Any]:
    def pool(x: np.ndarray, kernel: Any, stride: Any = None) -> np.ndarray:
        """y[n, c, i, j] = reduce of x[n, c, i·sh : i·sh + kh, j·sw : j·sw + kw]."""
        (kh, kw), (sh, sw) = _pairs(kernel, kernel if stride is None else stride)
        if x.ndim != 4 or x.shape[2] < kh or x.shape[3] < kw:
            raise ValueError(f"pool: input {x.shape} for a kernel {(kh, kw)}")
        ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        y = np.zeros(x.shape[:2] + (ho, wo))
        for i in range(ho):
            for j in range(wo):
                y[:, :, i, j] = reduce(x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw])
        return y

    return pool


def _window_max(window: np.ndarray) -> np.ndarray:
    return window.max(axis=(2, 3))


def _window_mean(window: np.ndarray) -> np.ndarray:
    return window.mean(axis=(2, 3))


_np_max_pool2d = _np_pool(_window_max)
_np_avg_pool2d = _np_pool(_window_mean)


def _np_affine(x: np.ndarray, w: np.ndarray, b: Any = None) -> np.ndarray:
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[0]:
        raise ValueError(f"affine: {x.shape} and {w.shape}")
    return x @ w if b is None else x @ w + b


def _np_cross_entropy(x: np.ndarray, labels: np.ndarray, reduction: str = "mean") -> Any:
    """ℓᵢ = log Σ_c exp x_ic − x_i,labelᵢ (class axis 1, or 0 for 1-D logits), reduced."""
    axis = 1 if x.ndim > 1 else 0
    if x.ndim == 0 or labels.shape != x.shape[:axis] + x.shape[axis + 1 :]:
        raise ValueError(f"cross_entropy: logits {x.shape} and labels {labels.shape}")
    log_p = _np_log_softmax(x, axis=axis)
    losses = -np.take_along_axis(log_p, np.expand_dims(labels, axis), axis).squeeze(axis)
    return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[reduction](losses)


def _torch_cross_entropy(T: Any, x: Any, labels: np.ndarray, reduction: str = "mean") -> Any:
    return T.nn.functional.cross_entropy(x, T.tensor(labels), reduction=reduction)


def _torch_conv2d_input(
    T: Any, g: Any, w: Any, x_shape: Shape, stride: Any = 1, padding: Any = 0
) -> Any:
    """The transposed convolution, cropped or extended to x's size by output_padding."""
    (sh, sw), (ph, pw) = _pairs(stride, padding)
    extra = (
        x_shape[2] - ((g.shape[2] - 1) * sh - 2 * ph + w.shape[2]),
        x_shape[3] - ((g.shape[3] - 1) * sw - 2 * pw + w.shape[3]),
    )
    return T.nn.functional.conv_transpose2d(
        g, w, stride=(sh, sw), padding=(ph, pw), output_padding=extra
    )


def _torch_conv2d_weight(
    T: Any, x: Any, g: Any, w_shape: Shape, stride: Any = 1, padding: Any = 0
) -> Any:
    """∂/∂w of Σ g·conv2d(x, w): linear in w, so any w (zeros) gives it; recorded."""
    w = T.zeros(w_shape, dtype=x.dtype, requires_grad=True)
    y = T.nn.functional.conv2d(x, w, stride=stride, padding=padding)
    return T.autograd.grad(y, w, g, create_graph=True)[0]


def _conv(label: str, shapes: tuple[Shape, ...], stride: Any = 1, padding: Any = 0) -> OpSpec:
    """conv2d of x (and w, and b when three shapes are given)."""
    return OpSpec(
        "conv2d",
        lambda *xs: cr.ops.conv2d(*xs, stride=stride, padding=padding),
        lambda *xs: _np_conv2d(*xs, stride=stride, padding=padding),
        shapes,
        label=label,
        torch=lambda T, *xs: T.nn.functional.conv2d(*xs, stride=stride, padding=padding),
    )


def _conv_input(
    label: str, g_shape: Shape, w_shape: Shape, x_shape: Shape, stride: Any = 1, padding: Any = 0
) -> OpSpec:
    return OpSpec(
        "conv2d_input",
        lambda g, w: cr.ops.conv2d_input(g, w, x_shape, stride, padding),
        lambda g, w: _np_conv2d_input(g, w, x_shape, stride, padding),
        (g_shape, w_shape),
        label=label,
        torch=lambda T, g, w: _torch_conv2d_input(T, g, w, x_shape, stride, padding),
    )


def _conv_weight(
    label: str, x_shape: Shape, g_shape: Shape, w_shape: Shape, stride: Any = 1, padding: Any = 0
) -> OpSpec:
    return OpSpec(
        "conv2d_weight",
        lambda x, g: cr.ops.conv2d_weight(x, g, w_shape, stride, padding),
        lambda x, g: _np_conv2d_weight(x, g, w_shape, stride, padding),
        (x_shape, g_shape),
        label=label,
        torch=lambda T, x, g: _torch_conv2d_weight(T, x, g, w_shape, stride, padding),
    )


def _pool(
    name: str, np_fn: Callable[..., Any], label: str, shape: Shape, kernel: Any, stride: Any = None
) -> OpSpec:
    """max_pool2d/avg_pool2d; max gets tie-free inputs (its kink is a tie in a window)."""
    return OpSpec(
        name,
        lambda x: getattr(cr.ops, name)(x, kernel, stride),
        lambda x: np_fn(x, kernel, stride),
        (shape,),
        label=label,
        torch=lambda T, x: getattr(T.nn.functional, name)(x, kernel, stride),
        distinct=name == "max_pool2d",
    )


def _cross_entropy(
    label: str, shape: Shape, labels: np.ndarray, reduction: str = "mean"
) -> OpSpec:
    return OpSpec(
        "cross_entropy_with_labels",
        lambda x: cr.ops.cross_entropy_with_labels(x, labels, reduction),
        lambda x: _np_cross_entropy(x, labels, reduction),
        (shape,),
        label=label,
        torch=lambda T, x: _torch_cross_entropy(T, x, labels, reduction),
    )


LABELS_3 = np.array([2, 0, 3])  # for (3, 4) logits
LABELS_2X2 = np.array([[0, 2], [1, 1]])  # for (2, 3, 2) logits: classes on axis 1

NN = [
    OpSpec(
        "affine", cr.ops.affine, _np_affine, ((3, 4), (4, 2), (2,)), label="bias",
        torch=lambda T, x, w, b: T.nn.functional.linear(x, w.T, b),
    ),
    OpSpec(
        "affine", cr.ops.affine, _np_affine, ((3, 4), (4, 2)), label="no-bias",
        torch=lambda T, x, w: T.nn.functional.linear(x, w.T),
    ),
    OpSpec(
        "affine", cr.ops.affine, _np_affine, ((3,), (3, 4), (4,)), label="vector",
        torch=lambda T, x, w, b: T.nn.functional.linear(x, w.T, b),
    ),
    OpSpec(
        "affine", cr.ops.affine, _np_affine, ((2, 2, 3), (3, 2), (2,)), label="leading-axes",
        torch=lambda T, x, w, b: T.nn.functional.linear(x, w.T, b),
    ),
    *_unary("softplus", cr.ops.softplus, lambda x: np.logaddexp(0.0, x),
            lambda T, x: T.nn.functional.softplus(x))[:2],  # fmt: skip
    OpSpec(
        "softplus", cr.ops.softplus, lambda x: np.logaddexp(0.0, x), ((3, 4),), label="wide",
        domain=uniform(-30.0, 30.0), torch=lambda T, x: T.nn.functional.softplus(x),
    ),
    *_unary("safe_sqrt", cr.ops.safe_sqrt, np.sqrt, lambda T, x: T.sqrt(x),
            domain=POSITIVE)[:2],  # fmt: skip
    _conv("basic", ((2, 1, 3, 3), (2, 1, 2, 2))),
    _conv("bias", ((2, 1, 3, 3), (2, 1, 2, 2), (2,))),
    _conv("stride-padding", ((1, 2, 3, 3), (1, 2, 2, 2), (1,)), stride=2, padding=1),
    _conv("pairs", ((1, 2, 4, 3), (2, 2, 2, 1)), stride=(1, 2), padding=(0, 1)),
    _conv_input("basic", (2, 2, 2, 2), (2, 1, 2, 2), (2, 1, 3, 3)),
    _conv_input("stride-padding", (1, 1, 2, 2), (1, 2, 2, 2), (1, 2, 3, 3), 2, 1),
    _conv_input("uncovered-edge", (1, 2, 2, 2), (2, 1, 2, 2), (1, 1, 4, 4), 2, 0),
    _conv_weight("basic", (2, 1, 3, 3), (2, 2, 2, 2), (2, 1, 2, 2)),
    _conv_weight("stride-padding", (1, 2, 3, 3), (1, 1, 2, 2), (1, 2, 2, 2), 2, 1),
    _pool("max_pool2d", _np_max_pool2d, "disjoint", (1, 1, 4, 4), 2),
    _pool("max_pool2d", _np_max_pool2d, "overlapping", (1, 2, 3, 3), 2, 1),
    _pool("max_pool2d", _np_max_pool2d, "cropped", (2, 1, 3, 3), 2),
    _pool("max_pool2d", _np_max_pool2d, "pairs", (1, 2, 3, 4), (2, 3), (1, 1)),
    _pool("avg_pool2d", _np_avg_pool2d, "disjoint", (1, 1, 4, 4), 2),
    _pool("avg_pool2d", _np_avg_pool2d, "overlapping", (1, 2, 3, 3), 2, 1),
    _pool("avg_pool2d", _np_avg_pool2d, "cropped", (2, 1, 3, 3), 2),
    _pool("avg_pool2d", _np_avg_pool2d, "pairs", (1, 2, 3, 4), (2, 3), (1, 1)),
    _cross_entropy("mean", (3, 4), LABELS_3),
    _cross_entropy("sum", (3, 4), LABELS_3, "sum"),
    _cross_entropy("none", (3, 4), LABELS_3, "none"),
    _cross_entropy("one-example", (4,), np.array(1)),
    _cross_entropy("spatial", (2, 3, 2), LABELS_2X2),
    _cross_entropy("spatial-none", (2, 3, 2), LABELS_2X2, "none"),
]  # fmt: skip


# --------------------------------------------------------------------------- cr.linalg
def well_conditioned(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Square matrices near 2·diag(±1): singular values in about [1, 3], either sign of det."""
    x = 0.3 * rng.standard_normal(shape)
    if len(shape) >= 2 and shape[-1] == shape[-2]:
        signs = rng.choice([-1.0, 1.0], shape[:-1])
        x = x + 2.0 * signs[..., None] * np.eye(shape[-1])
    return x


def spread(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """|x| all distinct (0.25 apart) and at least 0.2 from 0: no ties for max/min of |x|,
    no kink of |x|."""
    n = int(np.prod(shape, dtype=np.int64))
    magnitudes = (rng.permutation(n) + 1) * 0.25 + rng.uniform(-0.02, 0.02, n)
    return (magnitudes * rng.choice([-1.0, 1.0], n)).reshape(shape)


def _spd(a: Any, eye: Any) -> Any:
    """A Aᵀ + n I (``eye`` of a's library and dtype): symmetric positive definite for any a
    and differentiable in all of a (cholesky reads one triangle; its symmetric gradient is
    the derivative of this)."""
    return a @ a.swapaxes(-1, -2) + a.shape[-1] * eye


def _np_eye(a: Any) -> np.ndarray:
    return np.eye(a.shape[-1], dtype=a.dtype)


def _sym(a: Any) -> Any:
    return (a + a.swapaxes(-1, -2)) / 2


def _norm(
    ord: Any = None,
    axis: Any = None,
    keepdims: bool = False,
    domain: Domain = normal,
    shapes: tuple[tuple[int, ...], ...] = ((3, 4),),
    label: str = "",
) -> OpSpec:
    return OpSpec(
        "norm",
        lambda x: cr.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims),
        lambda x: np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims),
        shapes,
        label=label or f"ord={ord}-axis={axis}" + ("-keepdims" if keepdims else ""),
        domain=domain,
        torch=lambda T, x: T.linalg.norm(x, ord=ord, dim=axis, keepdim=keepdims),
    )


def _eigh_out(w: Any, v: Any) -> Any:
    """w above v ∘ v: both unchanged by the sign of each eigenvector."""
    return w[..., None, :], v * v


def _svd_out(u: Any, s: Any, vt: Any) -> tuple[Any, ...]:
    """s, U ∘ U and Vᵀ ∘ Vᵀ, flattened: unchanged by the sign of each pair (uᵢ, vᵢ)."""
    lead = tuple(s.shape[:-1])
    return s, (u * u).reshape(lead + (-1,)), (vt * vt).reshape(lead + (-1,))


LINALG_V02 = [
    _norm(shapes=((4,),), label="vector"),
    _norm(),
    _norm(axis=1),
    _norm(axis=-1, keepdims=True),
    _norm(ord=2, axis=0),
    _norm(ord=1, axis=0, domain=spread),
    _norm(ord=np.inf, shapes=((5,),), domain=spread),
    _norm(ord=-np.inf, shapes=((5,),), domain=spread),
    _norm(ord="fro"),
    _norm(ord=1, domain=spread),
    _norm(ord=np.inf, domain=spread),
    _norm(ord="nuc"),
    _norm(ord=2),
    _norm(axis=(-2, -1), shapes=((2, 2, 3),)),
    _norm(ord="nuc", axis=(0, 2), shapes=((2, 2, 3),)),
    *(
        OpSpec("inv", cr.linalg.inv, np.linalg.inv, (shape,), domain=well_conditioned,
               torch=lambda T, a: T.linalg.inv(a))
        for shape in [(3, 3), (2, 2, 2)]
    ),
    *(
        OpSpec("det", cr.linalg.det, np.linalg.det, (shape,), domain=well_conditioned,
               torch=lambda T, a: T.linalg.det(a))
        for shape in [(3, 3), (2, 2, 2)]
    ),
    *(
        OpSpec("slogdet", lambda a: cr.linalg.slogdet(a)[1], lambda a: np.linalg.slogdet(a)[1],
               (shape,), label="logabsdet", domain=well_conditioned,
               torch=lambda T, a: T.linalg.slogdet(a)[1])
        for shape in [(3, 3), (2, 2, 2)]
    ),
    OpSpec(
        "slogdet", lambda a: cr.linalg.slogdet(a)[0] * cr.linalg.slogdet(a)[1],
        lambda a: np.prod(np.linalg.slogdet(a), axis=0), ((2, 3, 3),), label="sign*logabsdet",
        domain=well_conditioned, torch=lambda T, a: T.prod(T.stack(T.linalg.slogdet(a)), 0),
    ),
    *(
        OpSpec("solve", cr.linalg.solve, np.linalg.solve, shapes, label=label,
               domain=(well_conditioned, normal), torch=lambda T, a, b: T.linalg.solve(a, b))
        for label, shapes in [
            ("vector", ((3, 3), (3,))),
            ("matrix", ((3, 3), (3, 2))),
            ("batch-vector", ((2, 2, 2), (2,))),
            ("broadcast-batch", ((2, 2, 2), (3, 1, 2, 2))),
        ]
    ),
    *(
        OpSpec("cholesky", lambda a: cr.linalg.cholesky(_spd(a, _np_eye(a))),
               lambda a: np.linalg.cholesky(_spd(a, _np_eye(a))), (shape,), label="of-a@aT+nI",
               torch=lambda T, a: T.linalg.cholesky(_spd(a, T.eye(a.shape[-1], dtype=a.dtype))))
        for shape in [(3, 3), (2, 2, 2)]
    ),
    *(
        OpSpec("eigh", lambda a: cr.concatenate(_eigh_out(*cr.linalg.eigh(_sym(a))), axis=-2),
               lambda a: np.concatenate(_eigh_out(*np.linalg.eigh(_sym(a))), axis=-2),
               (shape,), label="w-and-v*v-of-sym", distinct=True,
               torch=lambda T, a: T.cat(_eigh_out(*T.linalg.eigh(_sym(a))), dim=-2))
        for shape in [(3, 3), (2, 3, 3)]
    ),
    OpSpec("eigh", lambda a: cr.linalg.eigh(_sym(a))[0], lambda a: np.linalg.eigh(_sym(a))[0],
           ((3, 3),), label="w-of-sym", torch=lambda T, a: T.linalg.eigh(_sym(a))[0]),
    *(
        OpSpec("svd", lambda a: cr.concatenate(_svd_out(*cr.linalg.svd(a)), axis=-1),
               lambda a: np.concatenate(_svd_out(*np.linalg.svd(a, full_matrices=False)), -1),
               (shape,), label=f"{label}-s-u*u-vt*vt", distinct=True,
               torch=lambda T, a: T.cat(_svd_out(*T.linalg.svd(a, full_matrices=False)), -1))
        for label, shape in [("square", (3, 3)), ("tall", (4, 3)), ("wide", (3, 4)),
                             ("batch", (2, 2, 3))]
    ),
    OpSpec("svd", lambda a: cr.linalg.svd(a)[1], lambda a: np.linalg.svd(a, compute_uv=False),
           ((3, 4),), label="s", torch=lambda T, a: T.linalg.svdvals(a)),
]  # fmt: skip


# --------------------------------------------------------------------------- shape, v0.2
def _torch_pad(widths: Any) -> tuple[int, ...]:
    """NumPy's per-axis (before, after) pairs as torch.nn.functional.pad's flat tuple, which
    starts from the last axis."""
    return tuple(n for pair in reversed(widths) for n in pair)


def _weighted_pieces(pieces: list[Any], join: Callable[..., Any]) -> Any:
    """The pieces of a split, each times its position + 1, joined again: every piece and
    its place in the list count."""
    return join([p * (i + 1) for i, p in enumerate(pieces)])


def _split_spec(label: str, shape: tuple[int, ...], cut: Any, axis: int) -> OpSpec:
    """A split row: the pieces of ``cr.split`` weighted and concatenated back."""
    torch_cut = cut if isinstance(cut, int) else list(cut)
    return OpSpec(
        "split",
        lambda x: _weighted_pieces(cr.split(x, cut, axis), lambda ps: cr.concatenate(ps, axis)),
        lambda x: _weighted_pieces(np.split(x, cut, axis), lambda ps: np.concatenate(ps, axis)),
        (shape,),
        label=label,
        torch=lambda T, x: _weighted_pieces(
            T.tensor_split(x, torch_cut, dim=axis), lambda ps: T.cat(ps, dim=axis)
        ),
    )


PAD_2 = ((1, 2), (0, 1))
PAD_3 = ((0, 0), (2, 1), (1, 2))  # torch's reflect/replicate/circular pad a (C, H, W) image
SYMMETRIC_ROWS = np.pad(np.arange(3), (2, 1), mode="symmetric")
SYMMETRIC_COLS = np.pad(np.arange(4), (1, 2), mode="symmetric")
TAKE_ROWS = np.array([[0, 2, 0, 0], [0, 0, 1, 0]])  # x[0, 0] taken twice: gradients add
TAKE_COLS = np.array([[0, 0, 3, 1, 0], [2, 2, 2, 2, 2], [3, 1, 0, 1, 3]])
TAKE_BROADCAST = np.array([[3, 3]])  # broadcast against the 3 rows
TAKE_FLAT = np.array([0, 5, 5, 11])

SHAPE_V02 = [
    OpSpec(
        "pad", lambda x: cr.pad(x, PAD_2, constant_values=1.5),
        lambda x: np.pad(x, PAD_2, constant_values=1.5), ((3, 4),), label="constant",
        torch=lambda T, x: T.nn.functional.pad(x, _torch_pad(PAD_2), value=1.5),
    ),
    OpSpec(
        "pad", lambda x: cr.pad(x, 1), lambda x: np.pad(x, 1), ((2, 3),), label="int",
        torch=lambda T, x: T.nn.functional.pad(x, (1, 1, 1, 1)),
    ),
    OpSpec(
        "pad", lambda x: cr.pad(x, PAD_3, mode="reflect"),
        lambda x: np.pad(x, PAD_3, mode="reflect"), ((1, 3, 4),), label="reflect",
        torch=lambda T, x: T.nn.functional.pad(x, _torch_pad(PAD_3[1:]), mode="reflect"),
    ),
    OpSpec(
        "pad", lambda x: cr.pad(x, PAD_3, mode="edge"),
        lambda x: np.pad(x, PAD_3, mode="edge"), ((1, 3, 4),), label="edge",
        torch=lambda T, x: T.nn.functional.pad(x, _torch_pad(PAD_3[1:]), mode="replicate"),
    ),
    OpSpec(
        "pad", lambda x: cr.pad(x, PAD_3, mode="wrap"),
        lambda x: np.pad(x, PAD_3, mode="wrap"), ((1, 3, 4),), label="wrap",
        torch=lambda T, x: T.nn.functional.pad(x, _torch_pad(PAD_3[1:]), mode="circular"),
    ),
    OpSpec(
        "pad", lambda x: cr.pad(x, ((2, 1), (1, 2)), mode="symmetric"),
        lambda x: np.pad(x, ((2, 1), (1, 2)), mode="symmetric"), ((3, 4),),
        label="symmetric",  # torch has no symmetric mode: its indexing, as a second opinion
        torch=lambda T, x: x[T.tensor(SYMMETRIC_ROWS)][:, T.tensor(SYMMETRIC_COLS)],
    ),
    OpSpec(
        "tile", lambda x: cr.tile(x, (2, 1)), lambda x: np.tile(x, (2, 1)), ((3, 4),),
        torch=lambda T, x: T.tile(x, (2, 1)),
    ),
    OpSpec(
        "tile", lambda x: cr.tile(x, (2, 2)), lambda x: np.tile(x, (2, 2)), ((3,),),
        label="new-axis", torch=lambda T, x: T.tile(x, (2, 2)),
    ),
    OpSpec(
        "tile", lambda x: cr.tile(x, (2, 3)), lambda x: np.tile(x, (2, 3)), ((),),
        torch=lambda T, x: T.tile(x, (2, 3)),
    ),
    OpSpec(
        "tile", lambda x: x.tile(2), lambda x: np.tile(x, 2), ((2, 3),), label="method",
        torch=lambda T, x: x.tile(2), via="method",
    ),
    OpSpec(
        "repeat", lambda x: cr.repeat(x, 2, axis=1), lambda x: np.repeat(x, 2, axis=1),
        ((3, 4),), torch=lambda T, x: T.repeat_interleave(x, 2, dim=1),
    ),
    OpSpec(
        "repeat", lambda x: cr.repeat(x, [1, 0, 2, 1], axis=-1),
        lambda x: np.repeat(x, [1, 0, 2, 1], axis=-1), ((3, 4),), label="per-element",
        torch=lambda T, x: T.repeat_interleave(x, T.tensor([1, 0, 2, 1]), dim=-1),
    ),
    OpSpec(
        "repeat", lambda x: cr.repeat(x, 2), lambda x: np.repeat(x, 2), ((2, 3),),
        label="flattened", torch=lambda T, x: T.repeat_interleave(x, 2),
    ),
    OpSpec(
        "repeat", lambda x: cr.repeat(x, 3), lambda x: np.repeat(x, 3), ((),),
        torch=lambda T, x: T.repeat_interleave(x, 3),
    ),
    OpSpec(
        "repeat", lambda x: x.repeat(2, axis=0), lambda x: x.repeat(2, axis=0), ((3, 4),),
        label="method", torch=lambda T, x: x.repeat_interleave(2, dim=0), via="method",
    ),
    OpSpec(
        "flip", cr.flip, np.flip, ((2, 3, 2),), label="all",
        torch=lambda T, x: T.flip(x, (0, 1, 2)),
    ),
    OpSpec(
        "flip", lambda x: cr.flip(x, (0, -1)), lambda x: np.flip(x, (0, -1)), ((2, 3, 2),),
        label="axes", torch=lambda T, x: T.flip(x, (0, 2)),
    ),
    OpSpec("flip", cr.flip, np.flip, ((),), torch=lambda T, x: T.flip(x, ())),
    OpSpec(
        "flip", lambda x: x.flip(1), lambda x: np.flip(x, 1), ((3, 4),), label="method",
        torch=lambda T, x: x.flip(1), via="method",
    ),
    OpSpec(
        "roll", lambda x: cr.roll(x, 5), lambda x: np.roll(x, 5), ((3, 4),),
        label="flattened", torch=lambda T, x: T.roll(x, 5),
    ),
    OpSpec(
        "roll", lambda x: cr.roll(x, (1, -1), (0, 1)), lambda x: np.roll(x, (1, -1), (0, 1)),
        ((3, 4),), label="axes", torch=lambda T, x: T.roll(x, (1, -1), (0, 1)),
    ),
    OpSpec(
        "roll", lambda x: cr.roll(x, -7, axis=-1), lambda x: np.roll(x, -7, axis=-1),
        ((2, 3, 2),), label="negative", torch=lambda T, x: T.roll(x, -7, -1),
    ),
    OpSpec("roll", lambda x: cr.roll(x, 1), lambda x: np.roll(x, 1), ((),),
           torch=lambda T, x: T.roll(x, 1)),  # fmt: skip
    OpSpec(
        "roll", lambda x: x.roll(2, 1), lambda x: np.roll(x, 2, 1), ((3, 4),), label="method",
        torch=lambda T, x: x.roll(2, 1), via="method",
    ),
    _split_spec("sections", (3, 4), 2, 1),
    _split_spec("indices", (3, 4), [1, 3], 1),
    _split_spec("empty-piece", (6,), [2, 2, 5], 0),
    OpSpec(
        "moveaxis", lambda x: cr.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1),
        ((2, 3, 2),), torch=lambda T, x: T.movedim(x, 0, -1),
    ),
    OpSpec(
        "moveaxis", lambda x: cr.moveaxis(x, (0, 1), (2, 0)),
        lambda x: np.moveaxis(x, (0, 1), (2, 0)), ((2, 3, 2),), label="several",
        torch=lambda T, x: T.movedim(x, (0, 1), (2, 0)),
    ),
    OpSpec(
        "cat", lambda a, b: cr.cat([a, b]), lambda a, b: np.concatenate([a, b]),
        ((2, 3), (1, 3)), torch=lambda T, a, b: T.cat([a, b]),
    ),
    OpSpec(
        "cat", lambda a, b: cr.cat([a, b], dim=1), lambda a, b: np.concatenate([a, b], 1),
        ((3, 2), (3, 1)), label="dim", torch=lambda T, a, b: T.cat([a, b], dim=1),
    ),
    OpSpec("tril", cr.tril, np.tril, ((3, 4),), torch=lambda T, x: T.tril(x)),
    OpSpec(
        "tril", lambda x: cr.tril(x, -1), lambda x: np.tril(x, -1), ((3, 4),), label="below",
        torch=lambda T, x: T.tril(x, -1),
    ),
    OpSpec(
        "tril", lambda x: cr.tril(x, 1), lambda x: np.tril(x, 1), ((2, 3, 2),),
        label="batch", torch=lambda T, x: T.tril(x, 1),
    ),
    OpSpec("triu", cr.triu, np.triu, ((3, 4),), torch=lambda T, x: T.triu(x)),
    OpSpec(
        "triu", lambda x: cr.triu(x, 1), lambda x: np.triu(x, 1), ((3, 4),), label="above",
        torch=lambda T, x: T.triu(x, 1),
    ),
    OpSpec(
        "triu", lambda x: cr.triu(x, -1), lambda x: np.triu(x, -1), ((2, 3, 2),),
        label="batch", torch=lambda T, x: T.triu(x, -1),
    ),
    OpSpec(
        "diagonal", lambda x: cr.diagonal(x, 1), lambda x: np.diagonal(x, 1), ((3, 4),),
        label="above", torch=lambda T, x: T.diagonal(x, 1),
    ),
    OpSpec(
        "diagonal", lambda x: cr.diagonal(x, -1), lambda x: np.diagonal(x, -1), ((3, 4),),
        label="below", torch=lambda T, x: T.diagonal(x, -1),
    ),
    OpSpec(
        "diagonal", lambda x: cr.diagonal(x, 0, 2, 1), lambda x: np.diagonal(x, 0, 2, 1),
        ((2, 3, 2),), label="axes", torch=lambda T, x: T.diagonal(x, 0, 2, 1),
    ),
    OpSpec(
        "diagonal", lambda x: x.diagonal(), lambda x: x.diagonal(), ((3, 4),),
        label="method", torch=lambda T, x: x.diagonal(), via="method",
    ),
    OpSpec("trace", cr.trace, np.trace, ((3, 4),), torch=lambda T, x: T.trace(x)),
    OpSpec(
        "trace", lambda x: cr.trace(x, 1), lambda x: np.trace(x, 1), ((3, 4),),
        label="offset", torch=lambda T, x: T.diagonal(x, 1).sum(),
    ),
    OpSpec(
        "trace", lambda x: cr.trace(x, 0, 1, 2), lambda x: np.trace(x, 0, 1, 2),
        ((2, 3, 2),), label="axes", torch=lambda T, x: T.diagonal(x, 0, 1, 2).sum(-1),
    ),
    OpSpec(
        "trace", lambda x: x.trace(), lambda x: x.trace(), ((3, 3),), label="method",
        torch=lambda T, x: x.trace(), via="method",
    ),
    OpSpec(
        "take_along_axis", lambda x: cr.take_along_axis(x, TAKE_ROWS, 0),
        lambda x: np.take_along_axis(x, TAKE_ROWS, 0), ((3, 4),), label="repeated",
        torch=lambda T, x: T.take_along_dim(x, T.tensor(TAKE_ROWS), dim=0),
    ),
    OpSpec(
        "take_along_axis", lambda x: cr.take_along_axis(x, TAKE_COLS, -1),
        lambda x: np.take_along_axis(x, TAKE_COLS, -1), ((3, 4),), label="last-axis",
        torch=lambda T, x: T.take_along_dim(x, T.tensor(TAKE_COLS), dim=-1),
    ),
    OpSpec(
        "take_along_axis", lambda x: cr.take_along_axis(x, TAKE_BROADCAST, 1),
        lambda x: np.take_along_axis(x, TAKE_BROADCAST, 1), ((3, 4),), label="broadcast",
        torch=lambda T, x: T.take_along_dim(x, T.tensor(TAKE_BROADCAST), dim=1),
    ),
    OpSpec(
        "take_along_axis", lambda x: cr.take_along_axis(x, TAKE_FLAT, None),
        lambda x: np.take_along_axis(x, TAKE_FLAT, None), ((3, 4),), label="flattened",
        torch=lambda T, x: T.take_along_dim(x, T.tensor(TAKE_FLAT)),
    ),
]  # fmt: skip


def _np_normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = erfc(−x/√2)/2, by math.erfc element by element (NumPy has no erf)."""
    values = [0.5 * math.erfc(-v / math.sqrt(2.0)) for v in np.ravel(x)]
    return np.asarray(values, dtype=np.result_type(x, np.float32)).reshape(np.shape(x))


NN_V02 = [
    *_unary("normal_cdf", cr.ops.normal_cdf, _np_normal_cdf,
            lambda T, x: T.special.ndtr(x))[:2],
    OpSpec(
        "normal_cdf", cr.ops.normal_cdf, _np_normal_cdf, ((3, 4),), label="tails",
        domain=uniform(-12.0, 12.0), torch=lambda T, x: T.special.ndtr(x),
    ),
]  # fmt: skip


# --------------------------------------------------------------------------- v0.2: elementwise
def _cells(offset: float) -> Domain:
    """x = 4u with u in [−3, 3] at least 0.2 from every integer + ``offset``.

    A step function of x/4 jumping at the integers + ``offset`` is flat within
    gradcheck's continuity scan (±0.5 in x is ±0.125 in u), so its row checks the 0
    gradient; gradcheck flagging the plain step functions is tests/test_ops_v02.py's.
    """
    inner = avoiding(*[k + offset for k in range(-4, 5)], gap=0.2, low=-3.0, high=3.0)

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return 4.0 * inner(rng, shape)

    return draw


UNIT = uniform(-0.45, 0.45)  # arcsin, arccos: with the scan's ±0.5, inside (−1, 1)
TAN_DOMAIN = uniform(-1.0, 1.0)  # with the scan's ±0.5, inside the poles at ±π/2
ABOVE_MINUS_ONE = uniform(-0.4, 3.0)  # log1p: with the scan's ±0.5, above −1
SIGN_DOMAIN = signed(0.7, 2.0)  # farther from 0 than the continuity scan reaches
INTEGER_CELLS = _cells(0.0)  # floor, ceil: jumps at the integers
HALF_CELLS = _cells(0.5)  # round: jumps at the halves


def _step(name: str, cr_fn: Callable[..., Any], np_fn: Callable[..., Any],
          torch_fn: Callable[..., Any], domain: Domain) -> list[OpSpec]:  # fmt: skip
    """A step function of x/4: matrix, 0-d and method rows (see ``_cells``)."""
    return [
        OpSpec(
            name, lambda x: cr_fn(x * 0.25), lambda x: np_fn(x * 0.25), ((3, 4),),
            label="x/4", domain=domain, torch=lambda T, x: torch_fn(T, x * 0.25),
        ),
        OpSpec(
            name, lambda x: cr_fn(x * 0.25), lambda x: np_fn(x * 0.25), ((),),
            label="x/4", domain=domain, torch=lambda T, x: torch_fn(T, x * 0.25),
        ),
        OpSpec(
            name, lambda x: getattr(x * 0.25, name)(), lambda x: np_fn(x * 0.25), ((2, 3),),
            label="x/4-method", domain=domain, torch=lambda T, x: torch_fn(T, x * 0.25),
            via="method",
        ),
    ]  # fmt: skip


ELEMENTWISE_V02 = [
    *_unary("sin", cr.sin, np.sin, lambda T, x: T.sin(x)),
    *_unary("cos", cr.cos, np.cos, lambda T, x: T.cos(x)),
    *_unary("tan", cr.tan, np.tan, lambda T, x: T.tan(x), domain=TAN_DOMAIN),
    *_unary("arcsin", cr.arcsin, np.arcsin, lambda T, x: T.asin(x), domain=UNIT),
    *_unary("arccos", cr.arccos, np.arccos, lambda T, x: T.acos(x), domain=UNIT),
    *_unary("arctan", cr.arctan, np.arctan, lambda T, x: T.atan(x)),
    *_binary(
        "arctan2", cr.arctan2, np.arctan2, lambda T, y, x: T.atan2(y, x),
        domain=(NONZERO, POSITIVE),
    ),
    OpSpec(
        "arctan2", cr.arctan2, np.arctan2, ((3, 4), (3, 4)), label="upper-half-plane",
        domain=(uniform(0.8, 3.0), NONZERO), torch=lambda T, y, x: T.atan2(y, x),
    ),
    OpSpec(
        "arctan2", lambda y: y.arctan2(1.3), lambda y: np.arctan2(y, 1.3), ((2, 3),),
        label="method", torch=lambda T, y: T.atan2(y, T.tensor(1.3, dtype=y.dtype)),
        via="method",
    ),
    *_unary("sinh", cr.sinh, np.sinh, lambda T, x: T.sinh(x)),
    *_unary("cosh", cr.cosh, np.cosh, lambda T, x: T.cosh(x)),
    *_unary("log1p", cr.log1p, np.log1p, lambda T, x: T.log1p(x), domain=ABOVE_MINUS_ONE),
    *_unary("expm1", cr.expm1, np.expm1, lambda T, x: T.expm1(x)),
    *_unary("log2", cr.log2, np.log2, lambda T, x: T.log2(x), domain=POSITIVE),
    *_unary("log10", cr.log10, np.log10, lambda T, x: T.log10(x), domain=POSITIVE),
    *_unary("square", cr.square, np.square, lambda T, x: T.square(x)),
    *_unary("reciprocal", cr.reciprocal, np.reciprocal, lambda T, x: T.reciprocal(x),
            domain=NONZERO),
    *_unary("erf", cr.erf, _np_erf, lambda T, x: T.special.erf(x)),
    *_unary("sign", cr.sign, np.sign, lambda T, x: T.sign(x), domain=SIGN_DOMAIN),
    *_step("floor", cr.floor, np.floor, lambda T, x: T.floor(x), INTEGER_CELLS),
    *_step("ceil", cr.ceil, np.ceil, lambda T, x: T.ceil(x), INTEGER_CELLS),
    *_step("round", cr.round, np.round, lambda T, x: T.round(x), HALF_CELLS),
    OpSpec(
        "round", lambda x: cr.round(x * 0.025, decimals=1),
        lambda x: np.round(x * 0.025, 1), ((3, 4),), label="x/40-decimals=1",
        domain=HALF_CELLS, torch=lambda T, x: T.round(x * 0.025, decimals=1),
    ),
]  # fmt: skip


# --------------------------------------------------------------------------- v0.2: reductions
def _torch_prod(T: Any, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
    # torch.prod takes one dim or none: move the reduced axes last and flatten them
    if x.ndim == 0:
        return T.prod(x)
    if dim is None:
        dim = tuple(range(x.ndim))
    dims = tuple(d % x.ndim for d in (dim if isinstance(dim, tuple) else (dim,)))
    kept = [d for d in range(x.ndim) if d not in dims]
    lines = x.permute(*kept, *dims).reshape(*[x.shape[d] for d in kept], -1)
    y = T.prod(lines, -1)
    if keepdim:
        y = y.reshape([1 if d in dims else n for d, n in enumerate(x.shape)])
    return y


def _torch_std(T: Any, x: Any, dim: Any = None, keepdim: bool = False, ddof: int = 0) -> Any:
    return T.std(x, dim=dim, correction=ddof, keepdim=keepdim)


def _np_std(x: np.ndarray, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    return np.std(x, axis=axis, keepdims=keepdims, ddof=ddof)


def _torch_logical(name: str) -> Callable[..., Any]:
    def call(T: Any, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
        x = x.detach() > 0
        if dim is None:
            dim = tuple(range(x.ndim))
        return getattr(T, name)(x, dim=dim, keepdim=keepdim) if x.ndim else getattr(T, name)(x)

    return call


def _scan(name: str, cr_fn: Callable[..., Any], np_fn: Callable[..., Any],
          torch_name: str, domain: Domain = normal) -> list[OpSpec]:  # fmt: skip
    """cumsum/cumprod: flattened (axis=None), axis 0 and −1, dim alias, 3-D, 0-d, method."""

    def on_torch(dim: int | None) -> Callable[..., Any]:
        if dim is None:
            return lambda T, x: getattr(T, torch_name)(x.reshape(-1), 0)
        return lambda T, x: getattr(T, torch_name)(x, dim)

    return [
        OpSpec(name, cr_fn, np_fn, ((3, 4),), label="flattened", domain=domain,
               torch=on_torch(None)),
        OpSpec(name, lambda x: cr_fn(x, 0), lambda x: np_fn(x, 0), ((3, 4),), label="axis=0",
               domain=domain, torch=on_torch(0)),
        OpSpec(name, lambda x: cr_fn(x, axis=-1), lambda x: np_fn(x, axis=-1), ((3, 4),),
               label="axis=-1", domain=domain, torch=on_torch(-1)),
        OpSpec(name, lambda x: cr_fn(x, dim=1), lambda x: np_fn(x, axis=1), ((2, 3, 2),),
               label="dim=1", domain=domain, torch=on_torch(1)),
        OpSpec(name, cr_fn, np_fn, ((),), domain=domain, torch=on_torch(None)),
        OpSpec(name, lambda x: getattr(x, name)(axis=1), lambda x: np_fn(x, axis=1),
               ((3, 4),), label="method", domain=domain, torch=on_torch(1), via="method"),
    ]  # fmt: skip


def _logical(name: str) -> list[OpSpec]:
    """all/any of x > 0: forward only (bool), axes, keepdims, the aliases, 0-d, method."""
    cr_fn, np_fn, torch_fn = getattr(cr, name), getattr(np, name), _torch_logical(name)
    cases = [
        ("all", (3, 4), {}, {}),
        ("axis=1", (3, 4), {"axis": 1}, {"dim": 1}),
        ("axis=(0,2)-keepdims", (2, 3, 2), {"axis": (0, 2), "keepdims": True},
         {"dim": (0, 2), "keepdim": True}),
        ("0d", (), {}, {}),
    ]  # fmt: skip
    specs = [
        OpSpec(
            name, lambda x, kw=kw: cr_fn(x > 0, **kw), lambda x, kw=kw: np_fn(x > 0, **kw),
            (shape,), label=label, differentiable=False,
            torch=lambda T, x, kw=tkw: torch_fn(T, x, **kw),
        )
        for label, shape, kw, tkw in cases
    ]  # fmt: skip
    specs.append(
        OpSpec(
            name, lambda x: cr_fn(x > 0, dim=0, keepdim=True),
            lambda x: np_fn(x > 0, axis=0, keepdims=True), ((3, 4),), label="dim-keepdim-alias",
            differentiable=False, torch=lambda T, x: torch_fn(T, x, dim=0, keepdim=True),
        )
    )  # fmt: skip
    specs.append(
        OpSpec(
            name, lambda x: getattr(x > 0, name)(axis=0),
            lambda x: getattr(x > 0, name)(axis=0), ((3, 4),), label="method",
            differentiable=False, via="method", torch=lambda T, x: torch_fn(T, x, dim=0),
        )
    )  # fmt: skip
    return specs


def _np_topk(x: np.ndarray, k: int, axis: int = -1, largest: bool = True) -> np.ndarray:
    order = np.argsort(-x if largest else x, axis=axis, kind="stable")
    return np.take_along_axis(x, np.take(order, np.arange(k), axis=axis), axis=axis)


REDUCTIONS_V02 = [
    *_reduction("prod", cr.prod, np.prod, _torch_prod),
    OpSpec(
        "prod", lambda x: cr.prod(x, dim=1, keepdim=True), lambda x: np.prod(x, 1, keepdims=True),
        ((3, 4),), label="keepdim-alias", torch=lambda T, x: T.prod(x, 1, keepdim=True),
    ),
    *_scan("cumsum", cr.cumsum, np.cumsum, "cumsum"),
    *_scan("cumprod", cr.cumprod, np.cumprod, "cumprod"),
    *_reduction("std", cr.std, _np_std, _torch_std),
    OpSpec(
        "std", lambda x: cr.std(x, axis=1, ddof=1, keepdim=True),
        lambda x: np.std(x, axis=1, ddof=1, keepdims=True), ((3, 4),),
        label="ddof=1-keepdim-alias", torch=lambda T, x: T.std(x, 1, correction=1, keepdim=True),
    ),
    OpSpec(
        "std", lambda x: x.std(axis=(0, 2), ddof=1), lambda x: x.std(axis=(0, 2), ddof=1),
        ((2, 3, 2),), label="method-ddof=1", via="method",
        torch=lambda T, x: T.std(x, dim=(0, 2), correction=1),
    ),
    *_logical("all"),
    *_logical("any"),
    OpSpec(
        "sort", cr.sort, np.sort, ((3, 4),), distinct=True,
        torch=lambda T, x: T.sort(x, stable=True).values,
    ),
    OpSpec(
        "sort", lambda x: cr.sort(x, axis=0), lambda x: np.sort(x, axis=0), ((3, 4),),
        label="axis=0", distinct=True, torch=lambda T, x: T.sort(x, dim=0, stable=True).values,
    ),
    OpSpec(
        "sort", lambda x: cr.sort(x, dim=1), lambda x: np.sort(x, axis=1), ((2, 3, 2),),
        label="dim=1", distinct=True, torch=lambda T, x: T.sort(x, dim=1, stable=True).values,
    ),
    OpSpec(
        "sort", lambda x: x.sort(), np.sort, ((5,),), label="method", distinct=True,
        torch=lambda T, x: T.sort(x, stable=True).values, via="method",
    ),
    OpSpec(
        "argsort", cr.argsort, lambda x: np.argsort(x, kind="stable"), ((3, 4),),
        distinct=True, differentiable=False, torch=lambda T, x: T.argsort(x, stable=True),
    ),
    OpSpec(
        "argsort", lambda x: cr.argsort(x, dim=0), lambda x: np.argsort(x, axis=0), ((3, 4),),
        label="dim=0", distinct=True, differentiable=False,
        torch=lambda T, x: T.argsort(x, dim=0, stable=True),
    ),
    OpSpec(
        "argsort", lambda x: x.argsort(axis=1), lambda x: np.argsort(x, axis=1), ((2, 3, 2),),
        label="method", distinct=True, differentiable=False, via="method",
        torch=lambda T, x: T.argsort(x, dim=1, stable=True),
    ),
    OpSpec(
        "topk", lambda x: cr.topk(x, 2)[0], lambda x: _np_topk(x, 2), ((3, 4),),
        label="values", distinct=True, torch=lambda T, x: T.topk(x, 2).values,
    ),
    OpSpec(
        "topk", lambda x: cr.topk(x, 3, axis=0, largest=False)[0],
        lambda x: _np_topk(x, 3, axis=0, largest=False), ((3, 4),),
        label="smallest-axis=0", distinct=True,
        torch=lambda T, x: T.topk(x, 3, dim=0, largest=False).values,
    ),
    OpSpec(
        "topk", lambda x: x.topk(1, dim=1)[0], lambda x: _np_topk(x, 1, axis=1), ((2, 3, 2),),
        label="method-dim=1", distinct=True, via="method",
        torch=lambda T, x: T.topk(x, 1, dim=1).values,
    ),
]  # fmt: skip


OP_SPECS: list[OpSpec] = [
    *ELEMENTWISE, *REDUCTIONS, *LINALG, *SHAPE, *NN, *LINALG_V02, *SHAPE_V02, *ELEMENTWISE_V02,
    *REDUCTIONS_V02, *NN_V02,
]  # fmt: skip

# SPEC's "Tensors and ops": the Tensor methods and the operators the table must reach.
SPEC_METHODS = {
    "sum", "mean", "var", "max", "min", "argmax", "argmin", "reshape", "transpose", "flatten",
    "squeeze", "expand_dims", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "clip",
    "astype",
}  # fmt: skip
SPEC_OPERATORS = {"add", "sub", "mul", "div", "power", "matmul", "neg", "abs", "getitem"}
