"""Slide "Single-layer perceptron": a = g(f(x)), f = w·x + b = wᵀx + b.

One layer, sigmoid g, MSE loss: with the lecture's notation (L = 1), the gradient is
δ = g′(f) ∘ ∂L/∂a and ∂L/∂w = x δᵀ, ∂L/∂b = δ, summed over the m training examples
(the rows of X). Gradient descent, w ← w − η ∂L/∂w, learns to separate two clouds of
points; at every step the gradient of the lecture's formula is checked against autodiff.
Run: ``python examples/lecture/04_perceptron.py``.
"""

import numpy as np

from chainrule import lecture

rng = np.random.default_rng(0)
m = 40
X = np.concatenate([rng.normal(-1.5, 0.6, (m // 2, 2)), rng.normal(1.5, 0.6, (m // 2, 2))])
y = np.concatenate([np.zeros(m // 2), np.ones(m // 2)]).reshape(m, 1)  # class 1: upper right

w = np.zeros((2, 1))  # W[1]: n[0] = 2 inputs by n[1] = 1 output
b = np.zeros(1)
learning_rate = 2.0
losses = []
for step in range(60):
    network = lecture.Network([w], [b], ["sigmoid"])
    trace = lecture.backprop(network, X, y, loss="mse")
    if step % 20 == 0:  # the lecture's gradient is autodiff's gradient
        lecture.compare(network, X, y, loss="mse").assert_agrees(1e-10)
    (layer,) = trace.layers
    # the formula written out once more: ∂L/∂w = Xᵀ (g′(f) ∘ 2(a − y)/m)
    by_hand = X.T @ (layer.a * (1 - layer.a) * 2 * (layer.a - y) / m)
    np.testing.assert_allclose(layer.dW, by_hand, rtol=1e-12)
    w = w - learning_rate * layer.dW
    b = b - learning_rate * layer.db
    losses.append(trace.value)
    if step % 10 == 0:
        print(f"step {step:>2}: L = {trace.value:.4f}")

final = lecture.forward(lecture.Network([w], [b], ["sigmoid"]), X)
accuracy = np.mean((final.output > 0.5) == (y > 0.5))
print(f"after 60 steps: L = {losses[-1]:.4f}, accuracy {accuracy:.0%}, w = {w.ravel()}, b = {b}")
assert losses[-1] < losses[0] / 4
assert accuracy == 1.0
assert w[0, 0] > 0 and w[1, 0] > 0  # both features point towards class 1
