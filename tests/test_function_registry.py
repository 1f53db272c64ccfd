"""One tier of ops: every ``Function`` subclass defined in the package is an op of the table.

Each class must be recorded by some row of ``tests/op_specs.py`` (so it has a NumPy
reference, gradcheck, gradgradcheck, the PyTorch oracle and the batched-Jacobian checks of
``tests/test_ops.py``) and must be ``batchable``, or be listed below with the reason it is
not. The rows are run, not read: a class counts as covered when a row's forward records it,
or, for the few listed in ``BACKWARD_ONLY``, when a row's backward records it under
``create_graph``. A new Function anywhere in ``chainrule`` fails here until it gets a row.
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine
from chainrule.function import Function
from op_specs import OP_SPECS

# Functions that are not ops, and why.
NOT_OPS = {
    "NotTwiceDifferentiable": (
        "an internal marker node: the gradient a backward written with raw NumPy calls "
        "gives under create_graph; its backward only raises, naming that Function, so there "
        "is nothing to compare with NumPy or torch and no cotangent to batch"
    ),
    "_Recompute": (
        "cr.checkpoint's node: its backward reruns the user's f, so it has no op row "
        "(tests/test_control.py compares it with f, first and second order); not batchable "
        "yet: a jacobian through a checkpoint walks once per output element"
    ),
}

# Functions with no row of their own, recorded by the backward of rows that have one.
BACKWARD_ONLY = {
    "ScatterAdd": (
        "the adjoint of indexing (zeros with g added at an index), recorded by GetItem's "
        "backward under create_graph: the getitem rows' gradgradcheck and second-derivative "
        "oracle check its forward and its backward; no public wrapper of its own"
    ),
}


def _package_functions() -> dict[str, type[Function]]:
    """Every Function subclass defined in a ``chainrule`` module, by class name."""
    for module in pkgutil.walk_packages(cr.__path__, "chainrule."):
        if module.name.endswith("__main__"):  # that one runs the command line
            continue
        importlib.import_module(module.name)
    found: dict[str, type[Function]] = {}
    stack = list(Function.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] == "chainrule":
            assert cls.__name__ not in found, f"two Functions named {cls.__name__}"
            found[cls.__name__] = cls
    return found


def _recorded(tensors) -> set[str]:
    """The names of the Functions recorded on the graphs behind ``tensors``."""
    names, seen = set(), set()
    stack = [t.grad_fn for t in tensors if t is not None]
    while stack:
        node = stack.pop()
        if isinstance(node, cr.Context) and id(node) not in seen:
            seen.add(id(node))
            names.add(node.name)
            stack.extend(node.parents)
    return names


def _reached() -> tuple[set[str], set[str]]:
    """(recorded by some row's forward, recorded by some row's create_graph backward)."""
    rng = np.random.default_rng(0)
    forward, backward = set(), set()
    for spec in OP_SPECS:
        xs = [cr.tensor(a, requires_grad=spec.differentiable) for a in spec.inputs(rng)]
        out = spec.fn(*xs)
        forward |= _recorded([out])
        if out.requires_grad:
            # a seed that requires grad: the backward records every node it makes
            seed = cr.tensor(rng.standard_normal(out.shape), requires_grad=True)
            backward |= _recorded(engine.grad(out, xs, grad_outputs=seed, create_graph=True))
    return forward, backward


FUNCTIONS = _package_functions()
FORWARD, BACKWARD = _reached()


def test_the_walk_finds_the_package_functions():
    assert {"Add", "MatMul", "Affine", "Conv2dFunction", "MaxPool2dFunction"} <= set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_is_an_op_of_the_table(name):
    if name in NOT_OPS:
        assert name not in FORWARD | BACKWARD, f"{name} is recorded by a row: not an exception"
    elif name in BACKWARD_ONLY:
        assert name in BACKWARD, f"no row's backward records {name}"
    else:
        assert name in FORWARD, (
            f"{FUNCTIONS[name].__module__}.{name} has no row in tests/op_specs.py: give its "
            "wrapper a row (or list it in this file with the reason it has none)"
        )


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_is_batchable(name):
    """Its backward passes extra leading axes of grad_out (a batch of cotangents) through,
    so ``cr.jacobian`` and ``cr.hessian`` walk once instead of once per output."""
    assert FUNCTIONS[name].batchable or name in NOT_OPS, (
        f"{name} is not batchable: set batchable = True once its backward keeps leading "
        "axes of grad_out (tests/test_ops.py checks it), or list it with a reason"
    )


def test_the_exception_lists_name_existing_functions():
    assert set(NOT_OPS) | set(BACKWARD_ONLY) <= set(FUNCTIONS)


# Functions batched by running them once per example (chainrule.batching's fallback), and
# why; every other Function of the package has a batching rule of its own.
PER_EXAMPLE = {
    "NotTwiceDifferentiable": "its backward only raises",
    "_Recompute": "cr.checkpoint's node; inside vmap the checkpointed f runs as it is",
    "ScatterAdd": "GetItem's adjoint, only in second-order graphs (a rule is future work)",
    "Conv2dInputFunction": "conv2d's adjoints, only in second-order graphs",
    "Conv2dWeightFunction": "conv2d's adjoints, only in second-order graphs",
    "Solve": "b is a vector or a matrix by its rank: a rule must keep the example's reading",
    "Eigh": "rarely per example; a stack rule needs its sign conventions checked",
    "Svd": "rarely per example; a stack rule needs its sign conventions checked",
}


def test_every_function_has_a_batching_rule_or_a_reason_to_run_per_example():
    from chainrule.batching import rule_for

    per_example = {
        name for name, cls in _package_functions().items() if rule_for(cls) == "per example"
    }
    assert per_example == set(PER_EXAMPLE)
