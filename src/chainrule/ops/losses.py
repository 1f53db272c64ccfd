"""Fused losses: cross-entropy of logits against integer class labels, one graph node.

A primitive for speed and stability (STYLE E2): composing log_softmax, the label pick and
the mean costs three nodes and a one-hot matrix; the fused rule builds softmax − onehot in
place. ``cr.nn.functional.cross_entropy`` calls it for integer targets.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.batched import is_batched, values_of
from chainrule.function import Function
from chainrule.ops.reduction import accurate_sum, softmax
from chainrule.tensor import Tensor

__all__ = ["cross_entropy_with_labels"]

REDUCTIONS = ("mean", "sum", "none")
_add_reduce = np.add.reduce
_max_reduce = np.maximum.reduce


class CrossEntropyWithLabels(Function):
    """ℓᵢ = log Σ_c exp x_ic − x_i,labelᵢ along the class axis;
    ∂ℓᵢ/∂xᵢ = softmax(xᵢ) − onehot(labelᵢ).

    Fused log-softmax + negative log-likelihood + the reduction ("mean": ℓ = (1/N) Σᵢ ℓᵢ,
    "sum", or "none"): one graph node for the whole loss. The log-sum-exp is shifted by the
    row's maximum, so logits of ±1e4 give a finite loss and gradient.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, *, labels, axis, reduction):
        ctx.labels, ctx.axis, ctx.reduction = labels, axis, reduction
        shift = x.max(axis=axis, keepdims=True)
        if not math.isfinite(_add_reduce(shift, None)):  # a row with ±inf (or overflow)
            shift = np.where(np.isfinite(shift), shift, 0)
        exps = np.exp(x - shift)
        total = accurate_sum(exps, axis, True)
        # softmax is saved for the fast first-order path; under create_graph it is
        # recomputed from x (a saved intermediate would come back as a constant).
        # Dividing by the sum (not subtracting a rounded log-sum-exp) keeps softmax
        # exact in float32 even for logits of 1e4.
        ctx.save_for_backward(x, exps / total)
        losses = (np.log(total) + (shift - pick(x, labels, axis))).reshape(labels.shape)
        ctx.out_ndim = losses.ndim if reduction == "none" else 0
        if reduction == "none":
            return losses
        ctx.count = losses.size
        loss = accurate_sum(losses, None, False)
        if reduction == "sum":
            return loss
        return loss / ctx.count if ctx.count else loss * np.nan

    @staticmethod
    def backward(ctx, grad_out):
        x, probabilities = ctx.saved_tensors
        if isinstance(x, Tensor):
            probabilities = softmax(x, axis=ctx.axis)
        if ctx.reduction == "mean":
            grad_out = grad_out / ctx.count
        lead = tuple(grad_out.shape[: grad_out.ndim - ctx.out_ndim])  # a batch of cotangents
        if type(probabilities) is np.ndarray and x.ndim == 2 and ctx.axis == 1 and not lead:
            # softmax − onehot without building the one-hot matrix
            grad = probabilities.copy()
            grad[np.arange(len(ctx.labels)), ctx.labels] -= 1
            grad *= grad_out if ctx.reduction != "none" else grad_out[:, None]
            return grad
        # g per example, shaped to broadcast over the class axis (and the batch in front)
        kept = [1] * x.ndim if ctx.reduction != "none" else list(x.shape)
        kept[ctx.axis] = 1
        grad_out = grad_out.reshape(lead + tuple(kept))
        classes = np.arange(x.shape[ctx.axis]).reshape(
            [-1 if a == ctx.axis else 1 for a in range(x.ndim)]
        )
        onehot = (classes == np.expand_dims(ctx.labels, ctx.axis)).astype(x.dtype)
        return (probabilities - onehot) * grad_out


def pick(x: np.ndarray, labels: np.ndarray, axis: int) -> np.ndarray:
    """x at each example's label along ``axis``, keeping that axis (length 1)."""
    if x.ndim == 2 and axis == 1:
        return x[np.arange(len(labels)), labels][:, None]
    return np.take_along_axis(x, np.expand_dims(labels, axis), axis)


def check_reduction(name: str, reduction: str) -> None:
    """A clear error unless ``reduction`` is "mean", "sum" or "none"."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_logits(name: str, logits: Tensor) -> None:
    """A clear error unless ``logits`` is a float array with a class axis."""
    if logits.ndim == 0 or logits.dtype.kind != "f":
        raise ValueError(
            f"{name}: logits must be a float array with a class axis, got shape "
            f"{logits.shape} and dtype {logits.dtype}"
        )


def check_labels(
    name: str, shape: tuple[int, ...], axis: int, labels: np.ndarray, batch_axes: int = 0
) -> None:
    """A clear error unless ``labels`` are integers of the logits' shape without the class
    axis, each in [0, C − 1] (inside vmap, after ``batch_axes`` leading batch axes)."""
    expected = shape[:axis] + shape[axis + 1 :]
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    if labels.shape[batch_axes:] != expected:
        raise ValueError(
            f"{name}: integer labels must have shape {expected} for logits of shape "
            f"{shape}, got {labels.shape[batch_axes:]}"
        )
    classes = shape[axis]
    # one reduction finds both kinds of bad label: as unsigned, a negative one is huge
    unsigned = labels.view(labels.dtype.str.replace("i", "u"))
    if labels.size and _max_reduce(unsigned, None) >= classes:
        bad = np.unique(labels[(labels < 0) | (labels >= classes)])[:5].tolist()
        raise ValueError(
            f"{name}: labels must be in the range [0, {classes - 1}] for {classes} "
            f"classes; got out-of-range values {bad}"
        )


def cross_entropy_with_labels(logits: Any, labels: Any, reduction: str = "mean") -> Tensor:
    """ℓᵢ = −log softmax(xᵢ)_labelᵢ = log Σ_c exp x_ic − x_i,labelᵢ, reduced.

    The class axis is 1 (0 for 1-D logits), as in PyTorch; the labels are constants (no
    gradient). ``cr.nn.functional.cross_entropy`` is this for integer targets.

    Args:
        logits: (N, C) or (N, C, d1, ...) (or (C,) for one example): raw scores.
        labels: integer class labels of shape (N,) or (N, d1, ...) (or () for (C,) logits),
            each in [0, C − 1].
        reduction: "mean" (over N·d1·…), "sum" or "none" (shape (N, d1, ...)).

    Returns:
        The loss, from a shifted log-sum-exp: logits of ±1e4 stay finite.
    """
    check_reduction("cross_entropy", reduction)
    logits = logits if isinstance(logits, Tensor) else Tensor(logits)
    check_logits("cross_entropy", logits)
    axis = 1 if logits.ndim > 1 else 0
    if is_batched(labels):  # inside vmap: one example's labels, aligned by the op's rule
        data, batch_axes, _ = values_of(labels)
        check_labels("cross_entropy", logits.shape, axis, data, batch_axes)
        return CrossEntropyWithLabels.apply(logits, labels=labels, axis=axis, reduction=reduction)
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    check_labels("cross_entropy", logits.shape, axis, labels)
    return CrossEntropyWithLabels.apply(logits, labels=labels, axis=axis, reduction=reduction)
