"""The backward pass: walk the recorded graph once, from the output to the leaves.

The graph's nodes are ``Context`` objects (one per recorded op); a node's ``parents`` hold,
per input, another node, a leaf Tensor that requires grad, or None. The walk is iterative
(no recursion limit), gradients wait in a dict keyed by node until every consumer has
contributed, and each gradient is summed back to its input's shape (undoing broadcasting)
in exactly one place: here.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from chainrule.function import Context, check_versions
from chainrule.mode import STATE, enable_grad
from chainrule.tensor import Tensor, filled
from chainrule.versions import WRITES

__all__ = ["backward", "grad", "sum_to_shape"]


def sum_to_shape(grad: Any, shape: tuple[int, ...], keep: int = 0) -> Any:
    """Undo NumPy broadcasting: add up ``grad`` (ndarray or Tensor) until it has ``shape``.

    The first ``keep`` axes (a batch of cotangents, see ``grad(..., batched=True)``) are
    kept as they are.
    """
    target = grad.shape[:keep] + tuple(shape)
    lead = grad.ndim - len(target)
    axes = tuple(range(keep, keep + lead)) + tuple(
        keep + lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[keep + lead + i] != 1
    )
    if axes:
        if isinstance(grad, np.ndarray):
            # a 0-d result of np.sum is a NumPy scalar: keep it an array
            if grad.dtype.kind == "f" and grad.dtype.itemsize < 8:
                grad = np.asarray(np.sum(grad, axis=axes, dtype=np.float64), grad.dtype)
            else:
                grad = np.asarray(np.sum(grad, axis=axes))
        else:
            grad = grad.sum(axis=axes)
    return grad.reshape(target) if grad.shape != target else grad


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


def _consumers(root: Any, useful: set[int] | None = None) -> dict[int, int]:
    """For each node reachable from ``root``: how many recorded inputs point at it.

    The walk visits a node once this count drops to zero, i.e. after all its consumers
    (Kahn's algorithm): one pass to count, none to sort. With ``useful`` (see
    ``_leading_to``), only the edges into those nodes count.
    """
    counts: dict[int, int] = {}
    seen = counts.get
    stack = [root] if type(root) is Context else []
    while stack:
        for parent in stack.pop().parents:
            if parent is not None:
                key = id(parent)
                if useful is not None and key not in useful:
                    continue
                count = seen(key)
                if count is None:
                    counts[key] = 1
                    if type(parent) is Context:
                        stack.append(parent)
                else:
                    counts[key] = count + 1
    return counts


def _leading_to(root: Any, targets: dict[int, Any]) -> set[int]:
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
        parents = node.parents if type(node) is Context else ()
        if inputs_done:
            if key in targets or any(id(p) in useful for p in parents if p is not None):
                useful.add(key)
            continue
        if key in visited:
            continue
        visited.add(key)
        stack.append((node, True))
        stack.extend((p, False) for p in parents if p is not None and id(p) not in visited)
    return useful


def is_connected_beyond(output: Tensor, inputs: Sequence[Tensor]) -> bool:
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
            # one of our inputs made by an op: an outer tensor that was passed in
            return True
        stack.extend(p for p in node.parents if p is not None)
    return False


def _seed(output: Tensor, grad: Any, create_graph: bool, batch: int = 0) -> Any:
    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"backward() without a grad needs a scalar output, got shape {output.shape}: "
                "reduce it (e.g. .sum() or .mean()) or pass grad= shaped like the output"
            )
        # np.ones_like's Python-level setup costs more than a whole small op
        seed = filled(output.shape, 1, output.dtype)
    else:
        seed = np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=output.dtype)
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


def _walk(
    root: Any,
    seed: Any,
    retain_graph: bool,
    create_graph: bool,
    wanted: dict[int, Any] | None,
    batch: int = 0,
) -> dict[int, Any]:
    """Propagate ``seed`` from ``root``. Fill leaf ``.grad``, or, when ``wanted`` is given,
    return the gradients arriving at those nodes instead (touching no ``.grad``, and
    walking only the paths that lead to them)."""
    captured: dict[int, Any] = {}
    stored: set[int] = set()
    grads: dict[int, Any] = {}  # partial sums for nodes still waiting on a consumer
    anomaly = STATE.anomaly
    epoch = WRITES.epoch  # of in-place writes (see check_versions)
    expected = Tensor if create_graph else np.ndarray  # the type gradients must have
    useful = None if wanted is None else _leading_to(root, wanted)
    pending = _consumers(root, useful)
    ready = [(root, seed)]
    while ready:
        node, grad_out = ready.pop()  # every consumer of node has sent its gradient
        if wanted is not None and id(node) in wanted:
            captured[id(node)] = grad_out
        if type(node) is not Context:
            if wanted is None and grad_out is not None:
                _accumulate(node, grad_out, create_graph, stored)
            continue
        parents = node.parents
        input_grads: tuple[Any, ...]
        if grad_out is None:
            input_grads = (None,) * len(parents)
        else:
            if node._epoch < epoch:  # something was written in place since the op ran
                check_versions(node)
            if node._retained is not None and wanted is None:
                _fill_retained(node, grad_out, create_graph)
            needs = node.needs_input_grad
            if useful is not None:  # tell backward which inputs this walk wants
                node.needs_input_grad = tuple(p is not None and id(p) in useful for p in parents)
            try:
                if create_graph or node._saved is None or anomaly:
                    input_grads = node.run_backward(grad_out, create_graph, batch)
                    if anomaly:
                        _check_backward(node, grad_out, input_grads)
                else:  # the first-order fast path of run_backward
                    input_grads = node.function.backward(node, grad_out)
                    if type(input_grads) is np.ndarray and len(parents) == 1:
                        input_grads = (input_grads,)
                    elif type(input_grads) is not tuple or len(input_grads) != len(parents):
                        input_grads = node.as_gradient_tuple(input_grads)
            finally:
                if useful is not None:
                    node.needs_input_grad = needs
        if not retain_graph:
            node._saved = None  # release the saved arrays
        # one pass over the inputs: send each its gradient; an input whose last consumer
        # this is becomes ready with the sum of what it received
        for index, (parent, pg) in enumerate(zip(parents, input_grads)):
            if parent is None or (useful is not None and id(parent) not in useful):
                continue
            if pg is not None:
                shape, dtype = node.input_meta[index]
                if type(pg) is not expected or (pg.shape != shape and not batch):
                    pg = node.check_gradient(index, pg, create_graph, grad_out, batch)
                if batch:
                    if pg.shape[batch:] != shape or pg.ndim != batch + len(shape):
                        pg = sum_to_shape(pg, shape, batch)
                elif pg.shape != shape:
                    pg = sum_to_shape(pg, shape)
                if pg.dtype != dtype:
                    pg = pg.astype(dtype)
            key = id(parent)
            count = pending[key] - 1
            if count:  # other consumers have yet to send theirs
                pending[key] = count
                if pg is not None:
                    previous = grads.get(key)
                    if previous is not None:
                        pg = previous + pg
                        if type(pg) is not expected:  # NumPy: 0-d + 0-d is a scalar
                            pg = np.asarray(pg)
                    grads[key] = pg
                continue
            previous = grads.pop(key, None)
            if previous is not None and pg is not None:
                pg = previous + pg
                if type(pg) is not expected:
                    pg = np.asarray(pg)
            elif previous is not None:
                pg = previous
            ready.append((parent, pg))
    return captured


def _added(a: Any, b: Any) -> Any:
    """a + b for two gradients; for 0-d arrays NumPy returns a scalar: keep an array."""
    total = a + b
    return total if type(total) is type(a) else np.asarray(total)


def _own(grad: Any, stored: set[int]) -> Any:
    """``grad`` itself, or a copy when its array is a view or already handed out."""
    array = grad.data if isinstance(grad, Tensor) else grad
    if array.base is None and array.flags.writeable and id(array) not in stored:
        stored.add(id(array))
        return grad
    # ``+ 0.0`` copies a Tensor differentiably (and keeps float32 float32)
    grad = grad + 0.0 if isinstance(grad, Tensor) else grad.copy()
    stored.add(id(grad.data if isinstance(grad, Tensor) else grad))
    return grad


def _accumulate(leaf: Tensor, grad: Any, create_graph: bool, stored: set[int]) -> None:
    """leaf.grad += grad, never aliasing an array that another tensor or gradient uses."""
    if create_graph:
        # always a fresh tensor: the incoming one may be the user's seed or go elsewhere too
        leaf._grad = grad + 0.0 if leaf._grad is None else leaf._grad + grad
    elif leaf._grad is None:
        leaf._grad = Tensor._make(_own(grad, stored), None)
    else:
        leaf._grad = Tensor._make(_added(leaf._grad.data, grad), None)


def _fill_retained(node: Context, grad: Any, create_graph: bool) -> None:
    tensor = node._retained()
    if tensor is not None:
        if create_graph:
            grad = grad + 0.0
        else:
            grad = Tensor._make(np.array(grad), None)
        tensor._grad = grad if tensor._grad is None else tensor._grad + grad


def _check_backward(node: Context, grad_out: Any, input_grads: tuple[Any, ...]) -> None:
    if not np.all(np.isfinite(np.asarray(grad_out))):
        return  # the NaN/Inf came from further down the graph, which was checked there
    if not getattr(node, "_inputs_finite", True):
        return  # the forward's inputs held NaN/Inf already: passed along, not made here
    origin = node.origin or "an unknown line: run the forward inside detect_anomaly() too"
    for index, g in enumerate(input_grads):
        if g is not None and not np.all(np.isfinite(np.asarray(g))):
            raise FloatingPointError(
                f"{node.name} produced NaN/Inf in its backward (gradient of input {index}) "
                f"from a finite incoming gradient (op created at {origin})"
            )


def backward(
    output: Tensor, grad: Any = None, retain_graph: bool = False, create_graph: bool = False
) -> None:
    """Accumulate d(output)/d(leaf) into ``.grad`` of every leaf that requires grad."""
    root = _root(output)
    seed = _seed(output, grad, create_graph)
    if not create_graph:
        _walk(root, seed, retain_graph, False, None)
        return
    # create_graph records the backward pass even when called inside no_grad()
    with enable_grad():
        _walk(root, seed, True, True, None)


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
    gradient, or raises a RuntimeError when ``allow_unused`` is False.

    With ``batch=k``, ``grad_outputs`` carries k leading axes of independent cotangents
    (vmap-style) and every gradient comes back with the same leading axes: one walk
    computes many vector-Jacobian products. Every op on the way must be ``batchable``
    (see ``is_batchable``).
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
    wanted = dict.fromkeys(keys)
    with enable_grad() if create_graph else nullcontext():
        captured = _walk(root, seed, retain_graph or create_graph, create_graph, wanted, batch)
        results: list[Tensor] = []
        stored: set[int] = set()
        for tensor, key in zip(inputs, keys):
            g = captured.get(key)
            if g is None:
                if not allow_unused:
                    raise RuntimeError("grad(): an input is not used to compute the output")
                g = np.zeros(np.shape(seed)[:batch] + tensor.shape, dtype=tensor.dtype)
            g = _own(g, stored)
            results.append(g if isinstance(g, Tensor) else Tensor._make(g, None))
    return tuple(results)
