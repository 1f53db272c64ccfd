"""stop_gradient (a zero derivative at every nesting level) and checkpoint (the same values
and derivatives as f, first and second order, with f's intermediates recomputed)."""

import gc
import weakref

import numpy as np
import pytest

import chainrule as cr


def arr(t):
    return np.asarray(t.data if isinstance(t, cr.Tensor) else t)


# ------------------------------------------------------------- stop_gradient
def test_stop_gradient_is_the_identity_with_zero_derivative(rng):
    x = rng.standard_normal(3)
    np.testing.assert_array_equal(arr(cr.stop_gradient(cr.tensor(x))), x)
    assert arr(cr.grad(lambda x: (cr.stop_gradient(x) * x).sum())(x)) == pytest.approx(x)
    assert cr.stop_gradient(x) is x  # an ndarray is a constant already


def test_stop_gradient_stops_every_nesting_level():
    # inner: d/dy stop_gradient(x) * y = x; outer: d/dx of that is 0, not 1
    inner = cr.grad(lambda y: cr.stop_gradient(cr.tensor(2.0)) * y)(1.0)
    assert arr(inner) == 2.0
    outer = cr.grad(lambda x: cr.grad(lambda y: cr.stop_gradient(x) * y)(1.0))(2.0)
    assert arr(outer) == 0.0
    # without it the same nesting gives 1
    assert arr(cr.grad(lambda x: cr.grad(lambda y: x * y)(1.0))(2.0)) == 1.0
    # stopped inside the inner transform, on the inner variable's product with x
    stopped = cr.grad(lambda x: cr.grad(lambda y: y * cr.stop_gradient(x * y))(2.0))(3.0)
    assert arr(stopped) == 0.0


def test_stop_gradient_in_a_hessian_is_a_constant(rng):
    x = rng.standard_normal(3)
    # f = Σ c xᵢ² with c = stop_gradient(x): H = diag(2c)
    hess = cr.hessian(lambda x: (cr.stop_gradient(x) * x * x).sum())(x)
    np.testing.assert_allclose(arr(hess), np.diag(2 * x), rtol=1e-12)


# ------------------------------------------------------------- checkpoint
W = np.random.default_rng(3).standard_normal((4, 4))


def block(x, y):
    return (cr.tensor(W) @ x).tanh() * y + (x * x).sum()


def test_checkpoint_values_and_gradients_equal_f(rng):
    x, y = rng.standard_normal(4), rng.standard_normal(4)
    np.testing.assert_array_equal(arr(cr.checkpoint(block)(x, y)), arr(block(x, y)))
    plain = cr.value_and_grad(lambda x, y: (block(x, y) ** 2).sum(), argnums=(0, 1))(x, y)
    remat = cr.value_and_grad(
        lambda x, y: (cr.checkpoint(block)(x, y) ** 2).sum(), argnums=(0, 1)
    )(x, y)
    np.testing.assert_allclose(arr(remat[0]), arr(plain[0]), rtol=1e-14)
    for a, b in zip(plain[1], remat[1]):
        np.testing.assert_allclose(arr(b), arr(a), rtol=1e-12, atol=1e-14)


def test_checkpoint_second_order_equals_f(rng):
    x, y = rng.standard_normal(4), cr.tensor(rng.standard_normal(4))
    hess = cr.hessian(lambda x: (block(x, y) ** 2).sum())(x)
    remat = cr.hessian(lambda x: (cr.checkpoint(block)(x, y) ** 2).sum())(x)
    np.testing.assert_allclose(arr(remat), arr(hess), rtol=1e-10, atol=1e-12)
    # nested grad through a checkpoint that closes over the outer variable
    nested = cr.grad(lambda a: cr.grad(lambda x: cr.checkpoint(lambda x: (a * x).sin())(x))(1.0))
    assert arr(nested(0.5)) == pytest.approx(-0.5 * np.sin(0.5) + np.cos(0.5))


