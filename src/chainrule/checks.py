"""The checks the core runs and the errors it raises: one place for every message.

- What a backward returns: one gradient per input, each of its input's shape (or one that
  sums back to it).
- In-place writes: a saved value overwritten since it was saved, a view used after its
  memory was rewritten through another tensor (see ``chainrule.versions``).
- Anomaly mode: the op whose forward or backward turned finite numbers into NaN or Inf,
  and the line of the user's code that created it.

Nothing here runs on the engine's fast path unless something is off: each check is
called when a cheap test (a type, a shape, an integer comparison) has already failed.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import numpy as np

from chainrule.graph import Context
from chainrule.tensor import Tensor
from chainrule.versions import last_writer, written_since

__all__ = [
    "gradient_tuple", "check_gradient_shape", "refuse_freed", "check_versions",
    "refuse_stale_views", "check_forward", "check_backward", "user_frame",
]  # fmt: skip

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


# ----------------------------------------------------------------- what backward returns
def gradient_tuple(node: Context, grads: Any) -> tuple[Any, ...]:
    """What backward returned as a tuple of one gradient per input, or a clear error."""
    if type(grads) is list:
        grads = tuple(grads)
    elif type(grads) is not tuple:
        grads = (grads,)
    if len(grads) != len(node.parents):
        raise RuntimeError(
            f"{node.name}.backward returned {len(grads)} gradient(s), but forward "
            f"took {len(node.parents)} input(s): return one per input (None where none)"
        )
    return grads


def check_gradient_shape(
    node: Context, index: int, grad_shape: tuple[int, ...], out_ndim: int, batch: int
) -> None:
    """Raise unless a gradient of ``grad_shape`` for input ``index`` is its input's shape or
    sums back to it: the input's shape broadcasts to it, and it has no axis that no array
    of the op had (that could not come from broadcasting). ``batch`` leading axes of
    cotangents are allowed on top."""
    shape = node.input_meta[index][0]
    if grad_shape == shape or _reduces_to(node, grad_shape, shape, out_ndim, batch):
        return
    raise RuntimeError(
        f"{node.name}.backward returned a gradient of shape {grad_shape} for input "
        f"{index}, which has shape {shape}: a gradient must have the input's shape "
        "(or the broadcast output's shape)"
    )


def _reduces_to(
    node: Context, grad_shape: tuple[int, ...], shape: tuple[int, ...], out_ndim: int, batch: int
) -> bool:
    if len(shape) + batch > len(grad_shape):
        return False
    ndim = len(grad_shape)
    in_ndim = max(len(meta[0]) for meta in node.input_meta)
    if ndim > out_ndim and ndim - batch > in_ndim:
        return False
    tail = grad_shape[len(grad_shape) - len(shape) :]
    return all(s == g or s == 1 for s, g in zip(shape, tail))


def refuse_freed(node: Context) -> None:
    """Raise if a backward already released ``node``'s saved values."""
    if node._saved is None:
        raise RuntimeError(
            f"{node.name}: its saved values were already freed by a backward pass. "
            "Trying to backward through the graph a second time: pass "
            "retain_graph=True to the first backward() to keep them."
        )


# ----------------------------------------------------------------- in-place writes
def check_versions(node: Context) -> None:
    """Raise if a value ``node`` saved for its backward was modified in place after the op
    ran, naming both ops. Never a silently wrong gradient."""
    for index, value in enumerate(node._saved or ()):
        if written_since(value, node._epoch):
            raise RuntimeError(
                f"{node.name}: a value it saved for backward (saved value {index}, shape "
                f"{value.shape}) was modified in place by {last_writer(value)} after "
                f"{node.name} ran, so its gradient would be wrong. Use an out-of-place op "
                "instead (x = x + y, not x += y), or call backward() before modifying it."
            )


def refuse_stale_views(function: type, inputs: Any) -> None:
    """Raise if an input is a view (a reshape, a slice) whose memory a recorded in-place
    op rewrote through another tensor after the view was taken: the view's node still
    describes the old values, so a graph built on it would give wrong gradients.

    Checked when the view is used, not when it is taken: a view used before the write is
    fine. Runs only once a recorded in-place write has happened at all.
    """
    for x in inputs:
        node = x._node if isinstance(x, Tensor) else None
        if node is None or not node._views_input:
            continue
        # x.data is the view itself: its root is the memory it views, alive while x is
        if written_since(x.data, node._epoch, recorded=True):
            raise RuntimeError(
                f"{function.__name__}: an input is a view made by {node.name} of memory "
                f"that {last_writer(x.data)} modified in place afterwards through another "
                "tensor, so its graph describes the old values. Take the view after the "
                "in-place op, or clone() it before."
            )


# ----------------------------------------------------------------- anomaly mode
def check_forward(function: type, arrays: list[Any], out: np.ndarray, node: Context) -> None:
    """Anomaly mode: remember the user's line; fail on a NaN/Inf born in this op."""
    node.origin = user_frame()
    # NaN/Inf that came in through the inputs were not made here, forward or backward
    node._inputs_finite = all(_finite(a) for a in arrays)
    if out.dtype.kind not in "fc" or np.all(np.isfinite(out)):
        return
    if node._inputs_finite:
        raise FloatingPointError(
            f"{function.__name__} produced NaN/Inf in its forward from finite inputs"
            f" (created at {node.origin})"
        )


def check_backward(node: Context, grad_out: Any, input_grads: tuple[Any, ...]) -> None:
    """Anomaly mode: fail if this backward turned a finite gradient into NaN/Inf."""
    if not np.all(np.isfinite(np.asarray(grad_out))):
        return  # the NaN/Inf came from further down the graph, which was checked there
    if not node._inputs_finite:
        return  # the forward's inputs held NaN/Inf already: passed along, not made here
    origin = node.origin or "an unknown line: run the forward inside detect_anomaly() too"
    for index, g in enumerate(input_grads):
        if g is not None and not np.all(np.isfinite(np.asarray(g))):
            raise FloatingPointError(
                f"{node.name} produced NaN/Inf in its backward (gradient of input {index}) "
                f"from a finite incoming gradient (op created at {origin})"
            )


def _finite(value: Any) -> bool:
    """False for a floating-point array or number holding NaN or Inf."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.all(np.isfinite(value)))
    if isinstance(value, (float, np.floating)):
        return bool(np.isfinite(value))
    return True


def user_frame() -> str:
    """'file:line in function' of the innermost stack frame outside the chainrule package."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"
