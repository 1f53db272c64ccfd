"""``Batched``: a tensor that stands for one example of a batch, inside ``cr.vmap``.

``cr.vmap(f)`` runs f once on whole batches, not once per example. Inside f each mapped
value is a ``Batched`` tensor: its memory holds the whole batch, with one leading axis per
active ``vmap`` (outermost first), but its ``shape``, ``ndim``, ``len`` and indexing are an
example's, so f is written, and reads, as if it saw one example. The ops see the batch
axes and move them out of the way (``chainrule.batching``: each op's batching rule).

The engine and the rules work on the whole batch: in *physical* mode (``STATE.vmap`` is
None) a Batched tensor is an ordinary Tensor with its full shape. In *logical* mode, the
user's f, reading a value (``float``, ``bool``, ``.item()``, ``.numpy()``, ``.data``) is
refused with an error that says why: it would be the whole batch, not the example.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import numpy as np

from chainrule.mode import STATE
from chainrule.tensor import Tensor, constant_op

__all__ = [
    "Batched", "physical", "batch_levels", "is_batched", "values_of", "as_batched", "LEVELS",
    "example_ndim", "shift_axes",
]  # fmt: skip

_SLOT: Any = Tensor.__dict__["data"]  # the ndarray slot of Tensor, under the property below

#: the active vmap levels, outermost first: (level id, batch size)
LEVELS: list[tuple[int, int]] = []


def _read_error(what: str) -> NoReturn:
    raise TypeError(
        f"{what} of a batched value inside cr.vmap: the function is traced once for the "
        "whole batch, so a value is not one example's number. Compute with chainrule ops "
        "(cr.where(x > 0, a, b) instead of `if x > 0`), or leave this step outside vmap"
    )


def _get_data(self: Batched) -> np.ndarray:
    """The whole batch's ndarray; refused inside vmap's function, where it would not be one
    example's values."""
    if STATE.vmap is not None:
        _read_error(".data")
    return _SLOT.__get__(self)


def _set_data(self: Batched, value: np.ndarray) -> None:
    _SLOT.__set__(self, value)


class Batched(Tensor):
    """One example of a batch, as f sees it inside ``vmap``; the whole batch in memory.

    ``_levels``: the ids of the vmap levels this value varies over, ascending; its memory
    has one leading axis per level, in that order (its batch axes), then the example.
    """

    __slots__ = ("_levels",)
    _levels: tuple[int, ...]

    data = property(_get_data, _set_data)  # type: ignore[assignment,misc]

    @classmethod
    def wrap(cls, tensor: Tensor, levels: tuple[int, ...]) -> Batched:
        """The Batched view of a whole-batch Tensor (same memory, same node)."""
        out = cls._make(_SLOT.__get__(tensor), tensor._node)
        out._requires_grad = tensor._requires_grad
        out._levels = levels  # type: ignore[attr-defined]
        return out  # type: ignore[return-value]

    @property
    def array(self) -> np.ndarray:
        """The whole batch's ndarray (batch axes first), in any mode."""
        return _SLOT.__get__(self)

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """An example's shape (inside vmap's function); the whole batch's otherwise."""
        shape = _SLOT.__get__(self).shape
        return shape if STATE.vmap is None else shape[len(self._levels) :]

    @property
    def ndim(self) -> int:  # type: ignore[override]
        """An example's number of axes (inside vmap's function)."""
        ndim = _SLOT.__get__(self).ndim
        return ndim if STATE.vmap is None else ndim - len(self._levels)

    @property
    def size(self) -> int:  # type: ignore[override]
        """An example's number of elements (inside vmap's function)."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def dtype(self) -> np.dtype:  # type: ignore[override]
        """The dtype of the values."""
        return _SLOT.__get__(self).dtype

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d tensor")
        return shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    def detach(self) -> Tensor:
        """The same batch, cut off from the graph."""
        return Batched.wrap(Tensor._make(_SLOT.__get__(self), None), self._levels)

    def numpy(self) -> np.ndarray:
        """Refused inside vmap's function; the whole batch's array otherwise."""
        if STATE.vmap is not None:
            _read_error(".numpy()")
        return _SLOT.__get__(self)

    def item(self) -> Any:
        """Refused inside vmap's function (the value is not one number there)."""
        if STATE.vmap is not None:
            _read_error(".item()")
        return super().item()

    def tolist(self) -> Any:
        """Refused inside vmap's function (the values are the whole batch's)."""
        if STATE.vmap is not None:
            _read_error(".tolist()")
        return super().tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if STATE.vmap is not None:
            _read_error("converting to a NumPy array")
        return super().__array__(dtype, copy)

    def __bool__(self) -> bool:
        if STATE.vmap is not None:
            _read_error("bool()")
        return super().__bool__()

    def __float__(self) -> float:
        if STATE.vmap is not None:
            _read_error("float()")
        return super().__float__()

    def __int__(self) -> int:
        if STATE.vmap is not None:
            _read_error("int()")
        return super().__int__()

    def __index__(self) -> int:
        if STATE.vmap is not None:
            _read_error("using it as an index")
        return super().__index__()

    # comparisons make boolean masks without an op; the rule for elementwise ops aligns
    # the operands' batch axes
    def _compare(self, other: Any, name: str) -> Tensor:
        levels, shapes = _aligned_shapes([self, other])
        arrays = [_SLOT.__get__(v) if isinstance(v, Tensor) else v for v in (self, other)]
        # one constant_op for the whole comparison: cr.compile's trace sees it too
        mask = constant_op(_aligned_call, getattr(np, name), shapes, *arrays)
        return Batched.wrap(Tensor._make(mask, None), levels)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, "equal")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, "not_equal")

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, "less")

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, "less_equal")

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, "greater")

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, "greater_equal")

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        shape = _SLOT.__get__(self).shape
        k = len(self._levels)
        return (
            f"Batched(example shape {shape[k:]}, batch axes {shape[:k]} of vmap levels "
            f"{self._levels}, dtype={self.dtype})"
        )


