"""Version counters: how often the memory behind a tensor was modified in place.

A backward rule reads the arrays its op saved. If one of them was overwritten in place
after the op ran (``x += 1``, an optimizer step between forward and backward), the rule
would compute a wrong gradient without noticing, so the engine refuses instead.

Counters belong to memory, not to Tensor objects: two tensors that share an array (a
reshape, a slice, ``detach()``) see each other's writes, as views in PyTorch share their
base's counter. The memory of an array is its *root*: the ndarray at the end of its
``.base`` chain. Every write records, for its root, the count of writes and the global
*epoch* (a number that grows by one with every write anywhere). A recorded op remembers the
epoch at which it ran; a saved array whose root was written at a later epoch is stale.

Only the ops of chainrule (in-place Tensor methods, optimizers, ``load_state_dict``) bump
counters; writing into ``t.data`` with NumPy directly is not seen.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from chainrule.mode import STATE

__all__ = [
    "WRITES", "root_of", "bump", "version_of", "written_since", "last_writer", "restart",
]  # fmt: skip


class _Writes:
    """The global epoch (read by every recorded op, so a plain attribute)."""

    epoch: int = 0


WRITES = _Writes()

# id(root) -> [number of writes, epoch of the last write, epoch of the last write that
# was recorded in a graph, the name of the last writing op]
_counters: dict[int, list[Any]] = {}


def root_of(array: np.ndarray) -> np.ndarray:
    """The ndarray that owns the memory ``array`` looks at (itself if it owns it)."""
    base = array.base
    while isinstance(base, np.ndarray):
        array, base = base, base.base
    return array


def bump(array: np.ndarray, op: str, recorded: bool = False) -> None:
    """Record one in-place write by ``op`` into ``array``'s memory; ``recorded``: the write
    is itself an op of a graph (an in-place op on a tensor that requires grad)."""
    root = root_of(array)
    WRITES.epoch += 1
    key = id(root)
    counter = _counters.get(key)
    if counter is None:
        counter = _counters[key] = [0, 0, 0, op]
        # forget the counter with the memory, so that a new array at the same address
        # starts at version 0
        weakref.finalize(root, _counters.pop, key, None)
    counter[0] += 1
    counter[1] = WRITES.epoch
    if recorded:
        counter[2] = WRITES.epoch
        STATE.views_written = True  # from now on, ops look for stale views
        STATE.fast = False
    counter[3] = op


def restart(root: np.ndarray) -> None:
    """Version 0 again for ``root``'s memory, which now holds a new array
    (``chainrule.workspace`` hands memory out again). The epochs of its past writes stay:
    they are older than any op the new array takes part in, so no check misreads them."""
    counter = _counters.get(id(root))
    if counter is not None:
        counter[0] = 0


def version_of(array: np.ndarray) -> int:
    """How many in-place writes the memory of ``array`` has seen."""
    counter = _counters.get(id(root_of(array)))
    return 0 if counter is None else counter[0]


def written_since(array: Any, epoch: int, recorded: bool = False) -> bool:
    """True when ``array`` is an ndarray whose memory was written after ``epoch`` (by an
    op recorded in a graph, with ``recorded``).

    Sound even though counters are keyed by ``id``: a caller asks about an array it holds,
    so its root is alive and cannot share an id with an older, freed one. A root that
    ``chainrule.workspace`` hands out again keeps its counter, but every write it records
    came before the new array existed, so at an epoch no op of the new array can precede.
    """
    if not isinstance(array, np.ndarray):
        return False
    counter = _counters.get(id(root_of(array)))
    return counter is not None and counter[2 if recorded else 1] > epoch


def last_writer(array: np.ndarray) -> str:
    """The name of the op that last wrote into ``array``'s memory in place."""
    counter = _counters.get(id(root_of(array)))
    return "an in-place op" if counter is None else counter[3]
