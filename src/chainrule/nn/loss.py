"""Loss modules: ``loss = criterion(prediction, target)``, each a thin shell over ``F``.

Every loss takes ``reduction="mean" | "sum" | "none"`` and requires the prediction and the
target to have the same shape (class labels for cross-entropy excepted).
"""

from __future__ import annotations

from typing import Any

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor

__all__ = ["MSELoss", "L1Loss", "RMSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss"]


class _Loss(Module):
    """What every loss shares: ``reduction`` = "mean" (default), "sum" or "none"."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in F.REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {F.REDUCTIONS}, "
                f"got {reduction!r}"
            )
        self.reduction = reduction

    def extra_repr(self) -> str:
        """``reduction=…`` for ``repr(module)`` when it is not the default."""
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error (1/m) Σ (ŷ − y)²."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        """L = (1/m) Σ (ŷ − y)²; ∂L/∂ŷ = 2(ŷ − y)/m (see ``F.mse_loss``)."""
        return F.mse_loss(prediction, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (the lecture's MAE) (1/m) Σ |ŷ − y|; 0 is taken as |·|'(0)."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        """L = (1/m) Σ |ŷ − y|; ∂L/∂ŷ = sign(ŷ − y)/m, 0 at ŷ = y (see ``F.l1_loss``)."""
        return F.l1_loss(prediction, target, self.reduction)


class RMSELoss(_Loss):
    """Root mean squared error √MSE = √((1/m) Σ (ŷ − y)²).

    The slide's √(1/m)·Σ(ŷ − y)² is a misprint: the root is of the mean. "sum" gives
    √(Σ (ŷ − y)²), "none" the elementwise |ŷ − y|. At zero residual the gradient is 0, not
    NaN (the derivative of √ at 0 is taken as 0).
    """

    def forward(self, prediction: Any, target: Any) -> Tensor:
        """L = √MSE; ∂L/∂ŷ = (ŷ − y)/(m·L), 0 where L = 0 (see ``F.rmse_loss``)."""
        return F.rmse_loss(prediction, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C[, d...]) against integer labels or probabilities.

    Fused log-softmax + negative log-likelihood, finite for logits of ±1e4; labels out of
    [0, C − 1] raise a ValueError naming the range.
    """

    def forward(self, logits: Any, target: Any) -> Tensor:
        """L = −(1/N) Σₙ log softmax(zₙ)[yₙ]; ∂L/∂z = (softmax(z) − onehot(y))/N."""
        return F.cross_entropy(logits, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits x against targets t ∈ [0, 1]: softplus(x) − t·x."""

    def forward(self, logits: Any, target: Any) -> Tensor:
        """L = mean(softplus(x) − t·x); ∂L/∂x = (σ(x) − t)/m."""
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction)
