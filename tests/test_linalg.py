"""cr.linalg beyond the table of rows: the documented errors, the subgradient of norm at 0,
ill-conditioned and near-degenerate inputs (against torch and finite differences), the
symmetric-gradient convention of cholesky and eigh, batches of matrices, float32.

The rows of ``tests/op_specs.py`` check every op at well-posed inputs; here are the inputs
where the derivative is large, does not exist, or depends on a convention.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule.linalg import LinAlgError


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def grad_of(fn, *arrays):
    """Gradients of fn(*xs) (a scalar Tensor) with respect to float64 leaves."""
    xs = [cr.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    fn(*xs).backward()
    return [x.grad.data for x in xs]


def torch_grad_of(torch, fn, *arrays):
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    fn(*ts).backward()
    return [t.grad.numpy() for t in ts]


def numerical_grad(fn, a, eps=1e-6):
    """Central differences of the scalar ndarray function fn at a."""
    a = np.asarray(a, dtype=np.float64)
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        step = np.zeros_like(a)
        step[i] = eps
        g[i] = (fn(a + step) - fn(a - step)) / (2 * eps)
    return g


def hilbert(n):
    i = np.arange(n)
    return 1.0 / (i[:, None] + i[None, :] + 1.0)


def rotated(values, rng):
    """Q diag(values) Qᵀ for a random orthogonal Q: a symmetric matrix with those
    eigenvalues."""
    q, _ = np.linalg.qr(rng.standard_normal((len(values), len(values))))
    return q @ np.diag(values) @ q.T


# ------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "cholesky", "eigh"])
@pytest.mark.parametrize("shape", [(2, 3), (4,), (2, 3, 4)])
def test_a_non_square_matrix_is_refused_at_the_call_with_its_shape(name, shape):
    with pytest.raises(ValueError, match=rf"{name}: .*square.*{re.escape(str(shape))}"):
        getattr(cr.linalg, name)(cr.ones(shape))


def test_solve_refuses_a_non_square_a_and_a_b_that_does_not_fit():
    with pytest.raises(ValueError, match=r"solve: .*\(2, 3\)"):
        cr.linalg.solve(cr.ones((2, 3)), cr.ones(2))
    with pytest.raises(ValueError, match=r"solve: b of shape \(2,\) does not fit a .*\(3, 3\)"):
        cr.linalg.solve(cr.eye(3), cr.ones(2))


SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])


@pytest.mark.parametrize(
    "call",
    [lambda a: cr.linalg.inv(a), lambda a: cr.linalg.solve(a, cr.ones(2))],
    ids=["inv", "solve"],
)
def test_a_singular_matrix_raises_a_linalg_error_naming_the_shape(call):
    with pytest.raises(LinAlgError, match=r"singular") as info:
        call(cr.tensor(SINGULAR))
    assert "(2, 2)" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, np.linalg.LinAlgError)
    batch = np.stack([np.eye(2), SINGULAR])  # one singular matrix in a batch is enough
    with pytest.raises(LinAlgError, match=r"\(2, 2, 2\)"):
        call(cr.tensor(batch))


def test_det_of_a_singular_matrix_is_0_and_its_gradient_raises():
    a = cr.tensor(np.zeros((3, 3)), requires_grad=True)  # det exactly 0
    d = cr.linalg.det(a)
    assert d.item() == 0.0
    with pytest.raises(LinAlgError, match=r"det: the gradient at a singular matrix"):
        d.backward()


def test_slogdet_of_a_singular_matrix_is_minus_inf_with_sign_0_and_no_gradient():
    a = cr.tensor(np.zeros((2, 2)), requires_grad=True)
    sign, logabsdet = cr.linalg.slogdet(a)
    assert sign.item() == 0.0 and logabsdet.item() == -np.inf
    assert not sign.requires_grad
    with pytest.raises(LinAlgError, match="slogdet"):
        logabsdet.backward()


def test_cholesky_of_a_matrix_that_is_not_positive_definite_raises():
    with pytest.raises(LinAlgError, match=r"cholesky: .*\(2, 2\) is not positive definite"):
        cr.linalg.cholesky(cr.tensor([[1.0, 2.0], [2.0, 1.0]]))


def test_eigh_at_repeated_eigenvalues_raises_for_vectors_but_not_for_values(rng):
    a = rotated([1.0, 1.0, 3.0], rng)
    x = cr.tensor(a, requires_grad=True)
    w, v = cr.linalg.eigh(x)
    with pytest.raises(LinAlgError, match=r"eigh backward: repeated eigenvalues"):
        (v * v * cr.tensor(rng.standard_normal((3, 3)))).sum().backward()
    # a loss of the eigenvalues alone: ∂(Σ cᵢ wᵢ)/∂A = V diag(c) Vᵀ, defined at repeats
    c = np.array([1.0, 2.0, 3.0])
    (g,) = grad_of(lambda t: (cr.linalg.eigh(t)[0] * cr.tensor(c)).sum(), a)
    np.testing.assert_allclose(g, v.data @ np.diag(c) @ v.data.T, atol=1e-12)
    (g,) = grad_of(lambda t: cr.linalg.eigh(t)[0].sum(), np.eye(3))  # the trace
    np.testing.assert_allclose(g, np.eye(3), atol=1e-12)


@pytest.mark.parametrize(
    "a",
    [np.eye(3), np.diag([2.0, 1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])],
    ids=["repeated", "zero-square", "zero-tall"],
)
def test_svd_at_repeated_or_zero_singular_values_raises_for_vectors_only(a):
    x = cr.tensor(a, requires_grad=True)
    u, s, vt = cr.linalg.svd(x)
    with pytest.raises(LinAlgError, match=r"svd backward: repeated or zero singular values"):
        (u * u).sum().backward(retain_graph=True)
    (g,) = grad_of(lambda t: cr.linalg.svd(t)[1].sum(), a)  # U Vᵀ
    np.testing.assert_allclose(g, u.data @ vt.data, atol=1e-12)


def test_svd_refuses_full_matrices_and_vectors():
    with pytest.raises(ValueError, match="full_matrices=False"):
        cr.linalg.svd(cr.ones((2, 3)), full_matrices=True)
    with pytest.raises(ValueError, match=r"svd: .*\(3,\)"):
        cr.linalg.svd(cr.ones(3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ord": 3}, "vector ord"),
        ({"ord": "fro", "axis": 0}, "vector ord"),
        ({"ord": 3, "axis": (0, 1)}, "matrix ord"),
        ({"axis": (0, 0)}, "the same"),
        ({"axis": 2}, r"axis 2 does not fit"),
    ],
)
def test_norm_refuses_orders_and_axes_it_does_not_define(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cr.linalg.norm(cr.ones((2, 3)) if "axis" in kwargs else cr.ones(3), **kwargs)
    with pytest.raises(ValueError, match="needs axis"):
        cr.linalg.norm(cr.ones((2, 2, 2)), ord=1)


# ------------------------------------------------------------------ norm: gradient at 0
@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({}, (4,)),
        ({}, (2, 3)),
        ({"ord": 2}, (4,)),
        ({"ord": 1}, (4,)),
        ({"ord": np.inf}, (4,)),
        ({"ord": -np.inf}, (4,)),
        ({"axis": 1}, (2, 3)),
        ({"ord": "fro"}, (2, 3)),
        ({"ord": 1}, (2, 3)),
        ({"ord": np.inf}, (2, 3)),
        ({"ord": "nuc"}, (2, 3)),
        ({"ord": 2}, (2, 3)),
        ({"ord": -2, "axis": (1, 2)}, (2, 2, 3)),
    ],
)
def test_the_gradient_of_a_norm_at_0_is_0_not_nan(kwargs, shape):
    x = cr.tensor(np.zeros(shape), requires_grad=True)
    y = cr.linalg.norm(x, **kwargs)
    np.testing.assert_array_equal(y.data, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros(shape))


def test_norm_at_a_zero_row_has_gradient_0_there_and_x_over_norm_elsewhere():
    x = np.array([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]])
    (g,) = grad_of(lambda t: cr.linalg.norm(t, axis=1).sum(), x)
    np.testing.assert_allclose(g, [[0.0, 0.0, 0.0], [0.6, 0.0, 0.8]])
    gg = cr.hessian(lambda t: cr.linalg.norm(t))(np.array([3.0, 4.0]))
    np.testing.assert_allclose(gg.data, (np.eye(2) - np.outer([0.6, 0.8], [0.6, 0.8])) / 5)


@pytest.mark.parametrize(
    "ord, axis",
    [(None, None), (1, None), (np.inf, 0), (-1, (0, 1)), (-np.inf, (1, 0)), (2, (1, 0))],
)
@pytest.mark.parametrize("keepdims", [False, True])
def test_norm_matches_numpy(ord, axis, keepdims, rng):
    x = rng.standard_normal((3, 4))
    out = cr.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.data, np.linalg.norm(x, ord, axis, keepdims), rtol=1e-12)


# ------------------------------------------------- ill-conditioned and near-degenerate inputs
ILL = hilbert(5)  # cond ≈ 4.8e5
ILL_COND = np.linalg.cond(ILL)


@pytest.mark.parametrize(
    "name, fn, torch_fn",
    [
        (
            "inv",
            lambda a, c: (cr.linalg.inv(a) * c).sum(),
            lambda T, a, c: (T.linalg.inv(a) * c).sum(),
        ),
        ("det", lambda a, c: cr.linalg.det(a), lambda T, a, c: T.linalg.det(a)),
        ("slogdet", lambda a, c: cr.linalg.slogdet(a)[1], lambda T, a, c: T.linalg.slogdet(a)[1]),
        (
            "solve",
            lambda a, c: (cr.linalg.solve(a, c[:, :2]) ** 2).sum(),
            lambda T, a, c: (T.linalg.solve(a, c[:, :2]) ** 2).sum(),
        ),
    ],
)
def test_an_ill_conditioned_matrix_is_differentiated_to_about_cond_times_eps(
    name, fn, torch_fn, torch, rng
):
    c = rng.standard_normal((5, 5))
    (g,) = grad_of(lambda a: fn(a, cr.tensor(c)), ILL)
    (expected,) = torch_grad_of(torch, lambda a: torch_fn(torch, a, torch.tensor(c)), ILL)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(g, expected, rtol=0, atol=100 * ILL_COND * 1e-16 * scale)


def test_a_nearly_singular_matrix_is_inverted_with_a_large_but_finite_gradient(torch):
    a = np.array([[1.0, 1.0], [1.0, 1.0 + 1e-8]])  # cond ≈ 4e8, not singular
    c = np.array([[1.0, 0.0], [0.0, 0.0]])  # the loss is the (0, 0) element of A⁻¹
    (g,) = grad_of(lambda t: (cr.linalg.inv(t) * cr.tensor(c)).sum(), a)
    (expected,) = torch_grad_of(torch, lambda t: (torch.linalg.inv(t) * torch.tensor(c)).sum(), a)
    assert np.isfinite(g).all() and np.abs(g).max() > 1e15  # ‖A⁻¹‖² ≈ 1e16
    np.testing.assert_allclose(g, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


def test_near_repeated_eigenvalues_give_a_large_exact_eigenvector_gradient(torch, rng):
    gap = 1e-5
    a = rotated([1.0, 1.0 + gap, 3.0], rng)
    c = rng.standard_normal((3, 3))

    def loss(v):
        return (v * v * (torch.tensor(c) if isinstance(v, torch.Tensor) else c)).sum()

    (g,) = grad_of(lambda t: loss(cr.linalg.eigh(t)[1]), a)
    (expected,) = torch_grad_of(torch, lambda t: loss(torch.linalg.eigh(t)[1]), a)
    assert np.abs(g).max() > 1e3  # grows like 1/gap
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    # and against finite differences of the symmetrized function (steps well below the gap)
    (g_sym,) = grad_of(lambda t: loss(cr.linalg.eigh((t + t.T) / 2)[1]), a)
    numeric = numerical_grad(lambda t: loss(np.linalg.eigh((t + t.T) / 2)[1]), a, eps=1e-9)
    np.testing.assert_allclose(g_sym, numeric, rtol=1e-3, atol=1e-3 * np.abs(numeric).max())


def test_near_repeated_singular_values_give_a_large_exact_gradient(torch, rng):
    q1, _ = np.linalg.qr(rng.standard_normal((4, 3)))
    q2, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    a = q1 @ np.diag([2.0, 1.0 + 1e-5, 1.0]) @ q2.T
    c = rng.standard_normal((4, 3))

    def loss(u):
        return (u * u * (torch.tensor(c) if isinstance(u, torch.Tensor) else c)).sum()

    (g,) = grad_of(lambda t: loss(cr.linalg.svd(t)[0]), a)
    (expected,) = torch_grad_of(
        torch, lambda t: loss(torch.linalg.svd(t, full_matrices=False)[0]), a
    )
    assert np.abs(g).max() > 1e3
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    numeric = numerical_grad(lambda t: loss(np.linalg.svd(t, full_matrices=False)[0]), a, 1e-9)
    np.testing.assert_allclose(g, numeric, rtol=1e-3, atol=1e-3 * np.abs(numeric).max())


# --------------------------------------------------------- symmetric inputs: the convention
def test_eigh_and_cholesky_gradients_are_symmetric_and_match_torch_on_the_input(torch, rng):
    b = rng.standard_normal((3, 3))
    a = b @ b.T + 3 * np.eye(3)
    c = rng.standard_normal((3, 3))
    cases = [
        (lambda t: (cr.linalg.cholesky(t) * cr.tensor(c)).sum(),
         lambda t: (torch.linalg.cholesky(t) * torch.tensor(c)).sum()),
        (lambda t: (cr.linalg.eigh(t)[1] ** 2 * cr.tensor(c)).sum() + cr.linalg.eigh(t)[0][0],
         lambda t: (torch.linalg.eigh(t)[1] ** 2 * torch.tensor(c)).sum()
         + torch.linalg.eigh(t)[0][0]),
    ]  # fmt: skip
    for fn, torch_fn in cases:
        (g,) = grad_of(fn, a)
        np.testing.assert_allclose(g, g.T, atol=1e-12)
        (expected,) = torch_grad_of(torch, torch_fn, a)
        np.testing.assert_allclose(g, expected, rtol=1e-8, atol=1e-10)
        # it is the derivative of f((A + Aᵀ)/2): the symmetric perturbations agree
        (g_sym,) = grad_of(lambda t, fn=fn: fn((t + t.T) / 2), a)
        np.testing.assert_allclose(g, g_sym, atol=1e-10)


def test_eigh_and_cholesky_read_only_the_lower_triangle():
    a = np.array([[4.0, 100.0], [1.0, 3.0]])  # the upper triangle is ignored, as NumPy
    np.testing.assert_allclose(cr.linalg.cholesky(a).data, np.linalg.cholesky(a))
    w, v = cr.linalg.eigh(a)
    np.testing.assert_allclose(w.data, np.linalg.eigh(a)[0])


# ------------------------------------------------------------------- batches and dtypes
BATCH_CALLS = {
    "norm": lambda a: cr.linalg.norm(a, axis=(-2, -1)),
    "inv": cr.linalg.inv,
    "det": cr.linalg.det,
    "slogdet": lambda a: cr.linalg.slogdet(a)[1],
    "solve": lambda a: cr.linalg.solve(a, cr.tensor(np.arange(6.0).reshape(3, 2))),
    "cholesky": lambda a: cr.linalg.cholesky(a @ a.swapaxes(-1, -2) + 3 * cr.eye(3)),
    "eigh": lambda a: cr.linalg.eigh(a + a.swapaxes(-1, -2))[1] ** 2,
    "svd": lambda a: cr.linalg.svd(a)[2] ** 2,
}


@pytest.mark.parametrize("name", sorted(BATCH_CALLS))
def test_leading_axes_are_a_batch_of_independent_matrices(name, rng):
    a = rng.standard_normal((2, 2, 3, 3)) * 0.3 + 2 * np.eye(3)
    c = rng.standard_normal(np.shape(BATCH_CALLS[name](cr.tensor(a)).data))
    (g,) = grad_of(lambda t: (BATCH_CALLS[name](t) * cr.tensor(c)).sum(), a)
    for i in np.ndindex(2, 2):
        out = BATCH_CALLS[name](cr.tensor(a[i]))
        np.testing.assert_allclose(out.data, BATCH_CALLS[name](cr.tensor(a)).data[i], rtol=1e-10)
        (gi,) = grad_of(lambda t, i=i: (BATCH_CALLS[name](t) * cr.tensor(c[i])).sum(), a[i])
        np.testing.assert_allclose(g[i], gi, rtol=1e-8, atol=1e-12)


def test_float32_stays_float32_in_every_output_and_gradient(rng):
    a = (rng.standard_normal((3, 3)) + 3 * np.eye(3)).astype(np.float32)
    spd = a @ a.T
    calls = [
        lambda t: [cr.linalg.norm(t), cr.linalg.norm(t, "nuc")],
        lambda t: [cr.linalg.inv(t)],
        lambda t: [cr.linalg.det(t)],
        lambda t: list(cr.linalg.slogdet(t)),
        lambda t: [cr.linalg.solve(t, t[0])],
        lambda t: [cr.linalg.cholesky(t @ t.T)],
        lambda t: list(cr.linalg.eigh(spd)) + list(cr.linalg.eigh(t @ t.T)),
        lambda t: list(cr.linalg.svd(t)),
    ]
    for call in calls:
        x = cr.tensor(a, requires_grad=True)
        outs = call(x)
        assert all(o.dtype == np.float32 for o in outs), [o.dtype for o in outs]
        total = sum((o * o).sum() for o in outs if o.requires_grad)
        total.backward()
        assert x.grad.dtype == np.float32


def test_second_order_through_eigh_at_repeated_eigenvalues_raises_not_guesses():
    """The gradient of a loss of the eigenvalues exists at repeated eigenvalues; its
    Hessian (and cr.jvp of that gradient) is computed through the eigenvectors, whose
    derivative divides by the gaps, so it raises rather than giving inf·0."""
    loss = lambda a: (cr.linalg.eigh(a)[0] ** 2).sum()  # noqa: E731
    np.testing.assert_allclose(cr.grad(loss)(np.eye(3)).data, 2 * np.eye(3))
    with pytest.raises(cr.linalg.LinAlgError, match="second derivative"):
        cr.hessian(loss)(np.eye(3))
    assert cr.hessian(loss)(np.diag([1.0, 2.0, 3.0])).shape == (3, 3, 3, 3)
