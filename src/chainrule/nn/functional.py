"""Stateless neural-network maths (``from chainrule.nn import functional as F``).

Activations, ``linear``, convolution and pooling, dropout, and the losses. Losses compare
a prediction with a target of exactly the same shape: a (m, 1) prediction against a (m,)
target is an error, never a silent (m, m) broadcast. A target that does not require grad
is cast to the prediction's dtype, so float32 models stay float32.

Everything here is built from the ops of ``chainrule.ops``, under PyTorch's names: the
fused primitives that layers need (the affine map of ``linear``, ``softplus``, RMSE's
``safe_sqrt``, ``conv2d``, the poolings, cross-entropy with integer labels) are ops like
the others, with their rows in the op table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import creation
from chainrule.ops.conv import conv2d
from chainrule.ops.elementwise import sigmoid, softplus, tanh
from chainrule.ops.linalg import affine
from chainrule.ops.losses import REDUCTIONS as REDUCTIONS  # nn.loss checks by it
from chainrule.ops.losses import (
    check_logits,
    check_reduction,
    cross_entropy_with_labels,
)
from chainrule.ops.piecewise import relu, safe_sqrt, where
from chainrule.ops.pool import avg_pool2d, max_pool2d
from chainrule.ops.reduction import log_softmax, softmax
from chainrule.tensor import Tensor

__all__ = [
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "softplus", "logsigmoid",
    "linear", "conv2d", "max_pool2d", "avg_pool2d", "dropout",
    "mse_loss", "l1_loss", "rmse_loss", "cross_entropy", "binary_cross_entropy_with_logits",
]  # fmt: skip


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _target(target: Any, like: Tensor) -> Any:
    """The target as a Tensor; a constant one is cast to the prediction's float dtype."""
    if isinstance(target, Tensor) and target.requires_grad:
        return target
    array = np.asarray(target.data if isinstance(target, Tensor) else target)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"loss target must be numeric, got dtype {array.dtype}")
    if array.dtype != like.dtype and like.dtype.kind == "f":
        array = array.astype(like.dtype)
    return Tensor._make(array, None)


