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
from chainrule.batched import as_batched, is_batched, values_of
from chainrule.mode import STATE
from chainrule.ops.conv import conv2d
from chainrule.ops.elementwise import exp, log, sigmoid, tanh
from chainrule.ops.elementwise import softplus as softplus_op
from chainrule.ops.linalg import affine
from chainrule.ops.losses import REDUCTIONS as REDUCTIONS  # nn.loss checks by it
from chainrule.ops.losses import (
    check_labels,
    check_logits,
    check_reduction,
    cross_entropy_with_labels,
)
from chainrule.ops.normal import normal_cdf
from chainrule.ops.piecewise import clip, relu, safe_sqrt, where
from chainrule.ops.pool import avg_pool2d, max_pool2d
from chainrule.ops.reduction import log_softmax, softmax
from chainrule.tensor import Tensor, constant_op

__all__ = [
    "relu", "sigmoid", "tanh", "softmax", "log_softmax", "softplus", "logsigmoid",
    "linear", "conv2d", "max_pool2d", "avg_pool2d", "dropout",
    "mse_loss", "l1_loss", "rmse_loss", "cross_entropy", "binary_cross_entropy_with_logits",
    "gelu", "silu", "leaky_relu", "elu", "layer_norm", "embedding",
    "nll_loss", "huber_loss", "smooth_l1_loss", "kl_div", "binary_cross_entropy",
]  # fmt: skip


def _as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _finite_row_max(data: np.ndarray, axis: int) -> np.ndarray:
    """The maximum along ``axis`` (kept), 0 where it is not finite, in data's dtype."""
    shift = np.max(data, axis=axis, keepdims=True)
    return np.where(np.isfinite(shift), shift, 0).astype(data.dtype)


def _target(target: Any, like: Tensor) -> Any:
    """The target as a Tensor; a constant one is cast to the prediction's float dtype."""
    if isinstance(target, Tensor) and target.requires_grad:
        return target
    if is_batched(target):  # inside vmap: one example's target
        return (
            target
            if target.dtype == like.dtype or like.dtype.kind != "f"
            else (target.astype(like.dtype))
        )
    array = np.asarray(target.data if isinstance(target, Tensor) else target)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"loss target must be numeric, got dtype {array.dtype}")
    if array.dtype != like.dtype and like.dtype.kind == "f":
        array = constant_op(np.asarray, array, like.dtype)  # a cast copy
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
    return -softplus_op(-_as_tensor(x))


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
    comes from ``generator``, else chainrule's default generator (``cr.manual_seed``);
    inside ``vmap`` each example gets its own.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must satisfy 0 <= p < 1, got {p}")
    x = _as_tensor(x)
    if not training or p == 0:
        return x
    rng = generator if generator is not None else creation.default_generator()
    data, _, levels = values_of(x)  # inside vmap: a mask of its own for every example
    keep = rng.random(data.shape) >= p
    # float(p): a NumPy float64 p would promote a float32 mask (and x) to float64
    return x * as_batched(keep.astype(x.dtype) * (1.0 / (1.0 - float(p))), levels)


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
    if is_batched(target):  # inside vmap: one example's labels or probabilities
        if target.dtype.kind in "iu":
            return cross_entropy_with_labels(logits, target, reduction)
        labels = np.empty(target.shape, target.dtype)  # only its dtype and shape are read
    else:
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
        data, batch_axes, levels = values_of(logits)  # inside vmap: the whole batch
        shift = constant_op(_finite_row_max, data, axis + batch_axes)
        logits = logits - as_batched(shift, levels)
    log_p = log_softmax(logits, axis=axis)
    # 0·log 0 = 0: where the probability is 0 and log p is −inf, the term is dropped
    log_values, _, levels = values_of(log_p)
    finite = where(as_batched(constant_op(np.isfinite, log_values), levels), log_p, 0)
    loss = -(where(probabilities != 0, log_p, finite) * probabilities).sum(axis=axis)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """ℓ = −[t log σ(x) + (1 − t) log(1 − σ(x))] = softplus(x) − t·x;  ∂ℓ/∂x = σ(x) − t.

    Computed in the softplus form, which is finite for any |x| (e.g. 1e4).
    """
    check_reduction("binary_cross_entropy_with_logits", reduction)
    logits = _as_tensor(logits)
    target = _target(target, logits)
    _check_pair("binary_cross_entropy_with_logits", logits, target)
    return _reduce(softplus_op(logits) - logits * target, reduction)


