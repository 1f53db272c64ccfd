"""One run of a function on fresh inputs: what every transform shares.

``_trace`` calls f once with each differentiated argument's leaves as graph inputs (fresh
leaves, or, inside an enclosing differentiation, nodes of their own on its graph; inside
``vmap``, one copy per example), splits ``has_aux`` outputs, and says whether the
transform must record its own backward (nesting by levels). ``_gradients`` asks the
engine for the gradients; ``_regroup`` puts per-input values back into the arguments'
structures (pytrees).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import batching, engine
from chainrule.batched import Batched, physical
from chainrule.graph import reaches_beyond
from chainrule.mode import STATE, enable_grad, is_grad_enabled
from chainrule.ops.shape import Reshape
from chainrule.tensor import Tensor
from chainrule.tree import TreeDef, tree_flatten, tree_unflatten

#: leaves a transform differentiates with respect to
_ARRAY = (Tensor, np.ndarray, np.generic, int, float)
#: pytree containers (namedtuples are tuples; None is one too, an empty one): anything
#: else is one array, the fast path, which costs this one type check
_CONTAINERS = (tuple, list, dict)


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
    if STATE.vmap is not None:  # inside vmap: each example's own copy of the argument
        return _as_batched_input(value)
    if isinstance(value, Tensor) and value.requires_grad:
        return Reshape.apply(value, shape=value.shape)
    data: Any
    if isinstance(value, Tensor):
        data = value.data
    elif isinstance(value, _ARRAY) and not isinstance(value, bool):
        data = value
    else:
        raise TypeError(
            "a transform can only differentiate with respect to Tensors, ndarrays, numbers "
            f"and pytrees of them (tuples, lists, dicts), got a leaf of type "
            f"{type(value).__name__}"
        )
    tensor = Tensor(data)
    if tensor.dtype.kind not in "fc":
        raise TypeError(
            f"can only differentiate with respect to floating-point inputs, got {tensor.dtype}"
        )
    return tensor.requires_grad_()


def _as_batched_input(value: Any) -> Batched:
    """``_as_input`` inside vmap: the argument varies over every active vmap level (an
    unbatched one is broadcast, a view), so that the gradient with respect to it is one
    gradient per example, as the gradient of each example's function."""
    if type(value) is not Batched and not (isinstance(value, Tensor) and value.requires_grad):
        with physical():
            value = _as_input(value)  # the checks and dtype rules of any argument
        value._requires_grad = False  # a fresh leaf; its batched copy is the input
    lifted = batching.lift(value)
    with physical():
        if lifted.requires_grad:  # connected to an enclosing differentiation
            return Batched.wrap(Reshape.apply(lifted, shape=lifted.shape), lifted._levels)
        if lifted.dtype.kind not in "fc":
            raise TypeError(
                f"can only differentiate with respect to floating-point inputs, got {lifted.dtype}"
            )
        leaf = Batched.wrap(Tensor._make(lifted.array, None), lifted._levels)
        leaf._requires_grad = True
        return leaf


def _regroup(flat: Sequence[Any], structure: Sequence[TreeDef | None]) -> list[Any]:
    """Per-input values (gradients, Jacobians) back in each argument's structure."""
    if not any(structure):  # arrays only: one value each
        return list(flat)
    grouped = []
    start = 0
    for treedef in structure:
        if treedef is None:
            grouped.append(flat[start])
            start += 1
        else:
            stop = start + treedef.num_leaves
            grouped.append(tree_unflatten(treedef, flat[start:stop]))
            start = stop
    return grouped


def _split_aux(out: Any, name: str) -> tuple[Any, Any]:
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        kind = f"a {type(out).__name__}"
        if isinstance(out, (tuple, list)):
            kind += f" of length {len(out)}"
        raise TypeError(f"{name}(has_aux=True): f must return a pair (output, aux), got {kind}")
    return out[0], out[1]


class _Trace:
    """One run of f on fresh inputs: its outputs (leaves and treedef, None for a single
    Tensor), the inputs (leaves of every differentiated argument, in order) with each
    argument's treedef, aux, and whether the transform must record its backward."""

    __slots__ = ("outs", "out_def", "inputs", "structure", "aux", "nested")

    def __init__(
        self,
        outs: list[Tensor],
        out_def: TreeDef | None,
        inputs: list[Tensor],
        structure: list[TreeDef | None],
        aux: Any,
        nested: bool,
    ) -> None:
        self.outs = outs
        self.out_def = out_def
        self.inputs = inputs
        self.structure = structure
        self.aux = aux
        self.nested = nested

    def output(self, values: Sequence[Any]) -> Any:
        """Values per output leaf, in f's output structure."""
        return values[0] if self.out_def is None else tree_unflatten(self.out_def, values)


