"""Slide "Caution": a custom function or layer must be differentiable, or backprop cannot
update the weights correctly.

Three custom activations written as ``cr.Function``s:

* ``Softsign``, y = x/(1 + |x|), with its correct derivative 1/(1 + |x|)²: it passes
  ``cr.gradcheck`` (and ``cr.gradgradcheck``), so it is safe to train through.
* ``BuggySoftsign``: the same function with a wrong derivative (the square is missing).
  Backprop would follow a wrong direction; gradcheck finds the wrong entry.
* ``Step``, the hard threshold of the original perceptron, y = [x > 0]: its derivative is
  0 wherever it exists, so no gradient ever reaches the weights below it. Gradcheck finds
  the jump. A network using it does not learn at all.

Run: ``python examples/lecture/07_caution.py``.
"""

import numpy as np

import chainrule as cr


class Softsign(cr.Function):
    """y = x / (1 + |x|);  dy/dx = 1 / (1 + |x|)²."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + np.abs(x))

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (1 + abs(x)) ** 2  # operators only: differentiable twice


class BuggySoftsign(Softsign):
    """y = x / (1 + |x|), with a wrong derivative: 1 / (1 + |x|)."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (1 + abs(x))


class Step(cr.Function):
    """y = 1 if x > 0 else 0;  dy/dx = 0 (undefined at 0): not differentiable."""

    @staticmethod
    def forward(ctx, x):
        return (x > 0).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * 0


rng = np.random.default_rng(0)
x = rng.uniform(-2, 2, (3, 4))

assert cr.gradcheck(Softsign.apply, x) and cr.gradgradcheck(Softsign.apply, x)
print("Softsign passes gradcheck and gradgradcheck")

for function in (BuggySoftsign, Step):
    try:
        cr.gradcheck(function.apply, x)
    except cr.GradcheckError as error:
        print(f"{function.__name__} is caught: {error}")
    else:
        raise SystemExit(f"gradcheck should have rejected {function.__name__}")

# What the caution means in training: with Step, the weights below never move.
X = rng.standard_normal((32, 2))
y = (X[:, :1] + X[:, 1:] > 0).astype(np.float64)
for activation in (Softsign, Step):
    W1 = cr.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    W2 = cr.tensor(rng.standard_normal((4, 1)), requires_grad=True)
    start = W1.numpy().copy()
    losses = []
    for _ in range(50):
        loss = ((activation.apply(cr.tensor(X) @ W1) @ W2 - cr.tensor(y)) ** 2).mean()
        W1.grad = W2.grad = None
        loss.backward()
        with cr.no_grad():
            W1.data -= 0.2 * W1.grad.numpy()
            W2.data -= 0.2 * W2.grad.numpy()
        losses.append(loss.item())
    moved = float(np.abs(W1.numpy() - start).max())
    print(f"{activation.__name__:>8}: W[1] moved by {moved:.3f}, loss {losses[0]:.3f} -> "
          f"{losses[-1]:.3f}")  # fmt: skip
    if activation is Step:
        assert moved == 0.0  # backprop cannot update the weights below a step
    else:
        assert moved > 0.05 and losses[-1] < losses[0]
