"""In-place operations on tensors, with PyTorch's rules: ``t -= lr * g``, ``t.zero_()``, ...

Each writes into ``t.data`` (same object, same memory) and returns ``t``. Three cases:

- Nothing records a graph (inside ``cr.no_grad()``, or no tensor involved requires grad):
  one NumPy ufunc with ``out=t.data``. This is the lecture's update step
  W[l] −= α ∂L/∂W[l], which keeps W a leaf that requires grad.
- ``t`` is a leaf that requires grad and gradients are being recorded: refused, because
  its value is what gradients are taken at (PyTorch refuses too).
- Otherwise (``t`` was computed by ops, or ``x`` requires grad) the write is recorded: the
  same op runs out of place on a copy of ``t``'s old value, the result is copied into
  ``t``'s memory, and ``t`` takes the new op as its ``grad_fn``.

Every write bumps the version counter of ``t``'s memory (``chainrule.versions``), so a
backward that needs a value overwritten here raises instead of using the new one.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.mode import STATE
from chainrule.ops import clip, where
from chainrule.tensor import Tensor
from chainrule.versions import bump

__all__ = ["modify", "arithmetic", "fill", "clamp"]

# how each arithmetic in-place op runs: (ufunc on arrays, out-of-place op on Tensors)
_ARITHMETIC: dict[str, tuple[Any, Callable[[Any, Any], Any]]] = {
    "+=": (np.add, lambda a, b: a + b),
    "-=": (np.subtract, lambda a, b: a - b),
    "*=": (np.multiply, lambda a, b: a * b),
    "/=": (np.divide, lambda a, b: a / b),
    "**=": (np.power, lambda a, b: a**b),
}
_METHOD_OF = {"add_": "+=", "sub_": "-=", "mul_": "*=", "div_": "/="}


def _array(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _recording(t: Tensor, *others: Any) -> bool:
    """True when this write must be recorded as an op of the graph."""
    if not STATE.grad_enabled:
        return False
    return t._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)


def _check_target(t: Tensor, op: str) -> None:
    if t._requires_grad and t._node is None and STATE.grad_enabled:
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {t.shape}, {t.dtype}) cannot be "
            "modified in place while gradients are recorded: its value is the point the "
            "gradients are taken at. Do the update inside `with cr.no_grad():` (as the "
            "optimizers do), or make a new tensor (w = w - lr * g)."
        )
    if not t.data.flags.writeable:
        raise ValueError(f"{op}: the tensor's array (shape {t.shape}) is read-only")


def modify(
    t: Tensor,
    op: str,
    on_arrays: Callable[[np.ndarray], None],
    on_tensors: Callable[[Tensor], Tensor],
    *others: Any,
) -> Tensor:
    """The shared body of every in-place op.

    Args:
        t: the tensor written into.
        op: its name in messages (``"-="``, ``"zero_"``).
        on_arrays: writes the result into the array it is given (the unrecorded case).
        on_tensors: the same op out of place, from the old value as a Tensor (recorded).
        others: the op's other operands, to see whether any requires grad.
    """
    _check_target(t, op)
    if STATE.trace is not None:
        STATE.trace.write(t, op)
    if not _recording(t, *others):
        try:
            on_arrays(t.data)
        except (TypeError, ValueError) as error:  # NumPy's casting or broadcasting refusal
            raise _clear_error(t, op, others, error) from error
        bump(t.data, op)
        return t
    if _views_another_tensor(t):
        raise RuntimeError(
            f"{op}: this tensor (shape {t.shape}) is a view of another tensor's memory, "
            "and an in-place op on a view cannot be recorded in the graph (the other "
            "tensor's history would not know). Use an out-of-place op, or clone() it first."
        )
    old = Tensor._make(t.data.copy(), t._node)  # what t was, on t's graph
    old._requires_grad = t._requires_grad
    result = on_tensors(old)
    if result.shape != t.shape:
        shapes = " and ".join(str(np.shape(_array(o))) for o in others)
        raise ValueError(
            f"{op}: the result has shape {result.shape} and cannot be written into a tensor "
            f"of shape {t.shape} (operand shapes {shapes})"
        )
    if result.dtype != t.dtype:
        result = result.astype(t.dtype)
    np.copyto(t.data, result.data)
    bump(t.data, op, recorded=True)
    previous, t._node = t._node, result._node
    t._requires_grad = result._requires_grad
    if previous is not None and previous._retained is not None and t._node is not None:
        previous._retained = None  # retain_grad() follows the tensor to its new node
        t._node._retained = weakref.ref(t)
    return t


def _views_another_tensor(t: Tensor) -> bool:
    """True when ``t``'s memory may belong to another tensor: ``t`` was made by a view op
    (reshape, a slice) of an input, or is a leaf over a view of some array."""
    if t._node is not None:
        return t._node._views_input
    return t.data.base is not None


def _clear_error(t: Tensor, op: str, others: tuple[Any, ...], error: Exception) -> Exception:
    parts = [
        f"shape {o.shape} and dtype {o.dtype}"
        if isinstance(o, (Tensor, np.ndarray))
        else f"{o!r} ({type(o).__name__})"
        for o in others
        if o is not None
    ]
    given = f" and {', '.join(parts)}" if parts else ""
    kind = TypeError if isinstance(error, TypeError) else ValueError
    return kind(
        f"{op} on a tensor of shape {t.shape} and dtype {t.dtype}{given}: the result must "
        f"keep the tensor's shape and a dtype it can hold in place ({error})"
    )


def arithmetic(t: Tensor, op: str, other: Any, alpha: Any = 1) -> Tensor:
    """t (op)= other, or t.add_(other, alpha) and friends: t ← t + alpha·other."""
    symbol = _METHOD_OF.get(op, op)
    ufunc, on_tensors = _ARITHMETIC[symbol]
    if alpha != 1:
        if symbol not in ("+=", "-="):
            raise TypeError(f"{op} takes no alpha")
        other = other * alpha

    def on_arrays(data: np.ndarray) -> None:
        ufunc(data, _array(other), out=data, casting="same_kind")

    return modify(t, op, on_arrays, lambda old: on_tensors(old, other), other)


def fill(t: Tensor, op: str, value: Any) -> Tensor:
    """t.fill_(value), t.zero_() and t.copy_(src): every element replaced by ``value``
    (broadcast); the old value gets no gradient, ``value`` gets the sum of t's."""

    def on_arrays(data: np.ndarray) -> None:
        np.copyto(data, _array(value), casting="unsafe" if op == "copy_" else "same_kind")

    def on_tensors(old: Tensor) -> Tensor:
        # where(False, ...) rather than 0·old + value: right even where old is inf or NaN
        return where(np.zeros(old.shape, dtype=bool), old, value)

    return modify(t, op, on_arrays, on_tensors, value)


def clamp(t: Tensor, low: Any = None, high: Any = None) -> Tensor:
    """t.clamp_(low, high): every element clipped into [low, high]."""
    if low is None and high is None:
        raise ValueError("clamp_ needs a lower bound, an upper bound, or both")

    def on_arrays(data: np.ndarray) -> None:
        np.clip(data, _array(low), _array(high), out=data, casting="same_kind")

    return modify(t, "clamp_", on_arrays, lambda old: clip(old, low, high), low, high)
