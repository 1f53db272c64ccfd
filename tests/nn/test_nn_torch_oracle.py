"""PyTorch as an oracle: each layer and loss, same weights and inputs, float64, to 1e-5.

Forward values and the gradients of the input and of every parameter are compared, for a
random upstream gradient. ``Linear.weight`` is (in, out) here and (out, in) in PyTorch.
"""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

torch = pytest.importorskip("torch")
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _named_pairs(ours, theirs):
    """(name, our parameter, torch parameter), checking both have the same names."""
    mine, torch_ones = list(ours.named_parameters()), list(theirs.named_parameters())
    assert [n for n, _ in mine] == [n for n, _ in torch_ones]
    return [(name, p, t_p) for (name, p), (_, t_p) in zip(mine, torch_ones)]


def _torch_layout(model, name, array):
    """A Linear weight is (in, out) here and (out, in) in PyTorch."""
    owner = model
    for part in name.split(".")[:-1]:
        owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
    return array.T if isinstance(owner, nn.Linear) and name.endswith("weight") else array


def _copy_parameters(ours, theirs):
    with torch.no_grad():
        for name, p, t_p in _named_pairs(ours, theirs):
            value = np.ascontiguousarray(_torch_layout(ours, name, p.data))
            t_p.copy_(torch.from_numpy(value))


def _compare(ours, theirs, x, rng, train=True):
    """Forward, then backward of Σ y∘g for the same random g; compare everything."""
    ours.train(train)
    theirs.train(train)
    x_ours = cr.tensor(x, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), **TOL)
    g = rng.standard_normal(y_ours.shape)
    y_ours.backward(g)
    y_theirs.backward(torch.from_numpy(g))
    np.testing.assert_allclose(x_ours.grad.data, x_theirs.grad.numpy(), **TOL)
    for name, p, t_p in _named_pairs(ours, theirs):
        grad = _torch_layout(ours, name, p.grad.data)
        np.testing.assert_allclose(grad, t_p.grad.numpy(), err_msg=name, **TOL)


def _pair(ours, theirs):
    ours.double()
    theirs.double()
    _copy_parameters(ours, theirs)
    return ours, theirs


def test_linear(rng):
    ours, theirs = _pair(nn.Linear(4, 3), torch.nn.Linear(4, 3))
    _compare(ours, theirs, rng.standard_normal((5, 4)), rng)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((2, 1), (0, 2)), (3, 2)])
def test_conv2d(rng, stride, padding):
    ours, theirs = _pair(
        nn.Conv2d(3, 4, (3, 2), stride=stride, padding=padding),
        torch.nn.Conv2d(3, 4, (3, 2), stride=stride, padding=padding),
    )
    _compare(ours, theirs, rng.standard_normal((2, 3, 8, 7)), rng)


@pytest.mark.parametrize("k, s", [(2, None), (3, 1), (2, 3), (3, 2)])
def test_pooling(rng, k, s):
    x = rng.standard_normal((2, 3, 8, 7))
    _compare(nn.MaxPool2d(k, s), torch.nn.MaxPool2d(k, s), x, rng)
    _compare(nn.AvgPool2d(k, s), torch.nn.AvgPool2d(k, s), x, rng)


def test_max_pool_ties_agree_with_pytorch(rng):
    x = rng.integers(0, 2, (2, 2, 6, 6)).astype(np.float64)  # many ties
    _compare(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), x, rng)
    _compare(nn.MaxPool2d(3, 1), torch.nn.MaxPool2d(3, 1), x, rng)


@pytest.mark.parametrize(
    "ours, theirs, shape",
    [
        (nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)),
        (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
        (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 3, 2)),
    ],
)
def test_batchnorm_train_then_eval(rng, ours, theirs, shape):
    ours, theirs = _pair(ours(3, momentum=0.3), theirs(3, momentum=0.3))
    ours.weight.data[...] = rng.uniform(0.5, 1.5, 3)
    ours.bias.data[...] = rng.standard_normal(3)
    _copy_parameters(ours, theirs)
    for _ in range(2):
        x = rng.standard_normal(shape) * 2 + 1
        ours.zero_grad()
        theirs.zero_grad()
        _compare(ours, theirs, x, rng, train=True)
    np.testing.assert_allclose(ours.running_mean.data, theirs.running_mean.numpy(), **TOL)
    np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), **TOL)
    ours.zero_grad()
    theirs.zero_grad()
    _compare(ours, theirs, rng.standard_normal(shape), rng, train=False)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (nn.ReLU(), torch.nn.ReLU()),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.Softmax(axis=1), torch.nn.Softmax(dim=1)),
        (nn.LogSoftmax(axis=1), torch.nn.LogSoftmax(dim=1)),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Identity(), torch.nn.Identity()),
        (nn.Dropout(0.5), torch.nn.Dropout(0.5)),  # compared in eval mode: the identity
    ],
    ids=lambda m: type(m).__name__,
)
def test_parameter_free_layers(rng, ours, theirs):
    x = rng.standard_normal((3, 4, 2)) * 3
    train = not isinstance(ours, nn.Dropout)
    if isinstance(ours, nn.Identity):
        x_ours = cr.tensor(x, requires_grad=True)
        (ours(x_ours) * 2).sum().backward()  # Identity returns its input: go through an op
        np.testing.assert_array_equal(x_ours.grad.data, 2 * np.ones_like(x))
        return
    _compare(ours, theirs, x, rng, train=train)