# ----------------------------------------------------------------------- more activations
def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """y = (1/β) log(1 + e^(βx)), and y = x where βx > threshold (PyTorch's semantics).

    dy/dx = σ(βx), and 1 above the threshold, where the two differ by less than e^(−20).
    At β = 1 below the threshold this is the stable primitive ``cr.ops.softplus``.
    """
    if beta <= 0:
        raise ValueError(f"softplus: beta must be positive, got {beta}")
    x = _as_tensor(x)
    beta, threshold = float(beta), float(threshold)
    scaled = x if beta == 1.0 else x * beta
    smooth = softplus_op(scaled) if beta == 1.0 else softplus_op(scaled) * (1.0 / beta)
    above = scaled > threshold  # a bool tensor (one mask per example inside vmap)
    # the shortcut (no element above the threshold: no where) reads values, which a
    # compiled program cannot: under cr.compile's trace the where is always taken
    if is_batched(above) or STATE.trace is not None or above.data.any():
        return where(above, x, smooth)
    return smooth


def gelu(x: Any) -> Tensor:
    """GELU, exact (erf) form: y = x·Φ(x), Φ the standard normal CDF (``cr.ops.normal_cdf``).

    dy/dx = Φ(x) + x·φ(x), φ the standard normal density. Not the tanh approximation.
    """
    x = _as_tensor(x)
    return x * normal_cdf(x)


def silu(x: Any) -> Tensor:
    """SiLU (swish): y = x·σ(x);  dy/dx = σ(x)(1 + x(1 − σ(x)))."""
    x = _as_tensor(x)
    return x * sigmoid(x)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """y = x for x > 0, else a·x (a = ``negative_slope``);  dy/dx = 1 for x > 0, else a.

    At the kink x = 0 the derivative is a (the left side), as in PyTorch.
    """
    x = _as_tensor(x)
    return where(x > 0, x, x * float(negative_slope))


def elu(x: Any, alpha: float = 1.0) -> Tensor:
    """y = x for x > 0, else α(eˣ − 1);  dy/dx = 1 for x > 0, else α·eˣ.

    At x = 0 the derivative is α (the left side), as in PyTorch. The exponential only
    sees min(x, 0), so a large x cannot overflow (nor give NaN gradients).
    """
    x = _as_tensor(x)
    positive = x > 0
    return where(positive, x, (exp(where(positive, 0.0, x)) - 1.0) * float(alpha))


# ----------------------------------------------------------------------- normalisation
def _normalized_shape(normalized_shape: Any) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    return tuple(int(n) for n in normalized_shape)


def layer_norm(
    x: Any,
    normalized_shape: Any,
    weight: Any = None,
    bias: Any = None,
    eps: float = 1e-5,
) -> Tensor:
    """y = (x − μ)/√(σ² + ε) · γ + β, μ and σ² over the last len(normalized_shape) axes.

    σ² is the biased variance (divided by n, as PyTorch). Each example is normalised on its
    own (no running statistics, the same in training and evaluation). The gradient comes
    from the composition (mean, subtraction, product, power).

    Args:
        x: input (..., *normalized_shape).
        normalized_shape: the trailing shape normalised over (an int for one axis).
        weight: optional γ of shape ``normalized_shape``.
        bias: optional β of shape ``normalized_shape``.
        eps: ε > 0, added to the variance.

    Raises:
        ValueError: x's trailing axes are not ``normalized_shape``, or γ/β have another
            shape.
    """
    x = _as_tensor(x)
    shape = _normalized_shape(normalized_shape)
    if not shape or x.shape[x.ndim - len(shape) :] != shape or x.ndim < len(shape):
        raise ValueError(
            f"layer_norm: input of shape {x.shape} does not end with normalized_shape {shape}"
        )
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(np.shape(value)) != shape:
            raise ValueError(
                f"layer_norm: {name} has shape {tuple(np.shape(value))}, expected "
                f"normalized_shape {shape}"
            )
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    variance = (centred * centred).mean(axis=axes, keepdims=True)
    y = centred * (variance + float(eps)) ** -0.5
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def embedding(indices: Any, weight: Any) -> Tensor:
    """y = W[indices]: the rows of W (num_embeddings, embedding_dim) at integer indices.

    ``indices`` of any shape S give y of shape S + (embedding_dim,). The gradient w.r.t. W
    is the scatter-add of the output gradient onto the rows used (a row used twice gets
    both), from indexing's rule; the indices get none.

    Raises:
        TypeError: the indices are not integers.
        ValueError: W is not 2-D.
        IndexError: an index lies outside [0, num_embeddings − 1].
    """
    weight = _as_tensor(weight)
    index = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if index.dtype.kind not in "iu":
        raise TypeError(
            f"embedding: indices must be integers, got dtype {index.dtype} (shape "
            f"{index.shape}); cast them with .astype(int)"
        )
    if weight.ndim != 2:
        raise ValueError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
            f"{weight.shape}"
        )
    count = weight.shape[0]
    bad = (index < 0) | (index >= count)
    if bad.any():
        values = np.unique(index[bad])[:5].tolist()
        raise IndexError(
            f"embedding: indices must be in [0, {count - 1}] for {count} embeddings; got "
            f"out-of-range values {values}"
        )
    return weight[index]


