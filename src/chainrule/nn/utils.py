"""Gradient clipping (``cr.nn.utils``), between ``loss.backward()`` and ``optimizer.step()``.

``clip_grad_norm_`` rescales all the gradients together so that their joint norm is at
most ``max_norm``; ``clip_grad_value_`` clips each gradient element to [−c, c]. Both change
``p.grad`` in place, skip parameters without a gradient, and follow PyTorch's
``torch.nn.utils`` of the same names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.mode import no_grad
from chainrule.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Any, name: str) -> list[Tensor]:
    """The gradients of ``parameters`` (one Tensor or an iterable of them) that exist."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    elif not isinstance(parameters, Iterable):
        raise TypeError(
            f"{name}: parameters must be a Tensor or an iterable of Tensors (e.g. "
            f"model.parameters()), got {type(parameters).__name__}"
        )
    grads = []
    for index, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: parameter {index} is a {type(p).__name__}, not a Tensor")
        if p.grad is not None:
            grads.append(p.grad)
    return grads


def clip_grad_norm_(
    parameters: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale the gradients in place so that their joint p-norm is at most ``max_norm``.

    The total norm is ‖(g₁, …, g_k)‖_p = (Σᵢ Σⱼ |gᵢⱼ|^p)^(1/p) over every element of every
    gradient (p = ``norm_type``; ``inf`` gives maxᵢⱼ |gᵢⱼ|). When it exceeds ``max_norm``,
    every gradient is multiplied by max_norm/(total + 1e−6) (PyTorch's small constant, so
    the result is just under ``max_norm``); otherwise they are left as they are.

    Args:
        parameters: a Tensor or an iterable of Tensors; those without ``.grad`` are skipped.
        max_norm: the largest total norm allowed.
        norm_type: p, a positive number or ``math.inf``.
        error_if_nonfinite: raise instead of scaling when the total norm is NaN or ±inf.

    Returns:
        The total norm before clipping, as a 0-d Tensor (as PyTorch), in the gradients'
        dtype; 0 when no parameter has a gradient.

    Raises:
        ValueError: ``norm_type`` is not positive, or the norm is not finite and
            ``error_if_nonfinite`` is set.
    """
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be positive or inf, got {norm_type}")
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return Tensor(np.array(0.0, dtype=np.float32))
    dtype = np.result_type(*(g.dtype for g in grads))
    arrays = [np.abs(g.data).astype(dtype, copy=False).ravel() for g in grads]
    if math.isinf(norm_type):
        total = max((a.max() for a in arrays if a.size), default=np.zeros((), dtype))
    else:
        total = sum(np.sum(a**norm_type) for a in arrays) ** (1.0 / norm_type)
    total = np.asarray(total, dtype=dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise ValueError(
            f"clip_grad_norm_: the total {norm_type}-norm of the gradients is {total.item()}; "
            "pass error_if_nonfinite=False to scale anyway"
        )
    coefficient = float(max_norm) / (float(total) + 1e-6)
    if coefficient < 1.0:
        with no_grad():
            for g in grads:
                g.mul_(coefficient)
    return Tensor(total)


def clip_grad_value_(parameters: Any, clip_value: float) -> None:
    """Clip every gradient element to [−c, c] in place (c = ``clip_value``).

    Parameters without ``.grad`` are skipped. Returns None, as PyTorch.

    Raises:
        ValueError: ``clip_value`` is negative.
    """
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    with no_grad():
        for g in _grads(parameters, "clip_grad_value_"):
            g.clamp_(-clip_value, clip_value)
