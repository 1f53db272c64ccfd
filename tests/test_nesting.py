"""Transforms nest by levels: an inner transform never hides an outer variable.

A variable of an outer transform that reaches an inner one, passed as a non-differentiated
argument or closed over, stays differentiable by the outer transform; two transforms never
confuse their perturbations; and a transform inside ``no_grad()`` is cut from the outside.
Closed forms here, ``torch.func`` as the oracle where it is installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def f(x, y):
    return x**2 * y + cr.exp(x * y)


def d2f_dydx(x, y):
    """∂/∂y (∂f/∂x) for f = x²y + e^{xy}: 2x + e^{xy}(1 + xy)."""
    return 2 * x + np.exp(x * y) * (1 + x * y)


# ------------------------------------------------------------------ mixed partials
def test_mixed_partial_through_a_closure():
    x0, y0 = 0.4, -1.3
    got = cr.grad(lambda y: cr.grad(lambda x: f(x, y))(x0))(y0)
    np.testing.assert_allclose(got.data, d2f_dydx(x0, y0), rtol=1e-6)
    assert got.grad_fn is None and not got.requires_grad  # nothing leaks out of the outer


def test_mixed_partial_through_argnums():
    x0, y0 = np.float64(0.7), np.float64(0.2)
    got = cr.grad(lambda y: cr.grad(f, argnums=0)(x0, y))(y0)
    np.testing.assert_allclose(got.data, d2f_dydx(x0, y0), rtol=1e-12)
    # the other order: ∂/∂x (∂f/∂y) is the same number (Schwarz)
    got = cr.grad(lambda x: cr.grad(f, argnums=1)(x, y0))(x0)
    np.testing.assert_allclose(got.data, d2f_dydx(x0, y0), rtol=1e-12)


def test_perturbation_confusion_is_impossible():
    """Siskind and Pearlmutter's example: d/dx [x · d/dy (x + y)] = 1, not 2."""
    assert cr.grad(lambda x: x * cr.grad(lambda y: x + y)(1.0))(1.0).item() == 1.0
    # the same variable passed to both levels: d/dx [∂/∂y (x·y) at y = x] = d/dx x = 1
    assert cr.grad(lambda x: cr.grad(lambda y: x * y)(x))(np.float64(3.0)).item() == 1.0


def test_three_levels_deep():
    """∂³/∂x∂y∂z of g = x·y·z·e^{xyz} through three closures."""
    x0, y0, z0 = 0.3, -0.5, 0.8

    def g(x, y, z):
        return x * y * z * cr.exp(x * y * z)

    got = cr.grad(lambda z: cr.grad(lambda y: cr.grad(lambda x: g(x, y, z))(x0))(y0))(z0)
    # g = u e^u with u = xyz; ∂³g/∂x∂y∂z = h'(u) + 3u h''(u) + u² h'''(u) for h(u) = u e^u
    u = x0 * y0 * z0
    h1, h2, h3 = np.exp(u) * (1 + u), np.exp(u) * (2 + u), np.exp(u) * (3 + u)
    np.testing.assert_allclose(got.data, h1 + 3 * u * h2 + u * u * h3, rtol=1e-5)


def test_hessian_of_a_function_that_calls_grad_inside():
    """H of q(x) = ‖∇p(x)‖² for the cubic p(x) = Σ aᵢxᵢ³: q = 9 Σ aᵢ²xᵢ⁴, H = diag(108 a²x²)."""
    a = np.array([1.0, -2.0, 0.5])

    def p(x):
        return (a * x**3).sum()

    def q(x):
        g = cr.grad(p)(x)  # 3a x²
        return (g * g).sum()  # 9 Σ a² x⁴

    x = np.array([0.3, -0.7, 1.1])
    h = cr.hessian(q)(x)
    np.testing.assert_allclose(h.data, np.diag(108 * a**2 * x**2), rtol=1e-12, atol=1e-12)


def test_jacobian_of_a_gradient_closed_over_an_outer_variable():
    w = np.array([0.5, -1.0])

    def outer(s):
        return cr.jacobian(lambda x: cr.grad(lambda v: (s * v**3).sum())(x))(w).sum()

    # ∂/∂s Σ_ij ∂²(s Σ v³)/∂v_i∂v_j = Σ_i 6 w_i
    np.testing.assert_allclose(cr.grad(outer)(2.0).data, 6 * w.sum(), rtol=1e-12)