def is_batched(value: Any) -> bool:
    """Whether value is a Batched tensor (one example of a vmap batch)."""
    return type(value) is Batched


def batch_levels(value: Any) -> tuple[int, ...]:
    """The vmap levels a value varies over (none for anything but a Batched tensor)."""
    return value._levels if type(value) is Batched else ()


def _aligned_shapes(values: list[Any]) -> tuple[tuple[int, ...], list[Any]]:
    """For an elementwise NumPy call on the values: the levels of the result, and per value
    the shape its array takes (None: as it is). A Batched array gets a size-1 axis for each
    level it lacks, and size-1 axes after its batch axes up to the largest example rank
    (NumPy aligns the rest from the right, so unbatched values stay as they are)."""
    levels = tuple(sorted({level for v in values for level in batch_levels(v)}))
    rank = max(example_ndim(v) for v in values)
    shapes = [aligned_shape(v, levels, rank) if type(v) is Batched else None for v in values]
    return levels, shapes


def example_ndim(value: Any) -> int:
    """The number of axes of one example of ``value`` (any array-like; a Batched value's
    whole array less its batch axes), in any mode."""
    if isinstance(value, Tensor):
        return _SLOT.__get__(value).ndim - len(batch_levels(value))
    return np.ndim(value)


def shift_axes(axes: tuple[int, ...] | None, batch_axes: int, rank: int) -> tuple[int, ...]:
    """The axes of an example of ``rank`` axes (None: all of them) as axes of the whole
    batch, behind its ``batch_axes`` leading ones."""
    if axes is None:
        return tuple(range(batch_axes, batch_axes + rank))
    return tuple(a % rank + batch_axes for a in axes)


def _aligned_call(fn: Any, shapes: list[Any], *arrays: Any) -> np.ndarray:
    return fn(*(a if s is None else a.reshape(s) for a, s in zip(arrays, shapes)))


def aligned_shape(value: Batched, levels: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """The shape of a Batched value's array with an axis for each of ``levels`` (size 1
    where it does not vary over that level) and its example padded to ``rank`` axes."""
    shape = _SLOT.__get__(value).shape
    own = value._levels
    k = len(own)
    sizes = dict(zip(own, shape[:k]))
    example = shape[k:]
    return (
        *(sizes.get(level, 1) for level in levels),
        *(1,) * (rank - len(example)),
        *example,
    )


def values_of(x: Tensor) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """For NumPy code that reads a tensor's values (argmax, sort, any): the whole array,
    the number of batch axes in front of the example, and the levels to wrap the result
    in (``as_batched``); (data, 0, ()) for an ordinary tensor."""
    if type(x) is Batched:
        return _SLOT.__get__(x), len(x._levels), x._levels
    return x.data, 0, ()


def as_batched(value: Any, levels: tuple[int, ...]) -> Tensor:
    """A result computed by ``values_of``'s caller on the whole batch, as f sees it."""
    tensor = value if isinstance(value, Tensor) else Tensor._make(np.asarray(value), None)
    return Batched.wrap(tensor, levels) if levels else tensor


@contextmanager
def physical() -> Iterator[None]:
    """Work on whole batches: Batched tensors are ordinary tensors with their full shape,
    and ops run without batching rules (the rules themselves and the engine's walks)."""
    previous = STATE.vmap
    STATE.vmap = None
    try:
        yield
    finally:
        STATE.vmap = previous
