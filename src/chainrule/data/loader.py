"""``DataLoader``: mini-batches of a dataset, shuffled reproducibly, optionally sharded."""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.creation import default_generator
from chainrule.data.dataset import TensorDataset
from chainrule.tensor import Tensor, as_array

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over a dataset in batches of ``batch_size`` examples, as tuples of Tensors.

    Each ``iter(loader)`` is one epoch. With ``shuffle=True`` the order of epoch e is a
    permutation drawn from ``np.random.default_rng((seed, e))``: a function of the seed and
    the epoch only, so the same seed gives the same batches, every epoch gets a new order,
    and a resumed run calls ``set_epoch(e)`` to continue with exactly the order it would
    have had. The epoch counter starts at 0 and advances by one per ``iter``.

    With ``shard=(rank, world_size)``, each epoch's order is cut into global batches of
    ``batch_size * world_size`` examples (the same permutation on every rank, from the
    same seed), and rank r takes the r-th block of ``batch_size`` of each: the ranks'
    batches are disjoint, and together they are the batches of one process with batch
    size ``batch_size * world_size``. A last, incomplete global batch is split as evenly
    as possible (``np.array_split``), so every rank runs the same number of steps; use
    ``drop_last=True`` to avoid uneven or empty last batches.

    Args:
        dataset: a ``TensorDataset`` (batched with one fancy-indexing operation per array)
            or any object with ``__len__`` and ``__getitem__`` returning a tuple (or one
            array) per example (batched by stacking).
        batch_size: examples per batch (per rank when sharded).
        shuffle: draw a new permutation every epoch.
        drop_last: skip a last batch smaller than ``batch_size`` (per global batch when
            sharded).
        seed: non-negative int seeding the shuffle; None draws one from chainrule's default
            generator when ``shuffle`` is set (reproducible after ``cr.manual_seed``).
        shard: ``(rank, world_size)`` with 0 <= rank < world_size, or None.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        shard: tuple[int, int] | None = None,
    ) -> None:
        _check_int("batch_size", batch_size, 1)
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(
                f"a dataset needs __len__ and __getitem__, got {type(dataset).__name__}"
            )
        if seed is None and shuffle:
            # Drawn only when needed, so that making a loader leaves the default stream alone.
            seed = int(default_generator().integers(2**63))
        if seed is not None:
            _check_int("seed", seed, 0)
        if shard is None:
            shard = (0, 1)
        if not isinstance(shard, (tuple, list)) or len(shard) != 2:
            raise ValueError(f"shard must be (rank, world_size), got {shard!r}")
        _check_int("world_size", shard[1], 1)
        _check_int("rank", shard[0], 0)
        if shard[0] >= shard[1]:
            raise ValueError(f"shard rank {shard[0]} is not below world_size {shard[1]}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = None if seed is None else int(seed)
        self.rank, self.world_size = int(shard[0]), int(shard[1])
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter`` run epoch ``epoch`` (to resume an interrupted run)."""
        _check_int("epoch", epoch, 0)
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """The example indices of ``epoch`` in visiting order (all ranks, before sharding)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        assert self.seed is not None  # drawn in __init__ whenever shuffle is set
        return np.random.default_rng((self.seed, epoch)).permutation(n)

    def __len__(self) -> int:
        """Batches per epoch (the same on every rank)."""
        n = len(self.dataset)
        step = self.batch_size * self.world_size
        return n // step if self.drop_last else -(-n // step)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        epoch = self.epoch
        self.epoch += 1
        return self._batches(self.order(epoch))

    def _batches(self, order: np.ndarray) -> Iterator[tuple[Tensor, ...]]:
        size = self.batch_size
        step = size * self.world_size
        for start in range(0, len(self) * step, step):
            chunk = order[start : start + step]
            if self.world_size == 1:
                indices = chunk
            elif len(chunk) == step:
                indices = chunk[self.rank * size : (self.rank + 1) * size]
            else:
                indices = np.array_split(chunk, self.world_size)[self.rank]
            yield self._fetch(indices)

    def _fetch(self, indices: np.ndarray) -> tuple[Tensor, ...]:
        if isinstance(self.dataset, TensorDataset):
            return tuple(Tensor._make(a[indices], None) for a in self.dataset.arrays)
        samples = [self.dataset[int(i)] for i in indices]
        if not samples:
            raise ValueError("cannot stack an empty batch of a generic dataset")
        if not isinstance(samples[0], tuple):
            samples = [(sample,) for sample in samples]
        fields = zip(*samples)
        return tuple(
            Tensor._make(np.stack([as_array(value) for value in field]), None) for field in fields
        )

    def __repr__(self) -> str:
        return (
            f"DataLoader(len(dataset)={len(self.dataset)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
            f"shard=({self.rank}, {self.world_size}))"
        )


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"invalid {name}: {value} (must be >= {low})")