#: the transforms that run batched inside vmap (the others run once per example)
_BATCHED = ("value_and_grad", "jacobian", "hessian", "vjp", "jvp")


def _trace(
    f: Callable[..., Any],
    args: Sequence[Any],
    argnums: tuple[int, ...],
    has_aux: bool = False,
    name: str = "transform",
) -> _Trace:
    """Run f once with the chosen arguments' leaves as graph inputs.

    The trace records whether the transform must record its own backward pass
    (``create_graph``): nesting by levels. That is the case when gradients are being
    recorded and an output's graph reaches a tensor that requires grad other than the
    inputs: an outer transform's variable, passed in or closed over, or a user's
    parameter. An enclosing differentiation can then see through the result, which must
    stay connected to what it depends on. Otherwise nothing outside can, and the cheaper
    first-order pass is exact.
    """
    if STATE.vmap is not None and name not in _BATCHED:
        raise batching.Unbatchable(name)  # vmap runs f once per example instead
    recording = is_grad_enabled()  # the caller's mode: a transform inside no_grad() is cut
    args = list(args)
    inputs: list[Tensor] = []
    structure: list[TreeDef | None] = []
    for i in argnums:
        value = args[i]
        if isinstance(value, _CONTAINERS) or value is None:  # a pytree: a leaf per input
            leaves, treedef = tree_flatten(value)
            tensors = [_as_input(leaf) for leaf in leaves]
            args[i] = tree_unflatten(treedef, tensors)
            inputs.extend(tensors)
            structure.append(treedef)
        else:
            tensor = _as_input(value)
            args[i] = tensor
            inputs.append(tensor)
            structure.append(None)
    with enable_grad():
        out = f(*args)
    aux = None
    if has_aux:
        out, aux = _split_aux(out, name)
    if isinstance(out, Tensor):  # the fast path
        nested = recording and out.requires_grad and reaches_beyond(out, inputs)
        return _Trace([out], None, inputs, structure, aux, nested)
    leaves, out_def = tree_flatten(out)
    outs = [_as_output(leaf) for leaf in leaves]
    nested = recording and any(o.requires_grad and reaches_beyond(o, inputs) for o in outs)
    one = out_def.kind is None  # one array, not a Tensor
    return _Trace(outs, None if one else out_def, inputs, structure, aux, nested)


def _as_output(value: Any) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic, int, float)):
        return Tensor(value)
    raise TypeError(
        f"the function given to a transform must return a Tensor, got {type(value).__name__}"
    )


def _gradients(
    out: Tensor, inputs: list[Tensor], seed: Any, nested: bool, retain: bool
) -> tuple[Tensor, ...]:
    if type(out) is Batched or any(type(x) is Batched for x in inputs):
        return _batched_gradients(out, inputs, seed, nested, retain)
    if not out.requires_grad:  # f does not depend on the inputs
        return tuple(Tensor(np.zeros_like(x.data)) for x in inputs)
    return engine.grad(out, inputs, grad_outputs=seed, retain_graph=retain, create_graph=nested)


def _batched_gradients(
    out: Tensor, inputs: list[Tensor], seed: Any, nested: bool, retain: bool
) -> tuple[Tensor, ...]:
    """Inside vmap: one backward walk over the whole batch, seeded with one cotangent per
    example; each example's gradient lands in its slice of its own copy of the inputs."""
    if seed is not None and out.requires_grad:
        # a cotangent per example, laid out as out is: every active level in front (the
        # inputs were lifted to all of them, so out varies over all of them)
        seed = batching.lift(seed)
        if not seed.requires_grad:
            seed = seed.array
    with physical():
        if not out.requires_grad:
            grads = tuple(Tensor(np.zeros_like(x.data)) for x in inputs)
        else:
            if seed is None:
                seed = np.ones_like(out.data)
            grads = engine.grad(
                out, inputs, grad_outputs=seed, retain_graph=retain, create_graph=nested
            )
    return tuple(
        Batched.wrap(g, x._levels) if type(x) is Batched else g for g, x in zip(grads, inputs)
    )


def _pick(grouped: list[Any], argnums: int | Sequence[int]) -> Any:
    return grouped[0] if isinstance(argnums, int) else tuple(grouped)


def _retire(inputs: Sequence[Tensor]) -> None:
    """A transform's own variables leave scope when it returns: nothing differentiates
    with respect to them again, so they no longer count as connecting its result to an
    enclosing differentiation (``graph.reaches_beyond``)."""
    for x in inputs:
        if x._node is None:
            x._requires_grad = False
