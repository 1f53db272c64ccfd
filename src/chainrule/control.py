"""What the backward pass sees: ``stop_gradient`` (nothing) and ``checkpoint`` (a recompute).

``stop_gradient(x)`` is x with a zero derivative. ``checkpoint(f)`` is f with the same
values and derivatives, whose intermediate activations are not kept between the forward and
the backward pass but recomputed there (gradient checkpointing, JAX's ``remat``): memory
traded for one more forward pass of f.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import engine
from chainrule.function import Function
from chainrule.graph import Context
from chainrule.mode import STATE, enable_grad, is_grad_enabled, no_grad
from chainrule.ops.shape import GetItem, Reshape, concatenate
from chainrule.tensor import Tensor
from chainrule.tree import tree_flatten, tree_map, tree_unflatten

__all__ = ["stop_gradient", "checkpoint"]


def stop_gradient(x: Any) -> Any:
    """The identity with a zero derivative: stop_gradient(x) = x, ∂ stop_gradient(x)/∂x = 0.

    As JAX's ``lax.stop_gradient``, it stops every nesting level at once: in
    ``grad(lambda x: grad(lambda y: stop_gradient(x) * y)(1.0))`` the inner derivative is x
    and the outer one is 0, and a Hessian treats ``stop_gradient(x)`` as a constant. All
    transforms share one graph, so this is ``x.detach()``: a leaf sharing x's data, outside
    every graph (an in-place write to it writes x too). An ndarray or a number is a
    constant already and comes back as it is. A pytree (nested tuples, lists, dicts) is
    stopped leaf by leaf and keeps its structure.
    """
    return tree_map(lambda leaf: leaf.detach() if isinstance(leaf, Tensor) else leaf, x)


class _Plan:
    """What a checkpointed call keeps for its backward: f, its arguments (Tensors included:
    the inputs, not the intermediates), which of them are differentiated, and the outside
    tensors f read (closed-over parameters)."""

    def __init__(
        self, f: Callable[..., Any], args: tuple[Any, ...], positions: list[int], outside: list
    ) -> None:
        self.f = f
        self.args = args
        self.positions = positions
        self.outside = outside
        #: for a pytree output: the positions of its float Tensor leaves, which the node
        #: carries as one flat vector (None: f returns one Tensor)
        self.flat: list[int] | None = None

    def recompute(self, create_graph: bool) -> tuple[Tensor, list[Tensor]]:
        """f run again with recording, on stand-ins for the differentiated arguments.

        Under ``create_graph`` a stand-in is a node of its own on the argument's graph (so
        the gradients stay differentiable with respect to the argument); otherwise a fresh
        leaf holding its data.
        """
        args = list(self.args)
        stand_ins = []
        with enable_grad():
            for i in self.positions:
                x = args[i]
                stand_in = Reshape.apply(x, shape=x.shape) if create_graph else Tensor(x.data)
                if not create_graph:
                    stand_in.requires_grad_()
                args[i] = stand_in
                stand_ins.append(stand_in)
            out = self.f(*args)
            if self.flat is not None:
                leaves = tree_flatten(out)[0]
                out = _flat([leaves[i] for i in self.flat])
        if not isinstance(out, Tensor):
            raise TypeError(f"checkpoint: f must return a Tensor, got {type(out).__name__}")
        return out, stand_ins


def _flat(tensors: list[Tensor]) -> Tensor:
    """The tensors' values in one vector (recorded): the single output of the node."""
    pieces = [Reshape.apply(t, shape=(t.size,)) for t in tensors]
    return pieces[0] if len(pieces) == 1 else concatenate(pieces)


def _reaches_unknown(out: Tensor, sources: list[Tensor]) -> bool:
    """True when the graph of ``out`` reaches a tensor that requires grad other than
    through ``sources``: a gradient the checkpoint's node could not pass on."""
    stop = {id(t._node) if t._node is not None else id(t) for t in sources}
    stack: list[Any] = [out._node if out._node is not None else out]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen or id(node) in stop:
            continue
        seen.add(id(node))
        if type(node) is not Context:
            if node._requires_grad:
                return True
            continue
        stack.extend(p for p in node.parents if p is not None)
    return False