def test_jvp_and_vjp_nest_inside_grad():
    def through_jvp(s):
        _, tangent = cr.jvp(lambda x: s * x**2, (np.float64(3.0),), (np.float64(1.0),))
        return tangent  # 2·s·3 = 6s

    assert cr.grad(through_jvp)(np.float64(0.5)).item() == pytest.approx(6.0)

    def through_vjp(s):
        _, vjp_fn = cr.vjp(lambda x: s * cr.tanh(x), np.float64(0.2))
        return vjp_fn(np.float64(1.0))[0]  # s (1 − tanh² 0.2)

    expected = 1 - np.tanh(0.2) ** 2
    assert cr.grad(through_vjp)(np.float64(2.0)).item() == pytest.approx(expected)


def test_gradient_closed_over_a_parameter_is_differentiable_by_backward():
    """As torch.func.grad does: a user's leaf that the function closes over keeps the
    inner gradient connected, so a later backward reaches it."""
    w = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    g = cr.grad(lambda x: (w * x**2).sum())(np.array([3.0, -1.0]))  # 2 w x
    (g * g).sum().backward()  # Σ 4 w² x²  ->  ∂/∂w = 8 w x²
    np.testing.assert_allclose(w.grad.data, 8 * w.data * np.array([9.0, 1.0]))


def test_a_transform_inside_no_grad_is_cut_from_the_outside():
    w = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with cr.no_grad():
        g = cr.grad(lambda x: (w * x**2).sum())(np.array([3.0, -1.0]))
    assert not g.requires_grad
    np.testing.assert_allclose(g.data, [6.0, -4.0])


def test_first_order_transforms_record_nothing_when_nothing_is_outside():
    g = cr.grad(lambda x: (x**3).sum())(np.array([1.0, 2.0]))
    assert not g.requires_grad and g.grad_fn is None
    j = cr.jacobian(lambda x: cr.tanh(x))(np.array([1.0, 2.0]))
    assert not j.requires_grad


def test_unsupported_argument_types_name_the_type():
    with pytest.raises(TypeError, match="str"):
        cr.grad(lambda x: x * x)("1.0")
    # a structure of arrays is a pytree (one input per leaf), never stacked into one array;
    # a leaf that is not an array is named
    with pytest.raises(TypeError, match="leaf of type str"):
        cr.jacobian(lambda p: p["a"])({"a": 1.0, "b": "x"})
    with pytest.raises(TypeError, match="must return a Tensor, got str"):
        cr.grad(lambda x: "nope")(1.0)


# ------------------------------------------------------------------ torch.func as the oracle
torch = pytest.importorskip("torch")
tfunc = pytest.importorskip("torch.func")


def _t(value):
    return torch.tensor(value, dtype=torch.float64)


@pytest.mark.parametrize("point", [(0.4, -1.3), (1.1, 0.6), (-0.8, 0.3)])
def test_mixed_partials_match_torch_func(point):
    x0, y0 = point

    def tf(x, y):
        return x**2 * y + torch.exp(x * y)

    ours = cr.grad(lambda y: cr.grad(lambda x: f(x, y))(x0))(y0)
    theirs = tfunc.grad(lambda y: tfunc.grad(lambda x: tf(x, y))(_t(x0)))(_t(y0))
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)
    ours = cr.grad(lambda x: cr.grad(f, argnums=1)(x, np.float64(y0)))(np.float64(x0))
    theirs = tfunc.grad(lambda x: tfunc.grad(tf, argnums=1)(x, _t(y0)))(_t(x0))
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)


def test_hessian_through_inner_grad_matches_torch_func(rng):
    A = rng.standard_normal((3, 3))
    x = rng.standard_normal(3)

    def ours(v):
        g = cr.grad(lambda u: cr.tanh(cr.tensor(A) @ u).sum())(v)
        return (g * g * v).sum()

    def theirs(v):
        g = tfunc.grad(lambda u: torch.tanh(_t(A) @ u).sum())(v)
        return (g * g * v).sum()

    np.testing.assert_allclose(
        cr.hessian(ours)(x).data, tfunc.hessian(theirs)(_t(x)).numpy(), rtol=1e-10, atol=1e-12
    )


def test_three_level_closure_matches_torch_func():
    def ours(x, y, z):
        return x * y * z + (x * z) ** 2 * y

    def theirs(x, y, z):
        return x * y * z + (x * z) ** 2 * y

    x0, y0, z0 = 0.3, -1.2, 0.9
    got = cr.grad(lambda z: cr.grad(lambda y: cr.grad(lambda x: ours(x, y, z))(x0))(y0))(z0)
    want = tfunc.grad(
        lambda z: tfunc.grad(lambda y: tfunc.grad(lambda x: theirs(x, y, z))(_t(x0)))(_t(y0))
    )(_t(z0))
    np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-6)
