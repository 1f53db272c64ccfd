"""Ports of the examples of HIPS autograd's README and tutorial.

Source: Dougal Maclaurin, David Duvenaud, Matt Johnson, Jamie Townsend, "Autograd",
https://github.com/HIPS/autograd: ``README.md`` (a hand-written ``tanh``, its derivative
against finite differences, and six nested ``elementwise_grad``s of it, ``examples/tanh.py``)
and ``docs/tutorial.md`` (logistic regression trained by ``grad``).

Edits, and why:

- ``autograd.numpy as np`` becomes chainrule's functions where a value is traced
  (``np.exp`` → ``cr.exp``, ``np.tanh`` → ``cr.tanh``, ``np.dot`` → ``cr.dot``,
  ``np.sum`` → ``cr.sum``, ``np.log`` → ``cr.log``); data stays NumPy.
- ``grad_tanh(1.0)`` becomes ``grad_tanh(np.float64(1.0))``: a Python float becomes a
  float32 tensor in chainrule (its documented default, as in JAX), a float64 in autograd.
- ``elementwise_grad`` does not exist in chainrule; for a function that acts elementwise it
  is the gradient of the sum, ``egrad = lambda f: cr.grad(lambda x: f(x).sum())``, a
  one-line helper at the top of the port.
- ``weights -= training_gradient_fun(weights) * 0.01``: chainrule's ``grad`` returns a
  Tensor, and an ndarray cannot be updated in place by a Tensor (a clear ``TypeError``),
  so the port takes ``.numpy()`` of the gradient.

References: the numbers printed in the README, the closed forms of tanh's derivatives
(tanh⁽ⁿ⁺¹⁾ = P′ₙ(t)·(1 − t²) with t = tanh x), and the same programs on torch (nested
``torch.autograd.grad`` with ``create_graph``, and ``torch.func.grad``).
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def tanh(x):
    """The README's tanh, (1 − e^(−2x)) / (1 + e^(−2x))."""
    y = cr.exp(-2.0 * x)
    return (1.0 - y) / (1.0 + y)


def egrad(f):
    """autograd's ``elementwise_grad`` for an elementwise f: the gradient of its sum."""
    return cr.grad(lambda x: f(x).sum())


def _nested(n):
    f = tanh
    for _ in range(n):
        f = egrad(f)
    return f


def _closed_form_derivatives(x, n):
    """tanh and its first n derivatives as polynomials in t = tanh(x)."""
    t = np.tanh(x)
    poly = np.polynomial.Polynomial([0.0, 1.0])  # P0(t) = t
    one_minus_t2 = np.polynomial.Polynomial([1.0, 0.0, -1.0])
    out = [poly(t)]
    for _ in range(n):
        poly = poly.deriv() * one_minus_t2
        out.append(poly(t))
    return out


def test_readme_grad_tanh_at_one():
    grad_tanh = cr.grad(tanh)
    value = grad_tanh(np.float64(1.0))
    np.testing.assert_allclose(value.item(), 0.41997434161402603, rtol=1e-15)
    finite = (tanh(np.float64(1.0001)) - tanh(np.float64(0.9999))) / 0.0002
    # a difference quotient: one ulp of tanh (another exp than autograd's) is 5e-13 of it
    np.testing.assert_allclose(finite.item(), 0.41997434264973155, rtol=1e-11)


def test_readme_six_nested_elementwise_grads_match_closed_forms():
    x = np.linspace(-7, 7, 200)
    ours = [np.asarray(_nested(n)(x)) for n in range(7)]
    exact = _closed_form_derivatives(x, 6)
    for n, (a, b) in enumerate(zip(ours, exact)):
        # Far from 0 the derivatives are tiny differences of O(1) terms (the README's
        # formula divides 1 − e^14 by 1 + e^14), so the error is relative to the largest
        # value of each derivative, not to each value (measured: below 7e-15 of it).
        scale = np.abs(b).max()
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * scale, err_msg=f"order {n}")


def test_readme_six_nested_elementwise_grads_match_torch():
    torch = pytest.importorskip("torch")
    x = np.linspace(-7, 7, 200)
    tx = torch.tensor(x, requires_grad=True)
    y = torch.exp(-2.0 * tx)
    d = (1.0 - y) / (1.0 + y)
    theirs = [d.detach().numpy().copy()]
    for _ in range(6):
        (d,) = torch.autograd.grad(d.sum(), tx, create_graph=True)
        theirs.append(d.detach().numpy().copy())
    for n in range(7):
        ours = np.asarray(_nested(n)(x))
        scale = np.abs(theirs[n]).max()
        np.testing.assert_allclose(ours, theirs[n], rtol=1e-12, atol=1e-13 * scale)


# --------------------------------------------------------------- the tutorial's regression
INPUTS = np.array(
    [[0.52, 1.12, 0.77], [0.88, -1.08, 0.15], [0.52, 0.06, -1.30], [0.74, -2.49, 1.39]]
)
TARGETS = np.array([True, True, False, True])


def sigmoid(x):
    return 0.5 * (cr.tanh(x / 2.0) + 1)


def logistic_predictions(weights, inputs):
    return sigmoid(cr.dot(inputs, weights))


def training_loss(weights):
    preds = logistic_predictions(weights, INPUTS)
    label_probabilities = preds * TARGETS + (1 - preds) * (1 - TARGETS)
    return -cr.sum(cr.log(label_probabilities))


def _train_logistic():
    training_gradient_fun = cr.grad(training_loss)
    weights = np.array([0.0, 0.0, 0.0])
    losses = [training_loss(weights).item()]
    for _ in range(100):
        weights -= training_gradient_fun(weights).numpy() * 0.01
        losses.append(training_loss(weights).item())
    return np.array(losses), weights


def test_tutorial_logistic_regression_trains():
    losses, _ = _train_logistic()
    np.testing.assert_allclose(losses[0], 4 * np.log(2), rtol=1e-15)  # p = ½ everywhere
    assert np.all(np.diff(losses) < 0) and losses[-1] < 0.5 * losses[0]


def test_tutorial_logistic_regression_matches_torch_func():
    torch = pytest.importorskip("torch")
    inputs, targets = torch.from_numpy(INPUTS), torch.from_numpy(TARGETS)

    def torch_loss(weights):
        preds = 0.5 * (torch.tanh(inputs @ weights / 2.0) + 1)
        label_probabilities = preds * targets + (1 - preds) * (1 - targets.double())
        return -torch.sum(torch.log(label_probabilities))

    gradient = torch.func.grad(torch_loss)
    weights = torch.zeros(3, dtype=torch.float64)
    t_losses = [torch_loss(weights).item()]
    for _ in range(100):
        weights = weights - gradient(weights) * 0.01
        t_losses.append(torch_loss(weights).item())
    losses, ours = _train_logistic()
    np.testing.assert_allclose(losses, t_losses, rtol=1e-12)
    np.testing.assert_allclose(ours, weights.numpy(), rtol=1e-12)