# ----------------------------------------------------------------------- more losses
def nll_loss(log_probs: Any, target: Any, reduction: str = "mean") -> Tensor:
    """ℓᵢ = −log_probs[i, targetᵢ] (negative log-likelihood), reduced;  ∂ℓᵢ/∂ the picked
    entry = −1, 0 elsewhere.

    ``nll_loss(log_softmax(z, axis=1), y)`` is ``cross_entropy(z, y)``.

    Args:
        log_probs: (N, C) or (N, C, d1, ...) (or (C,) for one example): log-probabilities,
            the class axis 1 (0 for 1-D input), as in PyTorch.
        target: integer class labels of shape (N,) or (N, d1, ...), each in [0, C − 1].
        reduction: "mean" (over N·d1·…), "sum" or "none" (shape (N, d1, ...)).
    """
    check_reduction("nll_loss", reduction)
    log_probs = _as_tensor(log_probs)
    check_logits("nll_loss", log_probs)
    axis = 1 if log_probs.ndim > 1 else 0
    labels = np.asarray(target.data if isinstance(target, Tensor) else target)
    check_labels("nll_loss", log_probs.shape, axis, labels)
    others: list[Any] = list(np.indices(labels.shape, sparse=True))
    index = tuple(others[:axis] + [labels] + others[axis:])
    return _reduce(-log_probs[index], reduction)


def _pair_residual(name: str, prediction: Any, target: Any) -> Tensor:
    prediction = _as_tensor(prediction)
    target = _target(target, prediction)
    _check_pair(name, prediction, target)
    return prediction - target


