"""Every op of the op table under ``cr.vmap``: batched, it equals the op once per example.

For each row of ``tests/op_specs.py``, a batch of three independent draws is mapped
(all inputs, and only the first with the others shared), and compared with the op called
on each example and stacked; then per-example gradients, first and second order
(``vmap(grad(...))``), against ``cr.grad`` called once per example. The batching rule of
each op (``chainrule.batching``) is what is tested: an op without one runs once per
example, which is right by construction.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from op_specs import OP_SPECS, spec_id

BATCH = 3
DIFFERENTIABLE = [s for s in OP_SPECS if s.differentiable]


def _draws(spec, rng):
    return [spec.inputs(rng) for _ in range(BATCH)]


def _stacked(draws, position):
    return np.stack([d[position] for d in draws])


def _close(actual, expected):
    actual = actual.data if isinstance(actual, cr.Tensor) else np.asarray(actual)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", OP_SPECS, ids=spec_id)
def test_vmap_of_the_op_is_the_op_per_example(spec, rng):
    draws = _draws(spec, rng)
    expected = np.stack([spec.fn(*[cr.tensor(a) for a in d]).data for d in draws])
    batched = [_stacked(draws, i) for i in range(len(spec.shapes))]
    _close(cr.vmap(spec.fn)(*batched), expected)


@pytest.mark.parametrize("spec", [s for s in OP_SPECS if len(s.shapes) > 1], ids=spec_id)
def test_vmap_with_shared_inputs(spec, rng):
    draws = _draws(spec, rng)
    shared = draws[0][1:]
    expected = np.stack([spec.fn(*[cr.tensor(a) for a in (d[0], *shared)]).data for d in draws])
    in_axes = (0,) + (None,) * len(shared)
    _close(cr.vmap(spec.fn, in_axes=in_axes)(_stacked(draws, 0), *shared), expected)


def _scalar_loss(spec, weights):
    def loss(*xs):
        return (spec.fn(*xs) * weights).sum()

    return loss


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_per_example_gradients(spec, rng):
    draws = _draws(spec, rng)
    shared = draws[0][1:]
    out_shape = spec.fn(*[cr.tensor(a) for a in draws[0]]).shape
    loss = _scalar_loss(spec, rng.standard_normal(out_shape))
    argnums = tuple(range(len(spec.shapes)))
    per_example = cr.vmap(cr.grad(loss, argnums), in_axes=(0,) + (None,) * len(shared))
    grads = per_example(_stacked(draws, 0), *shared)
    for i, d in enumerate(draws):
        expected = cr.grad(loss, argnums)(d[0], *shared)
        for g, e in zip(grads, expected):
            _close(g.data[i], e.data)


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_per_example_second_order(spec, rng):
    draws = _draws(spec, rng)
    out_shape = spec.fn(*[cr.tensor(a) for a in draws[0]]).shape
    loss = _scalar_loss(spec, rng.standard_normal(out_shape))
    argnums = tuple(range(len(spec.shapes)))

    def squared_gradient(*xs):
        return sum((g * g).sum() for g in cr.grad(loss, argnums)(*xs))

    batched = [_stacked(draws, i) for i in range(len(spec.shapes))]
    grads = cr.vmap(cr.grad(squared_gradient, argnums))(*batched)
    for i, d in enumerate(draws):
        for g, e in zip(grads, cr.grad(squared_gradient, argnums)(*d)):
            _close(g.data[i], e.data)


@pytest.mark.parametrize("spec", DIFFERENTIABLE, ids=spec_id)
def test_per_example_jacobians(spec, rng):
    """vmap(jacobian): one walk over the batch, seeded with the identity per example."""
    draws = _draws(spec, rng)
    batched = [_stacked(draws, i) for i in range(len(spec.shapes))]
    argnums = tuple(range(len(spec.shapes)))
    jacobians = cr.vmap(cr.jacobian(spec.fn, argnums))(*batched)
    for i, d in enumerate(draws):
        for j, e in zip(jacobians, cr.jacobian(spec.fn, argnums)(*d)):
            _close(j.data[i], e.data)
