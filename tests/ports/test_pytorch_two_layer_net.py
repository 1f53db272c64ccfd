"""Ports of the two-layer ReLU network of PyTorch's "Learning PyTorch with Examples".

Source: Justin Johnson, "Learning PyTorch with Examples", PyTorch tutorials (the 2017-2020
edition, whose running example is a two-layer net fitting random data),
https://pytorch.org/tutorials/beginner/pytorch_with_examples.html and
https://github.com/jcjohnson/pytorch-examples: ``two_layer_net_autograd.py``,
``two_layer_net_custom_function.py``, ``two_layer_net_nn.py``, ``two_layer_net_optim.py``
(``two_layer_net_module.py``, a custom Module trained by ``optim.SGD``, is left out: the
polynomial ports cover both).

N, D_in, H, D_out = 64, 1000, 100, 10 and 500 steps, as in the tutorial. Each test runs the
original on PyTorch and the port on chainrule and compares the printed losses (every 100th
step) and the final weights.

Edits, and why:

- ``torch.randn`` (data and weights) and ``nn.Linear``'s random init become seeded NumPy
  draws given to both programs, in float64 (``dtype = torch.float`` in the original).
- ``.mm(w)`` becomes ``@ w``, ``.clamp(min=0)`` becomes ``.clip(min=0)`` and ``.pow(2)``
  becomes ``** 2`` (``mm``, ``clamp`` and ``pow`` are planned PyTorch aliases).
- ``Linear.weight`` is (in, out) in chainrule, PyTorch's transpose: the shared start values
  are transposed on the way in and the results on the way out.
- In ``MyReLU`` the forward and backward see ndarrays, so ``input.clamp(min=0)`` becomes
  ``input.clip(min=0)`` and ``grad_output.clone()`` becomes ``grad_output.copy()``.

Tolerance: rtol 1e-9. The matrix products sum in a different order in torch and in NumPy's
BLAS, so the runs differ in the last bits from the first step; 500 steps of gradient
descent (and of Adam) keep that below 1e-9 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

N, D_in, H, D_out = 64, 1000, 100, 10
RTOL = 1e-9


@pytest.fixture
def problem():
    """Random inputs, targets and weights, (in, out) layout, seeded."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, D_in))
    y = rng.standard_normal((N, D_out))
    w1 = rng.standard_normal((D_in, H))
    w2 = rng.standard_normal((H, D_out))
    return x, y, w1, w2


def _layer_init(seed):
    """nn.Linear's default init, U(-1/√in, 1/√in), for both layers, in PyTorch's layout."""
    rng = np.random.default_rng(seed)
    shapes = [((H, D_in), (H,)), ((D_out, H), (D_out,))]
    return [
        (rng.uniform(-1, 1, w) / math.sqrt(w[1]), rng.uniform(-1, 1, b) / math.sqrt(w[1]))
        for w, b in shapes
    ]


# --------------------------------------------------------------- two_layer_net_autograd.py
def _autograd_chainrule(x, y, w1, w2, relu=None):
    x, y = cr.tensor(x), cr.tensor(y)
    w1 = cr.tensor(w1, requires_grad=True)
    w2 = cr.tensor(w2, requires_grad=True)
    learning_rate = 1e-6
    losses = []
    for t in range(500):
        if relu is None:
            y_pred = (x @ w1).clip(min=0) @ w2
        else:
            y_pred = relu(x @ w1) @ w2
        loss = ((y_pred - y) ** 2).sum()
        if t % 100 == 99:
            losses.append(loss.item())
        loss.backward()
        with cr.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return losses, w1.numpy(), w2.numpy()


def _autograd_torch(x, y, w1, w2, relu=None):
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    w1 = torch.tensor(w1, requires_grad=True)
    w2 = torch.tensor(w2, requires_grad=True)
    learning_rate = 1e-6
    losses = []
    for t in range(500):
        if relu is None:
            y_pred = x.mm(w1).clamp(min=0).mm(w2)
        else:
            y_pred = relu(x.mm(w1)).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        if t % 100 == 99:
            losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return losses, w1.detach().numpy(), w2.detach().numpy()


def _assert_same_run(ours, theirs):
    np.testing.assert_allclose(ours[0], theirs[0], rtol=RTOL)
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-12)
    assert ours[0][-1] < 0.01 * ours[0][0]


def test_two_layer_net_autograd_with_grad_zero_(problem):
    """Manual updates, then ``w.grad.zero_()``: the next backward adds into the zeroed grad."""
    _assert_same_run(_autograd_chainrule(*problem), _autograd_torch(*problem))


# -------------------------------------------------------- two_layer_net_custom_function.py
class MyReLU(cr.Function):
    """The tutorial's ReLU; ndarray methods instead of Tensor ones (clip, copy)."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clip(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.copy()
        grad_input[input < 0] = 0
        return grad_input


class TorchMyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


def test_two_layer_net_custom_relu_function(problem):
    """A Function whose backward writes into its gradient by boolean-mask assignment."""
    ours = _autograd_chainrule(*problem, relu=MyReLU.apply)
    _assert_same_run(ours, _autograd_torch(*problem, relu=TorchMyReLU.apply))


# ------------------------------------------ two_layer_net_nn.py and two_layer_net_optim.py
def _sequential(lib, init):
    model = lib.nn.Sequential(
        lib.nn.Linear(D_in, H),
        lib.nn.ReLU(),
        lib.nn.Linear(H, D_out),
    ).double()
    linears = [model[0], model[2]]
    with lib.no_grad():
        for layer, (w, b) in zip(linears, init):
            # chainrule's weight is (in, out): the transpose of PyTorch's (out, in)
            layer.weight.copy_(lib.tensor(w if lib is torch else w.T))
            layer.bias.copy_(lib.tensor(b))
    return model, linears


def _weights(lib, linears):
    """Final weights in PyTorch's layout, and biases."""
    out = []
    for layer in linears:
        w = np.array(layer.weight.detach().numpy())
        out += [w if lib is torch else w.T, np.array(layer.bias.detach().numpy())]
    return out


def _nn_run(lib, x, y, init, optimizer_name=None):
    """two_layer_net_nn.py (optimizer_name None) or two_layer_net_optim.py ("Adam")."""
    x, y = lib.tensor(x), lib.tensor(y)
    model, linears = _sequential(lib, init)
    loss_fn = lib.nn.MSELoss(reduction="sum")
    learning_rate = 1e-4
    if optimizer_name is not None:
        optimizer = getattr(lib.optim, optimizer_name)(model.parameters(), lr=learning_rate)
    losses = []
    for t in range(500):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        if t % 100 == 99:
            losses.append(loss.item())
        if optimizer_name is None:
            model.zero_grad()
            loss.backward()
            with lib.no_grad():
                for param in model.parameters():
                    param -= learning_rate * param.grad
        else:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return [losses] + _weights(lib, linears)


def test_two_layer_net_nn_with_loop_over_parameters(problem):
    x, y = problem[:2]
    init = _layer_init(6)
    _assert_same_run(_nn_run(cr, x, y, init), _nn_run(torch, x, y, init))


def test_two_layer_net_optim_adam(problem):
    x, y = problem[:2]
    init = _layer_init(7)
    _assert_same_run(_nn_run(cr, x, y, init, "Adam"), _nn_run(torch, x, y, init, "Adam"))
