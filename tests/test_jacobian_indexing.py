"""Jacobians and Hessians through every kind of NumPy index, against one backward per row.

``cr.jacobian`` runs one batched backward walk with a leading axis of cotangents. NumPy
moves the axes of advanced indices to the front when they are separated by a slice,
``None`` or ``...`` (and an integer counts as advanced next to an array), so such an index
must not be batched: a wrong leading axis once swapped rows silently
(``a[0, :, [1, 2]]``) or crashed.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

M = np.array([[1.0, 2.0], [3.0, 4.0]])

# (index, input shape): every combination of integers, slices, None, Ellipsis, integer
# arrays (with repeats), lists, boolean masks and Python booleans that NumPy accepts
INDICES = [
    ((0, slice(None), [1, 2]), (1, 2, 3)),
    ((np.array([1, 0]), slice(None), 1), (2, 3, 2)),
    ((-2, None, np.array([True, False, True])), (3, 3)),
    ((1, Ellipsis, [0, 1]), (2, 3, 2)),
    (([0, 1], slice(1, None), 0), (2, 3, 2)),
    ((slice(None), [0, 1], 0), (2, 3, 2)),
    ((0, [0, 1], 1), (2, 3, 2)),
    ((True, 0), (2, 3)),
    ((np.array([0, 0, 1]), None, np.array([2, 2, 0])), (2, 3)),
    ((np.array([[0], [1]]), slice(None), np.array([0, 1, 1])), (2, 2, 3)),
    ((slice(None), None, np.array([1, 1])), (2, 3)),
    ((Ellipsis, np.array([0, 2]), 1), (2, 3, 2)),
    ((np.array([0, 1]), np.array([2, 0])), (2, 3)),
    ((np.array([[True, False, True], [False, True, True]]),), (2, 3)),
    ((slice(None, None, -1), 1), (3, 2)),
    ((None, 0, slice(None), None), (2, 3)),
    ((np.int64(1), slice(None), np.array([0])), (2, 2, 2)),
]


def _id(case):
    index, shape = case
    return f"{index!r}-{shape}".replace(" ", "")


def rowwise_jacobian(f, x):
    """∂f(x)[k]/∂x by one backward pass per output element: the reference."""
    out = f(cr.tensor(x))
    rows = []
    for k in range(out.size):
        t = cr.tensor(x, requires_grad=True)
        f(t).reshape(-1)[k].backward()
        rows.append(t.grad.data)
    return np.stack(rows).reshape(out.shape + x.shape)


@pytest.mark.parametrize("case", INDICES, ids=[_id(c) for c in INDICES])
def test_jacobian_through_indexing_equals_row_by_row_backward(case, rng):
    index, shape = case
    x = rng.standard_normal(shape)

    def f(a):
        return cr.tanh(a[index]) * 2.0

    np.testing.assert_allclose(cr.jacobian(f)(x).data, rowwise_jacobian(f, x), rtol=1e-12)


@pytest.mark.parametrize("case", INDICES, ids=[_id(c) for c in INDICES])
def test_hessian_through_indexing_equals_jacobian_of_the_gradient_row_by_row(case, rng):
    index, shape = case
    x = rng.standard_normal(shape)

    def f(a):
        return (cr.tanh(a[index]) ** 2).sum()

    expected = rowwise_jacobian(cr.grad(f), x)
    np.testing.assert_allclose(cr.hessian(f)(x).data, expected, rtol=1e-12, atol=1e-15)


def test_the_issue_example_has_the_rows_in_order():
    a = np.arange(1.0, 7.0).reshape(1, 2, 3)
    jac = cr.jacobian(lambda a: (cr.tensor(M) @ a[0, :, [1, 2]]).sum(axis=1))(a)
    expected = rowwise_jacobian(lambda a: (cr.tensor(M) @ a[0, :, [1, 2]]).sum(axis=1), a)
    np.testing.assert_array_equal(jac.data, expected)


def test_hessian_through_a_mask_after_none_has_no_spurious_off_diagonal(rng):
    x = rng.standard_normal((3, 1))
    h = cr.hessian(lambda x: (x[-2, None, [True]] ** 2 * x.sum()).sum())(x)
    expected = rowwise_jacobian(cr.grad(lambda x: (x[-2, None, [True]] ** 2 * x.sum()).sum()), x)
    np.testing.assert_allclose(h.data, expected, rtol=1e-12)
