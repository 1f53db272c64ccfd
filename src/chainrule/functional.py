"""Function transforms on the one engine: grad, value_and_grad, vjp, jvp, jacobian, hessian.

Each transform calls the function once on fresh leaf tensors, then asks the engine for
gradients (``engine.grad``: nothing is accumulated into ``.grad``). When an argument is
itself a Tensor that requires grad (a transform nested inside another, as in
``grad(grad(f))``), the inner transform records its backward pass (``create_graph``), so
the outer one can differentiate through it.

Shapes follow the lecture's matrix calculus: for y = f(x), ∂y/∂x is shaped like x when y
is a scalar; the Jacobian is ``out.shape + in.shape`` (numerator layout, as JAX and
PyTorch) or ``in.shape + out.shape`` (denominator layout, the lecture's vector-by-vector
table with ∂y_j/∂x_i in row i, column j).

Every transform takes pytrees (``chainrule.tree``: nested tuples, lists, dicts of arrays)
wherever it takes one array, as JAX's do: each leaf of a differentiated argument is an
input, and gradients, tangents and Jacobians come back in the arguments' and outputs'
structures. A plain array costs one type check on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import batching, engine
from chainrule.batched import Batched, physical
from chainrule.graph import is_batchable, reaches_beyond
from chainrule.ops.shape import Transpose, concatenate, stack
from chainrule.tensor import Tensor
from chainrule.tracing import (
    _CONTAINERS,
    _argnums_tuple,
    _as_input,
    _gradients,
    _pick,
    _regroup,
    _retire,
    _trace,
)
from chainrule.tree import LEAF, tree_flatten

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "jacrev", "hessian"]


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., tuple[Any, Any]]:
    """A function returning (f(args), ∂f/∂args[argnums]) for a scalar-valued f.

    The gradient has the argument's shape (∂y/∂x is (n) for x in Rⁿ, (n, m) for a matrix),
    or, for a pytree argument (e.g. a list of ``(W, b)`` tuples), the argument's
    structure with one gradient per leaf; a tuple ``argnums`` gives a tuple of gradients.
    With ``has_aux=True``, f returns ``(value, aux)`` and the result is
    ``((value, aux), gradient)``, aux untouched (JAX's order).
    """

    def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
        nums = _argnums_tuple(argnums, len(args))
        trace = _trace(f, args, nums, has_aux, "value_and_grad")
        if trace.out_def is not None:
            raise TypeError(
                f"grad: f must return a scalar Tensor, got the structure {trace.out_def}; "
                "use has_aux=True for (value, aux), or vjp/jacobian for several outputs"
            )
        (out,) = trace.outs
        if out.size != 1:
            raise ValueError(
                f"grad: f must return a scalar, got shape {out.shape}; use jacobian or vjp "
                "for vector outputs"
            )
        grads = _gradients(out, trace.inputs, None, trace.nested, retain=False)
        _retire(trace.inputs)
        value = out if trace.nested else out.detach()
        g = _pick(_regroup(grads, trace.structure), argnums)
        return ((value, trace.aux), g) if has_aux else (value, g)

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    value_and_grad_f.__wrapped__ = f  # type: ignore[attr-defined]  # its signature is f's
    return value_and_grad_f


def grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """A function returning ∇f = ∂f/∂args[argnums], shaped like that argument.

    ``f`` must return a scalar. A pytree argument gives a gradient with its structure.
    With ``has_aux=True``, f returns ``(value, aux)`` and the result is
    ``(gradient, aux)``. Transforms nest: ``grad(grad(f))(x)`` is f″(x).
    """
    value_and_grad_f = value_and_grad(f, argnums, has_aux)

    def grad_f(*args: Any) -> Any:
        value, g = value_and_grad_f(*args)
        return (g, value[1]) if has_aux else g

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    grad_f.__wrapped__ = f  # type: ignore[attr-defined]
    return grad_f


def _check_like(name: str, given: Any, like: Sequence[Tensor], like_def: Any, what: str) -> list:
    """The leaves of ``given`` (cotangents, tangents), checked against the structure
    ``like_def`` and the shapes of ``like``; the message names both structures."""
    if like_def is None and not isinstance(given, _CONTAINERS) and given is not None:
        leaves = [given]
    else:
        leaves, given_def = tree_flatten(given)
        expected = LEAF if like_def is None else like_def
        if given_def != expected:
            raise ValueError(f"{name}: {what} has structure {given_def}, expected {expected}")
    for leaf, x in zip(leaves, like):
        shape = leaf.shape if isinstance(leaf, Tensor) else np.shape(leaf)
        if shape != x.shape:
            raise ValueError(f"{name}: {what} of shape {shape}, expected {x.shape}")
    return leaves


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple]]:
    """y = f(*primals) and the function u ↦ uᵀJ (one gradient per primal).

    Primals and y may be pytrees: the cotangent u has y's structure, and each gradient
    its primal's. The forward runs once; ``vjp_fn`` may be called many times (the graph is
    retained).
    """
    trace = _trace(f, primals, tuple(range(len(primals))), name="vjp")

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        if trace.out_def is None and isinstance(cotangent, (Tensor, np.ndarray)):
            seeds = [cotangent]  # the fast path: one array for one output
            if cotangent.shape != trace.outs[0].shape:
                shapes = f"{cotangent.shape}, expected {trace.outs[0].shape}"
                raise ValueError(f"vjp: cotangent of shape {shapes}")
        else:
            seeds = _check_like("vjp", cotangent, trace.outs, trace.out_def, "cotangent")
        if len(seeds) == 1:  # one output: one walk
            seed = seeds[0] if isinstance(seeds[0], Tensor) else np.asarray(seeds[0])
            grads = _gradients(trace.outs[0], trace.inputs, seed, trace.nested, retain=True)
            return grads if not any(trace.structure) else tuple(_regroup(grads, trace.structure))
        total: Sequence[Any] | None = None
        for out, seed in zip(trace.outs, seeds):
            if not isinstance(seed, Tensor):
                seed = np.asarray(seed)
            grads = _gradients(out, trace.inputs, seed, trace.nested, retain=True)
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
        if total is None:  # f returned an empty structure
            total = [Tensor(np.zeros_like(x.data)) for x in trace.inputs]
        return tuple(_regroup(total, trace.structure))

    return trace.output(trace.outs), vjp_fn


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """y = f(*primals) and the directional derivative J·v for tangents v.

    Each tangent has its primal's structure (a pytree of arrays shaped like its leaves);
    y and J·v have f's output structure. Built from two reverse passes (the "double-vjp"
    trick): g(u) = uᵀJ is computed with ``create_graph=True`` for a dummy cotangent u, and
    J·v is the gradient of ⟨g(u), v⟩ with respect to u. Every op's reverse rule is already
    differentiable, so this needs no second set of forward-mode rules; it costs about three
    forward passes.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if not primals:
        raise ValueError("jvp: needs at least one primal")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    trace = _trace(f, primals, tuple(range(len(primals))), name="jvp")
    inputs = trace.inputs
    directions: list[Any] = []
    start = 0
    for number, (treedef, v) in enumerate(zip(trace.structure, tangents)):
        stop = start + (1 if treedef is None else treedef.num_leaves)
        directions += _check_like("jvp", v, inputs[start:stop], treedef, f"tangent {number}")
        start = stop
    nested = trace.nested
    outs = trace.outs
    values = [o if nested else o.detach() for o in outs]
    active = [o for o in outs if o.requires_grad]
    # a leaf each (inside vmap, one per example, as the inputs are)
    dummies = [_as_input(np.zeros(o.shape, o.dtype)) for o in active]
    grads: list[Any] = []
    for out, dummy in zip(active, dummies):
        g = _gradients(out, inputs, dummy, True, retain=True)
        grads = list(g) if not grads else [a + b for a, b in zip(grads, g)]
    found: dict[int, Tensor] = {}
    terms = [(g * v).sum() for g, v in zip(grads, directions)]  # a tangent that requires
    if terms:  # grad keeps J·v differentiable in v
        inner = terms[0]
        for term in terms[1:]:
            inner = inner + term
        if inner.requires_grad:  # else f is constant in the direction's support
            nested = nested or reaches_beyond(inner, [*dummies, *inputs])
            tangents_out = _gradients(inner, dummies, None, nested, retain=False)
            found = {id(o): t for o, t in zip(active, tangents_out)}
    _retire([*inputs, *dummies])
    results = [
        found[id(o)] if id(o) in found else Tensor(np.zeros(o.shape, o.dtype)) for o in outs
    ]
    return trace.output(values), trace.output(results)


