"""Function transforms: grad, value_and_grad, vjp, jvp, jacobian, hessian.

Checked against hand-derived closed forms (the lecture's shape table) and, optionally,
against torch.func.
"""

import numpy as np
import pytest

import chainrule as cr


def arr(t):
    return np.asarray(t.data if isinstance(t, cr.Tensor) else t)


# ------------------------------------------------------------- the lecture's shape table
def test_scalar_by_vector_is_shaped_like_x(rng):
    """y = wᵀx: ∂y/∂x = w, shape (n)."""
    w = rng.standard_normal(5)
    x = rng.standard_normal(5)
    g = cr.grad(lambda x: cr.dot(cr.tensor(w), x))(x)
    assert g.shape == (5,)
    np.testing.assert_allclose(arr(g), w, rtol=1e-12)


def test_scalar_by_matrix_is_shaped_like_x(rng):
    """y = Σ (W ∘ X): ∂y/∂X = W, shape (n, m)."""
    w = rng.standard_normal((3, 4))
    x = rng.standard_normal((3, 4))
    g = cr.grad(lambda x: (cr.tensor(w) * x).sum())(x)
    assert g.shape == (3, 4)
    np.testing.assert_allclose(arr(g), w, rtol=1e-12)


def test_vector_by_vector_layouts(rng):
    """y = W x (N outputs, n inputs): numerator (N, n) = W; denominator (n, N) = Wᵀ."""
    w = rng.standard_normal((4, 3))
    x = rng.standard_normal(3)
    f = lambda x: cr.tensor(w) @ x  # noqa: E731
    numerator = cr.jacobian(f)(x)
    denominator = cr.jacobian(f, layout="denominator")(x)
    assert numerator.shape == (4, 3) and denominator.shape == (3, 4)
    np.testing.assert_allclose(arr(numerator), w, rtol=1e-12)
    np.testing.assert_allclose(arr(denominator), w.T, rtol=1e-12)


def test_vector_by_matrix_is_n_matrices_shaped_like_x(rng):
    """y = X v (y in R^N, X of shape (N, m)): ∂y/∂X has shape (N, N, m);
    slice k is e_k vᵀ, a matrix shaped like X."""
    v = rng.standard_normal(3)
    x = rng.standard_normal((4, 3))
    jac = arr(cr.jacobian(lambda x: x @ cr.tensor(v))(x))
    assert jac.shape == (4, 4, 3)
    for k in range(4):
        expected = np.zeros((4, 3))
        expected[k] = v
        np.testing.assert_allclose(jac[k], expected, rtol=1e-12)


def test_hadamard_jacobian_is_diagonal(rng):
    w = rng.standard_normal(4)
    x = rng.standard_normal(4)
    jac = arr(cr.jacobian(lambda x: cr.tensor(w) * x)(x))
    np.testing.assert_allclose(jac, np.diag(w), rtol=1e-12)


