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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import engine
from chainrule.graph import is_batchable, reaches_beyond
from chainrule.mode import enable_grad, is_grad_enabled
from chainrule.ops.shape import Reshape, concatenate, stack
from chainrule.tensor import Tensor

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian"]


def _argnums_tuple(argnums: int | Sequence[int], n_args: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError("argnums must name at least one argument")
    for i in nums:
        if not isinstance(i, int) or not -n_args <= i < n_args:
            raise ValueError(f"argnums {argnums} out of range for {n_args} argument(s)")
    return tuple(i % n_args for i in nums)


def _as_input(value: Any) -> Tensor:
    """A tensor to differentiate with respect to: a fresh leaf holding ``value``, or, for a
    tensor that requires grad (from an enclosing transform or a user's graph), a node of
    its own that stays connected to that graph."""
    if isinstance(value, Tensor) and value.requires_grad:
        return Reshape.apply(value, shape=value.shape)
    data: Any
    if isinstance(value, Tensor):
        data = value.data
    elif isinstance(value, (np.ndarray, np.generic, int, float)) and not isinstance(value, bool):
        data = value
    else:
        # a tuple, list or dict is a structure of arrays (JAX's pytree), never one array:
        # np.asarray would silently stack it, in float32
        raise TypeError(
            "a transform can only differentiate with respect to a Tensor, an ndarray or a "
            f"number, got {type(value).__name__}; for a list of numbers pass np.asarray(...)"
        )
    tensor = Tensor(data)
    if tensor.dtype.kind not in "fc":
        raise TypeError(
            f"can only differentiate with respect to floating-point inputs, got {tensor.dtype}"
        )
    return tensor.requires_grad_()


def _trace(
    f: Callable[..., Any], args: Sequence[Any], argnums: tuple[int, ...]
) -> tuple[Tensor, list[Tensor], bool]:
    """Run f once with the chosen arguments as graph inputs.

    Returns the output, the inputs, and whether the transform must record its own
    backward pass (``create_graph``): nesting by levels. That is the case when gradients
    are being recorded and the output's graph reaches a tensor that requires grad other
    than the inputs: an outer transform's variable, passed in or closed over, or a user's
    parameter. An enclosing differentiation can then see through the result, which must
    stay connected to what it depends on. Otherwise nothing outside can, and the cheaper
    first-order pass is exact.
    """
    recording = is_grad_enabled()  # the caller's mode: a transform inside no_grad() is cut
    args = list(args)
    inputs = []
    for i in argnums:
        tensor = _as_input(args[i])
        args[i] = tensor
        inputs.append(tensor)
    with enable_grad():
        out = f(*args)
    if not isinstance(out, Tensor):
        out = _as_output(out)
    nested = recording and out.requires_grad and reaches_beyond(out, inputs)
    return out, inputs, nested


def _as_output(value: Any) -> Tensor:
    if isinstance(value, (np.ndarray, np.generic, int, float)):
        return Tensor(value)
    raise TypeError(
        f"the function given to a transform must return a Tensor, got {type(value).__name__}"
    )


def _gradients(
    out: Tensor, inputs: list[Tensor], seed: Any, nested: bool, retain: bool
) -> tuple[Tensor, ...]:
    if not out.requires_grad:  # f does not depend on the inputs
        return tuple(Tensor(np.zeros_like(x.data)) for x in inputs)
    return engine.grad(out, inputs, grad_outputs=seed, retain_graph=retain, create_graph=nested)


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0
) -> Callable[..., tuple[Tensor, Any]]:
    """A function returning (f(args), ∂f/∂args[argnums]) for a scalar-valued f.

    The gradient has the argument's shape (∂y/∂x is (n) for x in Rⁿ, (n, m) for a matrix);
    a tuple ``argnums`` gives a tuple of gradients.
    """

    def value_and_grad_f(*args: Any) -> tuple[Tensor, Any]:
        nums = _argnums_tuple(argnums, len(args))
        out, inputs, nested = _trace(f, args, nums)
        if out.size != 1:
            raise ValueError(
                f"grad: f must return a scalar, got shape {out.shape}; use jacobian or vjp "
                "for vector outputs"
            )
        grads = _gradients(out, inputs, None, nested, retain=False)
        _retire(inputs)
        value = out if nested else out.detach()
        return value, grads[0] if isinstance(argnums, int) else grads

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return value_and_grad_f


def grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """A function returning ∇f = ∂f/∂args[argnums], shaped like that argument.

    ``f`` must return a scalar. Transforms nest: ``grad(grad(f))(x)`` is f″(x).
    """
    value_and_grad_f = value_and_grad(f, argnums)

    def grad_f(*args: Any) -> Any:
        return value_and_grad_f(*args)[1]

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return grad_f


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Tensor, Callable[[Any], tuple]]:
    """y = f(*primals) and the function u ↦ uᵀJ (one gradient per primal).

    The forward runs once; ``vjp_fn`` may be called many times (the graph is retained).
    """
    out, inputs, nested = _trace(f, primals, tuple(range(len(primals))))

    def vjp_fn(cotangent: Any) -> tuple[Tensor, ...]:
        seed = cotangent if isinstance(cotangent, Tensor) else np.asarray(cotangent)
        if seed.shape != out.shape:
            raise ValueError(f"vjp: cotangent of shape {seed.shape}, output shape {out.shape}")
        return _gradients(out, inputs, seed, nested, retain=True)

    return out, vjp_fn


