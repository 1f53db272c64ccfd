"""Reverse-mode autodiff in about a hundred lines: the algorithm, and nothing else.

This is what ``loss.backward()`` does, written to be read. ``chainrule.engine`` does the
same with fast paths and modes (recording the backward under ``create_graph``, walking
only the paths a transform asks for, batches of cotangents, anomaly and in-place checks);
the tests run every op through both and compare the gradients, first and second order.

The graph: every op that was recorded is a node (a ``Context``) whose ``parents`` are,
per input, the node that made it, the input itself when it is a leaf, or None.

1. **Order.** A node may be visited only once every op that used its output has sent
   its gradient. A depth-first search lists each node after all of its inputs; reversed,
   the list starts at the output and puts every node before its inputs.
2. **Seed.** ∂L/∂L = 1, or the cotangent given.
3. **Visit.** Each node's backward turns ∂L/∂y, the gradient of its output, into ∂L/∂xᵢ for
   each input: one step of the chain rule. What broadcasting spread in the forward is
   summed back to xᵢ's shape; the gradients of an input used twice add up.
4. **Collect.** The totals that reached the inputs are the answer.

With ``create_graph=True`` the backward rules run on Tensors instead of ndarrays, so the
steps above are themselves recorded as a graph, and their result can be differentiated
again (a Hessian is the gradient of a gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from chainrule.graph import Context
from chainrule.mode import enable_grad
from chainrule.tensor import Tensor

__all__ = ["grad", "topological_order"]


# --8<-- [start:walk]
def grad(
    output: Tensor, inputs: Sequence[Tensor], seed: Any = None, create_graph: bool = False
) -> list[Any]:
    """∂output/∂x for each x of ``inputs`` (leaves or intermediate tensors), weighted by
    ``seed`` (default 1 for a scalar output). ndarrays, or Tensors with ``create_graph``."""
    if seed is None:
        seed = np.ones_like(output.data)
    if create_graph and not isinstance(seed, Tensor):
        seed = Tensor(np.asarray(seed, dtype=output.dtype))
    root = _node_of(output)
    totals: dict[int, Any] = {id(root): seed}  # ∂L/∂(node's output), summed so far
    found: dict[int, Any] = {}
    with enable_grad() if create_graph else nullcontext():
        for node in topological_order(root):  # step 1: consumers before their inputs
            g = totals.pop(id(node), None)
            if g is None:
                continue  # nothing from the output flows through this node
            found[id(node)] = g if create_graph else np.asarray(g)  # 0-d sums are scalars
            if not isinstance(node, Context):
                continue  # a leaf: its total is complete
            for parent, meta, pg in zip(node.parents, node.input_meta, _backward(node, g)):
                if parent is None or pg is None:
                    continue
                pg = _unbroadcast(pg, meta[0]).astype(meta[1])  # back to the input's shape
                key = id(parent)
                totals[key] = pg if key not in totals else totals[key] + pg
    return [found.get(id(_node_of(x)), _zeros_like(x, create_graph)) for x in inputs]


def topological_order(root: Any) -> list[Any]:
    """The nodes reachable from ``root`` (itself included), each before its inputs."""
    order: list[Any] = []
    visited: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:  # an iterative depth-first search: no recursion limit
        node, inputs_listed = stack.pop()
        if inputs_listed:
            order.append(node)  # post-order: after everything it depends on
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node.parents if isinstance(node, Context) else ():
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order[::-1]


# --8<-- [end:walk]


def _backward(node: Context, grad_out: Any) -> tuple[Any, ...]:
    """The node's rule: ∂L/∂y in, one ∂L/∂xᵢ per input out (Tensors under create_graph)."""
    node._tensor_mode = isinstance(grad_out, Tensor)  # saved values as Tensors on the graph
    try:
        grads = node.function.backward(node, grad_out)
    finally:
        node._tensor_mode = False
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if isinstance(grad_out, Tensor):
        return tuple(grads)
    return tuple(None if g is None else np.asarray(g) for g in grads)


def _unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched, down to ``shape``."""
    extra = grad.ndim - len(shape)
    stretched = [extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] > 1]
    axes = tuple(range(extra)) + tuple(stretched)
    if axes:
        grad = grad.sum(axis=axes)
        grad = grad if isinstance(grad, Tensor) else np.asarray(grad)
    return grad.reshape(shape)


def _node_of(tensor: Tensor) -> Any:
    return tensor._node if tensor._node is not None else tensor


def _zeros_like(x: Tensor, create_graph: bool) -> Any:
    zeros = np.zeros_like(x.data)
    return Tensor(zeros) if create_graph else zeros
