"""Stateless neural-network maths (``from chainrule.nn import functional as F``).

Activations, ``linear``, convolution and pooling, dropout, and the losses. Losses compare
a prediction with a target of exactly the same shape: a (m, 1) prediction against a (m,)
target is an error, never a silent (m, m) broadcast. A target that does not require grad
is cast to the prediction's dtype, so float32 models stay float32.

Three primitives live here for numerical stability (STYLE E2): ``Softplus`` (log(1 + eˣ)
overflows, and the composition through |x| has the wrong derivative at 0),
``CrossEntropyWithLabels`` (fused log-softmax + NLL) and ``SafeSqrt`` (RMSE's square root,
whose derivative at a perfect fit is taken as 0 instead of 0·∞ = NaN).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule import creation
from chainrule.function import Function
from chainrule.nn.conv import avg_pool2d, conv2d, max_pool2d
from chainrule.ops.elementwise import sigmoid, sigmoid_array, tanh
from chainrule.ops.piecewise import relu, where
from chainrule.ops.reduction import accurate_sum, log_softmax, softmax
from chainrule.tensor import Tensor

__all__ = [
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "softplus", "logsigmoid",
    "linear", "conv2d", "max_pool2d", "avg_pool2d", "dropout",
    "mse_loss", "l1_loss", "rmse_loss", "cross_entropy", "binary_cross_entropy_with_logits",
]  # fmt: skip

REDUCTIONS = ("mean", "sum", "none")
_add_reduce = np.add.reduce
_max_reduce = np.maximum.reduce


# ----------------------------------------------------------------------- primitives
class Softplus(Function):
    """y = log(1 + eˣ) = max(x, 0) + log(1 + e^(−|x|));  dy/dx = σ(x).

    The second form never overflows (e^(−|x|) ≤ 1), so |x| = 1e4 is safe.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * (sigmoid(x) if isinstance(x, Tensor) else sigmoid_array(x))


class SafeSqrt(Function):
    """y = √x (x ≥ 0);  dy/dx = 1/(2y) for x > 0, and 0 at x = 0 by convention.

    √ has no derivative at 0; RMSE reaches 0 at a perfect fit, where the chain rule would
    give 0·∞ = NaN. Taking 0 there keeps a perfect fit a fixed point of training.
    """

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        zero = y == 0  # a mask: a constant on both paths
        return grad_out * (y > 0) / (2 * y + zero)


class CrossEntropyWithLabels(Function):
    """ℓᵢ = log Σ_c exp x_ic − x_i,labelᵢ along the class axis;
    ∂ℓᵢ/∂xᵢ = softmax(xᵢ) − onehot(labelᵢ).

    Fused log-softmax + negative log-likelihood + the reduction ("mean": ℓ = (1/N) Σᵢ ℓᵢ,
    "sum", or "none"): one graph node for the whole loss. The log-sum-exp is shifted by the
    row's maximum, so logits of ±1e4 give a finite loss and gradient.
    """

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
        losses = (np.log(total) + (shift - _pick(x, labels, axis))).reshape(labels.shape)
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
        elif ctx.reduction == "none":
            kept = list(x.shape)
            kept[ctx.axis] = 1
            grad_out = grad_out.reshape(tuple(kept))
        if type(probabilities) is np.ndarray and x.ndim == 2 and ctx.axis == 1:
            # softmax − onehot without building the one-hot matrix
            grad = probabilities.copy()
            grad[np.arange(len(ctx.labels)), ctx.labels] -= 1
            grad *= grad_out
            return grad
        classes = np.arange(x.shape[ctx.axis]).reshape(
            [-1 if a == ctx.axis else 1 for a in range(x.ndim)]
        )
        onehot = (classes == np.expand_dims(ctx.labels, ctx.axis)).astype(x.dtype)
        return (probabilities - onehot) * grad_out


def _pick(x: np.ndarray, labels: np.ndarray, axis: int) -> np.ndarray:
    """x at each example's label along ``axis``, keeping that axis (length 1)."""
    if x.ndim == 2 and axis == 1:
        return x[np.arange(len(labels)), labels][:, None]
    return np.take_along_axis(x, np.expand_dims(labels, axis), axis)