def _check_pair(name: str, prediction: Tensor, target: Any) -> None:
    if prediction.shape != target.shape:
        raise ValueError(
            f"{name}: prediction shape {prediction.shape} and target shape {target.shape} "
            "differ; they must be equal (no broadcasting: a (m, 1) prediction against a "
            "(m,) target would silently compare every pair). Reshape one of them."
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _residual(name: str, prediction: Any, target: Any, reduction: str) -> Tensor:
    check_reduction(name, reduction)
    prediction = _as_tensor(prediction)
    target = _target(target, prediction)
    _check_pair(name, prediction, target)
    return prediction - target


# ----------------------------------------------------------------------- activations
def logsigmoid(x: Any) -> Tensor:
    """log σ(x) = −softplus(−x), stable for any |x|; its derivative is σ(−x)."""
    return -softplus(-_as_tensor(x))


def linear(x: Any, w: Any, b: Any = None) -> Tensor:
    """y = x W + b on rows: the lecture's f = Wᵀa for a batch (W of shape (in, out)).

    One fused node, ``cr.ops.affine``.

    Args:
        x: input (..., in).
        w: weight (in, out), the lecture's W[l] (PyTorch's F.linear takes its transpose).
        b: optional bias (out,).

    Returns:
        (..., out).
    """
    return affine(x, w, b)


def dropout(
    x: Any, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None
) -> Tensor:
    """Inverted dropout: each element is zeroed with probability p, the rest scaled 1/(1−p).

    The identity when not training (or p = 0), so evaluation needs no rescaling. The mask
    comes from ``generator``, else chainrule's default generator (``cr.manual_seed``).
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must satisfy 0 <= p < 1, got {p}")
    x = _as_tensor(x)
    if not training or p == 0:
        return x
    rng = generator if generator is not None else creation.default_generator()
    keep = rng.random(x.shape) >= p
    # float(p): a NumPy float64 p would promote a float32 mask (and x) to float64
    return x * (keep.astype(x.dtype) * (1.0 / (1.0 - float(p))))


# ----------------------------------------------------------------------- losses
def mse_loss(prediction: Any, target: Any, reduction: str = "mean") -> Tensor:
    """MSE = (1/m) Σ (ŷ − y)² ("mean"), Σ (ŷ − y)² ("sum") or (ŷ − y)² elementwise."""
    residual = _residual("mse_loss", prediction, target, reduction)
    return _reduce(residual * residual, reduction)


def l1_loss(prediction: Any, target: Any, reduction: str = "mean") -> Tensor:
    """MAE = (1/m) Σ |ŷ − y| ("mean"), Σ |ŷ − y| ("sum") or |ŷ − y| elementwise.

    At ŷ = y the derivative is taken as 0 (|·|'s subgradient, as PyTorch).
    """
    residual = _residual("l1_loss", prediction, target, reduction)
    return _reduce(residual.abs(), reduction)


def rmse_loss(prediction: Any, target: Any, reduction: str = "mean") -> Tensor:
    """RMSE = √((1/m) Σ (ŷ − y)²) = √MSE ("mean"); √(Σ (ŷ − y)²) ("sum"); |ŷ − y| ("none").

    The root is of the *mean* of the squares (the slide's √(1/m)·Σ(ŷ − y)² is a misprint).
    At zero residual (a perfect fit) the gradient is 0, not NaN (see ``cr.ops.safe_sqrt``).
    """
    residual = _residual("rmse_loss", prediction, target, reduction)
    return safe_sqrt(_reduce(residual * residual, reduction))


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """ℓ = −Σ_c t_c log softmax(x)_c along the class axis (axis 1, or 0 for 1-D logits).

    Args:
        logits: (N, C) or (N, C, d1, ...) (or (C,) for one example): raw scores.
        target: integer class labels of shape (N,) or (N, d1, ...), each in [0, C − 1];
            or class probabilities with the logits' shape (a float array). A probability
            of 0 contributes nothing, even where the logit is −inf.
        reduction: "mean" (over N·d1·…), "sum" or "none" (shape (N, d1, ...)).

    Returns:
        The loss. Computed from a shifted log-sum-exp: logits of ±1e4 stay finite.
    """
    check_reduction("cross_entropy", reduction)
    logits = _as_tensor(logits)
    check_logits("cross_entropy", logits)
    labels = target.data if isinstance(target, Tensor) else np.asarray(target)
    if labels.dtype.kind in "iu":  # one fused node (cr.ops.cross_entropy_with_labels)
        return cross_entropy_with_labels(logits, labels, reduction)
    axis = 1 if logits.ndim > 1 else 0
    if labels.dtype.kind != "f" or labels.shape != logits.shape:
        expected = logits.shape[:axis] + logits.shape[axis + 1 :]
        raise ValueError(
            f"cross_entropy: target must be integer class labels of shape {expected} or "
            f"class probabilities of the logits' shape {logits.shape}; got dtype "
            f"{labels.dtype} and shape {labels.shape}"
        )
    probabilities = _target(target, logits)
    # Shift by the row's (finite) maximum first, a constant with no effect on the gradient:
    # log_softmax then never rounds a log-sum-exp at the logits' scale, which in float32
    # would cost ~1e-3 absolute at logits of 1e4.
    if logits.size:
        shift = np.max(logits.data, axis=axis, keepdims=True)
        logits = logits - np.where(np.isfinite(shift), shift, 0).astype(logits.dtype)
    log_p = log_softmax(logits, axis=axis)
    # 0·log 0 = 0: where the probability is 0 and log p is −inf, the term is dropped
    keep = (probabilities.data != 0) | np.isfinite(log_p.data)
    loss = -(where(keep, log_p, 0) * probabilities).sum(axis=axis)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """ℓ = −[t log σ(x) + (1 − t) log(1 − σ(x))] = softplus(x) − t·x;  ∂ℓ/∂x = σ(x) − t.

    Computed in the softplus form, which is finite for any |x| (e.g. 1e4).
    """
    check_reduction("binary_cross_entropy_with_logits", reduction)
    logits = _as_tensor(logits)
    target = _target(target, logits)
    _check_pair("binary_cross_entropy_with_logits", logits, target)
    return _reduce(softplus(logits) - logits * target, reduction)
