"""Optional allocator tuning: keep freed memory in the process instead of unmapping it.

A training step allocates the same large temporaries (im2col columns, activations,
gradients) every time. glibc serves blocks above its mmap threshold with fresh ``mmap``
calls and gives them back with ``munmap`` when freed, so every step pays page faults to
map and zero those pages again; on a LeNet-5 step this is about half of the time.
``keep_freed_memory()`` raises glibc's mmap and trim thresholds so the heap keeps the
pages for the next step. The price: the process's resident memory stays at its peak.

Nothing changes unless you call it (``chainrule train`` does, and ``--no-malloc-tuning``
turns that off); ``keep_freed_memory(False)`` restores glibc's default thresholds. On other
C libraries it does nothing and returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_GLIBC_DEFAULT = 128 * 1024  # both thresholds start at 128 KiB in glibc
_KEEP_MMAP = 1 << 30  # blocks up to 1 GiB come from the heap
_KEEP_TRIM = (1 << 31) - 1  # and up to 2 GiB of free heap stays mapped


def _mallopt():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory(enable: bool = True) -> bool:
    """Keep (or, with ``enable=False``, stop keeping) freed memory mapped for reuse.

    Returns True when the C library accepted the setting (glibc), False otherwise.
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    mmap_threshold = _KEEP_MMAP if enable else _GLIBC_DEFAULT
    trim_threshold = _KEEP_TRIM if enable else _GLIBC_DEFAULT
    ok_mmap = mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(mmap_threshold))
    ok_trim = mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(trim_threshold))
    return bool(ok_mmap and ok_trim)
