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
