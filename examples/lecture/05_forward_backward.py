"""Slides "Forward propagation" and "Backpropagation", on a 3-4-2 network.

    forward:   a[0] = x,  f[l] = (W[l])ᵀ a[l−1] + b[l],  a[l] = g[l](f[l]),  ŷ = a[L]
    backward:  δ[l] = g′[l](f[l]) ∘ (W[l+1] δ[l+1]),  ∂L/∂W[l] = a[l−1] (δ[l])ᵀ

Backprop goes from the last layer to the first and reuses δ[l+1] for layer l: it "avoids
duplicate calculations and unnecessary intermediates". Below, the same ∂L/∂W[1] is also
computed the long way, as a product of full Jacobians (one of them 3-D), and by finite
differences; all three agree. Run: ``python examples/lecture/05_forward_backward.py``.
"""

import numpy as np

from chainrule import lecture

rng = np.random.default_rng(1)
network = lecture.Network.random([3, 4, 2], activation="tanh", output="sigmoid", seed=1)
x = rng.standard_normal(3)
y = np.array([0.2, 0.9])

trace = lecture.backprop(network, x, y, loss="mse", reduction="sum")
first, second = trace.layers
print("forward propagation, one example in columns:")
for layer in trace.layers:
    l = layer.l
    print(f"  f[{l}] {layer.f.shape} = W[{l}]ᵀ {layer.W.T.shape} a[{l - 1}] {layer.a_prev.shape}"
          f" + b[{l}];  a[{l}] = {layer.g}(f[{l}]) {layer.a.shape}")  # fmt: skip
print(f"  L = Σ (ŷ − y)² = {trace.value:.6f}")

# the forward equations, written out
a1 = np.tanh(network.weights[0].T @ x + network.biases[0])
a2 = 1 / (1 + np.exp(-(network.weights[1].T @ a1 + network.biases[1])))
np.testing.assert_allclose(trace.output[:, 0], a2, rtol=1e-14)

# the backward equations, written out
delta2 = a2 * (1 - a2) * 2 * (a2 - y)  # δ[2] = g′(f[2]) ∘ ∂L/∂a[2]
delta1 = (1 - a1**2) * (network.weights[1] @ delta2)  # δ[1] = g′(f[1]) ∘ (W[2] δ[2])
np.testing.assert_allclose(second.delta[:, 0], delta2, rtol=1e-12)
np.testing.assert_allclose(first.delta[:, 0], delta1, rtol=1e-12)
np.testing.assert_allclose(first.dW, np.outer(x, delta1), rtol=1e-12)  # a[0] δ[1]ᵀ
np.testing.assert_allclose(second.dW, np.outer(a1, delta2), rtol=1e-12)  # a[1] δ[2]ᵀ
print("backpropagation:")
for layer in reversed(trace.layers):
    print(f"  δ[{layer.l}] {layer.delta.shape} -> ∂L/∂W[{layer.l}] {layer.dW.shape}")

# The long way: the chain rule with every Jacobian formed in full.
# ∂L/∂W[1] = ∂L/∂a[2] · ∂a[2]/∂f[2] · ∂f[2]/∂a[1] · ∂a[1]/∂f[1] · ∂f[1]/∂W[1]
W1, W2 = network.weights
dL_da2 = 2 * (a2 - y)  # (2,)
da2_df2 = np.diag(a2 * (1 - a2))  # (2, 2)
df2_da1 = W2.T  # (2, 4)
da1_df1 = np.diag(1 - a1**2)  # (4, 4)
df1_dW1 = np.einsum("jk,i->jik", np.eye(4), x)  # (4, 3, 4): f[1]_j by W[1]_ik, 3-D
chain = dL_da2 @ da2_df2 @ df2_da1 @ da1_df1  # (4,): this row vector is δ[1]ᵀ
long_way = np.einsum("j,jik->ik", chain, df1_dW1)
np.testing.assert_allclose(long_way, first.dW, rtol=1e-12)
print(f"the full-Jacobian chain rule gives the same ∂L/∂W[1], via a {df1_dW1.shape} tensor "
      f"({df1_dW1.size} numbers) that backprop never forms")  # fmt: skip

# And finite differences on one weight of W[1] agree as well.
eps = 1e-6
for index in [(0, 0), (2, 3)]:
    bumped = [w.copy() for w in network.weights]
    bumped[0][index] += eps
    up = lecture.backprop(lecture.Network(bumped, network.biases, network.activations), x, y,
                          reduction="sum").value  # fmt: skip
    bumped[0][index] -= 2 * eps
    down = lecture.backprop(lecture.Network(bumped, network.biases, network.activations), x, y,
                            reduction="sum").value  # fmt: skip
    assert abs((up - down) / (2 * eps) - first.dW[index]) < 1e-8
print("finite differences agree on W[1][0, 0] and W[1][2, 3]")

# A batch in rows: the same equations, ∂L/∂W[l] = A[l−1]ᵀ Δ[l] sums over the examples.
X = rng.standard_normal((5, 3))
Y = rng.uniform(size=(5, 2))
batch = lecture.backprop(network, X, Y, reduction="sum")
per_example = sum(lecture.backprop(network, X[i], Y[i], reduction="sum").layers[0].dW
                  for i in range(5))  # fmt: skip
np.testing.assert_allclose(batch.layers[0].dW, per_example, rtol=1e-12)
print(f"a batch of 5 in rows: Δ[1] {batch.layers[0].delta.shape}, ∂L/∂W[1] "
      f"{batch.layers[0].dW.shape} = Σ over the examples")  # fmt: skip

# One gradient-descent step downhill lowers the loss.
step = [w - 0.1 * layer.dW for w, layer in zip(network.weights, trace.layers)]
after = lecture.backprop(lecture.Network(step, network.biases, network.activations), x, y,
                         reduction="sum").value  # fmt: skip
assert after < trace.value
print(f"one step W[l] ← W[l] − 0.1 ∂L/∂W[l]: L {trace.value:.6f} -> {after:.6f}")
