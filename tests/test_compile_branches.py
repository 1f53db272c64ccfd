"""Ops whose eager form takes a shortcut that depends on values: a compiled program must
hold for every input of the signature, so under ``cr.compile``'s trace they take the form
that is right for all of them."""

from __future__ import annotations

import numpy as np

import chainrule as cr

F = cr.nn.functional


def _eager_grad(fn, x: np.ndarray) -> np.ndarray:
    t = cr.tensor(x, requires_grad=True)
    fn(t).backward()
    return t.grad.data


def test_softplus_above_the_threshold_after_a_trace_without_any():
    # traced on values below softplus's threshold, then called with one above it: the
    # program must still give y = x and dy/dx = 1 there, as eager does
    def loss(x):
        return F.softplus(x).sum()

    value = cr.compile(loss)
    grad = cr.compile(cr.grad(loss))
    below, above = np.array([0.5, 1.0]), np.array([0.5, 30.0])
    value(below), grad(below)
    np.testing.assert_array_equal(value(above).data, loss(cr.tensor(above)).data)
    np.testing.assert_array_equal(grad(above).data, _eager_grad(loss, above))
    assert grad(above).data[1] == 1.0  # σ(30) would be 1 − 9.4e-14


def test_softplus_with_beta_keeps_pytorch_semantics_when_compiled():
    def loss(x):
        return F.softplus(x, beta=2.0, threshold=5.0).sum()

    grad = cr.compile(cr.grad(loss))
    grad(np.array([0.1, 0.2]))
    x = np.array([0.1, 4.0])  # βx = 8 > 5: the identity
    np.testing.assert_array_equal(grad(x).data, _eager_grad(loss, x))
