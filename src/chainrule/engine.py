"""The backward pass: walk the recorded graph once, from the output to the leaves.

Both walks visit a node once every consumer of its output has delivered a gradient
(``graph.consumers`` counts them: Kahn's algorithm, iterative, no recursion limit), add up
what a node receives, call its backward, and send each input its share, summed back to
the input's shape (undoing broadcasting) in exactly one place (``runners.fit``).

- ``backward()`` takes the first-order walk, ``_first_order``: ndarrays all the way, the
  fast path of training. Its modes: ``retain_graph``, and ``retain_grad`` tensors.
- Everything else (``create_graph``, anomaly mode, ``engine.grad`` for the transforms,
  batches of cotangents) takes ``_walk``, whose per-node steps are chosen once per walk:
  how a node's backward runs (``runners.run_plain``, ``run_recorded``, ``checked``),
  and what happens where gradients arrive (``_Accumulate`` into ``.grad``, or ``_Capture``
  for the inputs asked for, walking only the paths that lead to them).

``chainrule.reference`` is the same algorithm in about a hundred lines, with none of the
modes: read it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from chainrule.checks import check_versions, gradient_tuple, refuse_freed
from chainrule.graph import Context, consumers, is_batchable, leading_to
from chainrule.mode import STATE, enable_grad
from chainrule.runners import Runner, fit, runner, sum_to_shape
from chainrule.tensor import Tensor, filled
from chainrule.versions import WRITES

__all__ = ["backward", "grad", "grad_from_seed", "sum_to_shape", "is_batchable"]


# ----------------------------------------------------------------- the public entry points
def backward(
    output: Tensor, grad: Any = None, retain_graph: bool = False, create_graph: bool = False
) -> None:
    """Accumulate d(output)/d(leaf) into ``.grad`` of every leaf that requires grad."""
    if STATE.trace is not None:
        STATE.trace.refuse_backward()
    root = _root(output)
    seed = _seed(output, grad, create_graph)
    if create_graph:  # records the backward pass, even when called inside no_grad()
        with enable_grad():
            _walk(root, seed, runner(True), _Accumulate(True), True, create_graph=True)
    elif STATE.anomaly:
        _walk(root, seed, runner(False), _Accumulate(False), retain_graph)
    else:
        _first_order(root, seed, retain_graph)


def grad(
    outputs: Tensor,
    inputs: Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool = False,
    create_graph: bool = False,
    allow_unused: bool = True,
    batch: int = 0,
) -> tuple[Tensor, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated.

    Like ``torch.autograd.grad``: no ``.grad`` attribute is touched, and an input may be a
    leaf or an intermediate tensor. An input the output does not depend on gets a zero
    gradient, or raises a RuntimeError when ``allow_unused`` is False. Only the nodes on
    a path from the output to an input are visited.

    With ``batch=k``, ``grad_outputs`` carries k leading axes of independent cotangents
    (vmap-style) and every gradient comes back with the same leading axes: one walk
    computes many vector-Jacobian products. Every op on the way must be ``batchable``
    (see ``graph.is_batchable``).
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    seed = _seed(outputs, grad_outputs, create_graph, batch)
    return grad_from_seed(outputs, inputs, seed, retain_graph, create_graph, allow_unused, batch)


def grad_from_seed(
    outputs: Tensor,
    inputs: Sequence[Tensor],
    seed: Any,
    retain_graph: bool = False,
    create_graph: bool = False,
    allow_unused: bool = True,
    batch: int = 0,
) -> tuple[Tensor, ...]:
    """``grad`` for a seed that is already an array of the outputs' dtype (a Tensor under
    create_graph) with the right shape, and that nobody else holds: the transforms build
    their seeds (e.g. blocks of the identity) and skip ``grad``'s checking copy."""
    root = _root(outputs)
    keys = []
    for tensor in inputs:
        if not isinstance(tensor, Tensor) or not tensor._requires_grad:
            raise ValueError("grad(): every input must be a Tensor that requires grad")
        keys.append(id(tensor._node) if tensor._node is not None else id(tensor))
    capture = _Capture(keys)
    with enable_grad() if create_graph else nullcontext():
        run = runner(create_graph)
        _walk(root, seed, run, capture, retain_graph or create_graph, create_graph, batch)
        results: list[Tensor] = []
        stored: set[int] = set()
        for tensor, key in zip(inputs, keys):
            g = capture.found.get(key)
            if g is None:
                if not allow_unused:
                    raise RuntimeError("grad(): an input is not used to compute the output")
                g = np.zeros(np.shape(seed)[:batch] + tensor.shape, dtype=tensor.dtype)
            g = _own(g, stored)
            results.append(g if isinstance(g, Tensor) else Tensor._make(g, None))
    return tuple(results)


