"""Datasets and loaders (``cr.data``).

``TensorDataset`` and ``DataLoader`` (seeded shuffling, per-epoch determinism, sharding
across ranks), ``load_fashion_mnist`` (IDX files, validated), ``load_digits`` and
``load_diabetes`` (bundled with scikit-learn) and ``train_test_split``.
"""

from chainrule.data.builtin import load_diabetes, load_digits
from chainrule.data.dataset import TensorDataset, train_test_split
from chainrule.data.idx import FASHION_MNIST_ROOT, DatasetNotFound, load_fashion_mnist, read_idx
from chainrule.data.loader import DataLoader

__all__ = [
    "TensorDataset",
    "DataLoader",
    "train_test_split",
    "read_idx",
    "load_fashion_mnist",
    "FASHION_MNIST_ROOT",
    "DatasetNotFound",
    "load_digits",
    "load_diabetes",
]
