"""The recorded graph: its node, ``Context``, and the questions the engine asks about it.

Every recorded op call is one ``Context``. Its ``parents`` hold, per input of the op, the
node that made that input, the input Tensor itself when it is a leaf that requires grad, or
None (a constant). So the graph links nodes, not tensors: an intermediate array nobody
saved is freed as soon as its Tensor is dropped. A Function's backward reads
``ctx.saved_tensors`` and ``ctx.needs_input_grad``; it may store plain values on the node
too (``ctx.axis = axis``).

The walks over the graph are iterative (no recursion limit): ``consumers`` counts the
edges into each node (the backward visits a node once all of them have delivered),
``leading_to`` finds the part of the graph a gradient with respect to some inputs flows
through, ``is_batchable`` and ``reaches_beyond`` answer the transforms' questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.tensor import Tensor

__all__ = ["Context", "consumers", "leading_to", "is_batchable", "reaches_beyond"]

_OUTPUT = -1  # tag of a saved array that is the forward's output


class Context:
    """A recorded call of a Function: what its backward needs, and where gradients go.

    Attributes read by ``backward``: ``saved_tensors`` and ``needs_input_grad``.
    """

    # Class-level defaults: a Context is made for every op call, so only what differs is
    # set on the instance (this keeps the per-op overhead small).
    function: Any  # the Function subclass whose call this is
    needs_input_grad: tuple[bool, ...] = ()
    parents: tuple[Any, ...] = ()  # per input: None, a leaf Tensor or a Context
    input_meta: tuple[Any, ...] = ()  # per input: (shape, dtype); dtype None: no gradient
    _saved: tuple[Any, ...] | None = ()  # None once a backward released them
    # ids of the output and the inputs at the call: a saved value with one of these ids is
    # that very array (both were alive together, so ids cannot have been reused)
    _saved_ids: tuple[int, ...] = ()
    _tensor_mode = False  # True while backward runs under create_graph
    # the epoch of in-place writes (chainrule.versions) when the op ran: its saved arrays
    # must not be written after it, nor, while its output is used, the memory it views
    _epoch = 0
    _views_input = False  # its output is a view of an input's memory (reshape, a slice)
    _retained: Any = None  # weakref to a non-leaf Tensor that called retain_grad()
    origin: str | None = None  # anomaly mode: the user's line that made the op
    _inputs_finite = True  # anomaly mode: whether the forward's inputs were all finite
    origin_name = ""  # a node of a once-differentiable gradient: whose backward made it

    @property
    def name(self) -> str:
        """The name of the Function this node records (as in ``grad_fn=<Mul>``)."""
        return self.function.__name__

    def __repr__(self) -> str:
        return f"<{self.name} node>"

    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays for backward. Save inputs or the output where possible: under
        ``create_graph`` those come back as Tensors connected to the graph, any other
        array comes back as a constant."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """What forward passed to ``save_for_backward``: ndarrays on the first-order path,
        Tensors connected to the graph under ``create_graph``."""
        if self._saved is None:
            raise RuntimeError(
                f"{self.name}: its saved values were already freed by a backward pass. "
                "Trying to backward through the graph a second time: pass "
                "retain_graph=True to the first backward() to keep them."
            )
        if not self._tensor_mode:
            return self._saved
        ids = self._saved_ids
        tags = [
            _OUTPUT if id(v) == ids[0] else ids.index(id(v), 1) - 1 if id(v) in ids else None
            for v in self._saved
        ]
        return tuple(self._as_tensor(v, tag) for v, tag in zip(self._saved, tags))

    def _as_tensor(self, value: Any, tag: int | None) -> Any:
        """A saved array as a Tensor on the graph, for differentiating the backward."""
        if tag == _OUTPUT:
            return Tensor._make(value, self)
        if tag is not None:
            parent = self.parents[tag]
            if isinstance(parent, Tensor):
                return parent
            if parent is not None:
                return Tensor._make(value, parent)
        if isinstance(value, np.ndarray):
            return Tensor._make(value, None)
        return value  # Python scalars stay weakly typed, so float32 stays float32


def _edges(node: Any) -> tuple[Any, ...]:
    return node.parents if type(node) is Context else ()


def consumers(root: Any, within: set[int] | None = None) -> dict[int, int]:
    """For each node reachable from ``root``: how many recorded inputs point at it.

    The backward visits a node once this count drops to zero, i.e. after all its
    consumers (Kahn's algorithm): one pass to count, none to sort. With ``within`` (see
    ``leading_to``), only the edges into those nodes count.
    """
    counts: dict[int, int] = {}
    seen = counts.get
    stack = [root] if type(root) is Context else []
    while stack:
        for parent in stack.pop().parents:
            if parent is not None:
                key = id(parent)
                if within is not None and key not in within:
                    continue
                count = seen(key)
                if count is None:
                    counts[key] = 1
                    if type(parent) is Context:
                        stack.append(parent)
                else:
                    counts[key] = count + 1
    return counts


def leading_to(root: Any, targets: dict[int, Any] | set[int]) -> set[int]:
    """The ids of the nodes from which some node of ``targets`` can be reached (targets
    included): the only part of the graph a gradient with respect to them flows through.

    An iterative depth-first search in post-order: a node is decided after its inputs.
    """
    useful: set[int] = set()
    visited: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        key = id(node)
        if inputs_done:
            if key in targets or any(id(p) in useful for p in _edges(node) if p is not None):
                useful.add(key)
            continue
        if key in visited:
            continue
        visited.add(key)
        stack.append((node, True))
        stack.extend((p, False) for p in _edges(node) if p is not None and id(p) not in visited)
    return useful


def is_batchable(output: Tensor) -> bool:
    """True when every op behind ``output`` accepts a batch of cotangents (leading axes)."""
    stack = [output._node]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if type(node) is not Context or id(node) in seen:
            continue  # a leaf, None, or a node already looked at
        seen.add(id(node))
        if not node.__dict__.get("batchable", node.function.batchable):
            return False
        stack.extend(node.parents)
    return True


def reaches_beyond(output: Tensor, inputs: Sequence[Tensor]) -> bool:
    """True when the graph of ``output`` reaches a tensor that requires grad other than
    ``inputs``: a leaf it closed over, or, through an input, the graph that made it.

    A transform asks this to decide whether an enclosing differentiation (an outer
    transform, or a later ``backward``) can see through its result, so that it must
    record its own backward pass.
    """
    own = {id(x._node) if x._node is not None else id(x) for x in inputs}
    stack = [output._node if output._node is not None else output]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        key = id(node)
        if key in seen:
            continue
        seen.add(key)
        if type(node) is not Context:
            if key not in own and node._requires_grad:
                return True  # a leaf that requires grad and is not ours
            continue  # ours, or a retired variable of a transform that has returned
        if key in own:
            return True  # one of our inputs made by an op: an outer tensor passed in
        stack.extend(p for p in node.parents if p is not None)
    return False
