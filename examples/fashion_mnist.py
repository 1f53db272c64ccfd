"""Train the lecture's MLP or LeNet-5 on real Fashion-MNIST from Python: cr.models, cr.training.

    python examples/fashion_mnist.py --model mlp --epochs 10   # 784-256-128-10 ReLU, Adam
    python examples/fashion_mnist.py --model cnn --epochs 5    # LeNet-5

Needs the IDX files of the Debian package dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist) or ``--data-dir``. Pixels are scaled to [0, 1]; Adam
with lr 1e-3; batch 128 for the MLP and 64 for the CNN (more steps per epoch). Prints the
test accuracy and the seconds of every epoch. ``chainrule train`` is the same ``fit`` with
more callbacks (checkpoints, a metrics file, plots, Ctrl-C); this script shows the library
calls themselves.
"""

from __future__ import annotations

import argparse

import numpy as np

import chainrule as cr
from chainrule import nn


class PrintEpoch(cr.training.Callback):
    """One line per epoch: the test accuracy (fit's validation set here) and the time."""

    def on_epoch_end(self, state: cr.training.FitState, record: dict) -> None:
        accuracy, seconds = record["val_accuracy"], record["seconds"]
        print(f"epoch {record['epoch']:>2}  test accuracy {100 * accuracy:.2f}%  {seconds:.1f} s")


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
    model = cr.models.mlp(784, (256, 128), 10) if args.model == "mlp" else cr.models.lenet5()
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)
    loader = cr.data.DataLoader(
        cr.data.TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True,
        seed=args.seed,
    )  # fmt: skip
    test = cr.data.DataLoader(cr.data.TensorDataset(x_test, y_test), batch_size=1000)
    cr.training.fit(
        model, nn.CrossEntropyLoss(), optimizer, loader, epochs, val_loader=test,
        callbacks=[PrintEpoch()], progress=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