def test_jacobian_of_tanh_layer_matches_closed_form(rng):
    w = rng.standard_normal((5, 6))
    x = rng.standard_normal(6)
    jac = arr(cr.jacobian(lambda x: (cr.tensor(w) @ x).tanh())(x))
    expected = (1 - np.tanh(w @ x) ** 2)[:, None] * w
    np.testing.assert_allclose(jac, expected, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------- grad, value_and_grad, nesting
def test_grad_of_cube_and_nested_second_and_third_derivatives():
    f = lambda x: x**3  # noqa: E731
    x = np.array(1.5)
    np.testing.assert_allclose(arr(cr.grad(f)(x)), 3 * 1.5**2)
    np.testing.assert_allclose(arr(cr.grad(cr.grad(f))(x)), 6 * 1.5)
    np.testing.assert_allclose(arr(cr.grad(cr.grad(cr.grad(f)))(x)), 6.0)


def test_value_and_grad_with_tuple_argnums(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    value, (ga, gb) = cr.value_and_grad(lambda a, b: (a * b).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(arr(value), a @ b)
    np.testing.assert_allclose(arr(ga), b)
    np.testing.assert_allclose(arr(gb), a)


def test_grad_with_respect_to_second_argument_only(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    g = cr.grad(lambda a, b: (a * b * b).sum(), argnums=1)(a, b)
    np.testing.assert_allclose(arr(g), 2 * a * b)


def test_grad_does_not_touch_grad_of_closed_over_tensors(rng):
    w = cr.tensor(rng.standard_normal(3), requires_grad=True)
    cr.grad(lambda x: (w * x).sum())(rng.standard_normal(3))
    assert w.grad is None


def test_grad_of_constant_function_is_zero():
    g = cr.grad(lambda x: cr.tensor(2.0))(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(arr(g), [0.0, 0.0])


def test_grad_rejects_vector_output_and_bad_argnums():
    with pytest.raises(ValueError, match="scalar"):
        cr.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(ValueError, match="argnums"):
        cr.grad(lambda x: x.sum(), argnums=2)(np.ones(3))
    with pytest.raises(TypeError, match="floating"):
        cr.grad(lambda x: x.sum())(np.arange(3))


# ------------------------------------------------------------- vjp and jvp
def test_vjp_equals_transposed_jacobian_product(rng):
    w = rng.standard_normal((4, 3))
    x = rng.standard_normal(3)
    f = lambda x: (cr.tensor(w) @ x).sigmoid()  # noqa: E731
    out, vjp_fn = cr.vjp(f, x)
    jac = arr(cr.jacobian(f)(x))
    for _ in range(2):  # vjp_fn can be called repeatedly
        u = rng.standard_normal(4)
        (g,) = vjp_fn(u)
        np.testing.assert_allclose(arr(g), u @ jac, rtol=1e-12)
    with pytest.raises(ValueError, match="cotangent"):
        vjp_fn(np.ones(3))


def test_jvp_equals_jacobian_vector_product(rng):
    w = rng.standard_normal((4, 3))
    x, v = rng.standard_normal(3), rng.standard_normal(3)
    f = lambda x: (cr.tensor(w) @ x).tanh() * x.sum()  # noqa: E731
    out, tangent = cr.jvp(f, (x,), (v,))
    np.testing.assert_allclose(arr(out), arr(f(cr.tensor(x))), rtol=1e-12)
    np.testing.assert_allclose(arr(tangent), arr(cr.jacobian(f)(x)) @ v, rtol=1e-10)


def test_jvp_of_two_arguments(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    va, vb = rng.standard_normal(3), rng.standard_normal(3)
    _, tangent = cr.jvp(lambda a, b: a * b, (a, b), (va, vb))
    np.testing.assert_allclose(arr(tangent), va * b + a * vb, rtol=1e-12)


# ------------------------------------------------------------- hessian
def test_hessian_of_quadratic_form_is_symmetric_part(rng):
    a = rng.standard_normal((4, 4))
    x = rng.standard_normal(4)
    h = arr(cr.hessian(lambda x: x @ (cr.tensor(a) @ x))(x))
    np.testing.assert_allclose(h, a + a.T, rtol=1e-12)


def test_hessian_of_matrix_input_has_doubled_shape(rng):
    x = rng.standard_normal((2, 3))
    h = arr(cr.hessian(lambda x: (x**3).sum())(x))
    assert h.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(h.reshape(6, 6), np.diag(6 * x.ravel()), rtol=1e-12)


def test_hessian_of_log_sum_exp(rng):
    x = rng.standard_normal(5)
    h = arr(cr.hessian(lambda x: x.logsumexp())(x))
    p = np.exp(x - np.log(np.exp(x).sum()))
    np.testing.assert_allclose(h, np.diag(p) - np.outer(p, p), rtol=1e-10, atol=1e-14)


def test_layout_is_validated():
    with pytest.raises(ValueError, match="layout"):
        cr.jacobian(lambda x: x, layout="rows")


# ------------------------------------------------------------- PyTorch oracle
def test_jacobian_and_hessian_match_torch_func(rng):
    torch = pytest.importorskip("torch")
    w = rng.standard_normal((5, 4))
    x = rng.standard_normal(4)
    jac = arr(cr.jacobian(lambda x: (cr.tensor(w) @ x).tanh())(x))
    expected = torch.func.jacrev(lambda x: torch.tanh(torch.from_numpy(w) @ x))(
        torch.from_numpy(x)
    )
    np.testing.assert_allclose(jac, expected.numpy(), rtol=1e-6, atol=1e-12)

    xm = rng.standard_normal((3, 2))
    vec = rng.standard_normal(2)
    jac_m = arr(cr.jacobian(lambda x: (x @ cr.tensor(vec)).sigmoid())(xm))
    expected_m = torch.func.jacrev(lambda x: torch.sigmoid(x @ torch.from_numpy(vec)))(
        torch.from_numpy(xm)
    )
    np.testing.assert_allclose(jac_m, expected_m.numpy(), rtol=1e-6, atol=1e-12)

    hess = arr(cr.hessian(lambda x: ((cr.tensor(w) @ x).tanh() ** 2).sum())(x))
    expected_h = torch.func.hessian(lambda x: (torch.tanh(torch.from_numpy(w) @ x) ** 2).sum())(
        torch.from_numpy(x)
    )
    np.testing.assert_allclose(hess, expected_h.numpy(), rtol=1e-6, atol=1e-12)
