"""NumPy kernels that ops and their rules share: a stable sigmoid, the adjoint of indexing,
and the index arithmetic a batch of cotangents needs.

Pure functions of ndarrays, with nothing recorded: the bottom of ``chainrule.ops``, which
every op module and ``rules`` may import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "sigmoid_array", "scatter_add_array", "is_basic", "batched_index", "splits_advanced",
]  # fmt: skip


def sigmoid_array(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1/(1 + e⁻ˣ) without overflow: z = e^(−|x|) never exceeds 1, and
    σ = 1/(1 + z) for x ≥ 0, z/(1 + z) for x < 0 (the numerator is max(z, [x ≥ 0]))."""
    z = np.exp(-np.abs(x))
    return np.maximum(z, x >= 0) / (1 + z)


def scatter_add_array(grad: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    """The ndarray kernel of ``scatter_add``."""
    out = np.zeros(shape, dtype=grad.dtype)
    if is_basic(index):
        out[index] = grad  # basic indexing cannot repeat an element
    else:
        np.add.at(out, index, grad)
    return out


def is_basic(index: Any) -> bool:
    """True for an index of ints, slices, None and Ellipsis only (a view, no repeats)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts
    )


def batched_index(index: Any, extra: int) -> Any:
    """``index`` applied below ``extra`` leading batch axes."""
    if not extra:
        return index
    return (slice(None),) * extra + (index if isinstance(index, tuple) else (index,))


def splits_advanced(index: Any) -> bool:
    """True when the advanced indices are separated by a slice, None or Ellipsis: NumPy then
    moves their axes to the front, and a leading batch axis would land behind them.

    Arrays, lists and booleans are advanced indices; so is an integer, as soon as the index
    holds any array (``a[0, :, [1, 2]]`` has two advanced indices, split by the slice).
    """
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [isinstance(p, (np.ndarray, list, bool, np.bool_)) for p in parts]
    if not any(arrays):
        return False
    advanced = [i for i, p in enumerate(parts) if arrays[i] or isinstance(p, (int, np.integer))]
    return advanced[-1] - advanced[0] + 1 != len(advanced)
