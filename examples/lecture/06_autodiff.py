"""Slide "Autodiff": the library implements the derivatives of common functions; the user
writes the layers, the library handles the gradients.

The 3-4-2 network of the previous slide, written with ``cr.nn``: no derivative is written
by hand, ``loss.backward()`` fills every ``.grad``, and those equal the lecture's backprop
to 1e-10. Then the same model trains twice: with the lecture's update written by hand,
W[l] ← W[l] − α ∂L/∂W[l] (one in-place line per parameter), and with ``cr.optim.SGD``; the
two give the same weights, bit for bit. ``cr.viz`` shows the summary table and the
recorded graph that autodiff walks backwards.
Run: ``python examples/lecture/06_autodiff.py``.
"""

import numpy as np

import chainrule as cr
from chainrule import lecture, nn, viz

rng = np.random.default_rng(0)
cr.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.Sigmoid()).double()
print(viz.summary(model, (3,)))

X = rng.standard_normal((16, 3))
Y = np.stack([X[:, 0] > 0, X[:, 1] * X[:, 2] > 0], axis=1).astype(np.float64)
loss_fn = nn.MSELoss()

# autodiff: the user writes the forward pass only
loss = loss_fn(model(cr.tensor(X)), cr.tensor(Y))
loss.backward()
weights = [model[0].weight.grad.numpy(), model[2].weight.grad.numpy()]

# the lecture's backprop on the very same parameters
trace = lecture.backprop(lecture.Network.from_sequential(model), X, Y, loss="mse")
for layer, autodiff_grad in zip(trace.layers, weights):
    np.testing.assert_allclose(layer.dW, autodiff_grad, rtol=1e-10, atol=1e-12)
assert np.isclose(trace.value, loss.item(), rtol=1e-12)
comparison = lecture.compare(model, X, Y, loss_fn)
comparison.assert_agrees(1e-10)
print(f"\nloss.backward() equals the lecture's δ[l] and ∂L/∂W[l] (largest difference "
      f"{comparison.max_abs:.1e})")  # fmt: skip

# what autodiff walked: the recorded graph, from the loss back to the parameters
dot = viz.to_dot(loss, dict(model.named_parameters()))
ops = [name for name in ("Affine", "Tanh", "Sigmoid") if name in dot]  # f = Wᵀa + b: one op
assert ops == ["Affine", "Tanh", "Sigmoid"] and dot.count("requires grad") == 4
print(
    f"the graph has {dot.count(' -> ')} edges; ops {', '.join(ops)}; "
    "4 leaves that require grad (view it: chainrule explain --graph graph.svg)"
)

# training: the library handles the gradients; the update is the lecture's, by hand
start = {name: p.data.copy() for name, p in model.named_parameters()}
first = None
for _ in range(200):
    model.zero_grad()
    loss = loss_fn(model(cr.tensor(X)), cr.tensor(Y))
    loss.backward()
    with cr.no_grad():  # the update itself is not part of the model's graph
        for p in model.parameters():
            p -= 0.5 * p.grad  # W[l] ← W[l] − α ∂L/∂W[l], in place: p stays a parameter
    first = loss.item() if first is None else first
print(f"200 steps of W ← W − α ∂L/∂W by hand: loss {first:.4f} -> {loss.item():.4f}")
assert loss.item() < 0.6 * first
by_hand = {name: p.data.copy() for name, p in model.named_parameters()}

# the same 200 steps with an optimizer, from the same start
for name, p in model.named_parameters():
    p.data[...] = start[name]
optimizer = cr.optim.SGD(model.parameters(), lr=0.5)
for _ in range(200):
    optimizer.zero_grad()
    loss_fn(model(cr.tensor(X)), cr.tensor(Y)).backward()
    optimizer.step()
for name, p in model.named_parameters():
    np.testing.assert_array_equal(p.data, by_hand[name])
print("cr.optim.SGD(lr=0.5) ends with the same weights, bit for bit")

# functional autodiff: the gradient of any scalar function, shaped like its argument
f = lambda w: cr.sigmoid(cr.tensor(X[0]) @ w).sum()  # noqa: E731
w0 = rng.standard_normal((3, 2))
s = 1 / (1 + np.exp(-(X[0] @ w0)))
np.testing.assert_allclose(cr.grad(f)(w0).numpy(), np.outer(X[0], s * (1 - s)), rtol=1e-12)
print("cr.grad(f)(w) = x (σ′(xᵀw))ᵀ, shaped like w", cr.grad(f)(w0).shape)
