"""The benchmark workloads W1-W5, each for chainrule, a hand-written NumPy floor and PyTorch.

Every builder returns a zero-argument callable that runs one unit of the workload (one
training step, one Jacobian, ...) on data prepared outside the timed region.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import engine, nn

Step = Callable[[], Any]
F32 = np.float32


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ------------------------------------------------------------------ W1: per-op overhead
def w1_chainrule(n: int = 16) -> Step:
    rng = _rng()
    a = cr.tensor(rng.standard_normal((n, n)).astype(F32), requires_grad=True)
    b = cr.tensor(rng.standard_normal((n, n)).astype(F32), requires_grad=True)

    def step() -> None:
        a.grad = b.grad = None
        ((a * b + a).tanh() * b).sum().backward()

    return step


def w1_numpy(n: int = 16) -> Step:
    rng = _rng()
    a = rng.standard_normal((n, n)).astype(F32)
    b = rng.standard_normal((n, n)).astype(F32)

    def step() -> tuple[np.ndarray, np.ndarray]:
        u = a * b + a
        t = np.tanh(u)
        # L = Σ t∘b: ∂L/∂t = b, ∂L/∂u = b(1 − t²), ∂L/∂a = ∂L/∂u (b + 1), ∂L/∂b = t + ∂L/∂u a
        gu = b * (1 - t * t)
        return gu * (b + 1), t + gu * a

    return step


def w1_torch(n: int = 16) -> Step:
    import torch

    rng = _rng()
    a = torch.tensor(rng.standard_normal((n, n)).astype(F32), requires_grad=True)
    b = torch.tensor(rng.standard_normal((n, n)).astype(F32), requires_grad=True)

    def step() -> None:
        a.grad = b.grad = None
        ((a * b + a).tanh() * b).sum().backward()

    return step


def w1_compiled(n: int = 16) -> Step:
    """W1 through ``cr.compile``: both gradients, as the floor computes them (the loss's
    value, which nothing reads, is left out of the program)."""
    rng = _rng()
    a = rng.standard_normal((n, n)).astype(F32)
    b = rng.standard_normal((n, n)).astype(F32)
    grads = cr.compile(cr.grad(lambda a, b: ((a * b + a).tanh() * b).sum(), argnums=(0, 1)))
    return lambda: grads(a, b)


def train_on(model: Any, optimizer: Any, loss_fn: Any, xb: Any, yb: Any) -> None:
    """One optimizer step on one batch; the same code drives chainrule and PyTorch models."""
    loss = loss_fn(model(xb), yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def training_step(model: Any, optimizer: Any, loss_fn: Any, xb: Any, yb: Any) -> Step:
    """``train_on`` a fixed batch, as a zero-argument step."""
    return lambda: train_on(model, optimizer, loss_fn, xb, yb)


# ------------------------------------------------------------------ W2: MLP training step
def _mlp_data(batch: int, width: int = 256) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng()
    return rng.random((batch, 784), dtype=F32), rng.integers(0, 10, batch)


def _mlp_chainrule(width: int) -> Any:
    cr.manual_seed(0)  # rows in: no Flatten, like the PyTorch and NumPy versions
    return cr.models.mlp(784, (width, width // 2), 10, flatten=False)


def _mlp_torch(width: int) -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(784, width), torch.nn.ReLU(), torch.nn.Linear(width, width // 2),
        torch.nn.ReLU(), torch.nn.Linear(width // 2, 10),
    )  # fmt: skip


class NumpyMLP:
    """The same MLP written by hand: forward, softmax-CE, backward, SGD (the floor)."""

    def __init__(self, width: int, lr: float) -> None:
        rng = _rng()
        sizes = [784, width, width // 2, 10]
        self.ws = [rng.uniform(-0.05, 0.05, (i, o)).astype(F32) for i, o in zip(sizes, sizes[1:])]
        self.bs = [np.zeros(o, F32) for o in sizes[1:]]
        self.lr = F32(lr)

    def forward(self, h: np.ndarray) -> list[np.ndarray]:
        """The activations a[0] = x, ..., a[3] = the logits."""
        activations = [h]
        for i, (w, b) in enumerate(zip(self.ws, self.bs)):
            h = h @ w + b
            if i < 2:
                h = np.maximum(h, 0)
            activations.append(h)
        return activations

    def step(self, x: np.ndarray, y: np.ndarray) -> None:
        ws, bs, lr = self.ws, self.bs, self.lr
        activations = self.forward(x)
        logits = activations[-1]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(x)), y] -= 1
        delta = p / len(x)
        for i in range(2, -1, -1):
            grad_w = activations[i].T @ delta
            grad_b = delta.sum(axis=0)
            if i > 0:
                delta = (delta @ ws[i].T) * (activations[i] > 0)
            ws[i] -= lr * grad_w
            bs[i] -= lr * grad_b


def w2_chainrule(batch: int = 128, width: int = 256) -> Step:
    model = _mlp_chainrule(width)
    optimizer = cr.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    x, y = _mlp_data(batch)
    xb, yb = cr.tensor(x), cr.tensor(y)

    return training_step(model, optimizer, loss_fn, xb, yb)


def compiled_step(model: Any, loss_fn: Any, lr: float) -> Callable[[Any, Any], None]:
    """An SGD step whose loss and gradients are one ``cr.compile``d program, and whose
    update is NumPy, in place (so the program, which holds the weights by reference,
    sees it)."""
    params = list(model.parameters())

    def loss_and_grads(x: Any, y: Any) -> tuple[Any, Any]:
        loss = loss_fn(model(x), y)
        return loss.detach(), engine.grad(loss, params)

    compiled = cr.compile(loss_and_grads)
    rate = F32(lr)

    def step(x: Any, y: Any) -> None:
        _, grads = compiled(x, y)
        for p, g in zip(params, grads):
            p.data -= rate * g.data

    step.compiled = compiled  # type: ignore[attr-defined]
    return step


def w2_compiled(batch: int = 128, width: int = 256) -> Step:
    """W2 with the loss and gradients compiled (``compiled_step``)."""
    step = compiled_step(_mlp_chainrule(width), nn.CrossEntropyLoss(), lr=0.01)
    x, y = _mlp_data(batch)
    return lambda: step(x, y)


def w2_numpy(batch: int = 128, width: int = 256) -> Step:
    """The same step written by hand (``NumpyMLP``)."""
    mlp = NumpyMLP(width, lr=0.01)
    x, y = _mlp_data(batch)
    return lambda: mlp.step(x, y)


def w2_torch(batch: int = 128, width: int = 256) -> Step:
    import torch

    model = _mlp_torch(width)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = _mlp_data(batch)
    xb, yb = torch.from_numpy(x), torch.from_numpy(y)

    return training_step(model, optimizer, loss_fn, xb, yb)


# ------------------------------------------------------------------ W3: LeNet-5 CNN step
def _cnn_data(batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng()
    return rng.random((batch, 1, 28, 28), dtype=F32), rng.integers(0, 10, batch)


def w3_chainrule(batch: int = 64) -> Step:
    cr.manual_seed(0)
    model = cr.models.lenet5()
    optimizer = cr.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    x, y = _cnn_data(batch)
    xb, yb = cr.tensor(x), cr.tensor(y)

    return training_step(model, optimizer, loss_fn, xb, yb)


def w3_compiled(batch: int = 64) -> Step:
    """W3 with the loss and gradients compiled (``compiled_step``)."""
    cr.manual_seed(0)
    step = compiled_step(cr.models.lenet5(), nn.CrossEntropyLoss(), lr=0.01)
    x, y = _cnn_data(batch)
    return lambda: step(x, y)


def _lenet5_torch() -> Any:
    """``cr.models.lenet5()`` in PyTorch (seeded)."""
    import torch

    torch.manual_seed(0)
    t = torch.nn
    model = t.Sequential(
        t.Conv2d(1, 6, 5, padding=2), t.ReLU(), t.MaxPool2d(2),
        t.Conv2d(6, 16, 5), t.ReLU(), t.MaxPool2d(2), t.Flatten(),
        t.Linear(400, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(), t.Linear(84, 10),
    )  # fmt: skip
    return model


def w3_torch(batch: int = 64) -> Step:
    import torch

    model = _lenet5_torch()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = _cnn_data(batch)
    xb, yb = torch.from_numpy(x), torch.from_numpy(y)

    return training_step(model, optimizer, loss_fn, xb, yb)


# ------------------------------------------------------------------ W5: Jacobian, Hessian
def _jacobian_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng()
    return (rng.standard_normal((n, n)) / np.sqrt(n)).astype(F32), rng.standard_normal(n).astype(
        F32
    )


def w5_jacobian_chainrule(n: int = 256) -> Step:
    w, x = _jacobian_data(n)
    wt = cr.tensor(w)
    jac = cr.jacobian(lambda v: (wt @ v).tanh())
    return lambda: jac(x)


def w5_jacobian_numpy(n: int = 256) -> Step:
    w, x = _jacobian_data(n)
    return lambda: (1 - np.tanh(w @ x) ** 2)[:, None] * w


def w5_jacobian_torch(n: int = 256) -> Step:
    import torch

    w, x = _jacobian_data(n)
    wt, xt = torch.from_numpy(w), torch.from_numpy(x)
    jac = torch.func.jacrev(lambda v: torch.tanh(wt @ v))
    return lambda: jac(xt)


def w5_hessian_chainrule(n: int = 100) -> Step:
    w, x = _jacobian_data(n)
    wt = cr.tensor(w)
    hess = cr.hessian(lambda v: (wt @ v).tanh().sum())
    return lambda: hess(x)


def w5_hessian_numpy(n: int = 100) -> Step:
    w, x = _jacobian_data(n)

    def step() -> np.ndarray:
        t = np.tanh(w @ x)
        return w.T @ ((-2 * t * (1 - t * t))[:, None] * w)

    return step


def w5_hessian_torch(n: int = 100) -> Step:
    import torch

    w, x = _jacobian_data(n)
    wt, xt = torch.from_numpy(w), torch.from_numpy(x)
    hess = torch.func.hessian(lambda v: torch.tanh(wt @ v).sum())
    return lambda: hess(xt)


# ------------------------------------------------------------------ W4: one training epoch
class Epoch:
    """One epoch over the training set, batch 128, each framework with its own idiomatic
    data pipeline (what a user writes): chainrule's DataLoader, PyTorch's DataLoader over a
    TensorDataset, and a permutation with fancy indexing for the NumPy floor. ``accuracy()``
    is the test accuracy after the epochs run so far, to show the work was the same."""

    def __init__(self, run: Callable[[], None], accuracy: Callable[[], float]) -> None:
        self.run, self.accuracy = run, accuracy

    def __call__(self) -> None:
        self.run()


def fashion_mnist_rows() -> tuple[tuple[np.ndarray, ...], str]:
    """(x_train, y_train, x_test, y_test) as float32 rows in [0, 1] and int64 labels: the
    real Fashion-MNIST when installed, else random data of its shape (said in the name)."""
    try:
        (x, y), (xt, yt) = cr.data.load_fashion_mnist()
        name = "Fashion-MNIST"
    except FileNotFoundError:
        rng = _rng()
        x, xt = rng.integers(0, 256, (60_000, 28, 28)), rng.integers(0, 256, (10_000, 28, 28))
        y, yt = rng.integers(0, 10, 60_000), rng.integers(0, 10, 10_000)
        name = "random data (dataset-fashion-mnist is not installed)"
    rows = [(a.reshape(len(a), -1) / np.float32(255)).astype(F32) for a in (x, xt)]
    return (rows[0], y.astype(np.int64), rows[1], yt.astype(np.int64)), name


def w4_chainrule(data: tuple[np.ndarray, ...], batch: int = 128) -> Epoch:
    x, y, xt, yt = data
    model = _mlp_chainrule(256)
    optimizer = cr.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    loader = cr.data.DataLoader(
        cr.data.TensorDataset(x, y), batch_size=batch, shuffle=True, seed=0
    )

    def run() -> None:
        for xb, yb in loader:
            train_on(model, optimizer, loss_fn, xb, yb)

    def accuracy() -> float:
        with cr.no_grad():
            return float((model(cr.tensor(xt)).data.argmax(axis=1) == yt).mean())

    return Epoch(run, accuracy)


def w4_numpy(data: tuple[np.ndarray, ...], batch: int = 128) -> Epoch:
    x, y, xt, yt = data
    mlp = NumpyMLP(256, lr=0.1)
    rng = _rng()

    def run() -> None:
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            index = order[start : start + batch]
            mlp.step(x[index], y[index])

    def accuracy() -> float:
        return float((mlp.forward(xt)[-1].argmax(axis=1) == yt).mean())

    return Epoch(run, accuracy)


def w4_torch(data: tuple[np.ndarray, ...], batch: int = 128) -> Epoch:
    import torch

    model = _mlp_torch(256)
    return _torch_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), data, batch)


def _torch_epoch(model: Any, optimizer: Any, data: tuple[np.ndarray, ...], batch: int) -> Epoch:
    """An epoch of ``model`` over ``data`` = (x, y, x_test, y_test), shuffled through
    PyTorch's own DataLoader, and its test accuracy."""
    import torch

    x, y, xt, yt = data
    loss_fn = torch.nn.CrossEntropyLoss()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0)
    )

    def run() -> None:
        for xb, yb in loader:
            train_on(model, optimizer, loss_fn, xb, yb)

    def accuracy() -> float:
        with torch.no_grad():
            return float((model(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean())

    return Epoch(run, accuracy)


# ------------------------------------------------------------------ W4 CNN: LeNet-5 epochs
def _images(rows: np.ndarray) -> np.ndarray:
    return rows.reshape(len(rows), 1, 28, 28)


def w4_cnn_chainrule(data: tuple[np.ndarray, ...], batch: int = 64) -> Epoch:
    """One epoch of ``chainrule train --model cnn``'s defaults (LeNet-5, Adam 1e-3, batch
    64, shuffled DataLoader), without the run directory around it."""
    x, y, xt, yt = data
    cr.manual_seed(0)
    model = cr.models.lenet5()
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = cr.data.DataLoader(
        cr.data.TensorDataset(_images(x), y), batch_size=batch, shuffle=True, seed=0
    )

    def run() -> None:
        for xb, yb in loader:
            train_on(model, optimizer, loss_fn, xb, yb)

    def accuracy() -> float:
        with cr.no_grad():
            return float((model(cr.tensor(_images(xt))).data.argmax(axis=1) == yt).mean())

    return Epoch(run, accuracy)


def w4_cnn_torch(data: tuple[np.ndarray, ...], batch: int = 64) -> Epoch:
    """The same epoch in PyTorch: its LeNet-5 of ``w3_torch``, its DataLoader."""
    import torch

    x, y, xt, yt = data
    model = _lenet5_torch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _torch_epoch(model, optimizer, (_images(x), y, _images(xt), yt), batch)