#: how many Jacobian entries one batched backward walk may hold (64 MiB of float32)
_BATCH_ELEMENTS = 1 << 24


def _jacobian_stacks(out: Tensor, inputs: list[Tensor], nested: bool) -> list[Any]:
    """For each input x, the stacked rows ∂out_k/∂x, shape (out.size,) + x.shape.

    When every op behind ``out`` is batchable (all built-in ops are), the rows come from a
    few batched backward walks, each seeded with a block of the identity (vmap-style);
    otherwise from one walk per output element. Under nesting the walks are recorded, so
    the rows stay differentiable.
    """
    n = out.size
    if not out.requires_grad:
        return [Tensor(np.zeros((n,) + x.shape, dtype=x.dtype)) for x in inputs]
    if type(out) is Batched:
        return _batched_jacobian_stacks(out, inputs, nested)
    if is_batchable(out):
        chunk = max(1, min(n, _BATCH_ELEMENTS // max([n, *(x.size for x in inputs)])))
        blocks: list[list[Any]] = [[] for _ in inputs]
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            seed = np.zeros((rows, n), dtype=out.dtype)
            seed.ravel()[start :: n + 1] = 1  # the identity's rows start .. start + rows
            seed = seed.reshape((rows,) + out.shape)
            grads = engine.grad_from_seed(
                out,
                inputs,
                Tensor._make(seed, None) if nested else seed,
                retain_graph=True,
                create_graph=nested,
                batch=1,
            )
            for block, g in zip(blocks, grads):
                block.append(g if nested else g.data)
        if nested:
            return [b[0] if len(b) == 1 else concatenate(b) for b in blocks]
        # one block (the usual case) is the Jacobian already: no concatenating copy
        return [Tensor._make(b[0] if len(b) == 1 else np.concatenate(b), None) for b in blocks]
    stacks: list[list[Any]] = [[] for _ in inputs]
    seed = np.zeros(n, dtype=out.dtype)
    for k in range(n):
        seed[k] = 1
        grads = _gradients(out, inputs, seed.reshape(out.shape), nested, retain=True)
        seed[k] = 0
        for stack_of_rows, g in zip(stacks, grads):
            stack_of_rows.append(g)
    return [_stack(rows, x) for rows, x in zip(stacks, inputs)]


def _batched_jacobian_stacks(out: Batched, inputs: list[Tensor], nested: bool) -> list[Any]:
    """``_jacobian_stacks`` inside vmap: one walk over the whole batch, seeded with the
    identity's rows for every example at once; example b's rows are ∂out_b/∂x_b (the
    examples do not interact), moved behind the batch axes."""
    if not is_batchable(out):
        raise batching.Unbatchable("jacobian")  # vmap runs f once per example instead
    levels = out._levels
    k = len(levels)
    n = out.size
    with physical():
        example = out.shape[k:]
        rows = np.eye(n, dtype=out.dtype).reshape((n,) + (1,) * k + example)
        seed = np.ascontiguousarray(np.broadcast_to(rows, (n,) + out.shape))
        grads = engine.grad_from_seed(
            out, inputs, Tensor._make(seed, None) if nested else seed,
            retain_graph=True, create_graph=nested, batch=1,
        )  # fmt: skip
        stacks = []
        for g in grads:
            order = (*range(1, k + 1), 0, *range(k + 1, g.ndim))
            if nested:
                moved = Transpose.apply(g, axes=order)
            else:
                moved = Tensor._make(np.transpose(g.data, order), None)
            stacks.append(Batched.wrap(moved, levels))
    return stacks


def _stack(rows: list[Any], x: Tensor) -> Tensor:
    if any(isinstance(r, Tensor) and r.requires_grad for r in rows):
        return stack(rows)  # differentiable, for nested transforms
    if not rows:
        return Tensor(np.zeros((0,) + x.shape, dtype=x.dtype))
    return Tensor(np.stack([np.asarray(r.data) for r in rows]))


def _assemble(stacked: Tensor, out_shape: tuple, in_shape: tuple, layout: str) -> Tensor:
    jac = stacked.reshape(out_shape + in_shape)
    if layout == "denominator":
        n_out = len(out_shape)
        axes = tuple(range(n_out, n_out + len(in_shape))) + tuple(range(n_out))
        jac = jac.transpose(axes)
    return jac


def jacobian(
    f: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    layout: str = "numerator",
    has_aux: bool = False,
) -> Callable[..., Any]:
    """A function returning the Jacobian of f with respect to args[argnums].

    Numerator layout (default): shape ``out.shape + in.shape``, J[i..., j...] =
    ∂y[i...]/∂x[j...]; for y in R^N and X of shape (n, m) that is (N, n, m): N matrices
    shaped like X. Denominator layout: ``in.shape + out.shape`` (the lecture's table).
    Over pytrees the nesting is JAX's ``jacrev``: f's output structure outside, then a
    tuple over ``argnums`` if it is a tuple, then each argument's structure inside, one
    Jacobian block per (output leaf, input leaf). With ``has_aux=True``, f returns
    ``(y, aux)`` and the result is ``(jacobian, aux)``.

    The forward runs once. The rows come from batched backward walks through the retained
    graph, each seeded with a block of the identity (one walk for the whole Jacobian when
    it fits in memory); a graph with a custom Function that is not ``batchable`` costs one
    backward walk per output element instead.
    """
    if layout not in ("numerator", "denominator"):
        raise ValueError(f"layout must be 'numerator' or 'denominator', got {layout!r}")

    def jacobian_f(*args: Any) -> Any:
        nums = _argnums_tuple(argnums, len(args))
        trace = _trace(f, args, nums, has_aux, "jacobian")
        inputs = trace.inputs
        per_output = []
        for out in trace.outs:
            stacks = _jacobian_stacks(out, inputs, trace.nested)
            jacs = [_assemble(m, out.shape, x.shape, layout) for m, x in zip(stacks, inputs)]
            per_output.append(_pick(_regroup(jacs, trace.structure), argnums))
        _retire(inputs)
        jac = trace.output(per_output)
        return (jac, trace.aux) if has_aux else jac

    jacobian_f.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return jacobian_f


#: JAX's name for the reverse-mode Jacobian: the same function as ``jacobian``
jacrev = jacobian


def hessian(f: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """A function returning the Hessian ∂²f/∂x² of a scalar f: shape ``in.shape + in.shape``.

    For a pytree x the result nests x's structure twice (outside: the leaf x_i
    differentiated first; inside: x_j), each block ∂²f/∂x_i∂x_j of shape
    ``x_i.shape + x_j.shape``, as JAX's ``hessian``. The gradient is computed once with
    ``create_graph=True``; each of its elements is then differentiated through that
    recorded graph.
    """
    if not isinstance(argnums, int):
        raise ValueError("hessian takes a single argnums (an int)")

    def hessian_f(*args: Any) -> Any:
        (num,) = _argnums_tuple(argnums, len(args))
        trace = _trace(f, args, (num,), name="hessian")
        if trace.out_def is not None or trace.outs[0].size != 1:
            shape = trace.outs[0].shape if trace.out_def is None else trace.out_def
            raise ValueError(f"hessian: f must return a scalar, got {shape}")
        (out,) = trace.outs
        inputs = trace.inputs
        grads = _gradients(out, inputs, None, True, retain=True)
        rows = []
        for g in grads:
            stacks = _jacobian_stacks(g, inputs, trace.nested)
            blocks = [_assemble(m, g.shape, x.shape, "numerator") for m, x in zip(stacks, inputs)]
            rows.append(_regroup(blocks, trace.structure)[0])
        _retire(inputs)
        return _regroup(rows, trace.structure)[0]

    hessian_f.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    return hessian_f
