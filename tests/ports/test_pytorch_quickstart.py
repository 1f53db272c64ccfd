"""Port of PyTorch's "Quickstart" tutorial: Fashion-MNIST, an MLP, SGD, train and test loops.

Source: PyTorch tutorials, "Learn the Basics" > "Quickstart",
https://pytorch.org/tutorials/beginner/basics/quickstart_tutorial.html.

The tutorial's program runs on PyTorch and our port of it on chainrule, side by side, and
the printed losses, the test accuracy and loss, and the final weights are compared.

Edits, and why:

- ``torch.`` becomes ``cr.``; ``torch.nn`` becomes ``cr.nn``; the code is otherwise the
  tutorial's (``.to(device)``, ``model.train()``, ``(pred.argmax(1) == y).type(float)``,
  ``torch.save(model.state_dict(), ...)`` and loading it back).
- The data: ``datasets.FashionMNIST(..., transform=ToTensor())`` downloads; chainrule reads
  the Debian package's files (``cr.data.load_fashion_mnist``) and both programs get the same
  arrays, scaled to [0, 1] as ``ToTensor`` does. To keep the suite fast, the port trains
  one epoch on the first 3,200 training images and tests on the first 1,000 test images
  (the tutorial: 5 epochs on all of them).
- float64 on both sides and the same initial weights (chainrule's ``Linear.weight`` is
  (in, out), PyTorch's transpose: copied across transposed), so the runs can be compared at
  1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")

N_TRAIN, N_TEST = 3200, 1000


@pytest.fixture(scope="module")
def fashion():
    try:
        (x_train, y_train), (x_test, y_test) = cr.data.load_fashion_mnist()
    except cr.data.DatasetNotFound as error:
        pytest.skip(f"Fashion-MNIST is not installed: {error}")
    scale = lambda x: (x[:, None] / 255.0).astype(np.float64)  # noqa: E731 (ToTensor: N,1,28,28)
    return (scale(x_train[:N_TRAIN]), y_train[:N_TRAIN]), (scale(x_test[:N_TEST]), y_test[:N_TEST])


# ------------------------------------------------------------------------ chainrule
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def _chainrule_program(data, weights, path, printed):
    (x_train, y_train), (x_test, y_test) = data
    training_data = cr.data.TensorDataset(x_train, y_train)
    test_data = cr.data.TensorDataset(x_test, y_test)
    batch_size = 64
    train_dataloader = cr.data.DataLoader(training_data, batch_size=batch_size)
    test_dataloader = cr.data.DataLoader(test_data, batch_size=batch_size)

    device = "cpu"
    model = NeuralNetwork().to(device).double()
    with cr.no_grad():
        for layer, (w, b) in zip(model.linear_relu_stack[::2], weights):
            layer.weight.copy_(w.T)
            layer.bias.copy_(b)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = cr.optim.SGD(model.parameters(), lr=1e-3)

    def train(dataloader, model, loss_fn, optimizer):
        size = len(dataloader.dataset)
        model.train()
        for batch, (X, y) in enumerate(dataloader):
            X, y = X.to(device), y.to(device)
            pred = model(X)
            loss = loss_fn(pred, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if batch % 10 == 0:
                loss, current = loss.item(), (batch + 1) * len(X)
                printed.append(loss)
                print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")

    def test(dataloader, model, loss_fn):
        size = len(dataloader.dataset)
        num_batches = len(dataloader)
        model.eval()
        test_loss, correct = 0, 0
        with cr.no_grad():
            for X, y in dataloader:
                X, y = X.to(device), y.to(device)
                pred = model(X)
                test_loss += loss_fn(pred, y).item()
                correct += (pred.argmax(1) == y).type(cr.float32).sum().item()
        test_loss /= num_batches
        correct /= size
        print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
        return correct, test_loss

    train(train_dataloader, model, loss_fn, optimizer)
    result = test(test_dataloader, model, loss_fn)

    cr.save(model.state_dict(), path)
    model = NeuralNetwork().to(device).double()
    model.load_state_dict(cr.load(path))
    x, y = test_data[0][0], test_data[0][1]
    with cr.no_grad():
        x = x.to(device)
        pred = model(x[None])
        predicted, actual = int(pred[0].argmax(0).item()), int(y)
    stack = model.linear_relu_stack
    final = [stack[i].weight.numpy().T for i in (0, 2, 4)]
    return result, (predicted, actual), final


# -------------------------------------------------------------------------- PyTorch
def _torch_program(data, weights, path, printed):
    (x_train, y_train), (x_test, y_test) = data
    training_data = torch.utils.data.TensorDataset(
        torch.from_numpy(x_train), torch.from_numpy(y_train)
    )
    test_data = torch.utils.data.TensorDataset(torch.from_numpy(x_test), torch.from_numpy(y_test))
    batch_size = 64
    train_dataloader = torch.utils.data.DataLoader(training_data, batch_size=batch_size)
    test_dataloader = torch.utils.data.DataLoader(test_data, batch_size=batch_size)

    class TorchNeuralNetwork(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = torch.nn.Flatten()
            self.linear_relu_stack = torch.nn.Sequential(
                torch.nn.Linear(28 * 28, 512),
                torch.nn.ReLU(),
                torch.nn.Linear(512, 512),
                torch.nn.ReLU(),
                torch.nn.Linear(512, 10),
            )

        def forward(self, x):
            x = self.flatten(x)
            logits = self.linear_relu_stack(x)
            return logits

    device = "cpu"
    model = TorchNeuralNetwork().to(device).double()
    with torch.no_grad():
        for layer, (w, b) in zip(model.linear_relu_stack[::2], weights):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    size = len(train_dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(train_dataloader):
        X, y = X.to(device), y.to(device)
        pred = model(X)
        loss = loss_fn(pred, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 10 == 0:
            printed.append(loss.item())

    size = len(test_dataloader.dataset)
    num_batches = len(test_dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in test_dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size

    torch.save(model.state_dict(), path)
    model = TorchNeuralNetwork().to(device).double()
    model.load_state_dict(torch.load(path, weights_only=True))
    model.eval()
    x, y = test_data[0][0], test_data[0][1]
    with torch.no_grad():
        pred = model(x[None])
        predicted, actual = int(pred[0].argmax(0)), int(y)
    stack = model.linear_relu_stack
    final = [stack[i].weight.detach().numpy() for i in (0, 2, 4)]
    return (correct, test_loss), (predicted, actual), final


def test_quickstart_trains_and_tests_as_pytorch_does(fashion, tmp_path):
    rng = np.random.default_rng(0)
    shapes = [(512, 784), (512, 512), (10, 512)]  # PyTorch's (out, in)
    weights = [
        (rng.uniform(-1, 1, s) / np.sqrt(s[1]), rng.uniform(-1, 1, s[0]) / np.sqrt(s[1]))
        for s in shapes
    ]
    ours, theirs = [], []
    result, pick, final = _chainrule_program(
        fashion, weights, tmp_path / "model.safetensors", ours
    )
    t_result, t_pick, t_final = _torch_program(fashion, weights, tmp_path / "model.pth", theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert len(ours) == N_TRAIN // 64 // 10
    np.testing.assert_allclose(result, t_result, rtol=1e-9)
    assert pick == t_pick
    for w, t_w in zip(final, t_final):
        np.testing.assert_allclose(w, t_w, rtol=1e-9, atol=1e-12)
    assert ours[-1] < ours[0]  # it learns