# ----------------------------------------------------------------------- helpers
class Linear(Function):
    """y = x W + b (on rows; the lecture's f = Wᵀa + b);  ∂L/∂x = G Wᵀ, ∂L/∂W = xᵀ G,
    ∂L/∂b = Σ_rows G.

    Fused (one node instead of a matmul and an add) because it is the hot path of every
    MLP: one output allocation, the bias added in place, the bias gradient one reduction.
    Batchable: extra leading axes of G (a batch of cotangents, for ``cr.jacobian``) give
    one ∂L/∂W and ∂L/∂b per cotangent.
    """

    batchable = True

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        y = x @ w
        if b is not None:
            y += b
        ctx.out_ndim = y.ndim
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        grad_x = grad_out @ w.swapaxes(-1, -2) if need_x else None
        lead = grad_out.shape[: grad_out.ndim - ctx.out_ndim]  # a batch of cotangents
        rows = grad_out.reshape(lead + (-1, grad_out.shape[-1]))
        grad_w = None
        if need_w:
            x_rows = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
            grad_w = x_rows.swapaxes(-1, -2) @ rows
        if len(ctx.needs_input_grad) == 2:
            return grad_x, grad_w
        grad_b = rows.sum(axis=-2) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


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


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _residual(name: str, prediction: Any, target: Any, reduction: str) -> Tensor:
    _check_reduction(name, reduction)
    prediction = _as_tensor(prediction)
    target = _target(target, prediction)
    _check_pair(name, prediction, target)
    return prediction - target


# ----------------------------------------------------------------------- activations
def softplus(x: Any) -> Tensor:
    """log(1 + eˣ), stable for any |x|; its derivative is σ(x)."""
    return Softplus.apply(_as_tensor(x))


def logsigmoid(x: Any) -> Tensor:
    """log σ(x) = −softplus(−x), stable for any |x|; its derivative is σ(−x)."""
    return -softplus(-_as_tensor(x))


def linear(x: Any, w: Any, b: Any = None) -> Tensor:
    """y = x W + b on rows: the lecture's f = Wᵀa for a batch (W of shape (in, out)).

    Args:
        x: input (..., in).
        w: weight (in, out), the lecture's W[l] (PyTorch's F.linear takes its transpose).
        b: optional bias (out,).

    Returns:
        (..., out).
    """
    x, w = _as_tensor(x), _as_tensor(w)
    x_shape, w_shape = x.data.shape, w.data.shape
    if len(w_shape) != 2 or not x_shape or x_shape[-1] != w_shape[0]:
        raise ValueError(
            f"linear: input of shape {x_shape} does not fit a weight of shape {w_shape} "
            "(the weight is (in_features, out_features) and the input (..., in_features))"
        )
    if b is None:
        return Linear.apply(x, w)
    b = _as_tensor(b)
    if b.data.shape != w_shape[1:]:
        raise ValueError(f"linear: bias must have shape ({w_shape[1]},), got {b.shape}")
    return Linear.apply(x, w, b)


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
    At zero residual (a perfect fit) the gradient is 0, not NaN (see ``SafeSqrt``).
    """
    residual = _residual("rmse_loss", prediction, target, reduction)
    return SafeSqrt.apply(_reduce(residual * residual, reduction))


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
    _check_reduction("cross_entropy", reduction)
    logits = _as_tensor(logits)
    if logits.ndim == 0 or logits.dtype.kind != "f":
        raise ValueError(
            f"cross_entropy: logits must be a float array with a class axis, got shape "
            f"{logits.shape} and dtype {logits.dtype}"
        )
    axis = 1 if logits.ndim > 1 else 0
    labels = target.data if isinstance(target, Tensor) else np.asarray(target)
    if labels.dtype.kind in "iu":
        _check_labels(logits.shape, axis, labels)
        return CrossEntropyWithLabels.apply(logits, labels=labels, axis=axis, reduction=reduction)
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


def _check_labels(shape: tuple[int, ...], axis: int, labels: np.ndarray) -> None:
    expected = shape[:axis] + shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"cross_entropy: integer labels must have shape {expected} for logits of shape "
            f"{shape}, got {labels.shape}"
        )
    classes = shape[axis]
    # one reduction finds both kinds of bad label: as unsigned, a negative one is huge
    unsigned = labels.view(labels.dtype.str.replace("i", "u"))
    if labels.size and _max_reduce(unsigned, None) >= classes:
        bad = np.unique(labels[(labels < 0) | (labels >= classes)])[:5].tolist()
        raise ValueError(
            f"cross_entropy: labels must be in the range [0, {classes - 1}] for {classes} "
            f"classes; got out-of-range values {bad}"
        )


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """ℓ = −[t log σ(x) + (1 − t) log(1 − σ(x))] = softplus(x) − t·x;  ∂ℓ/∂x = σ(x) − t.

    Computed in the softplus form, which is finite for any |x| (e.g. 1e4).
    """
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    logits = _as_tensor(logits)
    target = _target(target, logits)
    _check_pair("binary_cross_entropy_with_logits", logits, target)
    return _reduce(softplus(logits) - logits * target, reduction)