def test_closed_over_parameters_get_their_gradients_first_and_second_order(rng):
    w = cr.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    x = cr.tensor(rng.standard_normal(4), requires_grad=True)

    def f(x):
        return (w @ x).tanh() * x

    found = {}
    for name, g in (("plain", f), ("remat", cr.checkpoint(f))):
        w.grad = x.grad = None
        (g(x) ** 2).sum().backward()
        first = (arr(w.grad).copy(), arr(x.grad).copy())
        w.grad = None
        (gw,) = cr.engine.grad((g(x) ** 2).sum(), [w], create_graph=True)
        (gw * gw).sum().backward()
        found[name] = (*first, arr(w.grad).copy())
    for a, b in zip(found["plain"], found["remat"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_a_module_block_inside_loss_backward(rng):
    cr.manual_seed(0)
    layer = cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.Tanh(), cr.nn.Linear(8, 2))
    x = cr.tensor(rng.standard_normal((3, 4)))
    grads = []
    for f in (layer, cr.checkpoint(layer)):
        layer.zero_grad()
        (f(x) ** 2).mean().backward()
        grads.append([arr(p.grad).copy() for p in layer.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_intermediates_are_not_kept_until_the_backward(rng):
    held = []

    def f(x):
        h = x.exp()  # an intermediate that the product saves for its backward
        held.append(weakref.ref(h.data))
        return h * x

    x = cr.tensor(rng.standard_normal(1000), requires_grad=True)
    plain = f(x).sum()
    gc.collect()
    assert held[-1]() is not None  # the plain graph keeps it
    remat = cr.checkpoint(f)(x).sum()
    gc.collect()
    assert held[-1]() is None  # the checkpoint does not
    remat.backward()  # recomputes f: a third intermediate, released after the walk
    assert len(held) == 3
    np.testing.assert_allclose(arr(x.grad), np.exp(x.data) * (x.data + 1), rtol=1e-12)
    del plain


def test_no_grad_and_constants_run_f_as_it_is():
    x = np.ones(3)
    out = cr.checkpoint(lambda x: cr.tensor(x) * 2.0)(x)
    assert not out.requires_grad
    with cr.no_grad():
        assert not cr.checkpoint(lambda t: t * 2.0)(cr.tensor(x, requires_grad=True)).requires_grad


def test_an_argument_written_in_place_before_the_backward_is_refused(rng):
    x = cr.tensor(rng.standard_normal(3), requires_grad=True)
    a = x * 1.0
    out = cr.checkpoint(lambda a: (a * a).sum())(a)
    a.add_(1.0)  # the recomputation would see the new values
    with pytest.raises(RuntimeError, match="modified|in place|in-place"):
        out.backward()


def test_stop_gradient_stops_each_leaf_of_a_pytree():
    """A dict of parameters is stopped leaf by leaf: the loss's gradient with respect to
    the stopped copy is zero, and the structure is kept."""
    params = {"w": np.array([1.0, 2.0]), "b": (np.float64(0.5), None)}

    def loss(p):
        stopped = cr.stop_gradient(p)
        assert set(stopped) == {"w", "b"} and stopped["b"][1] is None
        return (stopped["w"] * p["w"]).sum() + stopped["b"][0] * p["b"][0]

    g = cr.grad(loss)(params)
    np.testing.assert_allclose(g["w"].data, params["w"])  # not 2w: the stopped factor is constant
    np.testing.assert_allclose(g["b"][0].data, 0.5)


def test_checkpoint_of_a_pytree_output_keeps_every_leaf_differentiable(rng):
    w = cr.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    calls = []

    def f(params):
        calls.append(1)
        a, b = params
        return {"hidden": cr.tanh(a @ w), "pair": (b**3, None), "count": 7}

    def loss(params, block):
        out = block(params)
        assert out["count"] == 7 and out["pair"][1] is None
        return (out["hidden"] ** 2).sum() + out["pair"][0].sum() * out["hidden"][0]

    a, b = rng.standard_normal(3), rng.standard_normal((2, 2))
    expected = cr.grad(lambda p: loss(p, f))([a, b])
    calls.clear()
    got = cr.grad(lambda p: loss(p, cr.checkpoint(f)))([a, b])
    assert len(calls) == 2  # the forward and one recomputation for both leaves
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.data, e.data, rtol=1e-12)

    def second(block):
        return cr.grad(lambda x: (cr.grad(lambda y: loss([y, b], block))(x) ** 2).sum())(a)

    np.testing.assert_allclose(
        second(cr.checkpoint(f)).data, second(f).data, rtol=1e-10, atol=1e-12
    )


def test_checkpoint_refuses_outputs_of_mixed_float_dtypes(rng):
    x = cr.tensor(rng.standard_normal(3), requires_grad=True)
    block = cr.checkpoint(lambda t: (t * 2, (t * 3).astype(np.float32)))
    with pytest.raises(TypeError, match="share one dtype.*float32.*float64"):
        block(x)