def huber_loss(input: Any, target: Any, delta: float = 1.0, reduction: str = "mean") -> Tensor:  # noqa: A002
    """ℓ = ½d² for |d| ≤ δ, else δ(|d| − ½δ), d = input − target;  ∂ℓ/∂d = clip(d, −δ, δ).

    The quadratic branch includes |d| = δ, where both branches and their slopes (±δ)
    agree, as in PyTorch; only the second derivative jumps there (1 inside, 0 outside).
    """
    check_reduction("huber_loss", reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    delta = float(delta)
    d = _pair_residual("huber_loss", input, target)
    size = d.abs()
    inside = size <= delta
    return _reduce(where(inside, d * d * 0.5, (size - 0.5 * delta) * delta), reduction)


def smooth_l1_loss(
    input: Any,  # noqa: A002 (PyTorch's name)
    target: Any,
    beta: float = 1.0,
    reduction: str = "mean",
) -> Tensor:
    """ℓ = ½d²/β for |d| < β, else |d| − ½β, d = input − target;  ∂ℓ/∂d = clip(d/β, −1, 1).

    Huber's loss divided by β. At |d| = β both branches and slopes (±1) agree; β = 0 is
    the L1 loss |d| (its derivative 0 at d = 0), as in PyTorch.
    """
    check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    beta = float(beta)
    d = _pair_residual("smooth_l1_loss", input, target)
    size = d.abs()
    if beta == 0:
        return _reduce(size, reduction)
    inside = size < beta
    return _reduce(where(inside, d * d * (0.5 / beta), size - 0.5 * beta), reduction)


KL_REDUCTIONS = ("batchmean", "mean", "sum", "none")


def kl_div(
    log_input: Any, target: Any, reduction: str = "batchmean", log_target: bool = False
) -> Tensor:
    """KL(t ‖ q) pointwise: ℓ = t (log t − log q), with ``log_input`` = log q (PyTorch's order).

    ``target`` t is a probability unless ``log_target=True`` (then it is log t and
    ℓ = eˡᵒᵍ ᵗ (log t − log q)). Where t = 0 the term is 0 (0·log 0 = 0). ∂ℓ/∂log q = −t;
    for a target that requires grad, ∂ℓ/∂t = log t + 1 − log q, taken as 0 at t = 0 (where
    it is −∞; PyTorch gives NaN there).

    Args:
        log_input: log-probabilities log q.
        target: t (or log t), the same shape.
        reduction: "batchmean" (the sum divided by the batch size, the first axis: the true
            KL divergence per example), "sum", "mean" (over all elements, as PyTorch: not
            the KL divergence) or "none".
        log_target: whether ``target`` is given as log-probabilities.
    """
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"kl_div: reduction must be one of {KL_REDUCTIONS}, got {reduction!r}")
    log_q = _as_tensor(log_input)
    t = _target(target, log_q)
    _check_pair("kl_div", log_q, t)
    if log_target:
        loss = exp(t) * (t - log_q)
    else:
        positive = t > 0
        # log of 1 where t = 0: the where then drops the term, with no 0·(−inf) = NaN
        log_t = log(where(positive, t, 1.0))
        loss = where(positive, t * (log_t - log_q), 0.0)
    if reduction == "batchmean":
        total = loss.sum()
        return total / loss.shape[0] if loss.ndim else total
    return _reduce(loss, reduction)


_LOG_FLOOR = -100.0  # PyTorch's clamp of BCE's logarithms


def _clamped_log(p: Tensor) -> Tensor:
    """max(log p, −100) for p in [0, 1], with no log 0 evaluated: 0 gives −100, gradient 0."""
    positive = p > 0
    return clip(where(positive, log(where(positive, p, 1.0)), _LOG_FLOOR), min=_LOG_FLOOR)


def binary_cross_entropy(
    p: Any, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """ℓ = −w [t log p + (1 − t) log(1 − p)] for probabilities p ∈ [0, 1].

    ∂ℓ/∂p = w (p − t)/(p(1 − p)). As PyTorch, each logarithm is clamped to ≥ −100, so
    p = 0 or 1 gives a finite loss (at most 100·w). Where a logarithm is clamped its
    gradient is 0 (the other term keeps its own), so the gradient is finite too; PyTorch
    writes (p − t)/max(p(1 − p), 1e−12) there instead, so the two differ only at p = 0 or
    1 exactly (or within e^−100 of them). For logits, ``binary_cross_entropy_with_logits``
    is stabler.

    Args:
        p: probabilities in [0, 1].
        target: t, the same shape.
        weight: optional w, broadcast to p's shape (a rescaling per element).
        reduction: "mean" (the mean of the weighted terms), "sum" or "none".

    Raises:
        ValueError: an element of p lies outside [0, 1], or the shapes differ.
    """
    check_reduction("binary_cross_entropy", reduction)
    p = _as_tensor(p)
    t = _target(target, p)
    _check_pair("binary_cross_entropy", p, t)
    values = values_of(p)[0]  # inside vmap: every example's
    if values.size and not ((values >= 0) & (values <= 1)).all():
        raise ValueError(
            "binary_cross_entropy: every element of p must be a probability in [0, 1] "
            f"(got min {np.min(values)}, max {np.max(values)}); for raw scores use "
            "binary_cross_entropy_with_logits"
        )
    loss = -(t * _clamped_log(p) + (1.0 - t) * _clamped_log(1.0 - p))
    if weight is not None:
        w = _target(weight, p)
        try:
            fits = np.broadcast_shapes(w.shape, p.shape) == p.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"binary_cross_entropy: weight of shape {w.shape} does not broadcast to p's "
                f"shape {p.shape}"
            )
        loss = loss * w
    return _reduce(loss, reduction)
