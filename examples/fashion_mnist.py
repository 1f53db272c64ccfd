"""Train the lecture's MLP or a LeNet-5 CNN on real Fashion-MNIST with cr.nn, written out.

    python examples/fashion_mnist.py --model mlp --epochs 10   # 784-256-128-10 ReLU, Adam
    python examples/fashion_mnist.py --model cnn --epochs 5    # LeNet-5 style

Needs the IDX files of the Debian package dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist) or ``--data-dir``. Pixels are scaled to [0, 1]; Adam
with lr 1e-3; batch 128 for the MLP and 64 for the CNN (more steps per epoch). Prints the
test accuracy and the seconds of every epoch. ``chainrule train`` does the same with
checkpoints, progress bars and plots; this script shows the library calls themselves.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import chainrule as cr
from chainrule import nn


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )  # fmt: skip


def lenet5() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )  # fmt: skip


def test_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with cr.no_grad():
        logits = np.concatenate(
            [model(cr.tensor(x[i : i + 1000])).numpy() for i in range(0, len(x), 1000)]
        )
    model.train()
    return cr.metrics.accuracy(logits, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--epochs", type=int, default=None, help="default: 10 mlp, 5 cnn")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 128 mlp, 64 cnn")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None, help="use the first N examples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    epochs = args.epochs or (10 if args.model == "mlp" else 5)
    batch_size = args.batch_size or (128 if args.model == "mlp" else 64)

    (x_train, y_train), (x_test, y_test) = cr.data.load_fashion_mnist(args.data_dir)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
        x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    x_train = (x_train.astype(np.float32) / 255.0)[:, None]  # (N, 1, 28, 28) in [0, 1]
    x_test = (x_test.astype(np.float32) / 255.0)[:, None]

    cr.manual_seed(args.seed)
    cr.allocator.keep_freed_memory()  # reuse freed pages from step to step (see its docs)
    model = mlp() if args.model == "mlp" else lenet5()
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = cr.data.DataLoader(
        cr.data.TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True,
        seed=args.seed,
    )  # fmt: skip
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
        accuracy = test_accuracy(model, x_test, y_test)
        print(f"epoch {epoch:>2}  test accuracy {100 * accuracy:.2f}%  {seconds:.1f} s")


if __name__ == "__main__":
    main()