def _pytree_output(out: Any, plan: _Plan, inputs: list[Tensor]) -> Any:
    """f's pytree output, its float Tensor leaves cut from the one node's flat vector (so
    that f is recomputed once in the backward whichever leaves the loss uses)."""
    leaves, treedef = tree_flatten(out)
    plan.flat = [
        i for i, leaf in enumerate(leaves) if isinstance(leaf, Tensor) and leaf.dtype.kind == "f"
    ]
    if not plan.flat:
        return out
    dtypes = {leaves[i].dtype for i in plan.flat}
    if len(dtypes) > 1:
        raise TypeError(
            f"checkpoint: f's floating-point outputs must share one dtype, got "
            f"{sorted(map(str, dtypes))}; cast them inside f"
        )
    value = np.concatenate([leaves[i].data.reshape(-1) for i in plan.flat])
    node = _Recompute.apply(*inputs, plan=plan, value=value)
    start = 0
    for i in plan.flat:
        shape, size = leaves[i].shape, leaves[i].size
        piece = GetItem.apply(node, index=(slice(start, start + size),))
        leaves[i] = Reshape.apply(piece, shape=shape)
        start += size
    return tree_unflatten(treedef, leaves)


class _Recompute(Function):
    """The node of a checkpointed call: its inputs are f's differentiated arguments and the
    outside tensors f read; its backward recomputes f and backpropagates through it."""

    @staticmethod
    def forward(ctx: Any, *arrays: Any, plan: _Plan, value: np.ndarray) -> np.ndarray:
        ctx.plan = plan
        ctx.save_for_backward(*arrays)  # no copies: lets the engine refuse in-place writes
        return value

    @staticmethod
    def backward(ctx: Any, grad_out: Any) -> tuple[Any, ...]:
        plan: _Plan = ctx.plan
        create_graph = isinstance(grad_out, Tensor)
        out, stand_ins = plan.recompute(create_graph)
        sources = [*stand_ins, *plan.outside]
        if out.requires_grad and _reaches_unknown(out, sources):
            raise RuntimeError(
                "checkpoint: f read a tensor that requires grad and that was not found in "
                "the forward pass (one made inside f with gradients enabled?); pass it to "
                "the checkpointed function as an argument"
            )
        if not out.requires_grad:
            return tuple(None for _ in sources)
        grads = engine.grad(out, sources, grad_outputs=grad_out, create_graph=create_graph)
        return tuple(g if create_graph else g.data for g in grads)


def checkpoint(f: Callable[..., Any]) -> Callable[..., Any]:
    """f with the same values and derivatives, whose intermediates are recomputed in the
    backward pass instead of kept (gradient checkpointing; JAX's ``checkpoint``/``remat``).

    For y = f(x₁, …, xₙ; θ), θ the tensors f closes over (a Module's parameters), the
    forward runs f under ``no_grad``: only the arguments are kept, and the output gets a
    single node. Its backward runs f again with recording and returns Gᵀ∂y/∂xᵢ and Gᵀ∂y/∂θ
    for the cotangent G, so ``cr.checkpoint(block)(x)`` inside ``loss.backward()`` fills
    ``block.weight.grad``. Under ``create_graph`` (``cr.grad`` nested, ``cr.hessian``) the
    recomputation is recorded, so second derivatives are exact too. f may return a pytree
    (tuples, lists, dicts): its floating-point Tensor leaves share the one node, so f is
    recomputed once whichever of them the loss uses.

    The memory kept for backpropagation through f drops from all of its intermediates to
    its inputs; the cost is one more forward pass of f. The outside tensors are found as the
    forward runs (every tensor that requires grad an op reads inside the ``no_grad`` block).
    Limits: f must be a function of its arguments and those tensors. Randomness inside f
    (``nn.Dropout``) is drawn again in the recomputation, so the gradients belong to a
    different mask unless f seeds its own generator; an argument written in place between
    the forward and the backward is refused by the engine's version check; the node is not
    ``batchable``, so a ``jacobian`` through it takes one walk per output element. Inside
    ``vmap`` f runs as it is (the same values and gradients; its intermediates are kept).
    """

    def checkpointed(*args: Any) -> Any:
        if not is_grad_enabled() or STATE.vmap is not None:
            # inside vmap f runs as it is: its batched intermediates are kept
            return f(*args)
        previous = STATE.watch
        seen: dict[int, Any] = {}
        STATE.watch = seen
        try:
            with no_grad():
                out = f(*args)
        finally:
            STATE.watch = previous
        positions = [
            i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad
        ]  # fmt: skip
        arguments = {id(args[i]) for i in positions}
        outside = [t for key, t in seen.items() if key not in arguments]
        if not (positions or outside):
            return out
        plan = _Plan(f, args, positions, outside)
        inputs = [args[i] for i in positions] + outside
        if isinstance(out, Tensor):
            return _Recompute.apply(*inputs, plan=plan, value=out.data)
        return _pytree_output(out, plan, inputs)

    checkpointed.__name__ = f"checkpoint({getattr(f, '__name__', type(f).__name__)})"
    return checkpointed