# ----------------------------------------------------------------- the first-order walk
def _first_order(root: Any, seed: np.ndarray, retain_graph: bool) -> None:
    """``backward()``'s walk: ndarrays only, every leaf's ``.grad`` accumulated.

    ``_walk`` with ``run_plain`` and ``_Accumulate``, written out for speed: this loop is
    the hot path of every training step.
    """
    pending = consumers(root)
    partial: dict[int, Any] = {}  # the sums of nodes still waiting on a consumer
    stored: set[int] = set()
    epoch = WRITES.epoch  # of in-place writes (see check_versions)
    ready = [(root, seed)]
    pop, push = ready.pop, ready.append
    while ready:
        node, grad_out = pop()  # every consumer of node has delivered
        if type(node) is not Context:
            if grad_out is not None:
                _accumulate_array(node, grad_out, stored)
            continue
        parents = node.parents
        if grad_out is None:
            input_grads: tuple[Any, ...] = (None,) * len(parents)
        else:
            if node._saved is None:
                refuse_freed(node)
            if node._epoch < epoch:  # something was written in place since the op ran
                check_versions(node)
            if node._retained is not None:
                _fill_retained(node, grad_out, False)
            input_grads = node.function.backward(node, grad_out)
            if type(input_grads) is not tuple or len(input_grads) != len(parents):
                if type(input_grads) is np.ndarray and len(parents) == 1:
                    input_grads = (input_grads,)
                else:
                    input_grads = gradient_tuple(node, input_grads)
        if not retain_graph:
            node._saved = None  # release the saved arrays
        index = -1
        for parent, pg, (shape, dtype) in zip(parents, input_grads, node.input_meta):
            index += 1
            if parent is None:
                continue
            # the common dtypes are singletons: `is not` is exact for them, and any other
            # dtype object takes fit's full check
            if pg is not None and (
                type(pg) is not np.ndarray or pg.shape != shape or pg.dtype is not dtype
            ):
                pg = fit(node, index, pg, grad_out, False, 0)
            # _deliver, written out
            key = id(parent)
            count = pending[key]
            if count == 1:  # the last consumer: parent is ready
                previous = partial.pop(key, None) if partial else None
                if previous is not None:
                    pg = previous if pg is None else _added(previous, pg)
                push((parent, pg))
            else:
                pending[key] = count - 1
                if pg is not None:
                    previous = partial.get(key)
                    partial[key] = pg if previous is None else _added(previous, pg)


def _added(previous: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """previous + grad, an ndarray (NumPy makes 0-d + 0-d a scalar)."""
    total = previous + grad
    return total if type(total) is np.ndarray else np.asarray(total)


def _deliver(
    parent: Any,
    grad: Any,
    pending: dict[int, int],
    partial: dict[int, Any],
    ready: list[tuple[Any, Any]],
    expected: type,
) -> None:
    """Add ``grad`` to ``parent``'s sum; from its last consumer, make ``parent`` ready."""
    key = id(parent)
    count = pending[key] - 1
    previous = partial.pop(key, None)
    if previous is not None:
        if grad is None:
            grad = previous
        else:
            given, grad = grad, previous + grad
            if type(grad) is not expected:  # NumPy: 0-d + 0-d is a scalar
                grad = np.asarray(grad)
            if STATE.trace is not None and expected is np.ndarray:
                STATE.trace.derived("add", [previous, given], grad)
    if count:  # other consumers have yet to deliver theirs
        pending[key] = count
        if grad is not None:
            partial[key] = grad
    else:
        ready.append((parent, grad))


# ----------------------------------------------------------------- the general walk
class _Accumulate:
    """Where ``backward()`` sends gradients: into the leaves' ``.grad``."""

    within: set[int] | None = None  # every node

    def __init__(self, create_graph: bool) -> None:
        self.create_graph = create_graph
        self.stored: set[int] = set()

    def arrive(self, node: Any, grad: Any) -> None:
        if type(node) is not Context:
            _accumulate(node, grad, self.create_graph, self.stored)
        elif node._retained is not None:
            _fill_retained(node, grad, self.create_graph)


class _Capture:
    """Where ``engine.grad`` sends gradients: kept for the nodes asked for, nothing else
    touched; the walk stays on the paths that lead to them."""

    def __init__(self, keys: list[int]) -> None:
        self.wanted = dict.fromkeys(keys)
        self.found: dict[int, Any] = {}
        self.within: set[int] | None = None

    def plan(self, root: Any) -> None:
        self.within = leading_to(root, self.wanted)

    def arrive(self, node: Any, grad: Any) -> None:
        if id(node) in self.wanted:
            self.found[id(node)] = grad


def _walk(
    root: Any,
    seed: Any,
    run: Runner,
    sink: _Accumulate | _Capture,
    retain_graph: bool,
    create_graph: bool = False,
    batch: int = 0,
) -> None:
    """Propagate ``seed`` from ``root``: ``run`` calls each node's backward, ``sink``
    receives the gradients, ``fit`` shapes them (``batch`` leading axes kept)."""
    if isinstance(sink, _Capture):
        sink.plan(root)
    within = sink.within
    pending = consumers(root, within)
    partial: dict[int, Any] = {}
    expected = Tensor if create_graph else np.ndarray
    epoch = WRITES.epoch
    ready = [(root, seed)]
    while ready:
        node, grad_out = ready.pop()
        if grad_out is not None:
            sink.arrive(node, grad_out)
        if type(node) is not Context:
            continue
        parents = node.parents
        if grad_out is None:
            input_grads: tuple[Any, ...] = (None,) * len(parents)
        else:
            if node._epoch < epoch:
                check_versions(node)
            input_grads = _run_for(node, grad_out, run, within)
        if not retain_graph:
            node._saved = None
        for index, (parent, pg) in enumerate(zip(parents, input_grads)):
            if parent is None or (within is not None and id(parent) not in within):
                continue
            if pg is not None:
                pg = fit(node, index, pg, grad_out, create_graph, batch)
            _deliver(parent, pg, pending, partial, ready, expected)


def _run_for(node: Context, grad_out: Any, run: Runner, within: Any) -> tuple[Any, ...]:
    """``run(node, grad_out)``, telling the backward which inputs this walk wants
    (``needs_input_grad``): a Jacobian with respect to x builds no weight gradients."""
    if within is None:
        return run(node, grad_out)
    needs = node.needs_input_grad
    node.needs_input_grad = tuple(p is not None and id(p) in within for p in node.parents)
    try:
        return run(node, grad_out)
    finally:
        node.needs_input_grad = needs


# ----------------------------------------------------------------- seeds and leaves
def _seed(output: Tensor, grad: Any, create_graph: bool, batch: int = 0) -> Any:
    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"backward() without a grad needs a scalar output, got shape {output.shape}: "
                "reduce it (e.g. .sum() or .mean()) or pass grad= shaped like the output"
            )
        # np.ones_like's Python-level setup costs more than a whole small op
        shape, dtype = output.data.shape, output.data.dtype
        seed = np.array(1, dtype) if not shape else filled(shape, 1, dtype)
        if STATE.trace is not None:  # a constant of ones, whatever the inputs
            STATE.trace.ones_seed(seed)
    else:
        seed = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=output.dtype)
        if STATE.trace is not None:
            STATE.trace.derived("copy", [grad], seed, dtype=output.dtype)
        if seed.shape[batch:] != output.shape or seed.ndim != batch + output.ndim:
            expected = "(batch..., " * bool(batch) + f"{output.shape}" + ")" * bool(batch)
            raise ValueError(
                f"backward(grad=...) needs a gradient shaped like the output {expected}, "
                f"got {seed.shape}"
            )
        if create_graph and isinstance(grad, Tensor):
            return grad
    return Tensor._make(seed, None) if create_graph else seed


