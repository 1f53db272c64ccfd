"""The datasets the command line trains on, split into train, validation and test.

The test split is fixed (it does not move with ``--seed``), so runs with different seeds
are measured on the same examples; the validation split is carved from the training data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from chainrule import data
from chainrule.cli.errors import UsageError
from chainrule.cli.output import warn

__all__ = ["Splits", "load_splits", "data_dir_for", "DATASETS"]

DATASETS = ("digits", "fashion-mnist", "diabetes")
_SPLIT_SEED = 20_260_101  # fixed: the same test examples for every run


@dataclass
class Splits:
    """Arrays ready for training: images as (N, C, H, W) float32 in [0, 1]."""

    task: str  # "classification" or "regression"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_outputs: int
    y_mean: float = 0.0  # regression targets are standardised for training
    y_std: float = 1.0

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape: (C, H, W) for images, (n,) for features."""
        return tuple(self.x_train.shape[1:])


def data_dir_for(dataset: str, given: str | None, stored: str | None = None) -> str | None:
    """The Fashion-MNIST folder to read: ``--data-dir`` if given, else the run's own.

    ``--data-dir`` with another dataset is unused: a warning says so, and None comes back.

    Raises:
        UsageError: a ``--data-dir`` that is empty, does not exist or is a file.
    """
    if dataset != "fashion-mnist":
        if given is not None:
            warn(f"--data-dir is ignored: only fashion-mnist is read from files, {dataset} "
                 "comes with scikit-learn")  # fmt: skip
        return None
    if given is None:
        return stored
    if not given.strip():
        raise UsageError("--data-dir needs a folder name, got an empty one")
    if not os.path.exists(given):
        raise UsageError(f"--data-dir {given} does not exist")
    if not os.path.isdir(given):
        raise UsageError(f"--data-dir {given} is a file, not a folder")
    return given


def _fashion_mnist(
    data_dir: str | None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The IDX files, with a missing folder or file told in the command line's words."""
    try:
        return data.load_fashion_mnist(data_dir)
    except data.DatasetNotFound as error:
        raise UsageError(
            f"{error.reason}: install the Debian package dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or give --data-dir FOLDER"
        ) from None


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    held = int(round(n * fraction))
    return np.sort(order[held:]), np.sort(order[:held])


def load_splits(name: str, data_dir: str | None, val_fraction: float) -> Splits:
    """Load ``name`` and split it; raises FileNotFoundError/ValueError with clear messages."""
    if name == "fashion-mnist":
        (x_train, y_train), (x_test, y_test) = _fashion_mnist(data_dir)
        x_train = (x_train.astype(np.float32) / 255.0)[:, None]
        x_test = (x_test.astype(np.float32) / 255.0)[:, None]
        task, n_outputs = "classification", 10
    elif name == "digits":
        x, y = data.load_digits()
        x = np.asarray(x, dtype=np.float32).reshape(-1, 1, 8, 8)
        keep, test = _split(len(x), 0.2, _SPLIT_SEED)
        x_train, y_train, x_test, y_test = x[keep], y[keep], x[test], y[test]
        task, n_outputs = "classification", 10
    elif name == "diabetes":
        x, y = data.load_diabetes()
        keep, test = _split(len(x), 0.2, _SPLIT_SEED)
        x_train, y_train, x_test, y_test = x[keep], y[keep], x[test], y[test]
        task, n_outputs = "regression", 1
    else:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    train, val = _split(len(x_train), val_fraction, _SPLIT_SEED + 1)
    splits = Splits(
        task=task,
        x_train=np.ascontiguousarray(x_train[train], dtype=np.float32),
        y_train=y_train[train],
        x_val=np.ascontiguousarray(x_train[val], dtype=np.float32),
        y_val=y_train[val],
        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
        y_test=y_test,
        n_outputs=n_outputs,
    )
    if task == "classification":
        for field in ("y_train", "y_val", "y_test"):
            setattr(splits, field, np.asarray(getattr(splits, field), dtype=np.int64))
    else:
        y_fit = np.asarray(splits.y_train, dtype=np.float64)
        splits.y_mean, splits.y_std = float(y_fit.mean()), float(y_fit.std()) or 1.0
        for field in ("y_train", "y_val", "y_test"):
            values = np.asarray(getattr(splits, field), dtype=np.float32).reshape(-1, 1)
            setattr(splits, field, values)
    return splits
