"""Port of PyTorch's "What is torch.nn really?" on scikit-learn's digits instead of MNIST.

Source: Jeremy Howard, "What is torch.nn really?", PyTorch tutorials,
https://pytorch.org/tutorials/beginner/nn_tutorial.html: logistic regression from scratch
(hand-written ``log_softmax`` and ``nll``, ``weights -= weights.grad * lr`` then
``weights.grad.zero_()``), and the final ``nn.Sequential`` CNN trained by
``optim.SGD(momentum=0.9)`` with ``fit``/``loss_batch`` over ``DataLoader``s.

Edits, and why:

- MNIST needs a download; the 8 × 8 digits of ``cr.data.load_digits()`` take its place
  (first 1500 images to train, the rest to validate), so 784 becomes 64 and the CNN's
  ``Lambda(preprocess)`` (a view to 28 × 28 images) is a reshape to (N, 1, 8, 8) of the data.
  Three stride-2 convolutions leave a 1 × 1 map on 8 × 8 images, so ``nn.AvgPool2d(4)``
  becomes ``nn.AvgPool2d(1)``; the last ``Lambda`` (a view to (N, 10)) becomes
  ``nn.Flatten()`` (chainrule has no ``Lambda`` module; ``view`` is a planned alias).
- ``unsqueeze(-1)`` (planned) becomes ``expand_dims(-1)``; ``torch.argmax(out, dim=1)``
  becomes ``cr.argmax(out, axis=1)``; ``.float()`` (planned) becomes ``.astype(np.float32)``.
- ``torch.randn`` and the layers' random init become seeded NumPy draws given to both
  programs, everything in float64 (the tutorial's float32 would make the comparison loose).
- ``DataLoader(train_ds, batch_size=bs, shuffle=True)`` becomes ``shuffle=False``: two
  libraries cannot draw the same permutation.
- ``opt.zero_grad()`` becomes ``opt.zero_grad(set_to_none=False)``: PyTorch's default when
  the tutorial was written (before 2.0), gradients zeroed in place rather than dropped.

Both programs run on the same data from the same start; their losses, accuracies and final
parameters agree at rtol 1e-9 (matrix products and convolutions sum in other orders).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

RTOL = 1e-9
bs = 64  # batch size


@pytest.fixture(scope="module")
def digits():
    x, y = cr.data.load_digits()
    x = x.astype(np.float64)
    return x[:1500], y[:1500], x[1500:], y[1500:]


# ------------------------------------------------------------ "Neural net from scratch"
def _from_scratch(lib, x_train, y_train, x_valid, y_valid, start):
    if lib is cr:
        x_train, y_train, x_valid, y_valid = map(cr.tensor, (x_train, y_train, x_valid, y_valid))
    else:
        x_train, y_train, x_valid, y_valid = map(
            torch.tensor, (x_train, y_train, x_valid, y_valid)
        )
    n, c = x_train.shape

    weights = lib.tensor(start / math.sqrt(64))
    weights.requires_grad_()
    bias = lib.zeros(10, dtype=lib.float64 if lib is torch else np.float64, requires_grad=True)

    def log_softmax(x):
        if lib is torch:
            return x - x.exp().sum(-1).log().unsqueeze(-1)
        return x - x.exp().sum(-1).log().expand_dims(-1)

    def model(xb):
        return log_softmax(xb @ weights + bias)

    def nll(input, target):
        return -input[range(target.shape[0]), target].mean()

    loss_func = nll

    def accuracy(out, yb):
        if lib is torch:
            preds = torch.argmax(out, dim=1)
            return (preds == yb).float().mean()
        preds = cr.argmax(out, axis=1)
        return (preds == yb).astype(np.float32).mean()

    lr = 0.5  # learning rate
    epochs = 2  # how many epochs to train for
    history = [
        (loss_func(model(x_valid), y_valid).item(), accuracy(model(x_valid), y_valid).item())
    ]
    for _epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            xb = x_train[start_i:end_i]
            yb = y_train[start_i:end_i]
            pred = model(xb)
            loss = loss_func(pred, yb)

            loss.backward()
            with lib.no_grad():
                weights -= weights.grad * lr
                bias -= bias.grad * lr
                weights.grad.zero_()
                bias.grad.zero_()
        history.append(
            (loss_func(model(x_valid), y_valid).item(), accuracy(model(x_valid), y_valid).item())
        )
    return np.array(history), [weights.detach().numpy(), bias.detach().numpy()]


def test_logistic_regression_from_scratch(digits):
    start = np.random.default_rng(10).standard_normal((64, 10))
    history, params = _from_scratch(cr, *digits, start)
    t_history, t_params = _from_scratch(torch, *digits, start)
    np.testing.assert_allclose(history, t_history, rtol=RTOL)
    for p, t in zip(params, t_params):
        np.testing.assert_allclose(p, t, rtol=RTOL, atol=1e-12)
    assert history[-1, 0] < 0.5 * history[0, 0] and history[-1, 1] > 0.8


# --------------------------------------------- "Using nn.Sequential" (the CNN) with fit()
def _cnn(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(1),
        nn.Flatten(),
    ).double()


def _conv_init(seed):
    """Conv2d's default init, U(±1/√fan_in), drawn for the three layers (out, in, kh, kw)."""
    rng = np.random.default_rng(seed)
    out = []
    for o, i in [(16, 1), (16, 16), (10, 16)]:
        bound = 1 / math.sqrt(i * 9)
        out.append((rng.uniform(-bound, bound, (o, i, 3, 3)), rng.uniform(-bound, bound, o)))
    return out


