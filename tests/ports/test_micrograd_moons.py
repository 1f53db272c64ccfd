"""Port of micrograd's demo: an MLP trained by SGD on two moons with a max-margin loss.

Source: Andrej Karpathy, micrograd, ``demo.ipynb`` and ``micrograd/nn.py``,
https://github.com/karpathy/micrograd. The demo seeds NumPy and ``random`` with 1337, makes
``make_moons(n_samples=100, noise=0.1)`` with labels ±1, builds ``MLP(2, [16, 16, 1])``
(ReLU neurons, a linear output; weights ``random.uniform(-1, 1)`` neuron by neuron, biases
0), and runs 100 full-batch steps of ``p.data -= learning_rate * p.grad`` with
``learning_rate = 1.0 - 0.9*k/100`` on the SVM loss ``mean(relu(1 - y·score))`` plus
``1e-4 · Σ p²``.

Edits, and why:

- micrograd's ``Value`` is a scalar, so its ``Neuron``/``Layer`` become one chainrule
  ``Layer`` holding a (nin, nout) weight matrix (column j is neuron j's ``w``) and a bias
  vector, and the per-example Python loops become one batch of rows. The random draws are
  micrograd's, in micrograd's order.
- ``p.data -= learning_rate * p.grad`` becomes ``p -= learning_rate * p.grad`` under
  ``cr.no_grad()`` (chainrule's in-place update of a leaf), and ``model.zero_grad()`` stays.

The same program written with torch tensors (float64) is the reference: losses, accuracies
and final parameters agree at rtol 1e-10. The last losses printed in micrograd's own
notebook (scalar arithmetic, another summation order) are matched at rtol 1e-9.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.datasets import make_moons

import chainrule as cr

# The demo notebook's output for steps 96..99 (micrograd, Python floats).
MICROGRAD_LAST_LOSSES = [
    0.010980043387921506,
    0.010979446081684675,
    0.010978888332907229,
    0.010978370135492717,
]


def _micrograd_weights(nin: int, nouts: list[int], seed: int = 1337) -> list[np.ndarray]:
    """micrograd's ``MLP(nin, nouts)`` weights: ``random.uniform(-1, 1)`` neuron by neuron."""
    draw = random.Random(seed).uniform
    sizes = [nin] + nouts
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        neurons = [[draw(-1, 1) for _ in range(n_in)] for _ in range(n_out)]
        weights.append(np.array(neurons).T)  # (nin, nout): column j is neuron j
    return weights


def _moons():
    X, y = make_moons(n_samples=100, noise=0.1, random_state=1337)  # np.random.seed(1337)
    return X, (y * 2 - 1).astype(np.float64)  # make y be -1 or 1


def _mlp(lib, weights):
    """micrograd's MLP, one matrix per layer: ReLU layers, then a linear one."""

    class Layer(lib.nn.Module):
        def __init__(self, w, nonlin=True):
            super().__init__()
            self.w = lib.nn.Parameter(lib.tensor(w))
            self.b = lib.nn.Parameter(lib.tensor(np.zeros(w.shape[1])))
            self.nonlin = nonlin

        def forward(self, x):
            act = x @ self.w + self.b
            return act.relu() if self.nonlin else act

    class MLP(lib.nn.Module):
        def __init__(self):
            super().__init__()
            last = len(weights) - 1
            self.layers = lib.nn.ModuleList(
                [Layer(w, nonlin=i != last) for i, w in enumerate(weights)]
            )

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x.reshape(-1)

    return MLP()


def _train(lib, X, y, weights):
    """The demo's ``loss()`` and its optimisation loop; ``lib`` is chainrule or torch."""
    model = _mlp(lib, weights)
    Xb, yb = lib.tensor(X), lib.tensor(y)

    def loss():
        scores = model(Xb)
        losses = (1 + -yb * scores).relu()
        data_loss = losses.sum() * (1.0 / len(losses))
        alpha = 1e-4
        reg_loss = alpha * sum((p * p).sum() for p in model.parameters())
        total_loss = data_loss + reg_loss
        accuracy = ((yb > 0) == (scores > 0)).numpy().mean()
        return total_loss, accuracy

    history = []
    for k in range(100):
        total_loss, acc = loss()
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        with lib.no_grad():
            for p in model.parameters():
                p -= learning_rate * p.grad
        history.append((total_loss.item(), acc))
    params = [np.array(p.detach().numpy()) for p in model.parameters()]
    return np.array(history), params


def test_micrograd_demo_matches_the_notebook():
    X, y = _moons()
    history, _ = _train(cr, X, y, _micrograd_weights(2, [16, 16, 1]))
    np.testing.assert_allclose(history[-4:, 0], MICROGRAD_LAST_LOSSES, rtol=1e-9)
    assert history[0, 1] == 0.5 and history[-1, 1] == 1.0  # 50% -> 100% accuracy


def test_micrograd_demo_matches_torch():
    torch = pytest.importorskip("torch")
    X, y = _moons()
    weights = _micrograd_weights(2, [16, 16, 1])
    history, params = _train(cr, X, y, weights)
    t_history, t_params = _train(torch, X, y, weights)
    np.testing.assert_allclose(history, t_history, rtol=1e-10)
    for p, t in zip(params, t_params):
        np.testing.assert_allclose(p, t, rtol=1e-10, atol=1e-13)
