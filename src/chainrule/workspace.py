"""Reusable memory for the large temporaries of convolutions and pooling.

A training step allocates the same large arrays every time: im2col columns, conv and
pooling outputs, pooling winners, col2im gradients. The C library serves each block above
128 KiB with a fresh ``mmap`` and unmaps it when it is freed, so every step pays page
faults to map and zero those pages again: half of a LeNet-5 step, before this module.

``empty(shape, dtype)`` is ``np.empty`` served from buffers chainrule keeps, one list per
size in bytes. **A buffer is handed out again only when nothing but this pool refers to
it**: CPython counts references, and every array that shares a buffer's memory (a view, a
reshape, a Tensor's ``data``, a node's saved array, a memoryview or ``torch.from_numpy``
of it) holds a reference to it, so a reference count of exactly the pool's own means
that no object in the process can read or write that memory any more. A result handed to
a user, a gradient, or an array a node saved for its backward therefore stays untouched
for as long as anything can reach it; once the last reference is dropped the pages are
reused instead of unmapped. Nothing is keyed on steps or graphs, so nothing depends on
when (or whether) a graph is freed. A reused buffer's in-place write count
(``chainrule.versions``) starts again at 0, as for fresh memory.

The rule relies on CPython's exact reference counts (the interpreter chainrule supports).
Buffers come back uninitialised, like ``np.empty``: callers fill every element they read.
Arrays under ``MIN_BYTES`` come straight from ``np.empty`` (the C library's heap already
reuses small blocks). The pool holds at most ``limit()`` bytes (``set_limit``); past it,
unused buffers are dropped, and a request that still does not fit is served fresh and not
kept. ``clear()`` drops every buffer no one uses.
"""

from __future__ import annotations

import sys
import threading
from math import prod
from typing import Any

import numpy as np

from chainrule import versions

__all__ = ["empty", "empty_like", "clear", "limit", "set_limit", "held_bytes", "MIN_BYTES"]

MIN_BYTES = 128 * 1024  # glibc's mmap threshold: smaller blocks come from its heap

# size in bytes -> uint8 buffers, the one handed out last at the end
_buffers: dict[int, list[np.ndarray]] = {}
_state = {"held": 0, "limit": 256 * 1024 * 1024}
_lock = threading.Lock()


def _references(buffers: list[np.ndarray], index: int) -> int:
    return sys.getrefcount(buffers[index])


# the count _references reads for a buffer that only its list holds (2 on CPython 3.10 to
# 3.13: the list's reference and getrefcount's argument), measured rather than assumed, so
# that an interpreter that counts its own temporaries differently cannot make a buffer in
# use look free
_ALONE = _references([np.empty(0, np.uint8)], 0)


def _unused(buffers: list[np.ndarray], index: int) -> bool:
    """Whether nothing but the pool refers to ``buffers[index]``."""
    return _references(buffers, index) == _ALONE


def empty(shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised C-ordered array of ``shape`` and ``dtype``, like ``np.empty``,
    whose memory may be a buffer that nothing in the process refers to any more."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or dtype.hasobject:  # bytes cannot be viewed as objects
        return np.empty(shape, dtype)
    with _lock:
        buffer = _take(nbytes)
    return buffer.view(dtype).reshape(shape)


def empty_like(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    """``empty`` with a's shape, and a's dtype unless ``dtype`` is given, whose memory order
    is a's (an NCHW view of batch-innermost memory stays batch-innermost), as
    ``np.empty_like``."""
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    if a.size * dtype.itemsize < MIN_BYTES:
        return np.empty_like(a, dtype)
    if a.flags.c_contiguous:
        return empty(a.shape, dtype)
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis])
    inverse = sorted(range(a.ndim), key=order.__getitem__)
    return empty([a.shape[axis] for axis in order], dtype).transpose(inverse)


def _take(nbytes: int) -> np.ndarray:
    """A buffer of ``nbytes`` that nothing uses, kept by the pool if it fits the limit.

    Of the unused buffers, the one handed out most recently: the likeliest to be in cache.
    """
    buffers = _buffers.setdefault(nbytes, [])
    for index in range(len(buffers) - 1, -1, -1):
        if _unused(buffers, index):
            buffer = buffers.pop(index)
            buffers.append(buffer)
            versions.restart(buffer)  # a new array: its in-place writes count from 0
            return buffer
    fresh = np.empty(nbytes, np.uint8)
    if _state["held"] + nbytes > _state["limit"]:
        _release(_state["held"] + nbytes - _state["limit"])
        if _state["held"] + nbytes > _state["limit"]:
            return fresh  # served, not kept: the pool is full of buffers in use
    buffers.append(fresh)
    _state["held"] += nbytes
    return fresh


def _release(wanted: int) -> None:
    """Drop unused buffers, largest sizes first, until ``wanted`` bytes are freed or none
    is left to drop."""
    for nbytes in sorted(_buffers, reverse=True):
        buffers = _buffers[nbytes]
        for index in range(len(buffers) - 1, -1, -1):
            if wanted > 0 and _unused(buffers, index):
                del buffers[index]
                wanted -= nbytes
                _state["held"] -= nbytes
        if wanted <= 0:
            return


def clear() -> None:
    """Give every buffer that nothing uses back to the C library."""
    with _lock:
        _release(_state["held"])


def limit() -> int:
    """The most bytes the pool keeps (256 MiB unless ``set_limit`` changed it)."""
    return _state["limit"]


def set_limit(nbytes: int) -> None:
    """Keep at most ``nbytes`` bytes of buffers (0: keep none, every request is fresh)."""
    if nbytes < 0:
        raise ValueError(f"set_limit: the limit must be at least 0 bytes, got {nbytes}")
    with _lock:
        _state["limit"] = int(nbytes)
        if _state["held"] > nbytes:
            _release(_state["held"] - nbytes)


def held_bytes() -> int:
    """The bytes of all buffers the pool keeps, in use or not."""
    return _state["held"]