def _fit_cnn(lib, x_train, y_train, x_valid, y_valid, init):
    F = lib.nn.functional
    data = lib.data if lib is cr else torch.utils.data
    x_train, x_valid = x_train.reshape(-1, 1, 8, 8), x_valid.reshape(-1, 1, 8, 8)
    x_train, y_train, x_valid, y_valid = map(lib.tensor, (x_train, y_train, x_valid, y_valid))
    train_dl = data.DataLoader(data.TensorDataset(x_train, y_train), batch_size=bs)
    valid_dl = data.DataLoader(data.TensorDataset(x_valid, y_valid), batch_size=bs * 2)

    model = _cnn(lib)
    convs = [model[0], model[2], model[4]]
    with lib.no_grad():
        for conv, (w, b) in zip(convs, init):
            conv.weight.copy_(lib.tensor(w))  # (out, in, kh, kw) in both libraries
            conv.bias.copy_(lib.tensor(b))
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_func = F.cross_entropy

    def loss_batch(model, loss_func, xb, yb, opt=None):
        loss = loss_func(model(xb), yb)
        if opt is not None:
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=False)
        return loss.item(), len(xb)

    val_losses = []
    for _ in range(2):
        model.train()
        for xb, yb in train_dl:
            loss_batch(model, loss_func, xb, yb, opt)
        model.eval()
        with lib.no_grad():
            losses, nums = zip(*[loss_batch(model, loss_func, xb, yb) for xb, yb in valid_dl])
        val_loss = np.sum(np.multiply(losses, nums)) / np.sum(nums)
        val_losses.append(val_loss)
    params = [np.array(p.detach().numpy()) for p in model.parameters()]
    return np.array(val_losses), params


def test_cnn_with_momentum_sgd_and_zero_grad_in_place(digits):
    init = _conv_init(11)
    val_losses, params = _fit_cnn(cr, *digits, init)
    t_val_losses, t_params = _fit_cnn(torch, *digits, init)
    np.testing.assert_allclose(val_losses, t_val_losses, rtol=RTOL)
    for p, t in zip(params, t_params):
        np.testing.assert_allclose(p, t, rtol=RTOL, atol=1e-12)
    # 2 epochs are 48 steps here (MNIST's are 1564): the loss has only started to fall
    assert val_losses[-1] < val_losses[0] < math.log(10)
