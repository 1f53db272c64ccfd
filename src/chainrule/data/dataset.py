"""``TensorDataset`` (arrays indexed along their first axis) and ``train_test_split``."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from chainrule.tensor import Tensor, as_array

__all__ = ["TensorDataset", "train_test_split"]


class TensorDataset:
    """Example i is ``(a[i] for a in arrays)``: inputs and targets that share axis 0.

    The data is not copied: a Tensor or ndarray passed in is shared (lists become arrays,
    Python floats float32). ``DataLoader`` batches a TensorDataset with one fancy-indexing
    operation per array.

    Args:
        *arrays: Tensors or array-likes, each with at least one axis, all of the same
            length along axis 0.

    Raises:
        ValueError: no arrays, a 0-d array, or lengths that differ (all shapes listed).
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        data = tuple(as_array(a) for a in arrays)
        if any(a.ndim == 0 for a in data):
            raise ValueError(
                "TensorDataset arrays need a first (example) axis, got shapes "
                f"{[a.shape for a in data]}"
            )
        if len({a.shape[0] for a in data}) != 1:
            raise ValueError(
                "TensorDataset arrays must have the same length along axis 0, got shapes "
                f"{[a.shape for a in data]}"
            )
        self.arrays: tuple[np.ndarray, ...] = data
        self.tensors: tuple[Tensor, ...] = tuple(Tensor._make(a, None) for a in data)

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        """Example ``index`` (or a batch, for a slice or an integer array) as Tensors."""
        # np.asarray: an integer index into a 1-D array gives a NumPy scalar
        return tuple(Tensor._make(np.asarray(a[index]), None) for a in self.arrays)

    def __repr__(self) -> str:
        return f"TensorDataset(shapes={[a.shape for a in self.arrays]})"


def train_test_split(
    x: Any, y: Any, test_fraction: float = 0.2, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A shuffled split of m examples into m − k for training and k = round(f·m) for testing.

    Deterministic: the same ``seed`` gives the same split.

    Args:
        x: inputs, shape (m, ...) (ndarray or Tensor).
        y: targets, shape (m, ...).
        test_fraction: f in (0, 1), the share of examples held out.
        seed: seed of the permutation (a non-negative int).

    Returns:
        ``(x_train, y_train), (x_test, y_test)`` as ndarrays (copies), in the layout of
        ``load_fashion_mnist``.

    Raises:
        ValueError: lengths differ, f is outside (0, 1), or a part would be empty.
    """
    x = as_array(x)
    y = as_array(y)
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y need the same length along axis 0, got shapes {x.shape} and {y.shape}"
        )
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    m = x.shape[0]
    n_test = round(test_fraction * m)
    if not 0 < n_test < m:
        raise ValueError(
            f"test_fraction {test_fraction} of {m} examples leaves an empty part "
            f"({m - n_test} train, {n_test} test)"
        )
    order = np.random.default_rng(seed).permutation(m)
    train, test = order[n_test:], order[:n_test]
    return (x[train], y[train]), (x[test], y[test])
