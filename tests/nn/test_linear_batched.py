"""The fused affine node (``cr.ops.affine``, behind ``nn.Linear``) in batched Jacobian walks
(``batchable``), and what a transform through a layer whose parameters require grad
returns."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine, nn
from chainrule.ops.linalg import Affine


def rowwise_jacobian(f, *arrays, argnum=0):
    out = f(*[cr.tensor(a) for a in arrays])
    rows = []
    for k in range(out.size):
        xs = [cr.tensor(a, requires_grad=True) for a in arrays]
        f(*xs).reshape(-1)[k].backward()
        rows.append(xs[argnum].grad.data)
    return np.stack(rows).reshape(out.shape + np.shape(arrays[argnum]))


@pytest.mark.parametrize("x_shape", [(4,), (3, 4), (2, 3, 4)], ids=["vector", "rows", "3d"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("argnum", [0, 1, 2])
def test_jacobian_through_fused_linear_equals_row_by_row(x_shape, bias, argnum, rng):
    if argnum == 2 and not bias:
        pytest.skip("no bias to differentiate")
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((4, 5)), rng.standard_normal(5)]
    if not bias:
        arrays = arrays[:2]

    def f(*xs):
        return cr.tanh(nn.functional.linear(*xs))

    assert engine.is_batchable(f(*[cr.tensor(a, requires_grad=True) for a in arrays]))
    jac = cr.jacobian(f, argnums=argnum)(*arrays)
    np.testing.assert_allclose(jac.data, rowwise_jacobian(f, *arrays, argnum=argnum), rtol=1e-12)


def test_hessian_through_fused_linear(rng):
    w, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    x = rng.standard_normal(3)

    def f(v):
        return (cr.tanh(nn.functional.linear(v, cr.tensor(w), cr.tensor(b))) ** 2).sum()

    expected = rowwise_jacobian(cr.grad(f), x)
    np.testing.assert_allclose(cr.hessian(f)(x).data, expected, rtol=1e-12)


def test_jacobian_of_a_layer_with_trainable_parameters():
    """As torch.func.jacrev: the Jacobian with respect to the input stays connected to the
    parameters (∂y/∂x = Wᵀ for y = xW + b), unless it is taken inside no_grad()."""
    layer = nn.Linear(3, 2).double()
    x = np.array([0.5, -1.0, 2.0])
    jac = cr.jacobian(layer)(x)
    np.testing.assert_allclose(jac.data, layer.weight.data.T, rtol=1e-15)
    assert jac.requires_grad
    (jac * jac).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.data, 2 * layer.weight.data, rtol=1e-15)
    with cr.no_grad():
        assert not cr.jacobian(layer)(x).requires_grad


def test_a_jacobian_with_respect_to_the_input_computes_no_weight_gradient(monkeypatch):
    """The walk tells Affine's backward that only ∂/∂x is wanted (needs_input_grad), so no
    (outputs, in, out) stack of weight gradients is built."""
    layer = nn.Linear(64, 256)
    seen = []
    backward = Affine.backward

    def spy(ctx, grad_out):
        seen.append(ctx.needs_input_grad)
        return backward(ctx, grad_out)

    monkeypatch.setattr(Affine, "backward", staticmethod(spy))
    with cr.no_grad():
        cr.jacobian(layer)(np.ones(64, dtype=np.float32))
    assert seen == [(True, False, False)]
