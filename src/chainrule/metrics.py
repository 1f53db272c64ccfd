"""Metrics for reporting: plain floats (``cr.metrics``).

They take Tensors, ndarrays or lists, compute in float64 and return Python floats; nothing
is recorded for backpropagation (use the losses in ``cr.nn`` to train). As the losses, they
require the prediction and the target to have the same shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor import Tensor

__all__ = ["mae", "mse", "rmse", "accuracy"]


def _array(x: Any) -> np.ndarray:
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def _residual(name: str, y_hat: Any, y: Any) -> np.ndarray:
    y_hat, y = _array(y_hat), _array(y)
    if y_hat.shape != y.shape:
        raise ValueError(
            f"{name}: prediction shape {y_hat.shape} and target shape {y.shape} differ; they "
            "must be equal (no broadcasting of (m, 1) against (m,))"
        )
    if y_hat.size == 0:
        raise ValueError(f"{name}: needs at least one instance, got empty arrays")
    return y_hat.astype(np.float64) - y.astype(np.float64)


def mae(y_hat: Any, y: Any) -> float:
    """MAE = (1/m) Σ |ŷ − y|."""
    return float(np.mean(np.abs(_residual("mae", y_hat, y))))


def mse(y_hat: Any, y: Any) -> float:
    """MSE = (1/m) Σ (ŷ − y)²."""
    return float(np.mean(np.square(_residual("mse", y_hat, y))))


def rmse(y_hat: Any, y: Any) -> float:
    """RMSE = √MSE = √((1/m) Σ (ŷ − y)²).

    The lecture's slide prints √(1/m)·Σ(ŷ − y)², which is a misprint: the square root is
    of the mean of the squares, so RMSE has the units of y.
    """
    return float(np.sqrt(np.mean(np.square(_residual("rmse", y_hat, y)))))


def accuracy(logits_or_labels: Any, y: Any) -> float:
    """Fraction of instances whose predicted class equals the label y.

    Args:
        logits_or_labels: scores with a class axis, (N, C) or (N, C, d...) (the prediction
            is their argmax along axis 1, as cross-entropy's layout), or predicted labels
            with y's shape.
        y: integer labels, (N,) or (N, d...).

    Returns:
        A float in [0, 1].
    """
    scores, labels = _array(logits_or_labels), _array(y)
    if scores.ndim == labels.ndim + 1 and scores.ndim >= 2:
        if scores.shape[1] == 1:
            raise ValueError(
                f"accuracy: scores of shape {scores.shape} have a single class column; for "
                "a binary logit, pass the predicted labels (e.g. logits[:, 0] > 0)"
            )
        predicted = np.argmax(scores, axis=1)
    else:
        predicted = scores
    if predicted.shape != labels.shape:
        raise ValueError(
            f"accuracy: predictions of shape {scores.shape} do not fit labels of shape "
            f"{labels.shape}: pass scores (N, C) with labels (N,), or labels of equal shape"
        )
    if labels.size == 0:
        raise ValueError("accuracy: needs at least one instance, got empty arrays")
    return float(np.mean(predicted == labels))
