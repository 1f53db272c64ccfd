"""Regressions found by the differential hunt against PyTorch (tests/test_differential_torch.py),
each reduced to its smallest program and checked without PyTorch (closed forms, finite
differences).
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


# ------------------------------------------------------------------ einsum
# A letter of "..." that is 1 in one operand and broadcast by another, in an operand that
# also has a letter summed out of it alone: the backward reshaped the gradient with the
# operand's own size for the broadcast letter, and raised "cannot reshape array of size 3
# into shape (1,1)" (first order, create_graph, jacobian alike).
@pytest.mark.parametrize(
    "subscripts, shapes",
    [
        ("...a,...->...", [(1, 2), (3,)]),
        ("...ab,...->...b", [(1, 2, 3), (4, 3)]),
        ("...ab,...cdb,...->dc...", [(1, 3, 3), (1, 3, 3), (1, 3)]),
    ],
)
def test_einsum_gradient_with_a_broadcast_ellipsis_and_a_letter_summed_alone(
    subscripts, shapes, rng
):
    arrays = [rng.standard_normal(s) for s in shapes]
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    out = cr.einsum(subscripts, *xs)
    np.testing.assert_allclose(out.data, np.einsum(subscripts, *arrays), rtol=1e-12)
    out.sum().backward()
    for x, a in zip(xs, arrays):
        assert x.grad.shape == a.shape
    assert cr.gradcheck(lambda *ts: cr.einsum(subscripts, *ts), arrays)
    assert cr.gradgradcheck(lambda *ts: cr.einsum(subscripts, *ts) ** 2, arrays)


def test_einsum_broadcast_ellipsis_gradient_has_its_closed_form():
    """out[k] = Σₐ x[0, a]·y[k]: ∂Σout/∂x[0, a] = Σₖ y[k], ∂Σout/∂y[k] = Σₐ x[0, a]."""
    x = cr.tensor(np.array([[1.0, 2.0]]), requires_grad=True)
    y = cr.tensor(np.array([0.5, -1.0, 3.0]), requires_grad=True)
    cr.einsum("...a,...->...", x, y).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[2.5, 2.5]])
    np.testing.assert_allclose(y.grad.data, [3.0, 3.0, 3.0])
    jac = cr.jacobian(lambda t: cr.einsum("...a,...->...", t, y))(x.data)
    np.testing.assert_allclose(jac.data, np.broadcast_to(y.data[:, None, None], (3, 1, 2)))


# ------------------------------------------------------------------ in place after div
# Div saved its output, so y = a / b; y += c refused the backward ("Div: a value it saved
# for backward ... was modified in place") where PyTorch, which saves a and b, computes it.
def test_the_output_of_a_division_can_be_modified_in_place_before_backward():
    a = cr.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    b = cr.tensor(np.array([0.5, 4.0, -1.5]), requires_grad=True)
    y = a / b
    y += a
    (y * y).sum().backward()
    h = a.data / b.data + a.data
    np.testing.assert_allclose(a.grad.data, 2 * h * (1 / b.data + 1))
    np.testing.assert_allclose(b.grad.data, 2 * h * -a.data / b.data**2)


def test_division_gradients_stay_right_to_second_order(rng):
    a, b = rng.standard_normal(4), rng.uniform(0.5, 2.0, 4)
    assert cr.gradcheck(lambda x, y: x / y, (a, b))
    assert cr.gradgradcheck(lambda x, y: x / y, (a, b))
    assert cr.gradgradcheck(lambda y: 2.5 / y, (b,))


def test_overwriting_the_numerator_still_refuses_when_the_denominator_needs_it():
    a = cr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = cr.tensor(np.array([3.0, 4.0]), requires_grad=True)
    h = a * 1.0
    y = h / b
    h += 1.0
    with pytest.raises(RuntimeError, match="Div: a value it saved"):
        y.sum().backward()


# ------------------------------------------------------------------ jvp of eigen-/singular vectors
# Found by the hunt: cr.jvp of a function of eigh's eigenvectors or of svd's singular
# vectors was wrong. cr.jvp differentiates the backward pass with respect to a dummy
# cotangent of zeros ("double-vjp"), and the Eigh and Svd backward rules skipped the vector
# terms when the vectors' cotangent was all zero, so the derivative with respect to that
# cotangent lost them: J·v came out as if only w / s were used. Now a recorded cotangent
# that requires grad always takes the vector terms.
_VECTOR_LOSSES = {
    "eigh-v*v": (lambda a: cr.linalg.eigh(a + a.T)[1] ** 2,
                 lambda a: np.linalg.eigh(a + a.T)[1] ** 2),
    "svd-u*u": (lambda a: cr.linalg.svd(a)[0] ** 2, lambda a: np.linalg.svd(a)[0] ** 2),
    "svd-vt*vt": (lambda a: cr.linalg.svd(a)[2] ** 2, lambda a: np.linalg.svd(a)[2] ** 2),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_VECTOR_LOSSES))
def test_jvp_of_eigen_and_singular_vectors_matches_finite_differences(name, rng):
    ours, numpy_f = _VECTOR_LOSSES[name]
    a, d = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    eps = 1e-6
    expected = (numpy_f(a + eps * d) - numpy_f(a - eps * d)) / (2 * eps)
    _, tangent = cr.jvp(ours, (cr.tensor(a),), (cr.tensor(d),))
    np.testing.assert_allclose(tangent.data, expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(_VECTOR_LOSSES))
def test_vjp_of_eigen_and_singular_vectors_matches_finite_differences(name, rng):
    """The reverse rule itself is right (the bug above is jvp's zero dummy cotangent)."""
    ours, numpy_f = _VECTOR_LOSSES[name]
    a, d = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    w = rng.standard_normal((3, 3))
    eps = 1e-6
    expected = np.sum(w * (numpy_f(a + eps * d) - numpy_f(a - eps * d)) / (2 * eps))
    x = cr.tensor(a, requires_grad=True)
    (ours(x) * w).sum().backward()
    np.testing.assert_allclose(np.sum(x.grad.data * d), expected, atol=1e-6)


# Same bug, second order: the jvp of a gradient of the values alone. The gradient
# U diag(w̄) Vᵀ depends on U and V, whose terms jvp's zero dummy cotangent drops again.
_VALUE_LOSSES = {
    "eigh-w": (lambda a: cr.linalg.eigh(a + a.T)[0], lambda a: np.linalg.eigvalsh(a + a.T)),
    "svd-s": (lambda a: cr.linalg.svd(a)[1], lambda a: np.linalg.svd(a, compute_uv=False)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_VALUE_LOSSES))
def test_jvp_of_the_gradient_of_eigen_and_singular_values_is_the_hessian_product(name, rng):
    ours, numpy_f = _VALUE_LOSSES[name]
    a, t = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    w = np.array([0.5, -1.0, 2.0])

    def gradient(x):
        return cr.grad(lambda y: (ours(y) * w).sum())(x)

    _, tangent = cr.jvp(gradient, (cr.tensor(a),), (cr.tensor(t),))
    eps = 1e-5
    hessian_t = gradient(cr.tensor(a + eps * t)).data - gradient(cr.tensor(a - eps * t)).data
    np.testing.assert_allclose(tangent.data, hessian_t / (2 * eps), atol=1e-5)
