"""Einstein summation: the op, and ``einsum_any``, the form a derivative rule calls (an
ndarray in, ``np.einsum``; a Tensor in, the recorded op).

Its own rule is an einsum again, so this module is self-contained: ``rules`` re-exports
``einsum_any`` as ``rules.einsum``.
"""

from __future__ import annotations

import string
from collections import Counter
from typing import Any

import numpy as np

from chainrule.function import Function
from chainrule.tensor import Tensor

__all__ = ["einsum", "einsum_any", "Einsum"]


class Einsum(Function):
    """y = einsum(subscripts, x₁, …, xₖ);  ∂L/∂xᵢ = einsum of G with the other operands,
    written back to xᵢ's subscripts (letters only xᵢ had are broadcast back)."""

    batchable = True

    @staticmethod
    def forward(ctx, *operands, inputs, output):
        """y = np.einsum over the explicit subscripts ``inputs -> output``."""
        ctx.inputs, ctx.output = inputs, output
        ctx.shapes = [np.shape(o) for o in operands]
        ctx.save_for_backward(*operands)
        subscripts = ",".join(inputs) + "->" + output
        return np.einsum(subscripts, *operands, optimize=len(operands) > 2)

    @staticmethod
    def backward(ctx, grad_out):
        """∂L/∂xᵢ: G contracted with the other operands onto xᵢ's subscripts."""
        operands = ctx.saved_tensors
        grads = []
        for i, target in enumerate(ctx.inputs):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [term for j, term in enumerate(ctx.inputs) if j != i]
            available = set(ctx.output).union(*others)
            reduced = "".join(c for c in target if c in available)
            # "..." carries a batch of cotangents (none on the ordinary path)
            terms = ",".join(["..." + ctx.output, *others]) + "->..." + reduced
            grad = einsum_any(terms, grad_out, *(o for j, o in enumerate(operands) if j != i))
            if reduced != target:  # letters summed out of x_i alone: broadcast back
                lead = tuple(grad.shape[: grad.ndim - len(reduced)])
                # a letter of "..." may be 1 in x_i and broadcast in the gradient: keep the
                # gradient's size (the engine sums it back to x_i's shape)
                sizes = dict(zip(reduced, grad.shape[len(lead) :]))
                kept = tuple(sizes.get(c, 1) for c in target)
                full = tuple(sizes.get(c, n) for c, n in zip(target, ctx.shapes[i]))
                grad = _broadcast_to_any(grad.reshape(lead + kept), lead + full)
            grads.append(grad)
        return tuple(grads)


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation as ``np.einsum`` (implicit or explicit output, ``...`` allowed).

    A letter repeated within one operand (a diagonal, like ``"ii->i"``) is not supported
    for differentiation; write it with indexing instead.
    """
    tensors = [_tensor(o) for o in operands]
    inputs, output = _explicit(subscripts, [t.shape for t in tensors])
    for term, t in zip(inputs, tensors):
        if len(set(term)) != len(term):
            raise ValueError(
                f"einsum: repeated subscript in '{term}' (a diagonal) is not differentiable "
                "here; take the diagonal with indexing instead"
            )
        if len(term) != t.ndim:
            raise ValueError(f"einsum: subscripts '{term}' do not match operand shape {t.shape}")
    return Einsum.apply(*tensors, inputs=inputs, output=output)


def einsum_any(subscripts: str, *operands: Any) -> Any:
    """Einstein summation as ``np.einsum`` over ndarrays, recorded when an operand is a
    Tensor: the rule of any product (∂L/∂A of A B is ``einsum("...ik,jk->...ij", G, B)``)."""
    if any(isinstance(o, Tensor) for o in operands):
        return einsum(subscripts, *operands)
    return np.einsum(subscripts, *operands, optimize=len(operands) > 2)


def _broadcast_to_any(a: Any, shape: tuple[int, ...]) -> Any:
    return a.broadcast_to(shape) if isinstance(a, Tensor) else np.broadcast_to(a, shape)


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _explicit(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Rewrite einsum subscripts with letters in place of ``...`` and an explicit output."""
    subscripts = subscripts.replace(" ", "")
    lhs, arrow, out = subscripts.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: '{subscripts}' names {len(terms)} operands, got {len(shapes)}")
    spare = [c for c in string.ascii_letters if c not in subscripts]
    widths = [len(shape) - (len(term) - 3) for term, shape in zip(terms, shapes) if "..." in term]
    if any(w < 0 for w in widths):
        raise ValueError(f"einsum: '{subscripts}' has more subscripts than dimensions")
    ellipsis = "".join(spare[: max(widths, default=0)])
    resolved: list[str] = []
    for term in terms:
        if "..." in term:
            width = len(shapes[len(resolved)]) - (len(term) - 3)
            term = term.replace("...", ellipsis[len(ellipsis) - width :] if width else "")
        resolved.append(term)
    if arrow:
        output = out.replace("...", ellipsis)
    else:
        counts = Counter("".join(t.replace("...", "") for t in terms))
        output = ellipsis + "".join(sorted(c for c, k in counts.items() if k == 1))
    return resolved, output
