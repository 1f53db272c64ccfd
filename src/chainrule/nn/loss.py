"""Loss modules: ``loss = criterion(prediction, target)``, each a thin shell over ``F``.

Every loss takes ``reduction="mean" | "sum" | "none"`` and requires the prediction and the
target to have the same shape (class labels for cross-entropy excepted).
"""

from __future__ import annotations

from typing import Any

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor

__all__ = [
    "MSELoss", "L1Loss", "RMSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "NLLLoss",
    "HuberLoss", "SmoothL1Loss", "KLDivLoss", "BCELoss",
]  # fmt: skip


class _Loss(Module):
    """What every loss shares: ``reduction`` = "mean" (default), "sum" or "none"."""

    reductions: tuple[str, ...] = F.REDUCTIONS
    default_reduction = "mean"

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in self.reductions:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {self.reductions}, "
                f"got {reduction!r}"
            )
        self.reduction = reduction

    def extra_repr(self) -> str:
        """``reduction=…`` for ``repr(module)`` when it is not the default."""
        if self.reduction == self.default_reduction:
            return ""
        return f"reduction={self.reduction!r}"


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


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C[, d...]) at integer labels."""

    def forward(self, log_probs: Any, target: Any) -> Tensor:
        """L = −(1/N) Σₙ log_probs[n, yₙ]; ∂L/∂log_probs = −onehot(y)/N (see ``F.nll_loss``)."""
        return F.nll_loss(log_probs, target, self.reduction)


class HuberLoss(_Loss):
    """Huber's loss: ½d² for |d| ≤ δ, else δ(|d| − ½δ), d = ŷ − y (δ = ``delta``)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"HuberLoss: delta must be positive, got {delta}")
        self.delta = float(delta)

    def forward(self, prediction: Any, target: Any) -> Tensor:
        """L = mean ℓ(ŷ − y); ∂ℓ/∂ŷ = clip(ŷ − y, −δ, δ) (see ``F.huber_loss``)."""
        return F.huber_loss(prediction, target, self.delta, self.reduction)

    def extra_repr(self) -> str:
        """``delta=…`` (and the reduction when not the default) for ``repr(module)``."""
        return ", ".join(filter(None, [super().extra_repr(), f"delta={self.delta}"]))


class SmoothL1Loss(_Loss):
    """½d²/β for |d| < β, else |d| − ½β, d = ŷ − y (β = ``beta``; β = 0 is the L1 loss)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be >= 0, got {beta}")
        self.beta = float(beta)

    def forward(self, prediction: Any, target: Any) -> Tensor:
        """L = mean ℓ(ŷ − y); ∂ℓ/∂ŷ = clip((ŷ − y)/β, −1, 1) (see ``F.smooth_l1_loss``)."""
        return F.smooth_l1_loss(prediction, target, self.beta, self.reduction)

    def extra_repr(self) -> str:
        """``beta=…`` (and the reduction when not the default) for ``repr(module)``."""
        return ", ".join(filter(None, [super().extra_repr(), f"beta={self.beta}"]))


class KLDivLoss(_Loss):
    """KL(t ‖ q) of log-probabilities log q against probabilities t (log t with
    ``log_target=True``).

    The default reduction is "batchmean" (the KL divergence per example, as ``F.kl_div``),
    not PyTorch's "mean", which divides by the number of elements and which PyTorch itself
    warns is not the KL divergence; "mean", "sum" and "none" are accepted too.
    """

    reductions = F.KL_REDUCTIONS
    default_reduction = "batchmean"

    def __init__(self, reduction: str = "batchmean", log_target: bool = False) -> None:
        super().__init__(reduction)
        self.log_target = bool(log_target)

    def forward(self, log_input: Any, target: Any) -> Tensor:
        """L = (1/N) Σ t (log t − log q); ∂L/∂log q = −t/N (see ``F.kl_div``)."""
        return F.kl_div(log_input, target, self.reduction, self.log_target)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities p ∈ [0, 1]: −w[t log p + (1 − t) log(1 − p)].

    Each logarithm is clamped to ≥ −100, as in PyTorch (see ``F.binary_cross_entropy``);
    ``weight`` (optional) rescales each element and is broadcast to p's shape.
    """

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, p: Any, target: Any) -> Tensor:
        """L = mean ℓ; ∂ℓ/∂p = w(p − t)/(p(1 − p)) (see ``F.binary_cross_entropy``)."""
        return F.binary_cross_entropy(p, target, self.weight, self.reduction)