def test_lenet_style_network(rng):
    def lenet(ns):
        return ns.Sequential(
            ns.Conv2d(1, 6, 5, padding=2), ns.ReLU(), ns.MaxPool2d(2),
            ns.Conv2d(6, 16, 5), ns.ReLU(), ns.MaxPool2d(2), ns.Flatten(),
            ns.Linear(16 * 5 * 5, 120), ns.ReLU(), ns.Linear(120, 84), ns.ReLU(),
            ns.Linear(84, 10),
        )  # fmt: skip

    ours, theirs = _pair(lenet(nn), lenet(torch.nn))
    _compare(ours, theirs, rng.standard_normal((3, 1, 28, 28)), rng)


# ----------------------------------------------------------------------- losses
def _compare_loss(ours, theirs, prediction, target, differentiate_target=False):
    p_ours = cr.tensor(prediction, requires_grad=True)
    p_theirs = torch.tensor(prediction, requires_grad=True)
    if differentiate_target:
        t_ours = cr.tensor(target, requires_grad=True)
        t_theirs = torch.tensor(target, requires_grad=True)
    else:
        t_ours, t_theirs = target, torch.tensor(target)
    loss_ours, loss_theirs = ours(p_ours, t_ours), theirs(p_theirs, t_theirs)
    np.testing.assert_allclose(loss_ours.data, loss_theirs.detach().numpy(), **TOL)
    g = np.random.default_rng(0).standard_normal(loss_ours.shape)
    loss_ours.backward(g)
    loss_theirs.backward(torch.from_numpy(g))
    np.testing.assert_allclose(p_ours.grad.data, p_theirs.grad.numpy(), **TOL)
    if differentiate_target:
        np.testing.assert_allclose(t_ours.grad.data, t_theirs.grad.numpy(), **TOL)


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses(rng, reduction):
    prediction, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    for ours, theirs in [
        (nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction)),
        (nn.L1Loss(reduction=reduction), torch.nn.L1Loss(reduction=reduction)),
    ]:
        _compare_loss(ours, theirs, prediction, target, differentiate_target=True)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_rmse_is_sqrt_of_pytorch_mse(rng, reduction):
    def theirs(p, t):
        return torch.sqrt(torch.nn.functional.mse_loss(p, t, reduction=reduction))

    prediction, target = rng.standard_normal(7), rng.standard_normal(7)
    _compare_loss(nn.RMSELoss(reduction=reduction), theirs, prediction, target, True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2, 2), (4,)], ids=["NC", "NCdd", "C"])
def test_cross_entropy(rng, shape, reduction):
    logits = rng.standard_normal(shape) * 3
    axis = 1 if len(shape) > 1 else 0
    labels = rng.integers(0, shape[axis], shape[:axis] + shape[axis + 1 :])
    ours = nn.CrossEntropyLoss(reduction=reduction)
    theirs = torch.nn.CrossEntropyLoss(reduction=reduction)
    _compare_loss(ours, theirs, logits, labels)
    probabilities = rng.dirichlet(np.ones(shape[axis]), shape[:axis] + shape[axis + 1 :])
    probabilities = np.moveaxis(probabilities, -1, axis)
    _compare_loss(ours, theirs, logits, probabilities, differentiate_target=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(rng, reduction):
    logits, target = rng.standard_normal((4, 3)) * 5, rng.uniform(0, 1, (4, 3))
    _compare_loss(
        nn.BCEWithLogitsLoss(reduction=reduction),
        torch.nn.BCEWithLogitsLoss(reduction=reduction),
        logits,
        target,
        differentiate_target=True,
    )


@pytest.mark.parametrize("scale", [1e3, 1e4])
def test_losses_at_extreme_logits(scale):
    logits = np.array([[scale, -scale, 0.0], [-scale, scale, scale]])
    _compare_loss(F.cross_entropy, torch.nn.functional.cross_entropy, logits, np.array([1, 2]))
    target = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    _compare_loss(
        F.binary_cross_entropy_with_logits,
        torch.nn.functional.binary_cross_entropy_with_logits,
        logits,
        target,
    )


def test_softplus_and_logsigmoid(rng):
    x = rng.standard_normal(6) * 10
    for ours, theirs in [
        (F.softplus, torch.nn.functional.softplus),
        (F.logsigmoid, torch.nn.functional.logsigmoid),
    ]:
        x_ours, x_theirs = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
        np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), **TOL)
        y_ours.sum().backward()
        y_theirs.sum().backward()
        np.testing.assert_allclose(x_ours.grad.data, x_theirs.grad.numpy(), **TOL)