def jvp(
    f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]
) -> tuple[Tensor, Tensor]:
    """y = f(*primals) and the directional derivative J·v for tangents v.

    Built from two reverse passes (the "double-vjp" trick): g(u) = uᵀJ is computed with
    ``create_graph=True`` for a dummy cotangent u, and J·v is the gradient of ⟨g(u), v⟩
    with respect to u. Every op's reverse rule is already differentiable, so this needs no
    second set of forward-mode rules; it costs about three forward passes.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if not primals:
        raise ValueError("jvp: needs at least one primal")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    out, inputs, nested = _trace(f, primals, tuple(range(len(primals))))
    for x, v in zip(inputs, tangents):
        if np.shape(v.data if isinstance(v, Tensor) else v) != x.shape:
            raise ValueError(f"jvp: tangent of shape {np.shape(v)} for a primal of {x.shape}")
    value = out if nested else out.detach()
    if not out.requires_grad:
        return value, Tensor(np.zeros_like(out.data))
    dummy = Tensor(np.zeros_like(out.data), requires_grad=True)
    grads = engine.grad(out, inputs, grad_outputs=dummy, create_graph=True)
    terms = [(g * v).sum() for g, v in zip(grads, tangents)]  # a tangent that requires
    inner = terms[0]  # grad keeps J·v differentiable in v
    for term in terms[1:]:
        inner = inner + term
    if not inner.requires_grad:  # f is constant in the direction's support
        tangent_out = Tensor(np.zeros_like(out.data))
    else:
        nested = nested or reaches_beyond(inner, [dummy, *inputs])
        (tangent_out,) = engine.grad(inner, [dummy], create_graph=nested)
    _retire([*inputs, dummy])
    return value, tangent_out


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


def _stack(rows: list[Any], x: Tensor) -> Tensor:
    if any(isinstance(r, Tensor) and r.requires_grad for r in rows):
        return stack(rows)  # differentiable, for nested transforms
    if not rows:
        return Tensor(np.zeros((0,) + x.shape, dtype=x.dtype))
    return Tensor(np.stack([np.asarray(r.data) for r in rows]))


def _retire(inputs: Sequence[Tensor]) -> None:
    """A transform's own variables leave scope when it returns: nothing differentiates
    with respect to them again, so they no longer count as connecting its result to an
    enclosing differentiation (``graph.reaches_beyond``)."""
    for x in inputs:
        if x._node is None:
            x._requires_grad = False


def _assemble(stacked: Tensor, out_shape: tuple, in_shape: tuple, layout: str) -> Tensor:
    jac = stacked.reshape(out_shape + in_shape)
    if layout == "denominator":
        n_out = len(out_shape)
        axes = tuple(range(n_out, n_out + len(in_shape))) + tuple(range(n_out))
        jac = jac.transpose(axes)
    return jac


def jacobian(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, layout: str = "numerator"
) -> Callable[..., Any]:
    """A function returning the Jacobian of f with respect to args[argnums].

    Numerator layout (default): shape ``out.shape + in.shape``, J[i..., j...] =
    ∂y[i...]/∂x[j...]; for y in R^N and X of shape (n, m) that is (N, n, m): N matrices
    shaped like X. Denominator layout: ``in.shape + out.shape`` (the lecture's table).

    The forward runs once. The rows come from batched backward walks through the retained
    graph, each seeded with a block of the identity (one walk for the whole Jacobian when
    it fits in memory); a graph with a custom Function that is not ``batchable`` costs one
    backward walk per output element instead.
    """
    if layout not in ("numerator", "denominator"):
        raise ValueError(f"layout must be 'numerator' or 'denominator', got {layout!r}")

    def jacobian_f(*args: Any) -> Any:
        nums = _argnums_tuple(argnums, len(args))
        out, inputs, nested = _trace(f, args, nums)
        stacks = _jacobian_stacks(out, inputs, nested)
        _retire(inputs)
        jacs = tuple(_assemble(m, out.shape, x.shape, layout) for m, x in zip(stacks, inputs))
        return jacs[0] if isinstance(argnums, int) else jacs

    jacobian_f.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return jacobian_f


def hessian(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """A function returning the Hessian ∂²f/∂x² of a scalar f: shape ``in.shape + in.shape``.

    The gradient is computed once with ``create_graph=True``; each of its elements is then
    differentiated through that recorded graph.
    """
    if not isinstance(argnums, int):
        raise ValueError("hessian takes a single argnums (an int)")

    def hessian_f(*args: Any) -> Tensor:
        (num,) = _argnums_tuple(argnums, len(args))
        out, (x,), nested = _trace(f, args, (num,))
        if out.size != 1:
            raise ValueError(f"hessian: f must return a scalar, got shape {out.shape}")
        if not out.requires_grad:
            return Tensor(np.zeros(x.shape + x.shape, dtype=x.dtype))
        (g,) = engine.grad(out, [x], create_graph=True)
        (stacked,) = _jacobian_stacks(g, [x], nested)
        _retire([x])
        return _assemble(stacked, x.shape, x.shape, "numerator")

    hessian_f.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    return hessian_f
