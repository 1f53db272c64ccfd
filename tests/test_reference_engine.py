"""The fast engine against the reference engine (``chainrule.reference``, reverse mode in a
hundred lines) on every op of ``tests/op_specs.py``, first and second order, and on graphs
that share subexpressions. The reference has no fast path, no pruning and no modes: what
both compute alike, neither computes wrong in a way the other would not."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine, reference
from op_specs import OP_SPECS, spec_id

DIFFERENTIABLE = [s for s in OP_SPECS if s.differentiable]


def _leaves(arrays):
    return [cr.tensor(a, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_first_order_gradients_agree(spec, rng):
    xs = _leaves(spec.inputs(rng))
    out = spec.fn(*xs)
    seed = rng.standard_normal(out.shape)
    ours = engine.grad(out, xs, grad_outputs=seed, retain_graph=True)
    theirs = reference.grad(out, xs, seed)
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert type(b) is np.ndarray
        np.testing.assert_allclose(a.data, b, rtol=1e-13, atol=1e-14, err_msg=f"input {index}")
    out.backward(seed)  # backward() takes the other walk: the same numbers again
    for index, (x, b) in enumerate(zip(xs, theirs)):
        np.testing.assert_allclose(x.grad.data, b, rtol=1e-13, atol=1e-14, err_msg=f"{index}")


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_second_order_gradients_agree(spec, rng):
    xs = _leaves(spec.inputs(rng))
    out = spec.fn(*xs)
    seed = cr.tensor(rng.standard_normal(out.shape))
    directions = [rng.standard_normal(x.shape) for x in xs]

    def second(first_order):
        total = sum((g * v).sum() for g, v in zip(first_order, directions))
        if not total.requires_grad:
            return None  # linear in every input: the second derivative is zero
        return total

    ours = second(engine.grad(out, xs, grad_outputs=seed, create_graph=True))
    theirs = second(reference.grad(out, xs, seed, create_graph=True))
    assert (ours is None) == (theirs is None)
    if ours is None:
        return
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-12)
    ours_second = engine.grad(ours, xs, retain_graph=True)  # the graphs share the forward
    for index, (a, b) in enumerate(zip(ours_second, reference.grad(theirs, xs))):
        np.testing.assert_allclose(a.data, b, rtol=1e-11, atol=1e-13, err_msg=f"input {index}")


def test_shared_subexpressions_and_intermediate_inputs(rng):
    x = cr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = cr.tensor(rng.standard_normal(4), requires_grad=True)
    h = cr.tanh(x * w)  # used three times below
    out = (h * h + h.sum(axis=0) - cr.exp(h) * x).sum()
    ours = engine.grad(out, [x, w, h], retain_graph=True)
    theirs = reference.grad(out, [x, w, h])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.data, b, rtol=1e-13)


def test_an_unused_input_gets_zeros_and_the_order_is_topological(rng):
    x = cr.tensor(rng.standard_normal(3), requires_grad=True)
    unused = cr.tensor(rng.standard_normal(2), requires_grad=True)
    y = cr.exp(x)
    out = (y * y).sum()
    order = reference.topological_order(out.grad_fn)
    names = [n.name if isinstance(n, cr.Context) else "leaf" for n in order]
    assert names == ["Sum", "Mul", "Exp", "leaf"]
    _, g_unused = reference.grad(out, [x, unused])
    assert g_unused.tolist() == [0.0, 0.0]
