"""Global switches of the autodiff engine: grad mode and anomaly detection.

Both are process-wide (not per thread), like NumPy's error state: the library is
single-threaded and keeps its hot path free of thread-local lookups.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
    "detect_anomaly", "is_anomaly_enabled",
]  # fmt: skip


class _State:
    """Mutable flags read by Function.apply on every call (attribute access is cheap)."""

    grad_enabled: bool = True
    anomaly: bool = False
    #: a recorded in-place write has happened: ops check their inputs for stale views
    views_written: bool = False
    #: neither of the two above: the unrolled apply_one/apply_pair may run (otherwise they
    #: defer to Function.apply, which does the checks), one flag for the hot path to read
    fast: bool = True
    #: under ``no_grad``, where ``Function.apply`` notes the tensors that require grad that
    #: the ops read (``cr.checkpoint`` finds the parameters a function closes over); None:
    #: nothing is noted
    watch: dict[int, Any] | None = None
    #: inside ``cr.vmap``, the function that applies an op to batched values by its
    #: batching rule (``batching.dispatch``); None outside vmap and while the rules and
    #: the engine work on whole batches
    vmap: Any = None
    #: how many ``cr.vmap`` calls are running (the unrolled paths are off while any is)
    vmap_depth: int = 0
    #: inside ``cr.compile``'s trace: the ``compiled.trace.Tracer`` every op call, first-order
    #: backward and gradient the engine makes is reported to; None otherwise
    trace: Any = None


STATE = _State()


@contextmanager
def no_grad() -> Iterator[None]:
    """Record no graph inside the block: outputs do not require grad (inference, updates)."""
    previous = STATE.grad_enabled
    STATE.grad_enabled = False
    try:
        yield
    finally:
        STATE.grad_enabled = previous


@contextmanager
def enable_grad() -> Iterator[None]:
    """Record the graph inside the block, even within ``no_grad``."""
    previous = STATE.grad_enabled
    STATE.grad_enabled = True
    try:
        yield
    finally:
        STATE.grad_enabled = previous


class set_grad_enabled:
    """Turn graph recording on or off: ``cr.set_grad_enabled(False)`` as a call (it stays
    so), or ``with cr.set_grad_enabled(is_training):`` (restored at the end of the block),
    as PyTorch's."""

    def __init__(self, mode: bool) -> None:
        self.previous = STATE.grad_enabled
        STATE.grad_enabled = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        STATE.grad_enabled = self.previous


@contextmanager
def inference_mode(mode: bool = True) -> Iterator[None]:
    """PyTorch's ``inference_mode``: ``no_grad`` here (``mode=False`` changes nothing).

    chainrule has no separate inference tensors: outputs are ordinary tensors that do not
    require grad, usable later in recorded computations.
    """
    if not mode:
        yield
        return
    with no_grad():
        yield


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return STATE.grad_enabled


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise ``FloatingPointError`` at the first op whose forward or backward makes NaN/Inf.

    In this mode every op remembers the line of user code that created it, so the error
    names both the op and where it came from. It costs a stack walk per op: use it to
    debug, not to train.
    """
    previous = STATE.anomaly
    STATE.anomaly = True
    STATE.fast = False
    try:
        yield
    finally:
        STATE.anomaly = previous
        STATE.fast = not previous and not STATE.views_written and not STATE.vmap_depth


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()``."""
    return STATE.anomaly