def _root(output: Tensor) -> Any:
    if not isinstance(output, Tensor):
        raise TypeError(f"backward needs a Tensor, got {type(output).__name__}")
    if output._node is not None:
        return output._node
    if output._requires_grad:
        return output
    raise RuntimeError(
        "backward(): this tensor does not require grad and has no grad_fn, so there is "
        "nothing to differentiate. Create the inputs with requires_grad=True (and outside "
        "no_grad())."
    )


def _own(grad: Any, stored: set[int]) -> Any:
    """``grad`` itself, or a copy when its array is a view or already handed out."""
    array = grad.data if isinstance(grad, Tensor) else grad
    if array.base is None and array.flags.writeable and id(array) not in stored:
        stored.add(id(array))
        return grad
    # ``+ 0.0`` copies a Tensor differentiably (and keeps float32 float32)
    if isinstance(grad, Tensor):
        grad = grad + 0.0
    else:
        copy = grad.copy()
        if STATE.trace is not None:
            STATE.trace.derived("copy", [grad], copy, dtype=copy.dtype)
        grad = copy
    stored.add(id(grad.data if isinstance(grad, Tensor) else grad))
    return grad


def _accumulate(leaf: Tensor, grad: Any, create_graph: bool, stored: set[int]) -> None:
    """leaf.grad += grad, never aliasing an array that another tensor or gradient uses."""
    if create_graph:
        # always a fresh tensor: the incoming one may be the user's seed or go elsewhere too
        leaf._grad = grad + 0.0 if leaf._grad is None else leaf._grad + grad
    else:
        _accumulate_array(leaf, grad, stored)


def _accumulate_array(leaf: Tensor, grad: np.ndarray, stored: set[int]) -> None:
    """``_accumulate`` without create_graph, where every gradient is an ndarray (the
    first-order walk calls it directly)."""
    if leaf._grad is None:
        if grad.base is not None or id(grad) in stored or not grad.flags.writeable:
            grad = grad.copy()  # a view, or an array another leaf already holds
        stored.add(id(grad))
        leaf._grad = Tensor._make(grad, None)
    else:
        total = leaf._grad.data + grad
        leaf._grad = Tensor._make(total if type(total) is np.ndarray else np.asarray(total), None)


def _fill_retained(node: Context, grad: Any, create_graph: bool) -> None:
    """The gradient of a non-leaf tensor that asked for it with ``retain_grad()``."""
    tensor = node._retained()
    if tensor is not None:
        if create_graph:
            grad = grad + 0.0
        else:
            grad = Tensor._make(np.array(grad), None)
        tensor._grad = grad if tensor._grad is None else tensor._grad + grad
