"""Forward and backward propagation exactly as the slides write them, in plain NumPy.

Forward:   a[0] = x,  f[l] = (W[l])ᵀ a[l−1] + b[l],  a[l] = g[l](f[l]),  ŷ = a[L].
Backward:  δ[L] = g′[L](f[L]) ∘ ∂L/∂a[L],
           δ[l] = g′[l](f[l]) ∘ (W[l+1] δ[l+1]),
           ∂L/∂W[l] = a[l−1] (δ[l])ᵀ,  ∂L/∂b[l] = δ[l].

δ[l] = ∂L/∂f[l] is computed once per layer and reused by the layer below: backprop avoids
duplicate calculations and never forms a Jacobian. A single example is a column (n[l]×1),
as on the slides; a batch of m examples is rows (m×n[l]), where the same equations read
F[l] = A[l−1] W[l] + b[l], Δ[l] = g′(F[l]) ∘ (Δ[l+1] W[l+1]ᵀ), ∂L/∂W[l] = A[l−1]ᵀ Δ[l]
(summed over the examples; the loss's reduction enters through Δ[L]).

Losses: "mse" (ŷ = a[L], L = Σ(ŷ − y)² averaged over all elements or summed) and
"cross-entropy" (ŷ = softmax(a[L]), L = −Σ y log ŷ averaged over the m examples or summed;
y holds class labels or probabilities), both as chainrule's and PyTorch's losses define them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.lecture.network import Network, activate, derivative, width_error

__all__ = ["LOSSES", "REDUCTIONS", "Layer", "Trace", "forward", "backprop", "targets"]

LOSSES = ("mse", "cross-entropy")
REDUCTIONS = ("mean", "sum")


@dataclass
class Layer:
    """Layer l of one pass, in the lecture's symbols.

    Single example (columns): ``a_prev`` a[l−1] (n[l−1]×1); ``f``, ``a``, ``g_prime``,
    ``delta``, ``db`` (n[l]×1). Batch (rows): ``a_prev`` (m×n[l−1]); ``f``, ``a``,
    ``g_prime``, ``delta`` (m×n[l]); ``db`` (n[l],). Both: ``W`` and ``dW`` (n[l−1]×n[l]).
    """

    l: int
    g: str
    W: np.ndarray
    b: np.ndarray | None
    a_prev: np.ndarray
    f: np.ndarray
    a: np.ndarray
    g_prime: np.ndarray
    delta: np.ndarray | None = None
    dW: np.ndarray | None = None
    db: np.ndarray | None = None


@dataclass
class Trace:
    """A forward pass (and, after ``backprop``, the backward pass) of a network.

    ``layout`` is "columns" (one example, as on the slides) or "rows" (a batch).
    ``y`` is the target shaped like a[L] (one-hot for class labels), ``y_hat`` the
    prediction ŷ, ``value`` the loss L and ``dL_da`` ∂L/∂a[L].
    """

    network: Network
    layout: str
    x: np.ndarray
    layers: list[Layer]
    loss: str | None = None
    reduction: str | None = None
    y: np.ndarray | None = None
    y_hat: np.ndarray | None = None
    value: float | None = None
    dL_da: np.ndarray | None = None

    @property
    def output(self) -> np.ndarray:
        """a[L]."""
        return self.layers[-1].a


def forward(network: Network, x: Any) -> Trace:
    """a[l] = g[l](f[l]), f[l] = (W[l])ᵀ a[l−1] + b[l] for l = 1 … L, from a[0] = x.

    Args:
        network: the layers.
        x: one example of shape (n[0],) (computed in columns, n[0]×1) or a batch of shape
            (m, n[0]) (computed in rows). Converted to the network's dtype.

    Returns:
        A ``Trace`` with f[l], a[l] and g′[l](f[l]) of every layer.

    Raises:
        ValueError: when x does not have n[0] features (in the lecture's words).
    """
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(
            f"x must be one example (n[0],) or a batch (m, n[0]), got shape {x.shape}"
        )
    layout = "columns" if x.ndim == 1 else "rows"
    a = x.astype(network.dtype, copy=False)
    if layout == "columns":
        a = a.reshape(-1, 1)
    layers = []
    for l, (W, b, g) in enumerate(zip(network.weights, network.biases, network.activations), 1):
        got = a.shape[0] if layout == "columns" else a.shape[1]
        if got != W.shape[0]:
            raise width_error(l, W.shape[0], got)
        if layout == "columns":
            f = W.T @ a
            if b is not None:
                f = f + b.reshape(-1, 1)
        else:
            f = a @ W
            if b is not None:
                f = f + b
        a_next = activate(g, f)
        layers.append(Layer(l, g, W, b, a, f, a_next, derivative(g, f, a_next)))
        a = a_next
    return Trace(network, layout, layers[0].a_prev, layers)


def backprop(
    network: Network, x: Any, y: Any, loss: str = "mse", reduction: str = "mean"
) -> Trace:
    """Forward, then δ[l] = g′[l](f[l]) ∘ (W[l+1] δ[l+1]) and ∂L/∂W[l] = a[l−1] (δ[l])ᵀ.

    Args:
        network: the layers.
        x: one example (n[0],) or a batch (m, n[0]).
        y: the target. MSE: shaped like ŷ, i.e. (n[L],) or (m, n[L]) ((m,) when n[L] = 1).
            Cross-entropy: a class label (an int, or (m,) ints) or probabilities shaped
            like ŷ.
        loss: "mse" or "cross-entropy".
        reduction: "mean" or "sum", as the loss of chainrule (and PyTorch) has it.

    Returns:
        The ``Trace`` with δ[l], ∂L/∂W[l] and ∂L/∂b[l] filled in for every layer.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose mean or sum")
    trace = forward(network, x)
    columns = trace.layout == "columns"
    out = trace.output
    target = targets(y, loss, out, trace.layout)
    if loss == "mse":
        count = out.size if reduction == "mean" else 1
        diff = out - target
        trace.value = float((diff * diff).sum() / count)
        trace.y_hat = out
        trace.dL_da = 2 * diff / count
    else:
        axis = 0 if columns else 1
        count = (1 if columns else out.shape[0]) if reduction == "mean" else 1
        shifted = out - out.max(axis=axis, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        trace.value = float(-(target * log_p).sum() / count)
        trace.y_hat = np.exp(log_p)
        trace.dL_da = (trace.y_hat - target) / count
    trace.loss, trace.reduction, trace.y = loss, reduction, target

    delta = trace.layers[-1].g_prime * trace.dL_da
    for layer in reversed(trace.layers):
        layer.delta = delta
        if columns:
            layer.dW = layer.a_prev @ delta.T
        else:
            layer.dW = layer.a_prev.T @ delta
        if layer.b is not None:
            layer.db = delta.copy() if columns else delta.sum(axis=0)
        if layer.l > 1:
            below = trace.layers[layer.l - 2]
            if columns:
                delta = below.g_prime * (layer.W @ delta)
            else:
                delta = below.g_prime * (delta @ layer.W.T)
    return trace


def targets(y: Any, loss: str, out: np.ndarray, layout: str) -> np.ndarray:
    """The target y shaped like a[L] (``out``): class labels become one-hot rows/columns.

    Raises:
        ValueError: when y does not fit ŷ, naming both shapes.
    """
    y = np.asarray(y)
    columns = layout == "columns"
    n_out = out.shape[0] if columns else out.shape[1]
    examples = 1 if columns else out.shape[0]
    shown = "(n[L],) = " + str((n_out,)) if columns else f"(m, n[L]) = {out.shape}"
    if loss == "cross-entropy" and y.dtype.kind in "iub":
        labels = y.reshape(-1)
        if labels.size != examples or (columns and y.ndim > 1) or (not columns and y.ndim != 1):
            expected = "one class label" if columns else f"{examples} class labels (m,)"
            raise ValueError(f"loss: cross-entropy needs {expected}, got y of shape {y.shape}")
        if labels.min() < 0 or labels.max() >= n_out:
            raise ValueError(
                f"loss: class labels must be in 0 … {n_out - 1} (ŷ has {n_out} classes), "
                f"got {labels.min()} … {labels.max()}"
            )
        one_hot = np.eye(n_out, dtype=out.dtype)[labels]
        return one_hot.T if columns else one_hot
    y = y.astype(out.dtype, copy=False)
    if columns and y.size == n_out and y.ndim <= 2 and y.shape in ((n_out,), (n_out, 1)):
        return y.reshape(n_out, 1)
    if not columns and y.shape == out.shape:
        return y
    if not columns and n_out == 1 and y.shape == (examples,):
        return y.reshape(examples, 1)
    raise ValueError(f"loss: ŷ = a[L] has shape {shown}, but y has shape {y.shape}")
