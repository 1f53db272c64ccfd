"""``chainrule.ops.rules``: each helper gives an ndarray for ndarrays and a recorded Tensor
for Tensors, with the same values, and takes a batch of cotangents where it says so."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import rules

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])

CALLS = [
    ("exp", lambda a: rules.exp(a), np.exp),
    ("log", lambda a: rules.log(abs(a)), lambda a: np.log(np.abs(a))),
    ("sigmoid", lambda a: rules.sigmoid(a), lambda a: 1 / (1 + np.exp(-a))),
    ("broadcast_to", lambda a: rules.broadcast_to(a, (4, 2, 3)), lambda a: np.tile(a, (4, 1, 1))),
    (
        "scatter_add",
        lambda a: rules.scatter_add(a, (3, 3), np.array([0, 2])),
        lambda a: np.stack([a[0], np.zeros(3), a[1]]),
    ),
    (
        "scatter_add-repeated",
        lambda a: rules.scatter_add(a[0, :2], (3,), np.array([1, 1])),
        lambda a: np.array([0.0, a[0, 0] + a[0, 1], 0.0]),
    ),
    ("einsum", lambda a: rules.einsum("ij,kj->ik", a, a), lambda a: a @ a.T),
]


@pytest.mark.parametrize("call, reference", [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_an_ndarray_gives_an_ndarray_and_a_tensor_a_recorded_tensor(call, reference):
    plain = call(X)
    assert type(plain) is np.ndarray
    np.testing.assert_allclose(plain, reference(X), rtol=1e-15)
    x = cr.tensor(X, requires_grad=True)
    recorded = call(x)
    assert isinstance(recorded, cr.Tensor) and recorded.requires_grad
    np.testing.assert_allclose(recorded.data, plain, rtol=1e-15)


def _conv_batch(rng):
    x = rng.standard_normal((3, 2, 2, 5, 4))  # a batch of 3 inputs (2, 2, 5, 4)
    w = rng.standard_normal((3, 4, 2, 3, 2))  # a batch of 3 filter banks (4, 2, 3, 2)
    g = rng.standard_normal((3, 2, 4, 3, 3))  # a batch of 3 output gradients
    return x, w, g


CONV = {"stride": (2, 1), "padding": (1, 0)}


def test_the_conv_helpers_take_a_batch_on_either_operand(rng):
    """A batch on one operand is folded into N, O or C and computed in one call: the same
    as one call per batch element."""
    x, w, g = _conv_batch(rng)
    x_shape, w_shape = x.shape[1:], w.shape[1:]
    cases = [
        (lambda i: rules.conv2d(x[i], w[0], **CONV), rules.conv2d(x, w[0], **CONV)),
        (lambda i: rules.conv2d(x[0], w[i], **CONV), rules.conv2d(x[0], w, **CONV)),
        (
            lambda i: rules.conv2d_input(g[i], w[0], x_shape, **CONV),
            rules.conv2d_input(g, w[0], x_shape, **CONV),
        ),
        (
            lambda i: rules.conv2d_input(g[0], w[i], x_shape, **CONV),
            rules.conv2d_input(g[0], w, x_shape, **CONV),
        ),
        (
            lambda i: rules.conv2d_weight(x[i], g[0], w_shape, **CONV),
            rules.conv2d_weight(x, g[0], w_shape, **CONV),
        ),
        (
            lambda i: rules.conv2d_weight(x[0], g[i], w_shape, **CONV),
            rules.conv2d_weight(x[0], g, w_shape, **CONV),
        ),
    ]
    for one, batched in cases:
        assert type(batched) is np.ndarray
        np.testing.assert_allclose(batched, np.stack([one(i) for i in range(3)]), rtol=1e-12)


def test_the_conv_helpers_record_on_tensors(rng):
    x, w, g = _conv_batch(rng)
    xt, wt = cr.tensor(x[0], requires_grad=True), cr.tensor(w[0], requires_grad=True)
    y = rules.conv2d(xt, wt, **CONV)
    assert isinstance(y, cr.Tensor) and y.grad_fn.name == "Conv2dFunction"
    np.testing.assert_allclose(y.data, rules.conv2d(x[0], w[0], **CONV), rtol=1e-14)
    gx = rules.conv2d_input(cr.tensor(g), wt, x.shape[1:], **CONV)  # batched, recorded
    assert gx.shape == x.shape and gx.requires_grad
    gx.sum().backward()
    assert wt.grad is not None and wt.grad.shape == w.shape[1:]
