"""Forward-mode Jacobians: ``jacfwd``, the Jacobian built column by column.

For y = f(x) with x in Rⁿ and y in Rᵐ, reverse mode (``jacobian``, JAX's ``jacrev``) gets
J one row uᵀJ at a time, m rows; forward mode gets it one column J·v at a time, n columns.
Both run the rows or columns as one batch, so the cost of the batched walk grows with m for
reverse mode and with n for forward mode: ``jacfwd`` is the cheaper one for a tall
Jacobian (few inputs, many outputs), ``jacobian`` for a wide one.

The engine has reverse-mode rules only. A forward-mode product J·v is their transpose
(the "double-vjp" trick of ``functional.jvp``): the backward pass is recorded once for a
dummy cotangent u, giving g(u) = Jᵀu, a graph that is linear in u; the gradient of
⟨g(u), v⟩ with respect to u is J·v. Here the second walk carries the whole batch of
tangents v = e₁ … eₙ (the identity) through that recorded graph at once, so the columns
cost one batched walk over the backward graph, batched in n, after one forward and one
recorded backward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import engine
from chainrule.functional import _assemble, _stack
from chainrule.graph import is_batchable, reaches_beyond
from chainrule.ops.shape import concatenate
from chainrule.tensor import Tensor
from chainrule.tracing import _argnums_tuple, _pick, _regroup, _retire, _trace

__all__ = ["jacfwd"]

#: how many Jacobian entries one batched walk may hold (as ``functional.jacobian``)
_BATCH_ELEMENTS = 1 << 24


def _columns(g: Tensor, u: Tensor, x: Tensor, inputs: list[Tensor], nested: bool) -> Tensor:
    """For g = Jᵀu (recorded, linear in u), the columns J·e_j for every element j of x,
    stacked: shape ``(x.size,) + u.shape``, column j = ∂out/∂x_j.

    The gradient of ⟨g, e_j⟩ with respect to u is J·e_j; a walk seeded with a block of
    the identity (k tangents, shaped like x) gives k columns at once.
    """
    n = x.size
    if not g.requires_grad:  # g does not depend on u: out does not depend on x
        return Tensor(np.zeros((n,) + u.shape, dtype=u.dtype))
    record = nested or reaches_beyond(g, [u, *inputs])
    if not is_batchable(g):  # a custom Function that is not batchable: one walk per column
        columns = []
        seed = np.zeros(n, dtype=g.dtype)
        for j in range(n):
            seed[j] = 1
            (column,) = engine.grad(
                g, [u], grad_outputs=seed.reshape(g.shape), retain_graph=True,
                create_graph=record,
            )  # fmt: skip
            seed[j] = 0
            columns.append(column)
        return _stack(columns, u)
    chunk = max(1, min(n, _BATCH_ELEMENTS // max(n, u.size)))
    blocks: list[Any] = []
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        seed = np.zeros((rows, n), dtype=g.dtype)
        seed.ravel()[start :: n + 1] = 1  # the identity's rows start .. start + rows
        seed = seed.reshape((rows,) + g.shape)
        (block,) = engine.grad_from_seed(
            g,
            [u],
            Tensor._make(seed, None) if record else seed,
            retain_graph=True,
            create_graph=record,
            batch=1,
        )
        blocks.append(block)
    if len(blocks) == 1:
        return blocks[0]
    if record:
        return concatenate(blocks)
    return Tensor._make(np.concatenate([b.data for b in blocks]), None)


def _assemble_columns(columns: Tensor, out_shape: tuple, in_shape: tuple, layout: str) -> Tensor:
    """Columns stacked as ``(x.size,) + out.shape`` → the Jacobian in ``layout``: they are
    the rows of the transposed Jacobian, so ``jacobian``'s assembly with the roles of
    input and output (and so the layouts) swapped."""
    swapped = "denominator" if layout == "numerator" else "numerator"
    return _assemble(columns, in_shape, out_shape, swapped)


def jacfwd(
    f: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    layout: str = "numerator",
    has_aux: bool = False,
) -> Callable[..., Any]:
    """A function returning the Jacobian of f with respect to args[argnums], in forward mode.

    The same Jacobian as ``jacobian`` (JAX's ``jacrev``): numerator layout (default), shape
    ``out.shape + in.shape``, J[i..., j...] = ∂y[i...]/∂x[j...]; denominator layout
    ``in.shape + out.shape``. It is built from columns J·e_j, one per input element, all
    carried as one batch (see the module's docstring); it is cheaper than ``jacobian`` when
    the input has fewer elements than the output (a tall Jacobian). A tuple ``argnums``
    gives a tuple of Jacobians. Over pytrees the result nests as ``jacobian``'s: f's output
    structure outside, then the tuple over ``argnums``, then each argument's structure.
    With ``has_aux=True``, f returns ``(y, aux)`` and the result is ``(jacobian, aux)``.
    Nested, ``jacfwd(jacobian(f))`` is the Hessian of f.
    """
    if layout not in ("numerator", "denominator"):
        raise ValueError(f"layout must be 'numerator' or 'denominator', got {layout!r}")

    def jacfwd_f(*args: Any) -> Any:
        nums = _argnums_tuple(argnums, len(args))
        trace = _trace(f, args, nums, has_aux, "jacfwd")
        inputs, nested = trace.inputs, trace.nested
        per_output = []
        for out in trace.outs:  # one output leaf at a time; the inputs stay live meanwhile
            if out.requires_grad:
                u = Tensor(np.zeros_like(out.data), requires_grad=True)  # a dummy cotangent
                grads = engine.grad(out, inputs, grad_outputs=u, create_graph=True)
                columns = [_columns(g, u, x, inputs, nested) for g, x in zip(grads, inputs)]
                _retire([u])
            else:  # this output does not depend on the inputs
                columns = [Tensor(np.zeros((x.size,) + out.shape, dtype=x.dtype)) for x in inputs]
            jacs = [
                _assemble_columns(c, out.shape, x.shape, layout) for c, x in zip(columns, inputs)
            ]
            per_output.append(_pick(_regroup(jacs, trace.structure), argnums))
        _retire(inputs)
        jac = trace.output(per_output)
        return (jac, trace.aux) if has_aux else jac

    jacfwd_f.__name__ = f"jacfwd({getattr(f, '__name__', 'f')})"
    return jacfwd_f
